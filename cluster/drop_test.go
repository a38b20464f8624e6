package cluster

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
)

// blockingHandler's turns wait for release.
type blockingHandler struct {
	entered chan struct{}
	release chan struct{}
}

func (h *blockingHandler) Receive(*actor.Turn, proto.Message) (proto.Message, error) {
	h.entered <- struct{}{}
	<-h.release
	return &holdfastv1.KvGetResponse{}, nil
}

// A background drop does not wait for a running turn, so the driver loop
// goes on; a later drop before serving the partition again waits for it
// (and for the turn), so no late drop can undo the new serving period.
func TestDropLaterDoesNotWaitDropNowDoes(t *testing.T) {
	h := &blockingHandler{entered: make(chan struct{}), release: make(chan struct{})}
	cfg := actor.DefaultConfig()
	cfg.Partitions = 4
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	rt, err := actor.New(cfg, actor.NewMemStore(), []actor.NamespaceConfig{{
		Name: "b", Durability: actor.Memory, New: func(actor.ID) actor.Handler { return h },
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Shutdown(context.Background())
	id := actor.ID{Namespace: "b", Key: "k"}
	p, err := rt.PartitionOf(id)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{rt: rt, drops: map[int]chan struct{}{}}
	defer n.wg.Wait()

	called := make(chan error, 1)
	go func() {
		_, err := rt.Call(context.Background(), id, &holdfastv1.KvGetRequest{})
		called <- err
	}()
	<-h.entered // a turn of p is running

	n.dropLater(p) // returns although the turn runs
	n.dropLater(p) // a second one queues behind the first
	pending := n.drops[p]
	select {
	case <-pending:
		t.Fatal("the background drop finished while the turn still ran")
	default:
	}

	dropped := make(chan struct{})
	go func() {
		n.dropNow(p)
		close(dropped)
	}()
	select {
	case <-dropped:
		t.Fatal("dropNow returned while the turn still ran")
	case <-time.After(20 * time.Millisecond):
	}
	close(h.release)
	if err := <-called; err != nil {
		t.Fatalf("the running turn: %v", err)
	}
	<-dropped
	select {
	case <-pending:
	default:
		t.Fatal("dropNow returned before the background drops")
	}
	if _, ok := n.drops[p]; ok {
		t.Fatal("a finished background drop still pending")
	}
}
