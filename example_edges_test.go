package netport_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/netport/netport"
)

// lostReporter reports its ConnectionLost reason; onMade runs in
// ConnectionMade.
type lostReporter struct {
	onMade func(t netport.Transport)
	lost   chan error
}

func (r *lostReporter) ConnectionMade(t netport.Transport) { r.onMade(t) }
func (r *lostReporter) DataReceived([]byte)                {}
func (r *lostReporter) ConnectionLost(reason error)        { r.lost <- reason }

// serveOne serves one in-memory connection with r and returns the
// client end; stop shuts the port down.
func serveOne(cfg *netport.Config, f netport.Factory) (client net.Conn, stop func()) {
	ln := netport.NewMemoryListener()
	p, err := cfg.Serve(ln, f)
	if err != nil {
		panic(err)
	}
	c, err := ln.Dial()
	if err != nil {
		panic(err)
	}
	return c, func() {
		c.Close()
		p.Shutdown(context.Background())
	}
}

// An aborted connection's reason matches ErrConnectionAborted, and
// ErrConnectionLost as every unclean end does.
func ExampleErrConnectionAborted() {
	r := &lostReporter{onMade: func(t netport.Transport) { t.AbortConnection() }, lost: make(chan error, 1)}
	_, stop := serveOne(nil, netport.FactoryFunc(func(net.Addr) netport.Protocol { return r }))
	defer stop()
	reason := <-r.lost
	fmt.Println(errors.Is(reason, netport.ErrConnectionAborted), errors.Is(reason, netport.ErrConnectionLost))
	// Output: true true
}

// A read deadline set through Transport.Conn holds: when it passes, the
// connection ends with ErrConnectionLost wrapping os.ErrDeadlineExceeded.
func ExampleTransport_Conn_deadline() {
	r := &lostReporter{onMade: func(t netport.Transport) {
		t.Conn().SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	}, lost: make(chan error, 1)}
	_, stop := serveOne(nil, netport.FactoryFunc(func(net.Addr) netport.Protocol { return r }))
	defer stop()
	reason := <-r.lost
	fmt.Println(errors.Is(reason, netport.ErrConnectionLost), errors.Is(reason, os.ErrDeadlineExceeded))
	// Output: true true
}

// A TLS client that never finishes its handshake is disconnected after
// HandshakeTimeout (DefaultHandshakeTimeout when zero), IdleTimeout or not.
func ExampleConfig_handshakeTimeout() {
	cfg := &netport.Config{TLS: exampleTLS(), HandshakeTimeout: 20 * time.Millisecond}
	client, stop := serveOne(cfg, netport.FactoryFunc(func(net.Addr) netport.Protocol { return nil }))
	defer stop()
	// The client sends no ClientHello: the server hangs up.
	_, err := io.ReadAll(client)
	fmt.Println("disconnected:", err == nil)
	// Output: disconnected: true
}

// exampleTLS returns a server configuration with a fresh self-signed
// certificate.
func exampleTLS() *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
