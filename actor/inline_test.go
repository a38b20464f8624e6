package actor_test

import (
	"testing"

	"github.com/holdfast/holdfast/actor"
)

// Inline is true only where a call cannot wait on I/O: a memory namespace
// on a runtime without a gate.
func TestInline(t *testing.T) {
	e := newEnv(t, actor.NewMemStore())
	for _, c := range []struct {
		ns   string
		want bool
	}{{"mem", true}, {"kv", false}, {"fn", false}, {"nope", false}} {
		if got := e.rt.Inline(ref(c.ns, "k")); got != c.want {
			t.Errorf("Inline(%s) = %v, want %v", c.ns, got, c.want)
		}
	}
	gated := newEnv(t, actor.NewMemStore(), func(c *actor.Config) { c.Gate = newFakeGate(t) })
	if gated.rt.Inline(ref("mem", "k")) {
		t.Error("Inline(mem) with a gate = true, want false")
	}
}
