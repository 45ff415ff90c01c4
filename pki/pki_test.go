package pki_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/myt-iot/myt/pki"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestServerCertificateVerifiesAgainstCA(t *testing.T) {
	ca, err := pki.NewCA("greenhouse", pki.Options{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.IssueServer([]string{"greenhouse.example", "203.0.113.10", "localhost", "127.0.0.1"}, pki.Options{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"greenhouse.example", "203.0.113.10", "localhost", "127.0.0.1"} {
		if err := verify(ca, srv.CertPEM, name, t0.Add(time.Hour)); err != nil {
			t.Errorf("verify %s: %v", name, err)
		}
	}
	if err := verify(ca, srv.CertPEM, "other.example", t0.Add(time.Hour)); err == nil {
		t.Error("certificate verified for a name it does not carry")
	}
	if err := verify(ca, srv.CertPEM, "localhost", t0.Add(pki.ServerValidity+time.Hour)); err == nil {
		t.Error("certificate verified after it expired")
	}
	other, err := pki.NewCA("other", pki.Options{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(other, srv.CertPEM, "localhost", t0.Add(time.Hour)); err == nil {
		t.Error("certificate verified against a different platform's CA")
	}
}

// TestTLSHandshake uses the material the way RabbitMQ and devices do: a
// TLS server with the server pair, a client trusting only the CA.
func TestTLSHandshake(t *testing.T) {
	ca, err := pki.NewCA("hs", pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.IssueServer([]string{"localhost", "127.0.0.1"}, pki.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(srv.CertPEM, srv.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("ok"))
	}()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.CertPEM) {
		t.Fatal("CA PEM not accepted")
	}
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read %q: %v", buf, err)
	}
}

func TestLoadCARoundTrip(t *testing.T) {
	ca, err := pki.NewCA("rt", pki.Options{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	back, err := pki.LoadCA(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := back.IssueServer([]string{"rt.local"}, pki.Options{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(ca, srv.CertPEM, "rt.local", t0); err != nil {
		t.Fatalf("cert from reloaded CA: %v", err)
	}
	other, _ := pki.NewCA("x", pki.Options{Now: t0})
	if _, err := pki.LoadCA(ca.CertPEM, other.KeyPEM); err == nil {
		t.Fatal("LoadCA accepted a key that does not match the certificate")
	}
	if _, err := pki.LoadCA(srv.CertPEM, srv.KeyPEM); err == nil {
		t.Fatal("LoadCA accepted a server certificate as a CA")
	}
	blk, _ := pem.Decode(ca.CertPEM)
	c, _ := x509.ParseCertificate(blk.Bytes)
	if !c.IsCA || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Fatalf("CA constraints: IsCA=%v MaxPathLen=%d", c.IsCA, c.MaxPathLen)
	}
}

// verify checks that certPEM is a server certificate signed by ca and
// valid for name at time at.
func verify(ca *pki.CA, certPEM []byte, name string, at time.Time) error {
	b, _ := pem.Decode(certPEM)
	if b == nil {
		return errors.New("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return fmt.Errorf("parse certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	_, err = c.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

// TestCertificateIdentifiers: serials are random and positive, the CA has
// a SubjectKeyId and the server certificate names it as its authority
// (crypto/x509 fills these in; this checks it still does).
func TestCertificateIdentifiers(t *testing.T) {
	ca, err := pki.NewCA("ids", pki.Options{Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if len(ca.Cert.SubjectKeyId) == 0 || ca.Cert.SerialNumber == nil || ca.Cert.SerialNumber.Sign() <= 0 {
		t.Fatalf("CA subjectKeyId %x serial %v", ca.Cert.SubjectKeyId, ca.Cert.SerialNumber)
	}
	var serials []string
	for range 2 {
		srv, err := ca.IssueServer([]string{"ids.local"}, pki.Options{Now: t0})
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(srv.CertPEM)
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.AuthorityKeyId, ca.Cert.SubjectKeyId) {
			t.Errorf("server authorityKeyId %x, CA subjectKeyId %x", c.AuthorityKeyId, ca.Cert.SubjectKeyId)
		}
		if len(c.SubjectKeyId) == 0 || bytes.Equal(c.SubjectKeyId, ca.Cert.SubjectKeyId) {
			t.Errorf("server subjectKeyId %x", c.SubjectKeyId)
		}
		if c.SerialNumber.Sign() <= 0 || c.SerialNumber.Cmp(ca.Cert.SerialNumber) == 0 {
			t.Errorf("server serial %v, CA serial %v", c.SerialNumber, ca.Cert.SerialNumber)
		}
		serials = append(serials, c.SerialNumber.String())
	}
	if serials[0] == serials[1] {
		t.Errorf("two certificates share serial %s", serials[0])
	}
}
