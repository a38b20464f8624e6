package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"time"
)

// Role is what a certificate's holder may do, read from its Subject
// OrganizationalUnit.
type Role string

const (
	// RoleNode: a holdfast node (peer RPCs, NATS routes).
	RoleNode Role = "node"
	// RoleAdmin: an operator (holdctl).
	RoleAdmin Role = "admin"
)

// Subject OrganizationalUnit values that carry the roles.
const (
	OUNode  = "holdfast-node"
	OUAdmin = "holdfast-admin"
)

// Identity is who a verified certificate names.
type Identity struct {
	Name string // Subject CommonName: the node ID for a node
	Role Role
}

// identityOf reads the identity of a certificate: exactly one role OU and a
// non-empty CommonName, else ok=false.
func identityOf(c *x509.Certificate) (Identity, bool) {
	node := slices.Contains(c.Subject.OrganizationalUnit, OUNode)
	admin := slices.Contains(c.Subject.OrganizationalUnit, OUAdmin)
	if c.Subject.CommonName == "" || node == admin {
		return Identity{}, false
	}
	id := Identity{Name: c.Subject.CommonName, Role: RoleNode}
	if admin {
		id.Role = RoleAdmin
	}
	return id, true
}

// PeerIdentity is the identity of the peer's certificate if the handshake
// verified it against the CA (state.VerifiedChains is not empty); ok is false
// when the peer sent no certificate, its certificate was not verified, or it
// carries no recognized role. On a server it identifies the client; on a
// client, the server. For gRPC, state is credentials.TLSInfo.State.
func PeerIdentity(state tls.ConnectionState) (Identity, bool) {
	if len(state.VerifiedChains) == 0 || len(state.VerifiedChains[0]) == 0 {
		return Identity{}, false
	}
	return identityOf(state.VerifiedChains[0][0])
}

// Bundle is a node's loaded TLS material: the CA pool, and the node's
// certificate and key. It is immutable; its methods are safe for concurrent
// use.
type Bundle struct {
	pool *x509.CertPool
	cert tls.Certificate
	id   Identity
}

// LoadNode reads and checks f (as Validate does) and returns the node's
// bundle. Files{} is ErrNotConfigured.
func LoadNode(f Files) (*Bundle, error) {
	if f.IsZero() {
		return nil, ErrNotConfigured
	}
	l, err := f.load(time.Now())
	if err != nil {
		return nil, err
	}
	return &Bundle{pool: l.pool, cert: l.cert, id: l.id}, nil
}

// Identity is the node's own identity (its certificate's CommonName, role
// node). The driver should check that Name equals the configured node ID.
func (b *Bundle) Identity() Identity { return b.id }

// NotAfter is when the node certificate expires.
func (b *Bundle) NotAfter() time.Time { return b.cert.Leaf.NotAfter }

// ServerConfig is the configuration of a node's TLS listener: TLS 1.3 at
// least, the node certificate, and client certificates verified against the
// CA when given (VerifyClientCertIfGiven: a client without one, e.g. holdctl
// with a token, still connects; use PeerIdentity to authorize). RootCAs is
// the CA too, so that a server that also dials with this Config (the
// embedded NATS server's routes) verifies the peer it dials; a dialing
// ServerName left empty must be filled by the dialer (NATS uses the route's
// host). Each call returns a new Config.
func (b *Bundle) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{b.cert},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    b.pool,
		RootCAs:      b.pool,
	}
}

// PeerConfig is for links whose both ends are nodes and where this node may
// be either end (NATS routes): like ServerConfig, but a client must present
// a certificate, and on either side the peer's certificate must chain to
// the CA and carry the node role (else the handshake fails with
// ErrNotNode). The dialing side authenticates the peer by that identity,
// not by the address it dialed: routes found by gossip name pod IPs that no
// certificate lists. Each call returns a new Config.
func (b *Bundle) PeerConfig() *tls.Config {
	c := b.ServerConfig()
	c.ClientAuth = tls.RequireAndVerifyClientCert
	c.InsecureSkipVerify = true // the chain is verified in VerifyConnection
	c.VerifyConnection = b.verifyNode
	return c
}

// ClientConfig is the configuration of a node dialing a peer: TLS 1.3 at
// least, presents the node certificate, and refuses a peer whose
// certificate does not chain to the CA or does not carry the node role.
// With a serverName, the peer's certificate must also name it. Without one,
// any node of the CA is accepted whatever address it was dialed at: peers
// are dialed at the addresses they announce in gossip (pod or container
// IPs that change with every restart and that no certificate lists), and
// the CA and the node role are what makes a peer a node. Each call returns
// a new Config.
func (b *Bundle) ClientConfig(serverName string) *tls.Config {
	c := &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{b.cert},
		RootCAs:          b.pool,
		ServerName:       serverName,
		VerifyConnection: b.verifyNode,
	}
	if serverName == "" {
		c.InsecureSkipVerify = true // the chain is verified in VerifyConnection
	}
	return c
}

// verifyNode accepts a peer whose certificate chains to the CA and carries
// the node role. Where the handshake verified the chain (a server checking
// a client, a client given a server name) it reads that chain; where it
// did not (InsecureSkipVerify on a dialing side) it verifies the chain
// itself, for server authentication.
func (b *Bundle) verifyNode(cs tls.ConnectionState) error {
	if len(cs.VerifiedChains) > 0 {
		return verifyPeerIsNode(cs)
	}
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: the peer sent no certificate", ErrNotNode)
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: b.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("tlsconf: peer certificate: %w", err)
	}
	if id, ok := identityOf(leaf); !ok || id.Role != RoleNode {
		return fmt.Errorf("%w (want Subject OU %q)", ErrNotNode, OUNode)
	}
	return nil
}

func verifyPeerIsNode(cs tls.ConnectionState) error {
	id, ok := PeerIdentity(cs)
	if !ok || id.Role != RoleNode {
		return fmt.Errorf("%w (want Subject OU %q)", ErrNotNode, OUNode)
	}
	return nil
}
