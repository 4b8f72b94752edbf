package netport

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// userDeadline is a read deadline a protocol sets on itself: long enough
// for the connection to be idle past the sweeper's park request (two park
// ticks), short enough to keep the tests quick.
const userDeadline = 6 * parkTick

// wantDeadlineLost fails tb unless reason is ErrConnectionLost wrapping
// os.ErrDeadlineExceeded.
func wantDeadlineLost(tb testing.TB, reason error) {
	tb.Helper()
	if !errors.Is(reason, ErrConnectionLost) || !errors.Is(reason, os.ErrDeadlineExceeded) {
		tb.Fatalf("ConnectionLost(%v); want ErrConnectionLost wrapping os.ErrDeadlineExceeded", reason)
	}
}

// TestUserReadDeadlineHolds: a read deadline set through Conn() ends the
// connection when it passes, although the connection is idle long enough
// to park, and although reads happen meanwhile with an IdleTimeout set
// (which used to replace the deadline on every read).
func TestUserReadDeadlineHolds(t *testing.T) {
	for _, idle := range []time.Duration{0, time.Hour} {
		t.Run("IdleTimeout="+idle.String(), func(t *testing.T) {
			for _, tt := range streamNetworks(t) {
				t.Run(tt.network, func(t *testing.T) {
					f := newHookFactory(func(tr Transport) {
						tr.Conn().SetReadDeadline(time.Now().Add(userDeadline))
					}, echoData)
					p := listen(t, &Config{IdleTimeout: idle}, tt.network, tt.address, f)
					client := dial(t, p)
					roundTrip(t, client, []byte("read after the deadline was set"))
					h := recv(t, f.built)
					wantDeadlineLost(t, recv(t, h.lost))
				})
			}
		})
	}
}

// TestUserReadDeadlineAfterDrain: Shutdown's drain wakes the read with a
// deadline of its own; the user's is put back afterwards.
func TestUserReadDeadlineAfterDrain(t *testing.T) {
	built := make(chan drainProto, 1)
	f := FactoryFunc(func(net.Addr) Protocol {
		d := drainProto{newHookProto(func(tr Transport) {
			tr.Conn().SetReadDeadline(time.Now().Add(userDeadline))
		}, echoData), make(chan struct{}), nil}
		built <- d
		return d
	})
	p, err := Listen("tcp", "127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	client := dial(t, p)
	roundTrip(t, client, []byte("hi"))
	d := recv(t, built)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	errc := shutdownAsync(ctx, p)
	waitClosed(t, d.drained, "Drain")
	// Drain ignores the request: the user's deadline ends the connection.
	wantDeadlineLost(t, recv(t, d.lost))
	if err := recv(t, errc); err != nil {
		t.Fatalf("Shutdown: %v; want nil", err)
	}
}

// TestUserWriteDeadline: a write deadline set through Conn() holds against
// WriteTimeout, which would otherwise replace it on every Write.
func TestUserWriteDeadline(t *testing.T) {
	errc := make(chan error, 1)
	f := newHookFactory(func(tr Transport) {
		tr.Conn().SetWriteDeadline(aLongTimeAgo)
		_, err := tr.Write([]byte("x"))
		errc <- err
	}, nil)
	p := listen(t, &Config{WriteTimeout: time.Hour}, "tcp", "127.0.0.1:0", f)
	dial(t, p)
	if err := recv(t, errc); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past the user's write deadline: %v; want os.ErrDeadlineExceeded", err)
	}
	h := recv(t, f.built)
	wantDeadlineLost(t, recv(t, h.lost))
}

// TestConnViews: Conn() is a *tls.Conn over TLS, and otherwise a view
// whose NetConn is net's own conn; PeerCredentials sees through both.
func TestConnViews(t *testing.T) {
	conns := make(chan net.Conn, 1)
	f := newHookFactory(func(tr Transport) { conns <- tr.Conn() }, nil)
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	dial(t, p)
	nc := recv(t, conns)
	u, ok := nc.(interface{ NetConn() net.Conn })
	if !ok {
		t.Fatalf("Conn() is %T; want a NetConn method", nc)
	}
	if _, ok := u.NetConn().(*net.TCPConn); !ok {
		t.Fatalf("Conn().NetConn() is %T; want *net.TCPConn", u.NetConn())
	}

	server, client := testTLS(t)
	ft := newHookFactory(func(tr Transport) { conns <- tr.Conn() }, nil)
	pt := listen(t, &Config{TLS: server}, "tcp", "127.0.0.1:0", ft)
	tc, err := tls.Dial("tcp", pt.Addr().String(), client)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if got := recv(t, conns); func() bool { _, ok := got.(*tls.Conn); return !ok }() {
		t.Fatalf("Conn() over TLS is %T; want *tls.Conn", got)
	}
}

// handlerResult is what a test Handler saw.
type handlerResult struct {
	readErr, writeErr error
}

// TestHandlerTimeouts: IdleTimeout and WriteTimeout are deadlines on the
// conn a Handler is given, unless the handler set its own. A timeout of a
// nanosecond has passed by the time the call waits, so the call fails
// without the test waiting.
func TestHandlerTimeouts(t *testing.T) {
	for _, tt := range []struct {
		name    string
		own     bool // the handler sets deadlines itself
		wantErr bool
	}{
		{"timeouts apply", false, true},
		{"own deadlines win", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := make(chan handlerResult, 1)
			f := Handler(func(c net.Conn) {
				if tt.own {
					c.SetDeadline(time.Now().Add(testTimeout))
				}
				var r handlerResult
				_, r.readErr = io.ReadFull(c, make([]byte, 2))
				_, r.writeErr = c.Write([]byte("ok"))
				res <- r
			})
			cfg := &Config{IdleTimeout: time.Nanosecond, WriteTimeout: time.Nanosecond}
			p := listen(t, cfg, "tcp", "127.0.0.1:0", f)
			client := dial(t, p)
			if tt.own {
				client.Write([]byte("hi"))
			}
			r := recv(t, res)
			for what, err := range map[string]error{"read": r.readErr, "write": r.writeErr} {
				if got := errors.Is(err, os.ErrDeadlineExceeded); got != tt.wantErr {
					t.Errorf("handler %s: %v; want a deadline error: %v", what, err, tt.wantErr)
				}
			}
		})
	}
}

// TestUserWriteDeadlineWithQueue: with a send queue, a write deadline of
// the user's, earlier than WriteTimeout, still ends a connection whose
// peer never reads; the queue's flusher does not replace it. Over TLS the
// flusher's own deadline must not be taken for the user's either.
func TestUserWriteDeadlineWithQueue(t *testing.T) {
	server, client := testTLS(t)
	for _, tt := range []struct {
		name string
		tls  bool
	}{{"tcp", false}, {"tls", true}} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &Config{WriteBuffer: 16 << 10, MaxWriteBuffer: 1 << 30, WriteTimeout: time.Hour}
			if tt.tls {
				cfg.TLS = server
			}
			// More than the kernel's buffers on both sides can hold, so
			// that the queue must wait for the peer.
			chunk := make([]byte, 64<<10)
			f := newHookFactory(func(tr Transport) {
				tr.Conn().SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				for range 256 {
					if _, err := tr.Write(chunk); err != nil {
						return
					}
				}
			}, nil)
			p := listen(t, cfg, "tcp", "127.0.0.1:0", f)
			if tt.tls {
				c, err := tls.Dial("tcp", p.Addr().String(), client)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close() // never read
			} else {
				dial(t, p) // never read
			}
			h := recv(t, f.built)
			wantDeadlineLost(t, recv(t, h.lost))
		})
	}
}
