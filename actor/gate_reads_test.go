package actor_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Turn.GateOnReads: while an actor's write is pending (its commit held),
// a write-free turn that gates on its reads answers at once unless it read
// the pending write; a range read counts as reading everything pending; a
// turn that does not opt in waits for every pending write of its actor.
func TestGateOnReadsWaitsOnlyForWhatWasRead(t *testing.T) {
	gs := actor.NewGatedStore(openBolt(t, t.TempDir()))
	e := newEnv(t, gs)
	t.Cleanup(gs.Open) // before the runtime's shutdown (cleanups run last first), should a check fail with the gate held
	e.fn("write", func(tn *actor.Turn) (proto.Message, error) {
		if err := tn.SetAlarm(time.Unix(1<<40, 0)); err != nil { // far off: never fires here
			return nil, err
		}
		return wrapperspb.String("ok"), tn.Put("pending", []byte("v"))
	})
	var ran atomic.Int32 // read turns that ran (their replies may still wait)
	read := func(key string, narrow bool) func(*actor.Turn) (proto.Message, error) {
		return func(tn *actor.Turn) (proto.Message, error) {
			ran.Add(1)
			if narrow {
				tn.GateOnReads()
			}
			v, _, err := tn.Get(key)
			return wrapperspb.String(string(v)), err
		}
	}
	e.fn("narrow-other", read("other", true))
	e.fn("narrow-pending", read("pending", true))
	e.fn("wide-other", read("other", false))
	e.fn("narrow-alarm", func(tn *actor.Turn) (proto.Message, error) {
		ran.Add(1)
		tn.GateOnReads()
		_, ok := tn.Alarm()
		return wrapperspb.String(fmt.Sprint(ok)), nil
	})
	e.fn("narrow-list", func(tn *actor.Turn) (proto.Message, error) {
		ran.Add(1)
		tn.GateOnReads()
		_, _, err := tn.List(actor.ListOptions{Prefix: "zzz"})
		return wrapperspb.String(""), err
	})

	gs.Hold()
	wrote := goCall(e, "a", "write")
	<-gs.Entered // the write's commit is held

	waiting := map[string]<-chan error{
		"a narrow read of the pending key": goCall(e, "a", "narrow-pending"),
		"a narrow range read":              goCall(e, "a", "narrow-list"),
		"a narrow read of the alarm":       goCall(e, "a", "narrow-alarm"),
		"a read that did not opt in":       goCall(e, "a", "wide-other"),
	}
	waitFor(t, "the reads to have run their turns", func() bool { return ran.Load() == 4 })
	// Answers without the commit: it read nothing pending. (Were it
	// gated, this would block until the guard in within fails the test.)
	within(t, "a narrow read of another key", goCall(e, "a", "narrow-other"))
	for what, ch := range waiting {
		select {
		case err := <-ch:
			t.Fatalf("%s answered (%v) while the write it must wait for was not durable", what, err)
		default:
		}
	}
	gs.Open()
	within(t, "the write", wrote)
	for what, ch := range waiting {
		within(t, what, ch)
	}
}
