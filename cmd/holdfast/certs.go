package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/holdfast/holdfast/cluster/tlsconf"
)

const certsUsage = `Usage:
  holdfast certs init DIR [--node NAME ...|--nodes A,B,C] [--host H ...] [--force|--keep]

Writes a development CA, one certificate per node, an admin client
certificate for holdctl, a memberlist gossip key and a NATS token into DIR
(created 0700; keys and secrets 0600). Default nodes: node-1,node-2,node-3.

  --node NAME     a node ID to issue a certificate for (repeatable)
  --nodes A,B,C   node IDs, comma separated
  --host H        an extra IP address or DNS name for every node certificate,
                  beyond its node ID, localhost, 127.0.0.1 and ::1 (repeatable;
                  commas allowed)
  --force         overwrite existing files (otherwise nothing is written if
                  any exists)
  --keep          if files exist already, write nothing and succeed (an init
                  container that runs before every start)
`

// listFlag is a repeatable flag whose values may also be comma separated.
type listFlag struct{ p *[]string }

func (l listFlag) String() string { return "" }

func (l listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			return errors.New("empty value")
		}
		*l.p = append(*l.p, s)
	}
	return nil
}

// certs runs `holdfast certs SUBCOMMAND`.
func certs(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, certsUsage)
		return 2
	}
	switch args[0] {
	case "init":
		return certsInit(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, certsUsage)
		return 0
	default:
		fmt.Fprintf(stderr, "holdfast certs: unknown command %q\n\n%s", args[0], certsUsage)
		return 2
	}
}

func certsInit(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("certs init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	var nodes, hosts []string
	fs.Var(listFlag{&nodes}, "node", "")
	fs.Var(listFlag{&nodes}, "nodes", "")
	fs.Var(listFlag{&hosts}, "host", "")
	force := fs.Bool("force", false, "")
	keep := fs.Bool("keep", false, "")

	// Flags may come before or after DIR.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, certsUsage)
				return 0
			}
			fmt.Fprintf(stderr, "\n%s", certsUsage)
			return 2
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if len(pos) != 1 {
		if len(pos) == 0 {
			fmt.Fprintf(stderr, "holdfast certs init: missing DIR\n\n%s", certsUsage)
		} else {
			fmt.Fprintf(stderr, "holdfast certs init: unexpected argument %q\n\n%s", pos[1], certsUsage)
		}
		return 2
	}
	dir := pos[0]
	if *force && *keep {
		fmt.Fprintf(stderr, "holdfast certs init: --force and --keep contradict each other\n\n%s", certsUsage)
		return 2
	}

	opt := tlsconf.DefaultDevOptions()
	if len(nodes) > 0 {
		opt.Nodes = nodes
	}
	opt.Hosts = hosts
	opt.Force = *force
	if err := opt.Validate(); err != nil {
		fmt.Fprintf(stderr, "holdfast certs init: %v\n", err)
		return 2
	}
	written, err := tlsconf.GenerateDev(dir, opt)
	if err != nil {
		for _, p := range written {
			fmt.Fprintf(stderr, "holdfast: wrote %s before failing\n", p)
		}
		if errors.Is(err, tlsconf.ErrExists) && *keep && len(written) == 0 {
			fmt.Fprintf(stdout, "Kept the existing files in %s: %v\n", dir, err)
			return 0
		}
		if errors.Is(err, tlsconf.ErrExists) {
			fmt.Fprintf(stderr, "holdfast: %v (nothing written; --force overwrites, --keep keeps)\n", err)
		} else {
			fmt.Fprintf(stderr, "holdfast: %v\n", err)
		}
		return 1
	}

	fmt.Fprintf(stdout, "Wrote %d files:\n", len(written))
	for _, p := range written {
		fmt.Fprintf(stdout, "  %s\n", p)
	}
	fmt.Fprintf(stdout, "\n%s\n", wrap(certsHint(dir, opt.Nodes), 76))
	return 0
}

// certsHint is the paragraph telling which config keys take the files.
func certsHint(dir string, nodes []string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	p := func(name string) string { return filepath.Join(dir, name) }
	cert, key := tlsconf.DevNodeFiles("NAME")
	return fmt.Sprintf(`On each node (NAME: its node_id, one of %s) set cluster.tls.ca: %s, `+
		`cluster.tls.cert: %s, cluster.tls.key: %s, cluster.gossip_key_file: %s and `+
		`cluster.nats_token_file: %s; holdctl authenticates with --tls-ca %s --cert %s --key %s. `+
		`%s signs certificates: keep it off the nodes. These are development certificates; `+
		`in production use your own CA (node certificates need Subject OU %s and the node ID `+
		`as CommonName, admin certificates OU %s).`,
		strings.Join(nodes, ", "), p(tlsconf.DevCAFile), p(cert), p(key),
		p(tlsconf.DevGossipKeyFile), p(tlsconf.DevNATSTokenFile),
		p(tlsconf.DevCAFile), p(tlsconf.DevAdminFile), p(tlsconf.DevAdminKeyFile),
		p(tlsconf.DevCAKeyFile), tlsconf.OUNode, tlsconf.OUAdmin)
}

// wrap breaks text into lines of at most width columns at spaces (a longer
// word stays whole).
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(text) {
		if i > 0 {
			if n+1+len(w) > width {
				b.WriteByte('\n')
				n = 0
			} else {
				b.WriteByte(' ')
				n++
			}
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}
