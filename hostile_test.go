package netport

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// servedMeanwhile checks that a well-behaved client is served while a
// hostile one holds a connection to p.
func servedMeanwhile(tb testing.TB, p *Port) {
	tb.Helper()
	c := dial(tb, p)
	defer c.Close()
	roundTrip(tb, c, []byte("well-behaved"))
}

// wantClosedByServer reads from c until it ends and fails tb unless the
// server closed it (EOF or a reset) within c's deadline.
func wantClosedByServer(tb testing.TB, c net.Conn, what string) {
	tb.Helper()
	_, err := io.Copy(io.Discard, c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		tb.Fatalf("%s: read: %v; want EOF or a reset from the server", what, err)
	}
}

// wantLost checks that a ConnectionLost reason is ErrConnectionLost
// wrapping each of causes.
func wantLost(tb testing.TB, reason error, causes ...error) {
	tb.Helper()
	if !errors.Is(reason, ErrConnectionLost) {
		tb.Fatalf("ConnectionLost(%v); want ErrConnectionLost", reason)
	}
	for _, cause := range causes {
		if !errors.Is(reason, cause) {
			tb.Fatalf("ConnectionLost(%v); want it to wrap %v", reason, cause)
		}
	}
}

// TestIdleClientClosed connects a client that sends nothing: IdleTimeout
// closes it, and another client is served meanwhile.
func TestIdleClientClosed(t *testing.T) {
	checkLeaks(t)
	f := newHookFactory(nil, echoData)
	p := listen(t, &Config{IdleTimeout: 200 * time.Millisecond}, "tcp", "127.0.0.1:0", f)
	idle := dial(t, p)
	h := recv(t, f.built)
	servedMeanwhile(t, p)
	wantClosedByServer(t, idle, "idle client")
	wantLost(t, recv(t, h.lost), os.ErrDeadlineExceeded)
}

// TestNonReadingClientWriteTimeout has the server write to a client that
// never reads: WriteTimeout ends the connection, and another client is
// served while the writer is blocked.
func TestNonReadingClientWriteTimeout(t *testing.T) {
	checkLeaks(t)
	writeErr := make(chan error, 1)
	f := newHookFactory(nil, func(tr Transport, b []byte) {
		if !bytes.Equal(b, []byte("flood")) {
			tr.Write(b)
			return
		}
		chunk := make([]byte, 64<<10)
		for {
			if _, err := tr.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
	})
	p := listen(t, &Config{WriteTimeout: 200 * time.Millisecond}, "tcp", "127.0.0.1:0", f)
	stuck := dial(t, p)
	// A small receive buffer fills sooner.
	stuck.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := stuck.Write([]byte("flood")); err != nil {
		t.Fatal(err)
	}
	h := recv(t, f.built)
	servedMeanwhile(t, p)
	if err := recv(t, writeErr); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("server Write to a client that never reads: %v; want os.ErrDeadlineExceeded", err)
	}
	wantLost(t, recv(t, h.lost), os.ErrDeadlineExceeded)
	servedMeanwhile(t, p)
}

// partialClientHello is the start of a TLS ClientHello: a record header
// announcing 512 bytes, and the first few of them.
var partialClientHello = []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03}

// TestStalledTLSHandshake has a client stop in the middle of its
// ClientHello: another TLS client is served meanwhile, and Shutdown still
// ends the stalled connection.
func TestStalledTLSHandshake(t *testing.T) {
	checkLeaks(t)
	serverTLS, clientTLS := testTLS(t)
	f := newHookFactory(nil, echoData)
	p := listen(t, &Config{TLS: serverTLS}, "tcp", "127.0.0.1:0", f)
	stalled := dial(t, p)
	if _, err := stalled.Write(partialClientHello); err != nil {
		t.Fatal(err)
	}

	d := &net.Dialer{Timeout: testTimeout}
	tc, err := tls.DialWithDialer(d, "tcp", p.Addr().String(), clientTLS)
	if err != nil {
		t.Fatalf("TLS client beside a stalled handshake: %v", err)
	}
	tc.SetDeadline(time.Now().Add(testTimeout))
	roundTrip(t, tc, []byte("over TLS"))
	tc.Close()
	recv(t, f.built)

	shutdown(t, p)
	wantClosedByServer(t, stalled, "stalled TLS client after Shutdown")
	select {
	case h := <-f.built:
		t.Fatalf("BuildProtocol called for a stalled handshake (%v)", h)
	default:
	}
}

// TestPeerResetMidWrite has a client reset the connection (SO_LINGER 0)
// while the server writes a large reply: the protocol sees
// ErrConnectionLost and the port goes on serving.
func TestPeerResetMidWrite(t *testing.T) {
	checkLeaks(t)
	writeErr := make(chan error, 1)
	f := newHookFactory(nil, func(tr Transport, b []byte) {
		if !bytes.Equal(b, []byte("big")) {
			tr.Write(b)
			return
		}
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for range 1 << 10 { // 64 MiB, far more than socket buffers hold
			if _, err := tr.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	})
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	c := dial(t, p)
	if _, err := c.Write([]byte("big")); err != nil {
		t.Fatal(err)
	}
	h := recv(t, f.built)
	// Once the reply has started, reset the connection.
	if _, err := io.ReadFull(c, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	if err := recv(t, writeErr); !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("server Write after the peer's reset: %v; want ECONNRESET or EPIPE", err)
	}
	wantLost(t, recv(t, h.lost))
	if !p.Listening() {
		t.Fatalf("port stopped listening after a peer reset")
	}
	servedMeanwhile(t, p)
}

// TestPeerHalfClose has a client half-close its side and keep reading: the
// connection stays open for the protocol (which implements HalfCloseable)
// to send a large reply, another client is served meanwhile, and the
// connection then ends cleanly.
func TestPeerHalfClose(t *testing.T) {
	nets := []struct{ network, address string }{
		{"tcp", "127.0.0.1:0"},
		{"unix", filepath.Join(t.TempDir(), "sock")},
	}
	for _, tt := range nets {
		t.Run(tt.network, func(t *testing.T) {
			checkLeaks(t)
			built := make(chan halfOpenProto, 64)
			f := FactoryFunc(func(net.Addr) Protocol {
				h := halfOpenProto{newHookProto(nil, echoData), make(chan struct{})}
				built <- h
				return h
			})
			p := listen(t, nil, tt.network, tt.address, f)
			c := dial(t, p)
			roundTrip(t, c, []byte("request"))
			closeWrite(t, c)
			h := recv(t, built)
			tr := recv(t, h.made)
			waitClosed(t, h.readLost, "ReadConnectionLost")

			servedMeanwhile(t, p)
			recv(t, built)

			reply := bytes.Repeat([]byte("reply "), 1<<17)
			read := untilEOF(c)
			if _, err := tr.Write(reply); err != nil {
				t.Fatalf("Write after the peer's half-close: %v", err)
			}
			if err := tr.LoseConnection(); err != nil {
				t.Fatalf("LoseConnection: %v", err)
			}
			if got := recv(t, read); !bytes.Equal(got, reply) {
				t.Fatalf("client read %d bytes before EOF; want %d", len(got), len(reply))
			}
			if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionDone) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
			}
		})
	}
}
