package netport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// sniffListener accepts TCP connections and reads their first n bytes
// before handing them out, as a protocol-sniffing listener does.
type sniffListener struct {
	*net.TCPListener
	n int
}

// sniffConn embeds *net.TCPConn (so it implements syscall.Conn) but has
// consumed bytes its Read returns first.
type sniffConn struct {
	*net.TCPConn
	head []byte
}

func (l sniffListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	head := make([]byte, l.n)
	c.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := io.ReadFull(c, head); err != nil {
		c.Close()
		return nil, err
	}
	c.SetReadDeadline(time.Time{})
	return &sniffConn{TCPConn: c, head: head}, nil
}

func (c *sniffConn) Read(b []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(b, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.TCPConn.Read(b)
}

// upperListener hands out conns whose Read transforms the data (upper
// case), while their SyscallConn still exposes the raw socket, as a
// decrypting wrapper does.
type upperListener struct{ *net.TCPListener }

type upperConn struct{ *net.TCPConn }

func (l upperListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return upperConn{c}, nil
}

func (c upperConn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	copy(b, bytes.ToUpper(b[:n]))
	return n, err
}

func listenTCP(tb testing.TB) *net.TCPListener {
	tb.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// serveListener serves ln with an echo protocol and cleans up.
func serveListener(tb testing.TB, cfg *Config, ln net.Listener, f Factory) *Port {
	tb.Helper()
	p, err := cfg.Serve(ln, f)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { shutdown(tb, p) })
	return p
}

// TestWrappedConnReadThroughRead: a conn that is not net's own is read
// through its Read, even when it implements syscall.Conn, so that bytes a
// wrapper consumed or transforms reach DataReceived as its Read gives them.
func TestWrappedConnReadThroughRead(t *testing.T) {
	checkLeaks(t)
	for _, tt := range []struct {
		name string
		ln   func(*net.TCPListener) net.Listener
		send string
		want string
	}{
		{"sniffed", func(l *net.TCPListener) net.Listener { return sniffListener{l, 4} }, "PEEKhello", "PEEKhello"},
		{"transformed", func(l *net.TCPListener) net.Listener { return upperListener{l} }, "hello", "HELLO"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newHookFactory(nil, echoData)
			p := serveListener(t, nil, tt.ln(listenTCP(t)), f)
			c := dial(t, p)
			if _, err := c.Write([]byte(tt.send)); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(tt.want))
			if _, err := readFull(c, got); err != nil {
				t.Fatalf("read: %v (got %q)", err, got)
			}
			if string(got) != tt.want {
				t.Fatalf("echo: got %q; want %q", got, tt.want)
			}
			h := recv(t, f.built)
			sc := recv(t, h.made).(*Conn)
			if sc.rc != nil || sc.idle.parkable {
				t.Fatalf("%T: readiness read %v, parkable %v; want neither", sc.raw, sc.rc != nil, sc.idle.parkable)
			}
			roundTripWith(t, c, "again", strings.ToUpper("again"), tt.name == "transformed")
		})
	}
}

// roundTripWith writes msg and expects want (or msg when !transformed).
func roundTripWith(tb testing.TB, c net.Conn, msg, want string, transformed bool) {
	tb.Helper()
	if !transformed {
		want = msg
	}
	if _, err := c.Write([]byte(msg)); err != nil {
		tb.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := readFull(c, got); err != nil {
		tb.Fatalf("read: %v", err)
	}
	if string(got) != want {
		tb.Fatalf("echo: got %q; want %q", got, want)
	}
}

// TestProxyProtocolSilentClientDelaysNobody serves go-proxyproto's
// listener, which reads the PROXY header lazily inside RemoteAddr: a
// client that connects and sends nothing must not stall the accept
// goroutine, so a second client is served while the first is silent.
func TestProxyProtocolSilentClientDelaysNobody(t *testing.T) {
	checkLeaks(t)
	// The header timeout is far longer than the test's own bound: were
	// the accept goroutine to wait for the silent client's header, the
	// second client's read would fail on its deadline.
	ln := &proxyproto.Listener{Listener: listenTCP(t), ReadHeaderTimeout: 10 * testTimeout}
	remotes := make(chan net.Addr, 2)
	f := FactoryFunc(func(remote net.Addr) Protocol {
		remotes <- remote
		return newHookProto(nil, echoData)
	})
	p := serveListener(t, nil, ln, f)

	silent := dial(t, p)
	c := dial(t, p)
	header := "PROXY TCP4 192.0.2.7 127.0.0.1 4242 80\r\n"
	if _, err := c.Write([]byte(header)); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, []byte("hello"))
	if got := recv(t, remotes).String(); got != "192.0.2.7:4242" {
		t.Fatalf("BuildProtocol(%s); want the address from the PROXY header, 192.0.2.7:4242", got)
	}
	silent.Close()
}

// nilAddrListener hands out memory conns whose LocalAddr and RemoteAddr
// return nil, and is itself without an address.
type nilAddrListener struct{ *MemoryListener }

type nilAddrConn struct{ net.Conn }

func (nilAddrConn) LocalAddr() net.Addr  { return nil }
func (nilAddrConn) RemoteAddr() net.Addr { return (*net.TCPAddr)(nil) }

func (l nilAddrListener) Accept() (net.Conn, error) {
	c, err := l.MemoryListener.Accept()
	if err != nil {
		return nil, err
	}
	return nilAddrConn{c}, nil
}

// TestNilConnAddresses: conns without addresses are served, logged and
// failed without a crash: a TLS handshake failure, a panic, a Write after
// close and String all use a placeholder address.
func TestNilConnAddresses(t *testing.T) {
	checkLeaks(t)
	log, buf := testLogger()
	t.Run("panic and write after close", func(t *testing.T) {
		ml := NewMemoryListener()
		f := newHookFactory(nil, func(Transport, []byte) { panic("boom") })
		p := serveListener(t, &Config{Logger: log}, nilAddrListener{ml}, f)
		c, err := ml.Dial()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("x"))
		h := recv(t, f.built)
		tr := recv(t, h.made)
		if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionLost) {
			t.Fatalf("ConnectionLost(%v); want ErrConnectionLost", reason)
		}
		if _, err := tr.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write after close: %v; want net.ErrClosed", err)
		}
		if s := fmt.Sprint(tr); !strings.Contains(s, "unknown") {
			t.Fatalf("String() = %q; want a placeholder address", s)
		}
		if tr.LocalAddr() == nil || tr.RemoteAddr() == nil {
			t.Fatalf("LocalAddr %v, RemoteAddr %v; want placeholders", tr.LocalAddr(), tr.RemoteAddr())
		}
		p.Close()
		if !strings.Contains(buf.String(), "panic") {
			t.Fatalf("log %q; want the panic", buf.String())
		}
	})
	t.Run("TLS handshake failure", func(t *testing.T) {
		server, _ := testTLS(t)
		ml := NewMemoryListener()
		f := newHookFactory(nil, echoData)
		buf := new(lockedBuffer)
		logger := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		p := serveListener(t, &Config{TLS: server, Logger: logger}, nilAddrListener{ml}, f)
		c, err := ml.Dial()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("this is not a ClientHello\r\n\r\n"))
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("client read: %v; want EOF", err)
		}
		p.Close() // waits for nothing but the accept goroutine
		if !strings.Contains(buf.String(), "handshake failed") {
			t.Fatalf("log %q; want the handshake failure", buf.String())
		}
	})
}

// slowAddrListener hands out conns whose RemoteAddr waits until release
// is closed, as a PROXY-protocol listener's waits for the header.
type slowAddrListener struct {
	*net.TCPListener
	release chan struct{}
	waiting chan struct{} // one token each time a RemoteAddr begins to wait
}

type slowAddrConn struct {
	*net.TCPConn
	l slowAddrListener
}

func (l slowAddrListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return slowAddrConn{c, l}, nil
}

func (c slowAddrConn) RemoteAddr() net.Addr {
	c.l.waiting <- struct{}{}
	<-c.l.release
	return c.TCPConn.RemoteAddr()
}

// TestCloseDoesNotWaitForRemoteAddr: Close returns while an accepted
// conn's RemoteAddr is still waiting, and that connection is closed
// without BuildProtocol (which must not run after Close) and without
// counting as refused.
func TestCloseDoesNotWaitForRemoteAddr(t *testing.T) {
	tl, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ln := slowAddrListener{tl, make(chan struct{}), make(chan struct{}, 1)}
	f := newEchoFactory()
	p, err := Serve(ln, f)
	if err != nil {
		t.Fatal(err)
	}
	client := dial(t, p)
	recv(t, ln.waiting)
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case <-closed:
	case <-time.After(testTimeout):
		close(ln.release)
		t.Fatalf("Close still waiting after %v for a RemoteAddr", testTimeout)
	}
	close(ln.release)
	if got := readAll(t, client); len(got) != 0 {
		t.Fatalf("client read %q; want EOF", got)
	}
	select {
	case <-f.built:
		t.Fatal("BuildProtocol ran after Close")
	default:
	}
	ctx, cancel := contextWithTimeout(testTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Refused != 0 {
		t.Fatalf("Stats().Refused = %d; want 0 (BuildProtocol never ran)", s.Refused)
	}
}
