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

func put(t *testing.T, c *harness.Cluster, via int, key, field, value string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Node(via).Caller().Call(ctx, actor.ID{Namespace: "kv", Key: key}, &holdfastv1.KvPutRequest{
		Actor:   &holdfastv1.ActorRef{Namespace: "kv", Key: key},
		Entries: []*holdfastv1.Entry{{Key: field, Value: []byte(value)}},
	})
	return err
}

func get(t *testing.T, c *harness.Cluster, via int, key, field string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Node(via).Caller().Call(ctx, actor.ID{Namespace: "kv", Key: key}, &holdfastv1.KvGetRequest{
		Actor: &holdfastv1.ActorRef{Namespace: "kv", Key: key},
		Keys:  []string{field},
	})
	if err != nil {
		return "", err
	}
	for _, e := range resp.(*holdfastv1.KvGetResponse).GetEntries() {
		return string(e.GetValue()), nil
	}
	return "", nil
}

func TestClusterForwardsAndHandsOff(t *testing.T) {
	c := harness.New(t, 3, harness.Options{})
	// Writes through every node reach the owner.
	for i := range 30 {
		key := fmt.Sprintf("user-%d", i)
		if err := put(t, c, i%3, key, "f", key); err != nil {
			t.Fatalf("put %s via node-%d: %v", key, i%3+1, err)
		}
	}
	for i := range 30 {
		key := fmt.Sprintf("user-%d", i)
		for via := range 3 {
			v, err := get(t, c, via, key, "f")
			if err != nil || v != key {
				t.Fatalf("get %s via node-%d = %q, %v", key, via+1, v, err)
			}
		}
	}
	// A fourth node joins: partitions move to it by handoff; nothing is lost.
	if _, err := c.Add(); err != nil {
		t.Fatal(err)
	}
	c.WaitStable(60 * time.Second)
	for i := range 30 {
		key := fmt.Sprintf("user-%d", i)
		v, err := get(t, c, 3, key, "f")
		if err != nil || v != key {
			t.Fatalf("after join: get %s = %q, %v", key, v, err)
		}
	}
	// Drain node-1 (SIGTERM path).
	if err := c.Stop(0); err != nil {
		t.Fatalf("stop node-1: %v", err)
	}
	c.WaitStable(60 * time.Second)
	for i := range 30 {
		key := fmt.Sprintf("user-%d", i)
		v, err := get(t, c, 1, key, "f")
		if err != nil || v != key {
			t.Fatalf("after drain: get %s = %q, %v", key, v, err)
		}
	}
}
