package tlsconf

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// devBackdate: development certificates are valid from 5 minutes before Now,
// for clock skew between the generating machine and the nodes.
const devBackdate = 5 * time.Minute

// Names of the files GenerateDev writes in its directory.
const (
	DevCAFile        = "ca.pem"
	DevCAKeyFile     = "ca-key.pem"
	DevAdminFile     = "admin.pem"
	DevAdminKeyFile  = "admin-key.pem"
	DevGossipKeyFile = "gossip.key"
	DevNATSTokenFile = "nats.token"
	// DevAdminName is the admin certificate's CommonName.
	DevAdminName = "admin"
)

// DevNodeFiles are the certificate and key file names of node name.
func DevNodeFiles(name string) (cert, key string) {
	return name + ".pem", name + "-key.pem"
}

// DevOptions say what GenerateDev writes.
type DevOptions struct {
	// Nodes: one certificate per node name (the node ID; its CommonName and
	// a DNS SAN).
	Nodes []string
	// Hosts: extra SANs of every node certificate (IP addresses or DNS
	// names), beyond the node name, localhost, 127.0.0.1 and ::1.
	Hosts []string
	// Force overwrites existing files.
	Force bool
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// DefaultDevOptions: three nodes, node-1 to node-3.
func DefaultDevOptions() DevOptions {
	return DevOptions{Nodes: []string{"node-1", "node-2", "node-3"}}
}

var (
	nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	hostRE     = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9._-]{0,252})$`)
)

// Validate checks the node names (at least one; letters, digits, '.', '_',
// '-', at most 63 characters, unique) and hosts (IP addresses or DNS names).
// Errors wrap ErrInvalidOptions.
func (o DevOptions) Validate() error {
	var errs []error
	if len(o.Nodes) == 0 {
		errs = append(errs, fmt.Errorf("%w: no node names", ErrInvalidOptions))
	}
	seen := map[string]bool{}
	for _, n := range o.Nodes {
		switch {
		case !nodeNameRE.MatchString(n):
			errs = append(errs, fmt.Errorf("%w: node name %q: want 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalidOptions, n))
		case seen[n]:
			errs = append(errs, fmt.Errorf("%w: node name %q given twice", ErrInvalidOptions, n))
		}
		seen[n] = true
	}
	for _, h := range o.Hosts {
		if net.ParseIP(h) == nil && !hostRE.MatchString(h) {
			errs = append(errs, fmt.Errorf("%w: host %q: want an IP address or a DNS name", ErrInvalidOptions, h))
		}
	}
	return errors.Join(errs...)
}

type devFile struct {
	name string
	data []byte
	mode fs.FileMode
}

// GenerateDev writes a development CA and certificates into dir (created
// 0700 if missing): ca.pem and ca-key.pem; per node, node-NAME.pem and
// node-NAME-key.pem (role node, server and client authentication, SANs: the
// name, localhost, 127.0.0.1, ::1 and opt.Hosts); admin.pem and
// admin-key.pem (role admin, client authentication); gossip.key (32 random
// bytes, base64) and nats.token (random). Keys are ECDSA P-256 in PKCS #8;
// leaves are valid one year, the CA ten. Key, gossip key and token files
// are 0600, certificates 0644.
//
// Without opt.Force, GenerateDev writes nothing if any of the files exists
// (the error wraps ErrExists and lists them). It returns the paths written,
// in order, also on error (the files written before it).
func GenerateDev(dir string, opt DevOptions) ([]string, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	files, err := devFiles(now(), opt)
	if err != nil {
		return nil, err
	}
	if !opt.Force {
		var exist []string
		for _, f := range files {
			p := filepath.Join(dir, f.name)
			if _, err := os.Lstat(p); err == nil {
				exist = append(exist, p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("tlsconf: %s: %w", p, unwrapPath(err))
			}
		}
		if len(exist) > 0 {
			return nil, fmt.Errorf("%w: %s", ErrExists, strings.Join(exist, ", "))
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tlsconf: create directory %s: %w", dir, unwrapPath(err))
	}
	var written []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := writeFile(p, f.data, f.mode, opt.Force); err != nil {
			return written, err
		}
		written = append(written, p)
	}
	return written, nil
}

// devFiles generates the content of every file, in memory.
func devFiles(now time.Time, opt DevOptions) ([]devFile, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: generate CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "holdfast development CA", Organization: []string{"holdfast"}},
		NotBefore:             now.Add(-devBackdate),
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := createCert(caTmpl, nil, caKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: create CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: parse CA certificate: %w", err)
	}
	caKeyPEM, err := keyPEM(caKey)
	if err != nil {
		return nil, err
	}
	files := []devFile{
		{DevCAFile, certPEM(caDER), 0o644},
		{DevCAKeyFile, caKeyPEM, 0o600},
	}

	var dnsExtra []string
	var ipExtra []net.IP
	for _, h := range opt.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			ipExtra = append(ipExtra, ip)
		} else {
			dnsExtra = append(dnsExtra, h)
		}
	}
	for _, name := range opt.Nodes {
		spec := leafSpec{
			name: name, ou: OUNode, now: now,
			usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			dns:    dedupe(append([]string{name, "localhost"}, dnsExtra...)),
			ips:    append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, ipExtra...),
		}
		c, k, err := issue(ca, caKey, spec)
		if err != nil {
			return nil, err
		}
		cn, kn := DevNodeFiles(name)
		files = append(files, devFile{cn, c, 0o644}, devFile{kn, k, 0o600})
	}
	c, k, err := issue(ca, caKey, leafSpec{
		name: DevAdminName, ou: OUAdmin, now: now,
		usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	files = append(files, devFile{DevAdminFile, c, 0o644}, devFile{DevAdminKeyFile, k, 0o600})

	gossip, err := randomBytes(32)
	if err != nil {
		return nil, err
	}
	token, err := randomBytes(32)
	if err != nil {
		return nil, err
	}
	files = append(files,
		devFile{DevGossipKeyFile, []byte(base64.StdEncoding.EncodeToString(gossip) + "\n"), 0o600},
		devFile{DevNATSTokenFile, []byte(base64.RawURLEncoding.EncodeToString(token) + "\n"), 0o600},
	)
	return files, nil
}

// leafSpec describes a leaf certificate.
type leafSpec struct {
	name   string
	ou     string
	now    time.Time
	usages []x509.ExtKeyUsage
	dns    []string
	ips    []net.IP
}

// issue creates a leaf certificate signed by ca and returns its PEM and its
// key's PEM.
func issue(ca *x509.Certificate, caKey crypto.Signer, s leafSpec) (cert, key []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: generate key for %s: %w", s.name, err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: s.name, Organization: []string{"holdfast"}, OrganizationalUnit: []string{s.ou}},
		NotBefore:             s.now.Add(-devBackdate),
		NotAfter:              s.now.AddDate(1, 0, 0),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           s.usages,
		DNSNames:              s.dns,
		IPAddresses:           s.ips,
	}
	der, err := createCert(tmpl, ca, k, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsconf: create certificate for %s: %w", s.name, err)
	}
	kp, err := keyPEM(k)
	if err != nil {
		return nil, nil, err
	}
	return certPEM(der), kp, nil
}

// createCert signs tmpl (self-signed when parent is nil) with a random
// 128-bit serial number.
func createCert(tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer crypto.Signer) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	if parent == nil {
		parent = tmpl
	}
	return x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("tlsconf: random: %w", err)
	}
	return b, nil
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// writeFile writes data to path with exactly mode. Without force it creates
// the file exclusively; with force it writes a temporary file in the same
// directory and renames it over path, so a replaced key never has looser
// permissions, even briefly.
func writeFile(path string, data []byte, mode fs.FileMode, force bool) (err error) {
	var f *os.File
	if force {
		f, err = os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	} else {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, path)
		}
		return fmt.Errorf("tlsconf: write %s: %w", path, unwrapPath(err))
	}
	name := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(name)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("tlsconf: write %s: %w", path, unwrapPath(err))
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("tlsconf: write %s: %w", path, unwrapPath(err))
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("tlsconf: write %s: %w", path, unwrapPath(err))
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("tlsconf: write %s: %w", path, unwrapPath(err))
	}
	if force {
		if err = os.Rename(name, path); err != nil {
			return fmt.Errorf("tlsconf: write %s: %w", path, unwrapPath(err))
		}
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
