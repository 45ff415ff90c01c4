// Package pki makes the TLS material of one platform: a private certificate
// authority (CA) generated per platform, and a server certificate signed by
// it for the broker (MQTTS, AMQPS) and Grafana. Devices trust the CA
// certificate; the CA key never leaves the control plane.
//
// Keys are ECDSA P-256 from crypto/rand, certificates X.509 v3, encoded as
// PEM (keys as PKCS#8). The clock is injected for tests.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// Default validity periods.
const (
	CAValidity     = 10 * 365 * 24 * time.Hour
	ServerValidity = 2 * 365 * 24 * time.Hour
	// RenewBefore is how long before its end a server certificate is
	// replaced by a re-render, and how early MyT warns that it ends: the
	// same window, so the warning's remedy (update, or render again)
	// always works.
	RenewBefore = 60 * 24 * time.Hour
	// backdate absorbs clock skew between the control plane and devices.
	backdate = 5 * time.Minute
)

// CA is a certificate authority: its certificate and private key.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// Server is a server certificate with its key and the CA that signed it.
type Server struct {
	CertPEM []byte
	KeyPEM  []byte
}

// Options are the inputs shared by NewCA and (*CA).IssueServer. Keys and
// serial numbers come from crypto/rand.
type Options struct {
	// Now is the start of validity; zero means time.Now().
	Now time.Time
}

func (o Options) now() time.Time {
	if o.Now.IsZero() {
		return time.Now()
	}
	return o.Now
}

// NewCA makes a self-signed CA named after the platform.
func NewCA(platform string, o Options) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	now := o.now().UTC().Truncate(time.Second)
	name := pkix.Name{Organization: []string{"MyT"}, CommonName: "MyT platform CA " + platform}
	// CreateCertificate picks a random 20-octet serial (SerialNumber nil)
	// and, for a CA, the SubjectKeyId (RFC 7093 method 1, SHA-256).
	tmpl := &x509.Certificate{
		Subject:               name,
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create ca certificate: %w", err)
	}
	return fromDER(der, key)
}

// LoadCA parses a CA from its PEM certificate and PEM (PKCS#8) key, so a
// re-render keeps the platform's CA and devices keep trusting it.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("ca certificate: no PEM CERTIFICATE block")
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, errors.New("ca key: no PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("ca key: not an ECDSA key")
	}
	ca, err := fromDER(cb.Bytes, key)
	if err != nil {
		return nil, err
	}
	if !ca.Cert.IsCA {
		return nil, errors.New("ca certificate: not a CA")
	}
	if !key.PublicKey.Equal(ca.Cert.PublicKey) {
		return nil, errors.New("ca key does not match the certificate")
	}
	return ca, nil
}

func fromDER(der []byte, key *ecdsa.PrivateKey) (*CA, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse ca certificate: %w", err)
	}
	kpem, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	return &CA{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  kpem,
	}, nil
}

// IssueServer signs a server certificate for the given DNS names and IP
// addresses (strings; each is classified). The first name is the common
// name. At least one name is required.
func (ca *CA) IssueServer(names []string, o Options) (*Server, error) {
	if len(names) == 0 {
		return nil, errors.New("server certificate: no names")
	}
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	now := o.now().UTC().Truncate(time.Second)
	// CreateCertificate picks the serial and copies the CA's
	// SubjectKeyId into AuthorityKeyId; it makes a SubjectKeyId only for
	// CAs, so the server's is set here.
	tmpl := &x509.Certificate{
		Subject:      pkix.Name{Organization: []string{"MyT"}, CommonName: names[0]},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(ServerValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		SubjectKeyId: keyID(&key.PublicKey),
	}
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if notAfter := ca.Cert.NotAfter; tmpl.NotAfter.After(notAfter) {
		tmpl.NotAfter = notAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("create server certificate: %w", err)
	}
	kpem, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	return &Server{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  kpem,
	}, nil
}

// NotAfter is the end of the certificate's validity; zero when it does
// not parse.
func (s *Server) NotAfter() time.Time {
	if s == nil {
		return time.Time{}
	}
	b, _ := pem.Decode(s.CertPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return time.Time{}
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return time.Time{}
	}
	return cert.NotAfter
}

// Covers reports whether srv is a server certificate that ca signed,
// naming every one of names, and valid at until (so it need not be
// replaced yet). A certificate that does not parse is not covered.
func (ca *CA) Covers(srv *Server, names []string, until time.Time) bool {
	if srv == nil {
		return false
	}
	b, _ := pem.Decode(srv.CertPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return false
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil || cert.CheckSignatureFrom(ca.Cert) != nil || until.After(cert.NotAfter) {
		return false
	}
	kb, _ := pem.Decode(srv.KeyPEM)
	if kb == nil {
		return false
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return false
	}
	if key, ok := k.(*ecdsa.PrivateKey); !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return false
	}
	for _, n := range names {
		if n == "" {
			continue
		}
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(cert.DNSNames, n) {
			return false
		}
	}
	return true
}

// newKey makes a P-256 key from crypto/rand (tests make it deterministic
// with testing/cryptotest.SetGlobalRandom).
func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func keyID(pub *ecdsa.PublicKey) []byte {
	raw, err := pub.Bytes()
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(raw)
	return slices.Clone(sum[:20])
}

func keyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
