package ownership

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func validConfig() Config {
	return Config{
		NodeID: "a", Partitions: 4, TTL: 15 * time.Second, Epsilon: time.Second,
		RenewInterval: 5 * time.Second, RetryInterval: 500 * time.Millisecond,
		HandoffTimeout: 5 * time.Second, BootNonce: "n1",
		Placement: RendezvousPlacement{Members: []NodeID{"a"}},
	}
}

func TestConfigErrors(t *testing.T) {
	for _, mut := range []func(*Config){
		func(c *Config) { c.NodeID = "" },
		func(c *Config) { c.Partitions = 0 },
		func(c *Config) { c.Epsilon = c.TTL },
		func(c *Config) { c.RenewInterval = c.TTL },
		func(c *Config) { c.BootNonce = "" },
		func(c *Config) { c.Placement = nil },
	} {
		c := validConfig()
		mut(&c)
		var ce *ConfigError
		if _, err := New(c, Disk{}); !errors.As(err, &ce) {
			t.Errorf("config %+v: error %v", c, err)
		}
	}
}

func TestStepErrors(t *testing.T) {
	n, err := New(validConfig(), Disk{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(100, 0)
	if _, err := n.Step(t0, Tick{}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Step(t0.Add(-time.Nanosecond), Tick{}); !errors.Is(err, ErrClockWentBackwards) {
		t.Fatalf("clock going back: %v", err)
	}
	var ue *UnknownInputError
	if _, err := n.Step(t0, nil); !errors.As(err, &ue) {
		t.Fatalf("nil input: %v", err)
	}
}

// A single node driven by hand through registration and creation: the
// state machine is usable without the simulation.
func TestSingleNodeByHand(t *testing.T) {
	n, _ := New(validConfig(), Disk{})
	kv := NewFakeKV()
	now := time.Unix(100, 0)
	var all []Output
	var feed func(Input)
	feed = func(in Input) {
		outs, err := n.Step(now, in)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, outs...)
		for _, o := range outs {
			if op, ok := o.(KVOp); ok {
				feed(kv.Apply(op, 0))
				if op.Kind != OpReadFromLeader {
					c := kv.Log[len(kv.Log)-1]
					feed(WatchEvent{Key: c.Key, Rev: c.Rev, Lease: c.Lease, Entry: c.Entry})
				}
			}
		}
	}
	feed(WatchSynced{})
	for p := Partition(0); p < 4; p++ {
		if !n.CanServe(p, 1, now) || n.CanServe(p, 2, now) {
			t.Fatalf("partition %d not served at epoch 1", p)
		}
	}
	if n.CanServe(0, 1, now.Add(15*time.Second-time.Second)) {
		t.Fatal("lease valid past TTL-ε")
	}
	var seq []string
	for _, o := range all {
		if o, ok := o.(KVOp); ok && o.Key == EntryKey(0) {
			seq = append(seq, o.Kind.String())
		}
		switch o := o.(type) {
		case Persist:
			if o.Partition == 0 {
				seq = append(seq, "persist")
			}
		case Wipe:
			if o.Partition == 0 {
				seq = append(seq, fmt.Sprintf("wipe@%d", o.Epoch))
			}
		case Serve:
			if o.Partition == 0 {
				seq = append(seq, "serve")
			}
		}
	}
	if got := fmt.Sprint(seq); got != "[wipe@1 create persist serve]" {
		t.Fatalf("partition 0: %s", got)
	}
}

// The same seed replays the same run, output for output.
func TestDeterministic(t *testing.T) {
	run := func() []string {
		s := NewSim(t, SimConfig{Seed: 99, Nodes: []NodeID{"a", "b", "c", "d"}, Policy: resetAll})
		s.Start()
		s.AutoTurns, s.MsgLoss, s.ReplyLoss = 0.3, 0.1, 0.1
		s.RunFor(20 * time.Second)
		s.Crash("b")
		s.KVUnavailable(5 * time.Second)
		s.RunFor(time.Minute)
		var out []string
		for _, id := range s.Cfg.Nodes {
			for _, l := range s.Node(id).Log {
				out = append(out, fmt.Sprintf("%v %s %T%+v", l.At, id, l.Out, l.Out))
			}
		}
		return out
	}
	a, b := run(), run()
	if len(a) != len(b) {
		t.Fatalf("%d outputs, then %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("output %d differs:\n%s\n%s", i, a[i], b[i])
		}
	}
}
