package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// testCertificate writes a self-signed certificate for 127.0.0.1 and
// localhost, and its key, as PEM files; it returns their paths and a pool
// that trusts the certificate.
func testCertificate(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "engram test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLS: with --tls-cert and --tls-key the REST API answers HTTPS only and
// NATS clients must use TLS; the token is still required of both.
func TestTLS(t *testing.T) {
	certFile, keyFile, pool := testCertificate(t)
	const token = "tls-test-token"
	cfg := DefaultConfig(t.TempDir())
	cfg.HTTPAddr, cfg.Node.NATSAddr, cfg.Node.SyncAlways = "127.0.0.1:0", "127.0.0.1:0", false
	cfg.Token, cfg.TLSCert, cfg.TLSKey = token, certFile, keyFile
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	if s.URL[:8] != "https://" {
		t.Fatalf("URL = %s, want https", s.URL)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", s.URL+"/v1/agents/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("GET over HTTPS = %d (TLS %v), want 200 over TLS", resp.StatusCode, resp.TLS != nil)
	}
	// Plain HTTP to the same port is not served.
	plain := "http://" + s.URL[len("https://"):]
	if resp, err := http.Get(plain + "/v1/health/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("plain HTTP served: %d", resp.StatusCode)
		}
	}
	// An untrusted certificate is refused by a client that checks.
	if _, err := http.Get(s.URL + "/v1/health/"); err == nil {
		t.Errorf("the default client trusted the test certificate")
	}

	url := s.Node.NATS.ClientURL()
	nc, err := nats.Connect(url, nats.Token(token), nats.Secure(&tls.Config{RootCAs: pool}), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("NATS over TLS: %v", err)
	}
	if err := nc.Flush(); err != nil {
		t.Errorf("NATS over TLS: flush: %v", err)
	}
	nc.Close()
	if nc, err := nats.Connect(url, nats.Token(token), nats.Timeout(2*time.Second), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Errorf("a NATS client without TLS connected")
	}
}

// clientCertificate makes a certificate authority (written as a PEM file)
// and a client certificate it signed, and another client certificate that
// signed itself.
func clientCertificate(t *testing.T) (caFile string, signed, selfSigned tls.Certificate) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(10), Subject: pkix.Name{CommonName: "engram test client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) tls.Certificate {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "engram test client"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if parent == nil {
			parent, parentKey = tmpl, k
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	caFile = filepath.Join(t.TempDir(), "client-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, leaf(11, ca, caKey), leaf(12, nil, nil)
}

// TestTLSClientCA: with --tls-client-ca, REST and NATS clients must present
// a certificate the authority signed; without one, or with one it did not
// sign, the handshake fails. The token is still required.
func TestTLSClientCA(t *testing.T) {
	certFile, keyFile, pool := testCertificate(t)
	caFile, signed, selfSigned := clientCertificate(t)
	const token = "mtls-test-token"
	cfg := DefaultConfig(t.TempDir())
	cfg.HTTPAddr, cfg.Node.NATSAddr, cfg.Node.SyncAlways = "127.0.0.1:0", "127.0.0.1:0", false
	cfg.Token, cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA = token, certFile, keyFile, caFile
	s, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	get := func(certs []tls.Certificate, auth string) (int, error) {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
		req, _ := http.NewRequest("GET", s.URL+"/v1/agents/", nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get([]tls.Certificate{signed}, token); err != nil || code != 200 {
		t.Errorf("with a signed client certificate: %d, %v; want 200", code, err)
	}
	if code, err := get([]tls.Certificate{signed}, ""); err != nil || code != 401 {
		t.Errorf("with a signed client certificate and no token: %d, %v; want 401", code, err)
	}
	if code, err := get(nil, token); err == nil {
		t.Errorf("without a client certificate: %d, want a failed handshake", code)
	}
	if code, err := get([]tls.Certificate{selfSigned}, token); err == nil {
		t.Errorf("with a client certificate the authority did not sign: %d, want a failed handshake", code)
	}

	url := s.Node.NATS.ClientURL()
	connect := func(certs []tls.Certificate) error {
		nc, err := nats.Connect(url, nats.Token(token), nats.Secure(&tls.Config{RootCAs: pool, Certificates: certs}),
			nats.Timeout(3*time.Second), nats.NoReconnect())
		if err != nil {
			return err
		}
		defer nc.Close()
		return nc.Flush()
	}
	if err := connect([]tls.Certificate{signed}); err != nil {
		t.Errorf("NATS with a signed client certificate: %v", err)
	}
	if err := connect(nil); err == nil {
		t.Errorf("NATS without a client certificate connected")
	}
	if err := connect([]tls.Certificate{selfSigned}); err == nil {
		t.Errorf("NATS with a client certificate the authority did not sign connected")
	}
	// The server's own work goes on: an agent can be made.
	if code, err := get([]tls.Certificate{signed}, token); err != nil || code != 200 {
		t.Errorf("after the refusals: %d, %v", code, err)
	}
}
