package netport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// startCountingFactory is a hookFactory that counts StartFactory and
// StopFactory calls.
type startCountingFactory struct {
	*hookFactory
	starts, stops atomic.Int32
}

func (f *startCountingFactory) StartFactory() { f.starts.Add(1) }
func (f *startCountingFactory) StopFactory()  { f.stops.Add(1) }

// reactorDgEcho sends every datagram back to its sender.
type reactorDgEcho struct{ d *DatagramPort }

func (e *reactorDgEcho) StartProtocol(d *DatagramPort) { e.d = d }
func (e *reactorDgEcho) DatagramReceived(b []byte, from net.Addr) {
	e.d.WriteTo(b, from)
}

// reactorDial dials a port r opened; every later operation on the
// connection is bounded by testTimeout, and it is closed at cleanup.
func reactorDial(tb testing.TB, r *MemoryReactor, network, address string) net.Conn {
	tb.Helper()
	c, err := r.Dial(network, address)
	if err != nil {
		tb.Fatalf("Dial(%q, %q): got %v; want nil", network, address, err)
	}
	c.SetDeadline(time.Now().Add(testTimeout))
	tb.Cleanup(func() { c.Close() })
	return c
}

// shutdownAtCleanup shuts p down gracefully when the test ends.
func shutdownAtCleanup(tb testing.TB, p *Port) {
	tb.Helper()
	tb.Cleanup(func() { shutdown(tb, p) })
}

// wantOpError fails tb unless err is a *net.OpError matching target.
func wantOpError(tb testing.TB, what string, err, target error) {
	tb.Helper()
	var opErr *net.OpError
	if !errors.Is(err, target) || !errors.As(err, &opErr) {
		tb.Fatalf("%s: got %v; want a *net.OpError wrapping %v", what, err, target)
	}
}

func TestMemoryReactorListen(t *testing.T) {
	r := NewMemoryReactor()
	f := newHookFactory(nil, echoData)
	p, err := r.Listen("tcp", "127.0.0.1:7007", f)
	if err != nil {
		t.Fatalf("Listen: got %v; want nil", err)
	}
	shutdownAtCleanup(t, p)
	want := []ListenCall{{Network: "tcp", Address: "127.0.0.1:7007", Factory: f, Port: p}}
	if diff := cmp.Diff(want, r.ListenCalls(), byIdentity); diff != "" {
		t.Fatalf("ListenCalls() mismatch (-want +got):\n%s", diff)
	}
	if n := p.Addr().Network(); n != "memory" {
		t.Fatalf("Port.Addr().Network() = %q; want memory", n)
	}
	for _, tt := range []struct{ name, network, address string }{
		{"recorded address", "tcp", "127.0.0.1:7007"},
		{"port address", "memory", p.Addr().String()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			roundTrip(t, reactorDial(t, r, tt.network, tt.address), []byte("hello, "+tt.name))
		})
	}
}

func TestMemoryReactorListenAddressInUse(t *testing.T) {
	r := NewMemoryReactor()
	first, err := r.Listen("tcp", "127.0.0.1:7007", newHookFactory(nil, echoData))
	if err != nil {
		t.Fatalf("first Listen: got %v; want nil", err)
	}
	_, err = r.Listen("tcp", "127.0.0.1:7007", newHookFactory(nil, echoData))
	wantOpError(t, "second Listen on one address", err, syscall.EADDRINUSE)
	// Another network is another address.
	other, err := r.Listen("unix", "127.0.0.1:7007", newHookFactory(nil, echoData))
	if err != nil {
		t.Fatalf("Listen on unix with the same text: got %v; want nil", err)
	}
	shutdownAtCleanup(t, other)

	// Once the first port is closed the address is free again, and Dial
	// reaches the new port.
	first.Close()
	f := newHookFactory(nil, echoData)
	second, err := r.Listen("tcp", "127.0.0.1:7007", f)
	if err != nil {
		t.Fatalf("Listen after Close: got %v; want nil", err)
	}
	shutdownAtCleanup(t, second)
	roundTrip(t, reactorDial(t, r, "tcp", "127.0.0.1:7007"), []byte("second"))
	recv(t, f.built)
}

func TestMemoryReactorDialRefused(t *testing.T) {
	r := NewMemoryReactor()
	p, err := r.Listen("tcp", "127.0.0.1:7007", newHookFactory(nil, echoData))
	if err != nil {
		t.Fatalf("Listen: got %v; want nil", err)
	}
	for _, tt := range []struct{ name, network, address string }{
		{"unknown address", "tcp", "127.0.0.1:7008"},
		{"unknown network", "tcp6", "127.0.0.1:7007"},
		{"unknown descriptor", "fd", "3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := r.Dial(tt.network, tt.address)
			if c != nil {
				c.Close()
			}
			wantOpError(t, "Dial", err, syscall.ECONNREFUSED)
		})
	}
	p.Close()
	_, err = r.Dial("tcp", "127.0.0.1:7007")
	wantOpError(t, "Dial after Port.Close", err, syscall.ECONNREFUSED)
}

func TestMemoryReactorServe(t *testing.T) {
	r := NewMemoryReactor()

	mem := NewMemoryListener()
	fm := newHookFactory(nil, echoData)
	pm, err := r.Serve(mem, fm)
	if err != nil {
		t.Fatalf("Serve(MemoryListener): got %v; want nil", err)
	}
	shutdownAtCleanup(t, pm)

	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ft := newHookFactory(nil, echoData)
	pt, err := r.Serve(tcp, ft)
	if err != nil {
		t.Fatalf("Serve(TCPListener): got %v; want nil", err)
	}
	shutdownAtCleanup(t, pt)

	want := []ServeCall{{mem, fm, pm}, {tcp, ft, pt}}
	if diff := cmp.Diff(want, r.ServeCalls(), byIdentity); diff != "" {
		t.Fatalf("ServeCalls() mismatch (-want +got):\n%s", diff)
	}
	roundTrip(t, reactorDial(t, r, "memory", mem.Addr().String()), []byte("in memory"))
	roundTrip(t, dial(t, pt), []byte("over tcp"))
}

func TestMemoryReactorAdoptStreamPort(t *testing.T) {
	r := NewMemoryReactor()
	f := &startCountingFactory{hookFactory: newHookFactory(nil, echoData)}
	// The descriptor is only recorded: no such descriptor needs to exist.
	const fd = 1 << 20
	p, err := r.AdoptStreamPort(fd, syscall.AF_INET6, f)
	if err != nil {
		t.Fatalf("AdoptStreamPort: got %v; want nil", err)
	}
	want := []AdoptStreamPortCall{{FD: fd, Family: syscall.AF_INET6, Factory: f, Port: p}}
	if diff := cmp.Diff(want, r.AdoptStreamPortCalls(), byIdentity); diff != "" {
		t.Fatalf("AdoptStreamPortCalls() mismatch (-want +got):\n%s", diff)
	}
	if got := f.starts.Load(); got != 1 {
		t.Fatalf("StartFactory calls: got %d; want 1, as for a real adopted port", got)
	}
	for _, tt := range []struct{ name, network, address string }{
		{"fd", "fd", strconv.Itoa(fd)},
		{"port address", "memory", p.Addr().String()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			roundTrip(t, reactorDial(t, r, tt.network, tt.address), []byte("adopted"))
		})
	}
	shutdown(t, p)
	if got := f.stops.Load(); got != 1 {
		t.Fatalf("StopFactory calls after Shutdown: got %d; want 1", got)
	}
}

func TestMemoryReactorAdoptStreamConnection(t *testing.T) {
	r := NewMemoryReactor()
	f := &startCountingFactory{hookFactory: newHookFactory(nil, echoData)}
	conn, err := r.AdoptStreamConnection(0, syscall.AF_UNIX, f)
	if err != nil {
		t.Fatalf("AdoptStreamConnection: got %v; want nil", err)
	}
	t.Cleanup(func() {
		conn.AbortConnection()
		waitClosed(t, conn.Done(), "Conn.Done")
	})
	calls := r.AdoptStreamConnectionCalls()
	if len(calls) != 1 || calls[0].Peer == nil {
		t.Fatalf("AdoptStreamConnectionCalls() = %+v; want one call with a peer", calls)
	}
	call := calls[0]
	want := AdoptStreamConnectionCall{FD: 0, Family: syscall.AF_UNIX, Factory: f, Conn: conn, Peer: call.Peer}
	if diff := cmp.Diff(want, call, byIdentity); diff != "" {
		t.Fatalf("AdoptStreamConnectionCalls()[0] mismatch (-want +got):\n%s", diff)
	}
	h := recv(t, f.built)
	if conn.Protocol() != Protocol(h) {
		t.Fatalf("Conn.Protocol() = %v; want the protocol the factory built", conn.Protocol())
	}
	peer := call.Peer
	peer.SetDeadline(time.Now().Add(testTimeout))

	// Written to the peer: reaches DataReceived; the protocol's echo is
	// read from the peer.
	roundTrip(t, peer, []byte("through the peer"))
	if got := string(recv(t, h.data)); got != "through the peer" {
		t.Fatalf("DataReceived(%q); want \"through the peer\"", got)
	}
	if n := f.starts.Load() + f.stops.Load(); n != 0 {
		t.Fatalf("StartFactory and StopFactory calls: got %d; want none for an adopted connection", n)
	}
	// Closing the peer ends the connection cleanly.
	peer.Close()
	if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionDone) {
		t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
	}
	waitClosed(t, conn.Done(), "Conn.Done after the peer closed")
}

// nilProtocolFactory builds no protocol and counts StartFactory calls.
type nilProtocolFactory struct{ starts atomic.Int32 }

func (*nilProtocolFactory) BuildProtocol(net.Addr) Protocol { return nil }
func (f *nilProtocolFactory) StartFactory()                 { f.starts.Add(1) }

func TestMemoryReactorAdoptStreamConnectionNoProtocol(t *testing.T) {
	r := NewMemoryReactor()
	f := &nilProtocolFactory{}
	conn, err := r.AdoptStreamConnection(0, syscall.AF_INET, f)
	if conn != nil {
		t.Fatalf("AdoptStreamConnection: got a conn; want nil")
	}
	if !errors.Is(err, ErrNoProtocol) {
		t.Fatalf("AdoptStreamConnection with a nil protocol: got %v; want ErrNoProtocol", err)
	}
	if n := f.starts.Load(); n != 0 {
		t.Fatalf("StartFactory calls: got %d; want 0", n)
	}
}

func TestMemoryReactorDatagram(t *testing.T) {
	for _, tt := range []struct {
		name    string
		open    func(r *MemoryReactor, p DatagramProtocol) (*DatagramPort, error)
		want    DatagramCall // Protocol, Port and Peer are checked apart
		wantMax int
	}{
		{
			name: "ListenPacket",
			open: func(r *MemoryReactor, p DatagramProtocol) (*DatagramPort, error) {
				return r.ListenPacket("udp", "127.0.0.1:5353", p, 0)
			},
			want:    DatagramCall{Network: "udp", Address: "127.0.0.1:5353"},
			wantMax: DefaultMaxPacketSize,
		},
		{
			name: "AdoptDatagramPort",
			open: func(r *MemoryReactor, p DatagramProtocol) (*DatagramPort, error) {
				return r.AdoptDatagramPort(7, syscall.AF_INET6, p, 512)
			},
			want:    DatagramCall{FD: 7, Family: syscall.AF_INET6, MaxPacketSize: 512},
			wantMax: 512,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := NewMemoryReactor()
			proto := &reactorDgEcho{}
			d, err := tt.open(r, proto)
			if err != nil {
				t.Fatalf("%s: got %v; want nil", tt.name, err)
			}
			t.Cleanup(func() { d.Close() })
			calls := r.DatagramCalls()
			if len(calls) != 1 {
				t.Fatalf("DatagramCalls: got %d calls; want 1", len(calls))
			}
			c := calls[0]
			if c.Peer == nil {
				t.Fatalf("DatagramCalls()[0] = %+v; want a peer", c)
			}
			t.Cleanup(func() { c.Peer.Close() })
			want := tt.want
			want.Protocol, want.Port, want.Peer = proto, d, c.Peer
			if diff := cmp.Diff(want, c, byIdentity); diff != "" {
				t.Fatalf("DatagramCalls()[0] mismatch (-want +got):\n%s", diff)
			}
			if got := d.MaxPacketSize(); got != tt.wantMax {
				t.Fatalf("MaxPacketSize() = %d; want %d", got, tt.wantMax)
			}

			c.Peer.SetDeadline(time.Now().Add(testTimeout))
			if _, err := c.Peer.WriteTo([]byte("ping"), d.Addr()); err != nil {
				t.Fatalf("Peer.WriteTo(Port.Addr()): got %v; want nil", err)
			}
			b := make([]byte, 64)
			n, from, err := c.Peer.ReadFrom(b)
			if err != nil || string(b[:n]) != "ping" || from.String() != d.Addr().String() {
				t.Fatalf("Peer.ReadFrom: got %q from %v, %v; want \"ping\" from %v", b[:n], from, err, d.Addr())
			}
		})
	}
}

func TestMemoryReactorDatagramNilProtocol(t *testing.T) {
	r := NewMemoryReactor()
	var opErr *net.OpError
	if _, err := r.ListenPacket("udp", "127.0.0.1:5353", nil, 0); !errors.As(err, &opErr) {
		t.Fatalf("ListenPacket with a nil protocol: got %v; want a *net.OpError", err)
	}
	if _, err := r.AdoptDatagramPort(7, syscall.AF_INET, nil, 0); !errors.As(err, &opErr) {
		t.Fatalf("AdoptDatagramPort with a nil protocol: got %v; want a *net.OpError", err)
	}
	if n := len(r.DatagramCalls()); n != 0 {
		t.Fatalf("DatagramCalls after failed calls: got %d; want 0", n)
	}
}

// TestMemoryReactorConcurrent opens ports from many goroutines at once, and
// reads the records meanwhile; run it with -race.
func TestMemoryReactorConcurrent(t *testing.T) {
	const n = 16
	r := NewMemoryReactor()
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		addr := fmt.Sprintf("127.0.0.1:%d", 7000+i)
		wg.Go(func() {
			p, err := r.Listen("tcp", addr, newHookFactory(nil, echoData))
			if err != nil {
				errs <- err
				return
			}
			t.Cleanup(func() { shutdown(t, p) })
		})
		wg.Go(func() {
			d, err := r.ListenPacket("udp", addr, &reactorDgEcho{}, 0)
			if err != nil {
				errs <- err
				return
			}
			t.Cleanup(func() { d.Close() })
		})
		wg.Go(func() {
			r.ListenCalls()
			r.DatagramCalls()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Listen or ListenPacket: got %v; want nil", err)
	}
	if got := len(r.ListenCalls()); got != n {
		t.Fatalf("ListenCalls: got %d; want %d", got, n)
	}
	dgCalls := r.DatagramCalls()
	if len(dgCalls) != n {
		t.Fatalf("DatagramCalls: got %d; want %d", len(dgCalls), n)
	}
	for _, c := range dgCalls {
		t.Cleanup(func() { c.Peer.Close() })
	}
	for i := range n {
		c := reactorDial(t, r, "tcp", fmt.Sprintf("127.0.0.1:%d", 7000+i))
		roundTrip(t, c, []byte(strconv.Itoa(i)))
	}
}

// TestMemoryReactorCloseLeavesConnections: as over a real socket,
// Port.Close stops accepting and leaves the connections served, and
// Shutdown ends them.
func TestMemoryReactorCloseLeavesConnections(t *testing.T) {
	r := NewMemoryReactor()
	f := newHookFactory(nil, echoData)
	p, err := r.Listen("tcp", "127.0.0.1:7007", f)
	if err != nil {
		t.Fatalf("Listen: got %v; want nil", err)
	}
	c := reactorDial(t, r, "tcp", "127.0.0.1:7007")
	roundTrip(t, c, []byte("before Close"))
	h := recv(t, f.built)

	if err := p.Close(); err != nil {
		t.Fatalf("Close: got %v; want nil", err)
	}
	roundTrip(t, c, []byte("after Close"))
	_, err = r.Dial("tcp", "127.0.0.1:7007")
	wantOpError(t, "Dial after Close", err, syscall.ECONNREFUSED)

	shutdown(t, p)
	if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionDone) {
		t.Fatalf("ConnectionLost(%v) after Shutdown; want ErrConnectionDone", reason)
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("client Read after Shutdown: got %d, %v; want 0, EOF", n, err)
	}
}

// startEcho is code under test written against the Reactor interface.
func startEcho(r Reactor, network, address string) (*Port, error) {
	return r.Listen(network, address, newHookFactory(nil, echoData))
}

// TestReactorImplementations runs the same code on the real reactor and on
// a MemoryReactor.
func TestReactorImplementations(t *testing.T) {
	t.Run("Config", func(t *testing.T) {
		var cfg *Config // a nil *Config is a zero one
		p, err := startEcho(cfg, "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("startEcho: got %v; want nil", err)
		}
		shutdownAtCleanup(t, p)
		roundTrip(t, dial(t, p), []byte("real socket"))
	})
	t.Run("MemoryReactor", func(t *testing.T) {
		r := NewMemoryReactor()
		p, err := startEcho(r, "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("startEcho: got %v; want nil", err)
		}
		shutdownAtCleanup(t, p)
		roundTrip(t, reactorDial(t, r, "tcp", "127.0.0.1:0"), []byte("in memory"))
	})
}

func TestRaisingReactor(t *testing.T) {
	cause := errors.New("no sockets today")
	e := fmt.Errorf("setup: %w", cause)
	r := RaisingReactor{Err: e}
	f := newHookFactory(nil, nil)
	p := &reactorDgEcho{}
	for _, tt := range []struct {
		name string
		call func(Reactor) (any, error)
	}{
		{"Listen", func(r Reactor) (any, error) { return r.Listen("tcp", "127.0.0.1:0", f) }},
		{"Serve", func(r Reactor) (any, error) {
			ln := NewMemoryListener()
			port, err := r.Serve(ln, f)
			// Serve owns the listener, on error too: it is closed already.
			if cerr := ln.Close(); !errors.Is(cerr, net.ErrClosed) {
				t.Errorf("closing the listener after Serve: got %v; want net.ErrClosed", cerr)
			}
			return port, err
		}},
		{"AdoptStreamPort", func(r Reactor) (any, error) { return r.AdoptStreamPort(3, syscall.AF_INET, f) }},
		{"AdoptStreamConnection", func(r Reactor) (any, error) { return r.AdoptStreamConnection(0, syscall.AF_UNIX, f) }},
		{"AdoptDatagramPort", func(r Reactor) (any, error) { return r.AdoptDatagramPort(3, syscall.AF_INET, p, 0) }},
		{"ListenPacket", func(r Reactor) (any, error) { return r.ListenPacket("udp", "127.0.0.1:0", p, 0) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.call(r)
			if !errors.Is(err, e) || !errors.Is(err, cause) {
				t.Fatalf("%s: got %v; want %v", tt.name, err, e)
			}
			if !reflect.ValueOf(v).IsNil() {
				t.Fatalf("%s: got %v; want a nil result", tt.name, v)
			}
		})
	}
	select {
	case h := <-f.built:
		t.Fatalf("BuildProtocol was called (%v); want no call", h)
	default:
	}
}

// reactorStarter calls back into its reactor from StartFactory.
type reactorStarter struct {
	*echoFactory
	r     *MemoryReactor
	calls chan int
}

func (f *reactorStarter) StartFactory() { f.calls <- len(f.r.ListenCalls()) }

func TestMemoryReactorStartFactoryMayCallTheReactor(t *testing.T) {
	r := NewMemoryReactor()
	f := &reactorStarter{newEchoFactory(), r, make(chan int, 1)}
	done := make(chan *Port, 1)
	go func() {
		p, err := r.Listen("tcp", "127.0.0.1:7007", f)
		if err != nil {
			t.Error(err)
		}
		done <- p
	}()
	if n := recv(t, f.calls); n != 0 {
		t.Errorf("ListenCalls from StartFactory: %d calls; want 0 (the call is recorded once it succeeded)", n)
	}
	if p := recv(t, done); p != nil {
		p.Close()
	}
}
