// Command holdctl is the operator CLI of a holdfast node. It speaks gRPC
// (holdfast.v1.ActorService and AdminService) to one node.
//
// Output is a human table by default and exactly one JSON document on stdout
// with -o json. Errors go to stderr as "holdctl: <message>". Exit status:
// 0 ok, 1 error from the node or the connection, 2 usage error, 3 ratelimit
// take refused, 4 not found.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// Exit statuses; scripts depend on them.
const (
	exitOK       = 0
	exitFail     = 1
	exitUsage    = 2
	exitRefused  = 3
	exitNotFound = 4
)

// action runs a command once its flags and arguments are parsed.
type action func(inv *invocation, args []string) error

// command describes one leaf command, e.g. "kv put".
type command struct {
	name    string // full name: "status", "kv put"
	args    string // positional arguments for the usage line
	summary string // one line for the command list
	about   string // longer description, optional
	flags   string // flag help, preformatted lines
	minArgs int
	maxArgs int  // -1: no maximum
	remote  bool // needs a connection to the node
	// setup registers the command's own flags on fs and returns the action,
	// which reads the parsed flag values it captured.
	setup func(fs *flag.FlagSet) action
}

// groups are the commands that take a subcommand, in help order.
var groups = []string{"kv", "ratelimit", "alarm", "actors", "keys", "limits"}

// commands returns every leaf command in help order.
func commands() []*command {
	var cs []*command
	cs = append(cs, statusCommand())
	cs = append(cs, clusterCommands()...)
	cs = append(cs, kvCommands()...)
	cs = append(cs, ratelimitCommands()...)
	cs = append(cs, alarmCommands()...)
	cs = append(cs, actorsCommands()...)
	cs = append(cs, keysCommands()...)
	cs = append(cs, limitsCommands()...)
	cs = append(cs, usageCommand(), eventsCommand(), hotCommand())
	cs = append(cs, versionCommand(), helpCommand())
	return cs
}

func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

func isGroup(name string) bool {
	for _, g := range groups {
		if g == name {
			return true
		}
	}
	return false
}

// run is the whole CLI; main only wires it to the process.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	g := newGlobals(getenv)

	// Global flags before the command.
	top := newFlagSet("holdctl")
	g.register(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, mainUsage())
			return exitOK
		}
		return usageFail(stderr, g, err.Error(), mainUsage())
	}
	rest := top.Args()
	if len(rest) == 0 {
		return usageFail(stderr, g, "no command given", mainUsage())
	}
	name, rest := rest[0], rest[1:]

	if isGroup(name) {
		// Global flags between the group and its subcommand.
		gfs := newFlagSet("holdctl " + name)
		g.register(gfs)
		if err := gfs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, groupUsage(name))
				return exitOK
			}
			return usageFail(stderr, g, err.Error(), groupUsage(name))
		}
		rest = gfs.Args()
		if len(rest) == 0 {
			return usageFail(stderr, g, "missing subcommand of "+name, groupUsage(name))
		}
		if rest[0] == "help" {
			fmt.Fprint(stdout, groupUsage(name))
			return exitOK
		}
		name, rest = name+" "+rest[0], rest[1:]
	}

	cmd := lookup(name)
	if cmd == nil {
		return usageFail(stderr, g, fmt.Sprintf("unknown command %q", name), mainUsage())
	}
	return runCommand(cmd, g, rest, stdout, stderr)
}

func runCommand(cmd *command, g *globals, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("holdctl " + cmd.name)
	g.register(fs)
	act := cmd.setup(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, commandUsage(cmd))
			return exitOK
		}
		return usageFail(stderr, g, err.Error(), commandUsage(cmd))
	}
	if err := g.validate(); err != nil {
		return usageFail(stderr, g, err.Error(), commandUsage(cmd))
	}
	if len(pos) < cmd.minArgs || (cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs) {
		msg := "wrong number of arguments"
		if cmd.args != "" {
			msg += ", want " + cmd.args
		}
		return usageFail(stderr, g, msg, commandUsage(cmd))
	}

	inv := &invocation{g: g, cmd: cmd, stdout: stdout, stderr: stderr}
	if cmd.remote {
		if err := inv.connect(); err != nil {
			return inv.fail(err)
		}
		defer inv.conn.Close()
	}
	if err := act(inv, pos); err != nil {
		return inv.fail(err)
	}
	return exitOK
}

// usageFail reports a usage error and the relevant usage text on stderr.
func usageFail(stderr io.Writer, g *globals, msg, usage string) int {
	fmt.Fprintf(stderr, "holdctl: %s\n\n%s", redact(msg, g.token), usage)
	return exitUsage
}

func mainUsage() string {
	var b strings.Builder
	b.WriteString("Usage: holdctl [global flags] COMMAND [flags] [arguments]\n\n")
	b.WriteString("holdctl operates a holdfast node over gRPC.\n\nCommands:\n")
	tw := newTable(&b)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	tw.Flush()
	b.WriteString("\n" + globalFlagsHelp)
	b.WriteString("\nRun 'holdctl help COMMAND' for a command's flags.\n")
	b.WriteString("Put -- before arguments that start with '-'.\n")
	b.WriteString("\nExit status: 0 ok, 1 error from the node or connection, 2 usage error,\n")
	b.WriteString("3 ratelimit take refused, 4 not found.\n")
	return b.String()
}

func groupUsage(group string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: holdctl %s SUBCOMMAND [flags] [arguments]\n\nSubcommands:\n", group)
	tw := newTable(&b)
	for _, c := range commands() {
		if strings.HasPrefix(c.name, group+" ") {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
		}
	}
	tw.Flush()
	fmt.Fprintf(&b, "\nRun 'holdctl help %s SUBCOMMAND' for a subcommand's flags.\n", group)
	return b.String()
}

func commandUsage(c *command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: holdctl %s", c.name)
	if c.args != "" {
		b.WriteString(" " + c.args)
	}
	if c.flags != "" {
		b.WriteString(" [flags]")
	}
	b.WriteString("\n\n" + c.summary + "\n")
	if c.about != "" {
		b.WriteString("\n" + c.about + "\n")
	}
	if c.flags != "" {
		b.WriteString("\nFlags:\n" + c.flags)
	}
	b.WriteString("\nGlobal flags (--addr, -o, --token, --timeout, --tls-ca, --cert, --key,\n")
	b.WriteString("--tls-server-name) go before or after the command; see 'holdctl help'.\n")
	return b.String()
}

func helpCommand() *command {
	return &command{
		name:    "help",
		args:    "[COMMAND]",
		summary: "show this help, or a command's usage",
		maxArgs: 2,
		setup: func(fs *flag.FlagSet) action {
			return func(inv *invocation, args []string) error {
				name := strings.Join(args, " ")
				switch {
				case name == "":
					fmt.Fprint(inv.stdout, mainUsage())
				case isGroup(name):
					fmt.Fprint(inv.stdout, groupUsage(name))
				case lookup(name) != nil:
					fmt.Fprint(inv.stdout, commandUsage(lookup(name)))
				default:
					return usagef("unknown command %q", name)
				}
				return nil
			}
		},
	}
}
