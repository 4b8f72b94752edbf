package netport

import (
	"net"
	"sync/atomic"
	"syscall"
	"testing"
)

// failOnceListener fails its first Accept with a temporary error.
type failOnceListener struct {
	net.Listener
	failed atomic.Bool
}

func (l *failOnceListener) Accept() (net.Conn, error) {
	if !l.failed.Swap(true) {
		return nil, &net.OpError{Op: "accept", Net: "memory", Err: syscall.ECONNABORTED}
	}
	return l.Listener.Accept()
}

func TestPortStats(t *testing.T) {
	logger, _ := testLogger()
	ml := NewMemoryListener()
	var n atomic.Int64
	lost := make(chan error, 8)
	built := make(chan *hookProto, 8)
	f := FactoryFunc(func(net.Addr) Protocol {
		switch n.Add(1) {
		case 1:
			return nil // refused
		case 2:
			panic("BuildProtocol fails") // refused and a panic
		}
		h := newHookProto(nil, func(Transport, []byte) { panic("DataReceived fails") })
		h.onLost = func(err error) { lost <- err }
		built <- h
		return h
	})
	p, err := (&Config{Logger: logger}).Serve(&failOnceListener{Listener: ml}, f)
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(t, p)
	for range 2 {
		c, err := ml.Dial()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a refused connection answered")
		}
		c.Close()
	}
	open := make([]net.Conn, 2)
	for i := range open {
		if open[i], err = ml.Dial(); err != nil {
			t.Fatal(err)
		}
		defer open[i].Close()
	}
	for range open {
		recv(t, recv(t, built).made)
	}
	want := PortStats{Accepted: 4, Active: 2, Refused: 2, AcceptErrors: 1, Panics: 1}
	if got := p.Stats(); got != want {
		t.Errorf("got %+v; want %+v", got, want)
	}
	open[0].Write([]byte("boom"))
	recv(t, lost)
	if got := p.Stats(); got.Panics != 2 {
		t.Errorf("after a panic in DataReceived: got %+v; want Panics 2", got)
	}
	open[1].Close()
	recv(t, lost)
	shutdown(t, p)
	if got := p.Stats(); got.Active != 0 || got.Accepted != 4 {
		t.Errorf("after Shutdown: got %+v; want Active 0, Accepted 4", got)
	}
}
