//go:build unix

package netport

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// datagramWait bounds every wait in these tests.
const datagramWait = 5 * time.Second

type dgMessage struct {
	data []byte
	from net.Addr
}

// dgRecorder is a DatagramProtocol that reports everything it is called with.
type dgRecorder struct {
	echo     bool         // write every datagram back to its sender
	paused   atomic.Bool  // set by a test while the port is paused
	early    atomic.Int32 // datagrams received while paused was set
	panicOn  string       // DatagramReceived panics on this payload
	closeOn  string       // DatagramReceived closes the port on this payload
	port     *DatagramPort
	started  chan *DatagramPort
	got      chan dgMessage
	refused  chan struct{}
	stopped  chan struct{}
	mu       sync.Mutex
	events   []string // guarded by mu
	stopOnce sync.Once
}

func newDgRecorder() *dgRecorder {
	return &dgRecorder{
		started: make(chan *DatagramPort, 1),
		got:     make(chan dgMessage, 64),
		refused: make(chan struct{}, 8),
		stopped: make(chan struct{}),
	}
}

func (r *dgRecorder) event(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *dgRecorder) StartProtocol(p *DatagramPort) {
	r.event("start")
	r.port = p
	select {
	case r.started <- p:
	default: // a dgRecorder served again after its first port stopped
	}
}

func (r *dgRecorder) DatagramReceived(data []byte, from net.Addr) {
	r.event("datagram")
	if r.paused.Load() {
		r.early.Add(1)
	}
	switch string(data) {
	case r.panicOn:
		panic("boom: " + r.panicOn)
	case r.closeOn:
		r.port.Close()
	}
	if r.echo {
		r.port.WriteTo(data, from)
	}
	r.got <- dgMessage{bytes.Clone(data), from}
}

func (r *dgRecorder) ConnectionRefused() {
	r.event("refused")
	r.refused <- struct{}{}
}

func (r *dgRecorder) StopProtocol() {
	r.event("stop")
	r.stopOnce.Do(func() { close(r.stopped) })
}

// recv returns the next datagram the recorder got.
func (r *dgRecorder) recv(tb testing.TB) dgMessage {
	tb.Helper()
	return recvWithin(tb, r.got, datagramWait, "a datagram")
}

// datagramNetwork describes one network the tests run over.
type datagramNetwork struct {
	network string
	// addr returns a fresh address to listen on.
	addr func(tb testing.TB) string
}

func datagramNetworks() []datagramNetwork {
	return []datagramNetwork{
		{"udp", func(testing.TB) string { return "127.0.0.1:0" }},
		{"udp6", func(tb testing.TB) string {
			tb.Helper()
			skipWithoutIPv6(tb)
			return "[::1]:0"
		}},
		{"unixgram", func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "s") }},
	}
}

// dgListen starts a datagram port and closes it at cleanup.
func dgListen(tb testing.TB, c *Config, network, address string, p DatagramProtocol, max int) *DatagramPort {
	tb.Helper()
	d, err := c.ListenPacket(network, address, p, max)
	if err != nil {
		tb.Fatalf("ListenPacket(%q, %q): %v", network, address, err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// dgClient opens a socket of the same network as server to send from; a
// unixgram client is bound so that replies can reach it.
func dgClient(tb testing.TB, server net.Addr) net.PacketConn {
	tb.Helper()
	var address string
	switch server.Network() {
	case "unixgram":
		address = filepath.Join(tb.TempDir(), "c")
	default:
		host, _, _ := net.SplitHostPort(server.String())
		address = net.JoinHostPort(host, "0")
	}
	pc, err := net.ListenPacket(server.Network(), address)
	if err != nil {
		tb.Fatalf("client ListenPacket: %v", err)
	}
	tb.Cleanup(func() { pc.Close() })
	pc.SetDeadline(time.Now().Add(datagramWait))
	return pc
}

func dgSend(tb testing.TB, pc net.PacketConn, to net.Addr, b []byte) {
	tb.Helper()
	if _, err := pc.WriteTo(b, to); err != nil {
		tb.Fatalf("WriteTo %v: %v", to, err)
	}
}

func TestDatagramEcho(t *testing.T) {
	for _, n := range datagramNetworks() {
		t.Run(n.network, func(t *testing.T) {
			r := newDgRecorder()
			r.echo = true
			d := dgListen(t, nil, n.network, n.addr(t), r, 0)
			c := dgClient(t, d.Addr())
			dgSend(t, c, d.Addr(), []byte("hello"))

			buf := make([]byte, 64)
			k, from, err := c.ReadFrom(buf)
			if err != nil {
				t.Fatalf("client ReadFrom: %v", err)
			}
			if got := string(buf[:k]); got != "hello" {
				t.Errorf("echo = %q; want %q", got, "hello")
			}
			if from.String() != d.Addr().String() {
				t.Errorf("echo from %v; want %v", from, d.Addr())
			}
			if dg := r.recv(t); dg.from.String() != c.LocalAddr().String() {
				t.Errorf("DatagramReceived from %v; want %v", dg.from, c.LocalAddr())
			}
		})
	}
}

func TestDatagramStartStopOrder(t *testing.T) {
	r := newDgRecorder()
	d := dgListen(t, nil, "udp", "127.0.0.1:0", r, 0)
	c := dgClient(t, d.Addr())
	dgSend(t, c, d.Addr(), []byte("x"))
	r.recv(t)
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-d.Done():
	default:
		t.Fatal("Done not closed when Close returned")
	}
	if p := <-r.started; p != d {
		t.Errorf("StartProtocol got %p; want %p", p, d)
	}
	r.mu.Lock()
	got := strings.Join(r.events, " ")
	r.mu.Unlock()
	if want := "start datagram stop"; got != want {
		t.Errorf("calls = %q; want %q", got, want)
	}
}

func TestDatagramMaxPacketSize(t *testing.T) {
	for _, tc := range []struct{ max, want int }{{0, DefaultMaxPacketSize}, {1, 1}, {100, 100}} {
		d := dgListen(t, nil, "udp", "127.0.0.1:0", newDgRecorder(), tc.max)
		if got := d.MaxPacketSize(); got != tc.want {
			t.Errorf("MaxPacketSize() with %d = %d; want %d", tc.max, got, tc.want)
		}
	}
	if _, err := ListenPacket("udp", "127.0.0.1:0", newDgRecorder(), -1); err == nil {
		t.Error("ListenPacket with maxPacketSize -1 succeeded; want an error")
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := (*Config)(nil).servePacket(pc, newDgRecorder(), -1); err == nil {
		t.Error("servePacket with maxPacketSize -1 succeeded; want an error")
	}
	if _, err := pc.WriteTo([]byte("x"), pc.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo on the conn after a failed servePacket: %v; want net.ErrClosed", err)
	}
}

// dgPlainConn hides the concrete type of its PacketConn, so that the
// port takes the generic read path.
type dgPlainConn struct{ net.PacketConn }

func TestDatagramTruncation(t *testing.T) {
	const max = DefaultMaxPacketSize
	networks := append(datagramNetworks(), datagramNetwork{"udp-generic", nil})
	for _, n := range networks {
		t.Run(n.network, func(t *testing.T) {
			r := newDgRecorder()
			var d *DatagramPort
			if n.network == "udp-generic" {
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				if d, err = (*Config)(nil).servePacket(dgPlainConn{pc}, r, 0); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { d.Close() })
			} else {
				d = dgListen(t, nil, n.network, n.addr(t), r, 0)
			}
			c := dgClient(t, d.Addr())
			var truncated uint64
			for _, size := range []int{1, max, max + 1, 64000} {
				msg := bytes.Repeat([]byte{byte(size)}, size)
				dgSend(t, c, d.Addr(), msg)
				dg := r.recv(t)
				want := msg[:min(size, max)]
				if !bytes.Equal(dg.data, want) {
					t.Errorf("%d bytes sent: got %d bytes; want %d", size, len(dg.data), len(want))
				}
				if size > max {
					truncated++
				}
				if got := d.Truncated(); got != truncated {
					t.Errorf("after %d bytes: Truncated() = %d; want %d", size, got, truncated)
				}
			}
		})
	}
}

// dgNonComparable is a protocol whose values cannot be compared, so it is
// not tracked for ErrProtocolInUse.
type dgNonComparable []int

func (dgNonComparable) DatagramReceived([]byte, net.Addr) {}

func TestDatagramProtocolInUse(t *testing.T) {
	r := newDgRecorder()
	d := dgListen(t, nil, "udp", "127.0.0.1:0", r, 0)
	_, err := ListenPacket("udp", "127.0.0.1:0", r, 0)
	if !errors.Is(err, ErrProtocolInUse) {
		t.Fatalf("second ListenPacket: %v; want ErrProtocolInUse", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) || opErr.Op != "listen" {
		t.Errorf("second ListenPacket: %#v; want a *net.OpError with Op listen", err)
	}

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (*Config)(nil).servePacket(pc, r, 0); !errors.Is(err, ErrProtocolInUse) {
		t.Errorf("servePacket: %v; want ErrProtocolInUse", err)
	}
	if _, err := pc.WriteTo([]byte("x"), d.Addr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo on the refused conn: %v; want net.ErrClosed", err)
	}

	d.Close()
	dgListen(t, nil, "udp", "127.0.0.1:0", r, 0)

	nc := dgNonComparable{1}
	dgListen(t, nil, "udp", "127.0.0.1:0", nc, 0)
	dgListen(t, nil, "udp", "127.0.0.1:0", nc, 0)
}

func TestDatagramClose(t *testing.T) {
	t.Run("twice", func(t *testing.T) {
		r := newDgRecorder()
		d := dgListen(t, nil, "udp", "127.0.0.1:0", r, 0)
		addr := d.Addr()
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if err := d.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
		wg.Wait()
		if err := d.Close(); err != nil {
			t.Errorf("second Close: %v; want nil", err)
		}
		waitClosed(t, d.Done(), "Done")
		waitClosed(t, r.stopped, "StopProtocol")
		if d.Addr() != addr {
			t.Errorf("Addr() after Close = %v; want %v", d.Addr(), addr)
		}
		if _, err := d.WriteTo([]byte("x"), addr); !errors.Is(err, net.ErrClosed) {
			t.Errorf("WriteTo after Close: %v; want net.ErrClosed", err)
		}
		if s := d.String(); !strings.HasSuffix(s, " not listening") {
			t.Errorf("String() after Close = %q; want a %q suffix", s, " not listening")
		}
	})
	t.Run("from DatagramReceived", func(t *testing.T) {
		r := newDgRecorder()
		r.closeOn = "close"
		d := dgListen(t, nil, "udp", "127.0.0.1:0", r, 0)
		dgSend(t, dgClient(t, d.Addr()), d.Addr(), []byte("close"))
		waitClosed(t, d.Done(), "Done")
		waitClosed(t, r.stopped, "StopProtocol")
	})
}

func dgLogConfig(b *lockedBuffer) *Config {
	return &Config{Logger: slog.New(slog.NewTextHandler(b, nil))}
}

func TestDatagramPanic(t *testing.T) {
	var logs lockedBuffer
	r := newDgRecorder()
	r.panicOn = "panic"
	d := dgListen(t, dgLogConfig(&logs), "udp", "127.0.0.1:0", r, 0)
	c := dgClient(t, d.Addr())
	dgSend(t, c, d.Addr(), []byte("panic"))
	dgSend(t, c, d.Addr(), []byte("after"))
	if got := string(r.recv(t).data); got != "after" {
		t.Errorf("after a panic got %q; want %q", got, "after")
	}
	out := logs.String()
	for _, want := range []string{"boom: panic", "DatagramReceived", "goroutine ", "datagram.go"} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q does not contain %q", out, want)
		}
	}
}

// dgFailingConn fails a read whose datagram says "fail".
type dgFailingConn struct{ net.PacketConn }

var errDgInjected = errors.New("injected read failure")

func (c dgFailingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.PacketConn.ReadFrom(b)
	if err == nil && string(b[:n]) == "fail" {
		return 0, nil, errDgInjected
	}
	return n, from, err
}

func TestDatagramReadError(t *testing.T) {
	var logs lockedBuffer
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := newDgRecorder()
	d, err := dgLogConfig(&logs).servePacket(dgFailingConn{pc}, r, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	dgSend(t, dgClient(t, d.Addr()), d.Addr(), []byte("fail"))
	waitClosed(t, d.Done(), "Done after a read error")
	waitClosed(t, r.stopped, "StopProtocol")
	if out := logs.String(); !strings.Contains(out, errDgInjected.Error()) {
		t.Errorf("log %q does not name the error %q", out, errDgInjected)
	}
	if _, err := pc.WriteTo([]byte("x"), pc.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo on the conn of a stopped port: %v; want net.ErrClosed", err)
	}
	// The protocol is free again.
	dgListen(t, nil, "udp", "127.0.0.1:0", r, 0)
}

func TestDatagramUnixgramFile(t *testing.T) {
	t.Run("mode and removal", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s")
		d := dgListen(t, &Config{UnixMode: 0o600}, "unixgram", path, newDgRecorder(), 0)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("socket file mode %v; want %v", got, os.FileMode(0o600))
		}
		d.Close()
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket file after Close: %v; want it removed", err)
		}
	})
	t.Run("replaced file kept", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s")
		d := dgListen(t, nil, "unixgram", path, newDgRecorder(), 0)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("someone else's"), 0o600); err != nil {
			t.Fatal(err)
		}
		d.Close()
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("replacement file after Close: %v; want it kept", err)
		}
	})
}

func TestDatagramListenErrors(t *testing.T) {
	taken := dgListen(t, nil, "udp", "127.0.0.1:0", newDgRecorder(), 0)
	path := filepath.Join(t.TempDir(), "s")
	dgListen(t, nil, "unixgram", path, newDgRecorder(), 0)

	for _, tc := range []struct {
		name, network, address string
		p                      DatagramProtocol
		want                   error
	}{
		{"udp address in use", "udp", taken.Addr().String(), newDgRecorder(), syscall.EADDRINUSE},
		{"unixgram address in use", "unixgram", path, newDgRecorder(), syscall.EADDRINUSE},
		{"nil protocol", "udp", "127.0.0.1:0", nil, ErrNoProtocol},
		{"bad network", "tcp", "127.0.0.1:0", newDgRecorder(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ListenPacket(tc.network, tc.address, tc.p, 0)
			if err == nil {
				d.Close()
				t.Fatalf("ListenPacket(%q, %q) succeeded; want an error", tc.network, tc.address)
			}
			var opErr *net.OpError
			if !errors.As(err, &opErr) || opErr.Op != "listen" {
				t.Errorf("error %#v; want a *net.OpError with Op listen", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v; want one matching %v", err, tc.want)
			}
			var unknown net.UnknownNetworkError
			if isUnknown := errors.As(err, &unknown); isUnknown != (tc.network == "tcp") {
				t.Errorf("error %v: UnknownNetworkError %v; want %v", err, isUnknown, tc.network == "tcp")
			}
		})
	}
}

func TestDatagramString(t *testing.T) {
	d := dgListen(t, nil, "udp", "127.0.0.1:0", newDgRecorder(), 0)
	want := "udp " + d.Addr().String() + " (*netport.dgRecorder)"
	if got := d.String(); got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
}

func TestDatagramUnixgramUnboundSender(t *testing.T) {
	r := newDgRecorder()
	d := dgListen(t, nil, "unixgram", filepath.Join(t.TempDir(), "s"), r, 0)
	c, err := net.DialUnix("unixgram", nil, d.Addr().(*net.UnixAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("anonymous")); err != nil {
		t.Fatal(err)
	}
	if dg := r.recv(t); dg.from != nil {
		t.Errorf("from = %#v; want nil for an unbound sender", dg.from)
	}
}
