package netport

import (
	"errors"
	"testing"
	"testing/synctest"
)

// TestMemoryConnStartsNoSweeper: a connection that cannot park (an
// in-memory one has no readiness read) never starts the sweeper, so a
// port serving only such connections runs no ticker at all.
func TestMemoryConnStartsNoSweeper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newHookFactory(nil, echoData)
		ln := NewMemoryListener()
		defer ln.Close()
		p, err := Serve(ln, f)
		if err != nil {
			t.Fatalf("Serve: got %v; want nil", err)
		}
		defer shutdown(t, p)
		c, err := ln.Dial()
		if err != nil {
			t.Fatalf("Dial: got %v; want nil", err)
		}
		defer c.Close()
		roundTrip(t, c, []byte("ping"))
		synctest.Wait() // the server's goroutine waits for data
		if n := p.sweep.starts.Load(); n != 0 {
			t.Fatalf("sweeper started %d times for an in-memory connection; want 0", n)
		}
		if e := p.sweep.epoch.Load(); e != firstEpoch {
			t.Fatalf("sweeper epoch %d; want %d (no tick)", e, firstEpoch)
		}
	})
}

// TestDoneAfterEnd: Done asked for only after the connection has ended
// is already closed; asked for before, it is closed at the end.
func TestDoneAfterEnd(t *testing.T) {
	for _, early := range []bool{true, false} {
		f := newHookFactory(nil, nil)
		ln := NewMemoryListener()
		p, err := Serve(ln, f)
		if err != nil {
			t.Fatalf("Serve: got %v; want nil", err)
		}
		c, err := ln.Dial()
		if err != nil {
			t.Fatalf("Dial: got %v; want nil", err)
		}
		h := recv(t, f.built)
		tr := recv(t, h.made).(*Conn)
		var done <-chan struct{}
		if early {
			done = tr.Done()
		}
		c.Close()
		if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionDone) {
			t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
		}
		shutdown(t, p) // waits until the connection's goroutine has finished
		if !early {
			done = tr.Done()
		}
		waitClosed(t, done, "Done")
		ln.Close()
	}
}
