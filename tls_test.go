package netport

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// dialTLS connects to p over TLS, with a bounded deadline for every later
// operation.
func dialTLS(tb testing.TB, p *Port, cfg *tls.Config) *tls.Conn {
	tb.Helper()
	d := &net.Dialer{Timeout: testTimeout, Deadline: time.Now().Add(testTimeout)}
	c, err := tls.DialWithDialer(d, p.Addr().Network(), p.Addr().String(), cfg)
	if err != nil {
		tb.Fatalf("TLS dial %v: %v", p.Addr(), err)
	}
	c.SetDeadline(time.Now().Add(testTimeout))
	tb.Cleanup(func() { c.Close() })
	return c
}

func TestTLSEcho(t *testing.T) {
	server, client := testTLS(t)
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newHookFactory(nil, echoData)
			p := listen(t, &Config{TLS: server}, tt.network, tt.address, f)
			c := dialTLS(t, p, client)
			roundTrip(t, c, []byte("hello over TLS"))

			h := recv(t, f.built)
			tr := recv(t, h.made)
			tc, ok := tr.Conn().(*tls.Conn)
			if !ok {
				t.Fatalf("Conn() is %T; want *tls.Conn", tr.Conn())
			}
			if !tc.ConnectionState().HandshakeComplete {
				t.Fatalf("ConnectionMade before the handshake completed")
			}
			if tr.RemoteAddr().String() != c.LocalAddr().String() {
				t.Fatalf("RemoteAddr() = %v; want %v", tr.RemoteAddr(), c.LocalAddr())
			}
			c.Close()
			if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionDone) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
			}
		})
	}
}

// TestTLSStalledHandshakeDelaysNobody: a client the port has accepted
// first, and which never sends its ClientHello, delays no other client,
// and is still waited for (not dropped) meanwhile.
func TestTLSStalledHandshakeDelaysNobody(t *testing.T) {
	server, client := testTLS(t)
	f := newHookFactory(nil, echoData)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sig := &acceptSignal{Listener: ln, accepted: make(chan net.Conn, 2)}
	p := serve(t, &Config{TLS: server}, sig, f)
	stalled := dial(t, p) // connects, never sends its ClientHello
	recv(t, sig.accepted) // the port has taken it first
	roundTrip(t, dialTLS(t, p, client), []byte("not delayed"))
	stalled.SetReadDeadline(time.Now().Add(quietPeriod))
	var ne net.Error
	if _, err := stalled.Read(make([]byte, 1)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("stalled client read: got %v; want a timeout (the server still waits for its handshake)", err)
	}
	stalled.Close()
}

func TestTLSIdleTimeoutBoundsHandshake(t *testing.T) {
	server, _ := testTLS(t)
	f := newHookFactory(nil, echoData)
	p := listen(t, &Config{TLS: server, IdleTimeout: quietPeriod}, "tcp", "127.0.0.1:0", f)
	stalled := dial(t, p)
	start := time.Now()
	_, err := stalled.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("stalled client read: got %v; want the server to close (EOF or a reset)", err)
	}
	if d := time.Since(start); d < quietPeriod/2 {
		t.Fatalf("closed after %v; want about IdleTimeout (%v)", d, quietPeriod)
	}
	if len(f.built) != 0 {
		t.Fatalf("BuildProtocol called for a client that never finished its handshake")
	}
}

// TestTLSLoseWriteConnectionSendsFIN: over TLS a half-close sends the
// close_notify alert and then the TCP FIN, as LoseWriteConnection promises.
func TestTLSLoseWriteConnectionSendsFIN(t *testing.T) {
	serverCfg, clientCfg := testTLS(t)
	f := newHookFactory(func(tr Transport) {
		tr.Write([]byte("bye"))
		if err := tr.LoseWriteConnection(); err != nil {
			t.Errorf("LoseWriteConnection: %v", err)
		}
	}, nil)
	p := listen(t, &Config{TLS: serverCfg}, "tcp", "127.0.0.1:0", f)
	raw, err := net.DialTimeout("tcp", p.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(testTimeout))
	c := tls.Client(raw, clientCfg)
	if got, err := io.ReadAll(c); string(got) != "bye" || err != nil {
		t.Fatalf("TLS read: %q, %v; want bye, then close_notify", got, err)
	}
	// After close_notify, the socket itself must see the FIN.
	if n, err := raw.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("raw read after close_notify: %d, %v; want 0, EOF (a FIN)", n, err)
	}
}
