package harness_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/holdfast/holdfast/test/harness"
)

// CallEarly through the cluster router: on the owner the gate is the
// runtime's (waited on, it holds the partition's turn gate until then);
// on any other node the call is forwarded and comes back through the
// owner's output gate, with an open gate. Either way the write is there.
func TestCallEarlyThroughTheRouter(t *testing.T) {
	c := harness.New(t, 3, harness.Options{})
	c.WaitStable(60 * time.Second)
	for i := range 6 {
		id := actor.ID{Namespace: "kv", Key: fmt.Sprintf("early-%d", i)}
		where, err := c.Node(0).Cluster().Where(id)
		if err != nil {
			t.Fatal(err)
		}
		owner := c.Index(where.Owner)
		for via := range 3 {
			put := &holdfastv1.KvPutRequest{Actor: &holdfastv1.ActorRef{Namespace: id.Namespace, Key: id.Key},
				Entries: []*holdfastv1.Entry{{Key: "via", Value: []byte(fmt.Sprint(via))}}}
			_, gate, err := c.Node(via).Cluster().CallEarly(context.Background(), id, put)
			if err != nil {
				t.Fatalf("CallEarly %s via node-%d: %v", id.Key, via+1, err)
			}
			if open := gate == actor.OpenGate; open != (via != owner) {
				t.Fatalf("%s via node-%d (owner node-%d): open gate %v", id.Key, via+1, owner+1, open)
			}
			if err := gate.Wait(context.Background()); err != nil {
				t.Fatalf("Wait %s via node-%d: %v", id.Key, via+1, err)
			}
			v, err := get(t, c, (via+1)%3, id.Key, "via")
			if err != nil || v != fmt.Sprint(via) {
				t.Fatalf("read back %s = %q, %v; want %d", id.Key, v, err, via)
			}
		}
	}
}
