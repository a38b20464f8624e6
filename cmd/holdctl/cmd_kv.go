package main

import (
	"flag"
	"fmt"
	"os"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

const kvNamespaceHelp = "  --namespace NS        namespace of kind kv (default kv)\n"

// kvTarget registers the flags naming a kv actor.
type kvTarget struct {
	namespace *string
	shard     *uint
}

func newKVTarget(fs *flag.FlagSet) kvTarget {
	return kvTarget{
		namespace: fs.String("namespace", "kv", ""),
		shard:     fs.Uint("shard", 0, ""),
	}
}

func (t kvTarget) ref(actor string) (*holdfastv1.ActorRef, error) {
	return actorRef(*t.namespace, actor, *t.shard)
}

func kvCommands() []*command {
	return []*command{
		{
			name: "kv put", args: "ACTOR KEY [VALUE]", minArgs: 2, maxArgs: 3, remote: true,
			summary: "store VALUE (UTF-8 text), or the bytes of --file, under KEY of a kv actor",
			flags:   kvNamespaceHelp + shardHelp + requestIDHelp + "  --file PATH   read the value from PATH (binary-safe, any size up to the node's limit)\n",
			setup: func(fs *flag.FlagSet) action {
				t := newKVTarget(fs)
				reqID := fs.String("request-id", "", "")
				file := fs.String("file", "", "")
				return func(inv *invocation, args []string) error {
					ref, err := t.ref(args[0])
					if err != nil {
						return err
					}
					if (len(args) == 3) == (*file != "") {
						return usagef("give the value as an argument or with --file, not both or neither")
					}
					key := args[1]
					var value []byte
					if *file != "" {
						if value, err = os.ReadFile(*file); err != nil {
							return usagef("--file: %v", err)
						}
					} else {
						value = []byte(args[2])
					}
					id := inv.newRequestID(*reqID)
					_, err = call(inv, inv.actor.KvPut, &holdfastv1.KvPutRequest{
						Actor: ref, RequestId: id,
						Entries: []*holdfastv1.Entry{{Key: key, Value: value}},
					})
					if err != nil {
						return err
					}
					if inv.jsonMode() {
						return inv.writeJSON(struct {
							Namespace string `json:"namespace"`
							Actor     string `json:"actor"`
							Key       string `json:"key"`
							Bytes     int    `json:"bytes"`
							RequestID string `json:"request_id"`
						}{ref.Namespace, ref.Key, key, len(value), id})
					}
					_, err = fmt.Fprintf(inv.stdout, "put %s in %s/%s (%d bytes)\n", displayKey(key), ref.Namespace, ref.Key, len(value))
					return err
				}
			},
		},
		{
			name: "kv get", args: "ACTOR KEY", minArgs: 2, maxArgs: 2, remote: true,
			summary: "print the value of KEY (exit status 4 when missing)",
			about: "Text output is the raw value and a newline. JSON output is\n" +
				`{"key":KEY,"value":TEXT}, or "value":null and "value_base64" when the` + "\n" +
				"value is not valid UTF-8.",
			flags: kvNamespaceHelp + shardHelp,
			setup: func(fs *flag.FlagSet) action {
				t := newKVTarget(fs)
				return func(inv *invocation, args []string) error {
					ref, err := t.ref(args[0])
					if err != nil {
						return err
					}
					key := args[1]
					resp, err := call(inv, inv.actor.KvGet, &holdfastv1.KvGetRequest{Actor: ref, Keys: []string{key}})
					if err != nil {
						return err
					}
					var found *holdfastv1.Entry
					for _, e := range resp.GetEntries() {
						if e.GetKey() == key {
							found = e
							break
						}
					}
					if found == nil {
						return &exitError{code: exitNotFound, msg: fmt.Sprintf("not found: key %s in %s/%s", displayKey(key), ref.Namespace, ref.Key)}
					}
					if inv.jsonMode() {
						return inv.writeJSON(newJSONEntry(key, found.GetValue()))
					}
					if _, err := inv.stdout.Write(found.GetValue()); err != nil {
						return err
					}
					_, err = fmt.Fprintln(inv.stdout)
					return err
				}
			},
		},
		{
			name: "kv delete", args: "ACTOR KEY", minArgs: 2, maxArgs: 2, remote: true,
			summary: "delete KEY of a kv actor",
			flags:   kvNamespaceHelp + shardHelp + requestIDHelp,
			setup: func(fs *flag.FlagSet) action {
				t := newKVTarget(fs)
				reqID := fs.String("request-id", "", "")
				return func(inv *invocation, args []string) error {
					ref, err := t.ref(args[0])
					if err != nil {
						return err
					}
					key := args[1]
					id := inv.newRequestID(*reqID)
					resp, err := call(inv, inv.actor.KvDelete, &holdfastv1.KvDeleteRequest{Actor: ref, RequestId: id, Keys: []string{key}})
					if err != nil {
						return err
					}
					if inv.jsonMode() {
						return inv.writeJSON(struct {
							Namespace string `json:"namespace"`
							Actor     string `json:"actor"`
							Key       string `json:"key"`
							Deleted   int64  `json:"deleted"`
							RequestID string `json:"request_id"`
						}{ref.Namespace, ref.Key, key, resp.GetDeleted(), id})
					}
					if resp.GetDeleted() == 0 {
						_, err = fmt.Fprintf(inv.stdout, "%s did not exist in %s/%s\n", displayKey(key), ref.Namespace, ref.Key)
					} else {
						_, err = fmt.Fprintf(inv.stdout, "deleted %s from %s/%s\n", displayKey(key), ref.Namespace, ref.Key)
					}
					return err
				}
			},
		},
		{
			name: "kv list", args: "ACTOR", minArgs: 1, maxArgs: 1, remote: true,
			summary: "list the keys and values of a kv actor",
			about:   `JSON output: {"entries":[{"key":..,"value":..},...],"truncated":BOOL}.`,
			flags: kvNamespaceHelp + shardHelp +
				"  --prefix P            only keys starting with P\n" +
				"  --start S             first key, inclusive\n" +
				"  --end E               last key, exclusive\n" +
				"  --limit N             at most N entries (0: the node's maximum)\n" +
				"  --reverse             descending key order\n",
			setup: func(fs *flag.FlagSet) action {
				t := newKVTarget(fs)
				prefix := fs.String("prefix", "", "")
				start := fs.String("start", "", "")
				end := fs.String("end", "", "")
				limit := fs.Int64("limit", 0, "")
				reverse := fs.Bool("reverse", false, "")
				return func(inv *invocation, args []string) error {
					ref, err := t.ref(args[0])
					if err != nil {
						return err
					}
					if *limit < 0 {
						return usagef("--limit must not be negative")
					}
					resp, err := call(inv, inv.actor.KvList, &holdfastv1.KvListRequest{
						Actor: ref, Prefix: *prefix, Start: *start, End: *end, Limit: *limit, Reverse: *reverse,
					})
					if err != nil {
						return err
					}
					return inv.printEntries(resp.GetEntries(), resp.GetTruncated())
				}
			},
		},
	}
}

// printEntries prints a key/value listing: a table, or
// {"entries":[...],"truncated":bool}.
func (inv *invocation) printEntries(entries []*holdfastv1.Entry, truncated bool) error {
	if inv.jsonMode() {
		out := struct {
			Entries   []jsonEntry `json:"entries"`
			Truncated bool        `json:"truncated"`
		}{Entries: make([]jsonEntry, 0, len(entries)), Truncated: truncated}
		for _, e := range entries {
			out.Entries = append(out.Entries, newJSONEntry(e.GetKey(), e.GetValue()))
		}
		return inv.writeJSON(out)
	}
	tw := newTable(inv.stdout)
	fmt.Fprintf(tw, "KEY\tVALUE\n")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\n", displayKey(e.GetKey()), displayValue(e.GetValue()))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if truncated {
		fmt.Fprintf(inv.stderr, "holdctl: listing truncated after %d entries (use --limit or --start to see more)\n", len(entries))
	}
	return nil
}
