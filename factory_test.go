package netport

import (
	"errors"
	"net"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
)

// startStopFactory counts StartFactory and StopFactory calls.
type startStopFactory struct {
	starts, stops atomic.Int32
}

func (f *startStopFactory) BuildProtocol(net.Addr) Protocol { return newHookProto(nil, echoData) }
func (f *startStopFactory) StartFactory()                   { f.starts.Add(1) }
func (f *startStopFactory) StopFactory()                    { f.stops.Add(1) }

func (f *startStopFactory) check(tb testing.TB, when string, starts, stops int32) {
	tb.Helper()
	if s, e := f.starts.Load(), f.stops.Load(); s != starts || e != stops {
		tb.Fatalf("%s: got %d StartFactory, %d StopFactory; want %d, %d", when, s, e, starts, stops)
	}
}

func TestStartFactoryOnlyAfterBind(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	f := new(startStopFactory)

	if p, err := Listen("tcp", busy.Addr().String(), f); !errors.Is(err, syscall.EADDRINUSE) {
		if p != nil {
			p.Close()
		}
		t.Fatalf("Listen on a busy address: got %v; want EADDRINUSE", err)
	}
	f.check(t, "after a failed Listen", 0, 0)

	p, err := Listen("tcp", "127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	f.check(t, "after Listen", 1, 0)
	c := dial(t, p)
	roundTrip(t, c, []byte("hi"))
	c.Close()
	shutdown(t, p)
	f.check(t, "after Shutdown", 1, 1)
}

func TestStartStopFactoryShared(t *testing.T) {
	f := new(startStopFactory)
	var ports []*Port
	open := func(p *Port, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { shutdown(t, p) })
		ports = append(ports, p)
		f.check(t, "after opening port "+p.String(), 1, 0)
	}
	open(Listen("tcp", "127.0.0.1:0", f))
	open(Listen("unix", filepath.Join(t.TempDir(), "sock"), f))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open(Serve(ln, f))

	for _, p := range ports {
		c := dial(t, p)
		roundTrip(t, c, []byte("hi"))
		c.Close()
	}
	for i, p := range ports {
		p.Close()
		p.Close() // a second Close must not count twice
		if last := i == len(ports)-1; last {
			f.check(t, "after closing the last port", 1, 1)
		} else {
			f.check(t, "after closing "+p.String(), 1, 0)
		}
	}

	// A new first port starts the factory again.
	p, err := Listen("tcp", "127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	f.check(t, "after listening again", 2, 1)
	shutdown(t, p)
	f.check(t, "after closing again", 2, 2)
}

// sliceFactory cannot be a map key; ifaceFactory can, unless its field
// holds a value that cannot be compared.
type sliceFactory struct {
	s             []int
	starts, stops *atomic.Int32
}

func (f sliceFactory) BuildProtocol(net.Addr) Protocol { return newHookProto(nil, echoData) }
func (f sliceFactory) StartFactory()                   { f.starts.Add(1) }
func (f sliceFactory) StopFactory()                    { f.stops.Add(1) }

type ifaceFactory struct {
	v             any
	starts, stops *atomic.Int32
}

func (f ifaceFactory) BuildProtocol(net.Addr) Protocol { return newHookProto(nil, echoData) }
func (f ifaceFactory) StartFactory()                   { f.starts.Add(1) }
func (f ifaceFactory) StopFactory()                    { f.stops.Add(1) }

func TestIncomparableFactoryCountedPerPort(t *testing.T) {
	var starts, stops atomic.Int32
	for _, f := range []Factory{
		sliceFactory{[]int{1}, &starts, &stops},
		ifaceFactory{[]int{1}, &starts, &stops},
	} {
		starts.Store(0)
		stops.Store(0)
		p1, err := Listen("tcp", "127.0.0.1:0", f)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := Listen("tcp", "127.0.0.1:0", f)
		if err != nil {
			p1.Close()
			t.Fatal(err)
		}
		c := dial(t, p2)
		roundTrip(t, c, []byte("hi"))
		c.Close()
		shutdown(t, p1)
		shutdown(t, p2)
		if s, e := starts.Load(), stops.Load(); s != 2 || e != 2 {
			t.Errorf("%T: got %d StartFactory, %d StopFactory; want 2, 2 (one per port)", f, s, e)
		}
	}
}

// blockingStarter's StartFactory waits until release is closed.
type blockingStarter struct {
	*echoFactory
	entered, release chan struct{}
}

func (b *blockingStarter) StartFactory() {
	close(b.entered)
	<-b.release
}

// TestSlowStartFactoryDelaysNoOtherFactory: a StartFactory that takes its
// time holds up only its own factory's ports.
func TestSlowStartFactoryDelaysNoOtherFactory(t *testing.T) {
	slow := &blockingStarter{newEchoFactory(), make(chan struct{}), make(chan struct{})}
	opened := make(chan *Port, 1)
	go func() {
		p, err := Listen("tcp", "127.0.0.1:0", slow)
		if err != nil {
			t.Error(err)
		}
		opened <- p
	}()
	waitClosed(t, slow.entered, "the slow StartFactory to start")

	other := &countingFactory{newEchoFactory(), make(chan struct{}, 1), make(chan struct{}, 1)}
	p, err := Listen("tcp", "127.0.0.1:0", other)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, other.starts)
	closed := make(chan struct{})
	go func() {
		p.Close()
		close(closed)
	}()
	waitClosed(t, closed, "Close of another factory's port")
	recv(t, other.stops)

	close(slow.release)
	if p := recv(t, opened); p != nil {
		p.Close()
	}
}

// countingFactory reports each StartFactory and StopFactory call.
type countingFactory struct {
	*echoFactory
	starts, stops chan struct{}
}

func (f *countingFactory) StartFactory() { f.starts <- struct{}{} }
func (f *countingFactory) StopFactory()  { f.stops <- struct{}{} }
