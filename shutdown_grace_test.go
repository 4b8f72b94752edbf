package netport

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// onlyConn returns the port's one connection.
func onlyConn(tb testing.TB, p *Port) *Conn {
	tb.Helper()
	var c *Conn
	waitFor(tb, "the port to track its connection", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for x := range p.conns.all() {
			c = x
		}
		return p.conns.len() == 1
	})
	return c
}

// makeYoung dates c's acceptance now, so that a slow machine's delays
// between the accept and the test's Shutdown cannot make it too old for
// the grace.
func makeYoung(c *Conn) {
	c.mu.Lock()
	c.born = monoMillis()
	c.mu.Unlock()
}

// postponed waits until Shutdown has postponed its request to c.
func postponed(tb testing.TB, c *Conn) {
	tb.Helper()
	waitFor(tb, "Shutdown to postpone its request", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.drainLater
	})
}

// lateRequest starts Shutdown with p's one connection fresh and silent,
// then sends "late" from client once Shutdown has postponed its request,
// and checks that client reads want before EOF and that Shutdown returns
// nil.
func lateRequest(t *testing.T, p *Port, client net.Conn, want string) {
	t.Helper()
	sc := onlyConn(t, p)
	makeYoung(sc)
	ctx, cancel := contextWithTimeout(testTimeout)
	defer cancel()
	errc := shutdownAsync(ctx, p)
	postponed(t, sc)
	if _, err := client.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	if got := string(recv(t, untilEOF(client))); got != want {
		t.Fatalf("client read until EOF: got %q; want %q", got, want)
	}
	if err := recv(t, errc); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestShutdownWaitsForFirstData: a client whose request is still on the
// way when Shutdown starts gets its answer, then the close. Before,
// Shutdown ended the silent new connection at once and the client read
// EOF unanswered: the restart of netport-echo lost such a client now and
// then.
func TestShutdownWaitsForFirstData(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newHookFactory(nil, echoData)
			p, err := Listen(tt.network, tt.address, f)
			if err != nil {
				t.Fatal(err)
			}
			c := dial(t, p)
			h := recv(t, f.built)
			recv(t, h.made)
			lateRequest(t, p, c, "late")
			if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionDone) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
			}
		})
	}
}

// TestShutdownEndsSilentClientAfterGrace: a new client that never speaks
// is asked to end once the grace has passed, and Shutdown returns.
func TestShutdownEndsSilentClientAfterGrace(t *testing.T) {
	f := newHookFactory(nil, echoData)
	p, err := Listen("tcp", "127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	h := recv(t, f.built)
	recv(t, h.made)
	read := untilEOF(c)
	ctx, cancel := contextWithTimeout(testTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := recv(t, read); len(got) != 0 {
		t.Fatalf("client read: got %q; want EOF", got)
	}
	if reason, ok := lostAlready(h); !ok || !errors.Is(reason, ErrConnectionDone) {
		t.Fatalf("ConnectionLost: (%v, %v); want ErrConnectionDone before Shutdown returned", reason, ok)
	}
}

// TestShutdownPostponesOnlyYoungSilentConns is the rule drain applies: it
// postpones a connection accepted less than firstDataGrace ago that has
// delivered nothing, and no other.
func TestShutdownPostponesOnlyYoungSilentConns(t *testing.T) {
	f := newHookFactory(nil, echoData)
	p, err := Listen("tcp", "127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p)
	recv(t, recv(t, f.built).made)
	sc := onlyConn(t, p)

	makeYoung(sc)
	if !sc.drain(false) {
		t.Fatal("a young silent connection: drain did not postpone")
	}
	sc.mu.Lock()
	sc.drainLater = false
	sc.born -= uint32(firstDataGrace / time.Millisecond)
	sc.mu.Unlock()
	if sc.drain(true) {
		t.Fatal("drain(force) of a connection it did not postpone: postponed")
	}
	if sc.drain(false) {
		t.Fatal("a silent connection older than the grace: drain postponed")
	}
	if got := readAll(t, c); len(got) != 0 {
		t.Fatalf("client read: got %q; want EOF", got)
	}

	// One that has spoken is asked at once, however young.
	c2 := dial(t, p)
	roundTrip(t, c2, []byte("hi"))
	var sc2 *Conn
	waitFor(t, "the second connection", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for x := range p.conns.all() {
			if x != sc {
				sc2 = x
			}
		}
		return sc2 != nil
	})
	// heardFirst runs once DataReceived has returned, which may be after
	// the client has its echo.
	waitFor(t, "the first data to be recorded", func() bool {
		sc2.mu.Lock()
		defer sc2.mu.Unlock()
		return sc2.heard
	})
	makeYoung(sc2)
	if sc2.drain(false) {
		t.Fatal("a young connection that has delivered data: drain postponed")
	}
	c2.SetDeadline(time.Now().Add(testTimeout))
	if b, err := io.ReadAll(c2); err != nil || len(b) != 0 {
		t.Fatalf("client read: %q, %v; want EOF", b, err)
	}
}

// TestShutdownYoungHandlerConn: a Handler connection Shutdown finds new
// reads the request that arrives after it, answers, and only then sees
// its read side closed.
func TestShutdownYoungHandlerConn(t *testing.T) {
	started := make(chan struct{})
	f := Handler(func(c net.Conn) {
		close(started)
		b := make([]byte, 64)
		n, err := c.Read(b)
		if err != nil {
			return
		}
		c.Write(b[:n])
		io.Copy(io.Discard, c) // until Shutdown closes the read side
		c.Write([]byte(" bye"))
	})
	p, err := Listen("tcp", "127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, p)
	waitClosed(t, started, "the handler to start")
	lateRequest(t, p, c, "late bye")
}
