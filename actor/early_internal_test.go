package actor

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor/clock"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// putHandler writes one key per turn.
type putHandler struct{}

func (putHandler) Receive(t *Turn, _ proto.Message) (proto.Message, error) {
	return wrapperspb.String("ok"), t.Put("k", []byte("v"))
}

// CallEarly with WithCommitDeferred runs the turn deferred (as if its
// handler had called DeferCommit) and hands out a gate whose Hurry
// starts the commit; without the mark, neither. Read from the actor's
// cell, so that no commit timing decides it.
func TestCallEarlyDeferredMarkReachesTheTurn(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Clock = clock.NewFake(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.CommitDefer = MaxCommitDefer // the fake clock never gets there
	rt, err := New(cfg, NewMemStore(), []NamespaceConfig{{Name: "p", Durability: Local, New: func(ID) Handler { return putHandler{} }}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Shutdown(context.Background()) })
	for _, deferred := range []bool{true, false} {
		ctx := context.Background()
		if deferred {
			ctx = WithCommitDeferred(ctx)
		}
		id := ID{Namespace: "p", Key: "a"}
		_, gate, err := rt.CallEarly(ctx, id, wrapperspb.String("put"))
		if err != nil {
			t.Fatal(err)
		}
		c := rt.cells.lookup(id.Encode())
		wrote := c != nil && c.lastWriteDeferred
		g, ok := gate.(*earlyGate)
		hurries := ok && g.hurry
		gate.Hurry() // before any Fatal: Shutdown waits for the gate
		if err := gate.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if wrote != deferred || hurries != deferred {
			t.Fatalf("marked %v: the turn's write deferred %v, its gate (%T) hurries %v", deferred, wrote, gate, hurries)
		}
	}
}
