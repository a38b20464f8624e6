package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Files are the PEM files of a node: the CA certificate(s) it trusts, its
// certificate (leaf first, then any intermediates) and the certificate's
// private key (PKCS #8, SEC 1 or PKCS #1, unencrypted).
type Files struct {
	CA   string
	Cert string
	Key  string
}

// IsZero reports whether no file is set (TLS not configured).
func (f Files) IsZero() bool { return f.CA == "" && f.Cert == "" && f.Key == "" }

// Validate checks that all three files are set or none is, and that the files
// exist, parse, belong together (key matches certificate, certificate chains
// to the CA) and hold a node certificate valid now. It reports every problem
// found (errors.Join), each a *FileError naming the path.
func (f Files) Validate() error {
	if f.IsZero() {
		return nil
	}
	_, err := f.load(time.Now())
	return err
}

// loaded is the parsed content of Files.
type loaded struct {
	pool *x509.CertPool
	cert tls.Certificate
	id   Identity
}

func (f Files) load(now time.Time) (*loaded, error) {
	var missing []string
	for _, m := range []struct{ name, path string }{{"ca", f.CA}, {"cert", f.Cert}, {"key", f.Key}} {
		if m.path == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w (missing: %s)", ErrIncomplete, strings.Join(missing, ", "))
	}

	var errs []error
	cas, err := readCerts(f.CA)
	if err != nil {
		errs = append(errs, fileErr("TLS CA", f.CA, err))
	} else {
		for i, c := range cas {
			if !c.IsCA || !c.BasicConstraintsValid {
				errs = append(errs, fileErr("TLS CA", f.CA, invalid("certificate %d (%q) is not a CA certificate", i+1, c.Subject.CommonName)))
			}
		}
	}
	chain, err := readCerts(f.Cert)
	if err != nil {
		errs = append(errs, fileErr("TLS certificate", f.Cert, err))
	}
	key, err := readKey(f.Key)
	if err != nil {
		errs = append(errs, fileErr("TLS key", f.Key, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	leaf := chain[0]
	if !publicKeyMatches(leaf.PublicKey, key.Public()) {
		errs = append(errs, fileErr("TLS key", f.Key, invalid("does not match the public key of the certificate in %s", f.Cert)))
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	if err := checkLeaf(leaf, chain[1:], pool, now, f.CA); err != nil {
		errs = append(errs, fileErr("TLS certificate", f.Cert, err))
	}
	id, ok := identityOf(leaf)
	if !ok || id.Role != RoleNode {
		errs = append(errs, fileErr("TLS certificate", f.Cert, invalid("is not a holdfast node certificate: want Subject OU %q and a CommonName (the node ID)", OUNode)))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	ders := make([][]byte, len(chain))
	for i, c := range chain {
		ders[i] = c.Raw
	}
	return &loaded{
		pool: pool,
		cert: tls.Certificate{Certificate: ders, PrivateKey: key, Leaf: leaf},
		id:   id,
	}, nil
}

// checkLeaf verifies that leaf is valid at now and chains to roots for both
// server and client authentication (a node does both).
func checkLeaf(leaf *x509.Certificate, intermediates []*x509.Certificate, roots *x509.CertPool, now time.Time, caPath string) error {
	if now.Before(leaf.NotBefore) {
		return invalid("not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return invalid("expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	inter := x509.NewCertPool()
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots: roots, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{usage},
		})
		if err != nil {
			var ue x509.UnknownAuthorityError
			if errors.As(err, &ue) {
				return invalid("not signed by the CA in %s", caPath)
			}
			name := "server"
			if usage == x509.ExtKeyUsageClientAuth {
				name = "client"
			}
			return invalid("does not verify against the CA in %s for %s authentication: %v", caPath, name, err)
		}
	}
	return nil
}

// readCerts reads every certificate of a PEM file; it fails when there is
// none. Its errors never quote the content.
func readCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	sawKey := false
	rest := data
	for n := 1; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, invalid("PEM block %d is a certificate that does not parse: %v", n, err)
			}
			certs = append(certs, c)
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			sawKey = true
		}
	}
	if len(certs) == 0 {
		if sawKey {
			return nil, invalid("holds a key, not a certificate (wrong file?)")
		}
		return nil, invalid("no PEM certificate found")
	}
	return certs, nil
}

// readKey reads the first private key of a PEM file. Its errors never quote
// the content nor the parser's detail about it.
func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sawCert := false
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			sawCert = true
			continue
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, invalid("the key is encrypted; holdfast needs an unencrypted key")
		}
		var k any
		switch b.Type {
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		}
		if err != nil {
			return nil, invalid("the key does not parse (want PKCS #8, SEC 1 or PKCS #1)")
		}
		switch s := k.(type) {
		case *ecdsa.PrivateKey:
			return s, nil
		case *rsa.PrivateKey:
			return s, nil
		case ed25519.PrivateKey:
			return s, nil
		default:
			return nil, invalid("unsupported key type %T (want ECDSA, RSA or Ed25519)", k)
		}
	}
	if sawCert {
		return nil, invalid("holds a certificate, not a key (wrong file?)")
	}
	return nil, invalid("no PEM key block found")
}

func publicKeyMatches(certKey, key crypto.PublicKey) bool {
	eq, ok := key.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(certKey)
}
