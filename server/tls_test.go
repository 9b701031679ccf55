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
