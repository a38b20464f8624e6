// Package tlsconf turns a holdfast node's certificate files into
// *tls.Config values for inter-node mTLS (gRPC, NATS routes) and for the
// node's client-facing listeners, reads the other cluster secrets (memberlist
// gossip key, NATS token) from files, and generates a development CA with
// node and admin certificates (`holdfast certs init`).
//
// # Contract
//
// A node is configured with three PEM files (Files): the CA certificate(s)
// it trusts, its own certificate (optionally followed by intermediates) and
// the certificate's private key. All three are set or none is. A node
// certificate must chain to the CA, be valid now, allow both server and
// client authentication, and carry the node role.
//
// Roles are read from the certificate's Subject OrganizationalUnit:
// "holdfast-node" (OUNode) for nodes and "holdfast-admin" (OUAdmin) for
// operators (holdctl). The identity's name is the Subject CommonName; for a
// node it is its node ID. A certificate naming both roles, or neither, has
// no identity.
//
// Servers use VerifyClientCertIfGiven: a client may connect without a
// certificate (holdctl with an admin token), so authorization is the caller's
// job: PeerIdentity reports ok only for a certificate the handshake verified
// against the CA. Clients (a node dialing a peer) present the node
// certificate and accept only a peer whose certificate chains to the CA and
// carries the node role. PeerConfig, for links between two nodes where
// either may dial (NATS routes), requires a node certificate on both ends.
//
// No error of this package contains key material or secret content: errors
// name the file and what is wrong with it.
//
// # Thread-safety
//
// A Bundle is immutable once LoadNode returns it; its methods are safe for
// concurrent use, and each call returns a new *tls.Config the caller may
// modify. Files, DevOptions, PeerIdentity, LoadGossipKey and LoadSecretFile
// hold no shared state. GenerateDev must not run concurrently on the same
// directory.
//
// Certificates are read once: rotating them needs a restart.
package tlsconf
