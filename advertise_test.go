package holdfast

import (
	"net"
	"testing"

	"github.com/hashicorp/go-sockaddr"
)

// A wildcard listener is announced on the address peers can reach: the
// advertise address's host, else a specific gossip host, else the private
// IP memberlist picks; specific listeners are announced as bound.
func TestAdvertisedAddresses(t *testing.T) {
	private, err := sockaddr.GetPrivateIP()
	if err != nil {
		t.Fatal(err)
	}
	if private == "" {
		private = "127.0.0.1"
	}
	for _, c := range []struct {
		cc   ClusterConfig
		bind string
		want string
	}{
		{ClusterConfig{AdvertiseAddr: "10.1.2.3:7946", GossipAddr: "0.0.0.0:7946"}, "0.0.0.0:7070", "10.1.2.3:7070"},
		{ClusterConfig{AdvertiseAddr: "node-2.holdfast.svc", GossipAddr: "0.0.0.0:7946"}, "[::]:8080", "node-2.holdfast.svc:8080"},
		{ClusterConfig{GossipAddr: "192.168.7.9:7946"}, "0.0.0.0:7070", "192.168.7.9:7070"},
		{ClusterConfig{GossipAddr: "0.0.0.0:7946"}, "0.0.0.0:7070", net.JoinHostPort(private, "7070")},
		{ClusterConfig{GossipAddr: ":7946"}, "0.0.0.0:7070", net.JoinHostPort(private, "7070")},
		{ClusterConfig{GossipAddr: "0.0.0.0:7946"}, "127.0.0.1:7070", "127.0.0.1:7070"},
		{ClusterConfig{AdvertiseAddr: "10.1.2.3:7946"}, "10.9.9.9:7070", "10.9.9.9:7070"},
	} {
		host, err := advertiseHost(c.cc)
		if err != nil {
			t.Fatal(err)
		}
		if got := advertised(c.bind, host); got != c.want {
			t.Errorf("%+v, bound %s: advertised %s, want %s", c.cc, c.bind, got, c.want)
		}
	}
}
