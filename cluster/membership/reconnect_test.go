package membership

import (
	"testing"
	"time"

	"github.com/holdfast/holdfast/cluster/faultnet"
)

// A member cut off long enough to be declared dead finds the others again
// once the partition heals: the reconnect loop joins failed members.
func TestPartitionHealsByReconnect(t *testing.T) {
	sw := faultnet.New()
	a := start(t, testConfig("a"))
	cb := testConfig("b", a.LocalAddr())
	cb.WrapTransport = sw.Transport
	cb.ReconnectInterval = 100 * time.Millisecond
	b := start(t, cb)
	waitFor(t, 10*time.Second, "b joined", func() bool { return len(a.Members()) == 2 && len(b.Members()) == 2 })

	sw.Cut()
	waitFor(t, 20*time.Second, "both sides to declare the other dead", func() bool {
		return len(a.Members()) == 1 && len(b.Members()) == 1
	})
	sw.Heal()
	waitFor(t, 20*time.Second, "the pool to heal", func() bool { return len(a.Members()) == 2 && len(b.Members()) == 2 })
}
