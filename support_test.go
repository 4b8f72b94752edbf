package netport

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// quietPeriod is how long a test watches for something that must not
// happen (a connection served while the port is paused, say). It bounds a
// check of absence; it never orders two events.
const quietPeriod = 100 * time.Millisecond

// quiet fails tb if ch yields a value within quietPeriod.
func quiet[T any](tb testing.TB, ch <-chan T, what string) {
	tb.Helper()
	t := time.NewTimer(quietPeriod)
	defer t.Stop()
	select {
	case v := <-ch:
		// %T, not %v: the value may be in use by another goroutine.
		tb.Fatalf("%s: got a %T; want nothing within %v", what, v, quietPeriod)
	case <-t.C:
	}
}

// acceptSignal wraps a listener and reports every accepted connection.
type acceptSignal struct {
	net.Listener
	accepted chan net.Conn
}

func (l *acceptSignal) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted <- c
	}
	return c, err
}

// lockedBuffer collects log output written from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// count returns the number of log lines that contain s.
func (l *lockedBuffer) count(s string) int {
	n := 0
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// testLogger returns a logger writing text lines to the returned buffer.
func testLogger() (*slog.Logger, *lockedBuffer) {
	buf := new(lockedBuffer)
	return slog.New(slog.NewTextHandler(buf, nil)), buf
}

// hookProto is a protocol whose behaviour the test sets with onMade and
// onData; it reports what happens to it on buffered channels.
type hookProto struct {
	onMade func(t Transport)
	onData func(t Transport, b []byte)
	onLost func(reason error)

	t    Transport // set by ConnectionMade; used on the connection's goroutine only
	made chan Transport
	data chan []byte // a copy of each DataReceived
	lost chan error
}

func (h *hookProto) ConnectionMade(t Transport) {
	h.t = t
	h.made <- t
	if h.onMade != nil {
		h.onMade(t)
	}
}

func (h *hookProto) DataReceived(b []byte) {
	h.data <- bytes.Clone(b)
	if h.onData != nil {
		h.onData(h.t, b)
	}
}

func (h *hookProto) ConnectionLost(reason error) {
	h.lost <- reason
	if h.onLost != nil {
		h.onLost(reason)
	}
}

func newHookProto(onMade func(Transport), onData func(Transport, []byte)) *hookProto {
	return &hookProto{
		onMade: onMade,
		onData: onData,
		made:   make(chan Transport, 1),
		data:   make(chan []byte, 1024),
		lost:   make(chan error, 1),
	}
}

// hookFactory builds a hookProto with its hooks for every connection and
// hands each to the test on built.
type hookFactory struct {
	onMade func(t Transport)
	onData func(t Transport, b []byte)
	built  chan *hookProto
}

func newHookFactory(onMade func(Transport), onData func(Transport, []byte)) *hookFactory {
	return &hookFactory{onMade: onMade, onData: onData, built: make(chan *hookProto, 64)}
}

func (f *hookFactory) BuildProtocol(net.Addr) Protocol {
	h := newHookProto(f.onMade, f.onData)
	f.built <- h
	return h
}

// echoData is an onData hook that writes back what it receives.
func echoData(t Transport, b []byte) { t.Write(b) }

// readAll reads c until EOF or an error, bounded by c's deadline.
func readAll(tb testing.TB, c net.Conn) []byte {
	tb.Helper()
	b, err := io.ReadAll(c)
	if err != nil {
		tb.Fatalf("read until EOF: %v", err)
	}
	return b
}

// closeWrite half-closes a client connection.
func closeWrite(tb testing.TB, c net.Conn) {
	tb.Helper()
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		tb.Fatalf("%T has no CloseWrite", c)
	}
	if err := cw.CloseWrite(); err != nil {
		tb.Fatalf("CloseWrite: %v", err)
	}
}

// testTLS returns a server configuration with a fresh self-signed
// certificate for 127.0.0.1 and ::1, and a client configuration that
// trusts it.
func testTLS(tb testing.TB) (server, client *tls.Config) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "netport test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return server, client
}
