package netport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitParked waits until c has given up its goroutine, failing tb after
// testTimeout.
func waitParked(tb testing.TB, c *Conn) {
	tb.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(testTimeout)
	for c.pstate.Load()&parkedBit == 0 {
		select {
		case <-tick.C:
		case <-deadline:
			tb.Fatalf("connection %v: not parked after %v; want parked", c, testTimeout)
		}
	}
}

// servedConn dials p and returns the client end and the server's Conn
// and protocol, after one echo.
func servedConn(tb testing.TB, p *Port, f *hookFactory) (net.Conn, *Conn, *hookProto) {
	tb.Helper()
	client := dial(tb, p)
	roundTrip(tb, client, []byte("first"))
	h := recv(tb, f.built)
	return client, recv(tb, h.made).(*Conn), h
}

func TestParkedConnectionResumes(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newHookFactory(nil, echoData)
			p := listen(t, nil, tt.network, tt.address, f)
			client, c, h := servedConn(t, p, f)
			for i := range 3 {
				waitParked(t, c)
				roundTrip(t, client, fmt.Appendf(nil, "after park %d", i))
			}
			waitParked(t, c)
			client.Close()
			if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionDone) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
			}
		})
	}
}

func TestParkedIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	f := newHookFactory(nil, echoData)
	p := listen(t, &Config{IdleTimeout: idle}, "tcp", "127.0.0.1:0", f)
	start := time.Now()
	client, c, h := servedConn(t, p, f)
	waitParked(t, c)
	reason := recv(t, h.lost)
	if !errors.Is(reason, ErrConnectionLost) || !errors.Is(reason, os.ErrDeadlineExceeded) {
		t.Fatalf("ConnectionLost(%v); want ErrConnectionLost wrapping os.ErrDeadlineExceeded", reason)
	}
	if d := time.Since(start); d < idle {
		t.Fatalf("closed after %v; want at least IdleTimeout (%v)", d, idle)
	}
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("client read: got data; want the server to close")
	}
}

// TestParkedIdleTimeoutRestarts checks that data received while parked
// restarts IdleTimeout rather than the timer of the earlier park ending
// the connection.
func TestParkedIdleTimeoutRestarts(t *testing.T) {
	const idle = 400 * time.Millisecond
	f := newHookFactory(nil, echoData)
	p := listen(t, &Config{IdleTimeout: idle}, "tcp", "127.0.0.1:0", f)
	client, c, h := servedConn(t, p, f)
	for range 3 {
		waitParked(t, c)
		timer := time.NewTimer(idle / 2)
		select {
		case reason := <-h.lost:
			t.Fatalf("ConnectionLost(%v) within half of IdleTimeout; want none", reason)
		case <-timer.C:
		}
		roundTrip(t, client, []byte("still here"))
	}
	reason := recv(t, h.lost)
	if !errors.Is(reason, os.ErrDeadlineExceeded) {
		t.Fatalf("ConnectionLost(%v); want os.ErrDeadlineExceeded", reason)
	}
}

func TestParkedEndedFromAnotherGoroutine(t *testing.T) {
	tests := []struct {
		name string
		end  func(*Conn)
		want error
	}{
		{"LoseConnection", func(c *Conn) { c.LoseConnection() }, ErrConnectionDone},
		{"AbortConnection", func(c *Conn) { c.AbortConnection() }, ErrConnectionLost},
		{"StopProducing", func(c *Conn) { c.StopProducing() }, ErrConnectionDone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newHookFactory(nil, echoData)
			p := listen(t, nil, "tcp", "127.0.0.1:0", f)
			client, c, h := servedConn(t, p, f)
			waitParked(t, c)
			tt.end(c)
			if reason := recv(t, h.lost); !errors.Is(reason, tt.want) {
				t.Fatalf("ConnectionLost(%v); want %v", reason, tt.want)
			}
			waitClosed(t, c.Done(), "Done")
			if _, err := client.Read(make([]byte, 1)); err == nil {
				t.Fatal("client read: got data; want the server to close")
			}
		})
	}
}

// TestParkedLoseConnectionLingers: data the peer sent after the
// connection parked is unread when LoseConnection comes, so it must send
// FIN and linger rather than reset the peer (a reset would lose "bye").
func TestParkedLoseConnectionLingers(t *testing.T) {
	unreadSent := make(chan struct{})
	hookErr := make(chan error, 1)
	f := newHookFactory(nil, func(tr Transport, b []byte) {
		if string(b) != "wake" {
			return
		}
		tr.Write([]byte("ok"))
		select {
		case <-unreadSent:
		case <-time.After(testTimeout):
		}
		// The peer's next bytes are in the socket, unread, when
		// LoseConnection comes.
		hookErr <- waitSocketReadable(tr.Conn())
		tr.Write([]byte("bye"))
		tr.LoseConnection()
	})
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	client := dial(t, p)
	if _, err := client.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	h := recv(t, f.built)
	c := recv(t, h.made).(*Conn)
	recv(t, h.data)
	waitParked(t, c)
	if _, err := client.Write([]byte("wake")); err != nil {
		t.Fatal(err)
	}
	ok := make([]byte, 2)
	if _, err := io.ReadFull(client, ok); err != nil || string(ok) != "ok" {
		t.Fatalf("client read %q, %v; want \"ok\"", ok, err)
	}
	if _, err := client.Write([]byte("unread")); err != nil {
		t.Fatal(err)
	}
	close(unreadSent)
	if err := recv(t, hookErr); err != nil {
		t.Fatalf("waiting for the unread data: %v", err)
	}
	if got, err := io.ReadAll(client); err != nil || string(got) != "bye" {
		t.Fatalf("client read %q, %v; want \"bye\" then EOF, no reset", got, err)
	}
	client.Close()
	if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionDone) {
		t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
	}
}

// waitSocketReadable waits, up to testTimeout, until nc's socket has data
// to read, without reading it.
func waitSocketReadable(nc net.Conn) error {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T has no descriptor", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var n int
	var perr error
	if err := rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, perr = unix.Poll(fds, int(testTimeout/time.Millisecond))
			if perr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if perr != nil || n == 0 {
		return fmt.Errorf("poll: got %d, %v; want the socket readable", n, perr)
	}
	return nil
}

func TestParkedWriteFromAnotherGoroutine(t *testing.T) {
	f := newHookFactory(nil, echoData)
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	client, c, _ := servedConn(t, p, f)
	waitParked(t, c)
	if _, err := c.Write([]byte("push")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "push" {
		t.Fatalf("client read %q, %v; want \"push\"", got, err)
	}
	roundTrip(t, client, []byte("and back"))
}

// byeDrainProto answers Shutdown's Drain by saying goodbye and closing.
type byeDrainProto struct {
	*hookProto
}

func (d byeDrainProto) Drain() {
	d.t.Write([]byte("bye"))
	d.t.LoseConnection()
}

func TestParkedShutdownDrains(t *testing.T) {
	built := make(chan byeDrainProto, 1)
	f := FactoryFunc(func(net.Addr) Protocol {
		d := byeDrainProto{newHookProto(nil, echoData)}
		built <- d
		return d
	})
	p, err := Listen("tcp", "127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	client, err := net.DialTimeout("tcp", p.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.SetDeadline(time.Now().Add(testTimeout))
	roundTrip(t, client, []byte("hi"))
	d := recv(t, built)
	c := recv(t, d.made).(*Conn)
	waitParked(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if reason := recv(t, d.lost); !errors.Is(reason, ErrConnectionDone) {
		t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
	}
	if got := readAll(t, client); string(got) != "bye" {
		t.Fatalf("client read %q; want \"bye\" then EOF", got)
	}
}

// TestParkingRace runs clients that pause around parkTick between
// messages, so that parking races with data, while another goroutine
// writes to each connection; every echo must come back whole and in
// order, and every connection must end cleanly.
func TestParkingRace(t *testing.T) {
	checkLeaks(t)
	const clients, rounds = 16, 24
	f := newEchoFactory()
	p, err := Listen("tcp", "127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			errs <- parkingClient(p.Addr().String(), i, rounds)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range clients {
		e := recv(t, f.built)
		if reason := recv(t, e.lost); !errors.Is(reason, ErrConnectionDone) {
			t.Errorf("ConnectionLost(%v); want ErrConnectionDone", reason)
		}
	}
}

func parkingClient(addr string, i, rounds int) error {
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	for r := range rounds {
		msg := fmt.Appendf(nil, "client %d round %d", i, r)
		if _, err := c.Write(msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		if string(got) != string(msg) {
			return fmt.Errorf("echo: got %q; want %q", got, msg)
		}
		// Pacing, not synchronisation: gaps around the sweeper's ticks,
		// so that parking races with data.
		<-time.After(time.Duration((i+r)%5) * parkTick / 2)
	}
	return nil
}

// sweeperRunning reports whether p's sweeper goroutine runs.
func sweeperRunning(p *Port) bool {
	p.sweep.mu.Lock()
	defer p.sweep.mu.Unlock()
	return p.sweep.stop != nil
}

// waitSweeperStopped waits until p's sweeper has stopped.
func waitSweeperStopped(tb testing.TB, p *Port) {
	tb.Helper()
	waitFor(tb, "sweeper stopped", func() bool { return !sweeperRunning(p) })
}

// TestSweeperLooksOnlyAtWaitingConnections parks a crowd, then keeps one
// connection busy: the sweeper runs only while some connection waits,
// and each tick looks at the connections that went to wait since, never
// at the parked crowd.
func TestSweeperLooksOnlyAtWaitingConnections(t *testing.T) {
	const crowd, ticks = 48, 6
	f := newHookFactory(nil, echoData)
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	clients := make([]net.Conn, crowd)
	conns := make([]*Conn, crowd)
	for i := range crowd {
		clients[i], conns[i], _ = servedConn(t, p, f)
	}
	for _, c := range conns {
		waitParked(t, c)
	}
	// Every connection parked: nothing is listed, and no ticker runs.
	waitSweeperStopped(t, p)
	visits, epoch := p.sweep.visits.Load(), p.sweep.epoch.Load()

	// One busy connection, one echo per tick: it lists itself once per
	// epoch, and the sweeper looks at it and nothing else.
	for i := 0; p.sweep.epoch.Load()-epoch < ticks; i++ {
		e := p.sweep.epoch.Load()
		roundTrip(t, clients[0], fmt.Appendf(nil, "echo %d", i))
		// The next tick, or the connection parked (a slow machine).
		waitFor(t, "ticked or parked", func() bool {
			return p.sweep.epoch.Load() > e || conns[0].pstate.Load()&parkedBit != 0
		})
	}
	waitSweeperStopped(t, p)
	gotVisits := p.sweep.visits.Load() - visits
	gotTicks := p.sweep.epoch.Load() - epoch
	if gotVisits > uint64(gotTicks)+1 {
		t.Errorf("sweeper looked at %d connections in %d ticks with one busy connection of %d; want at most %d",
			gotVisits, gotTicks, crowd, gotTicks+1)
	}
	for i, c := range conns[1:] {
		if c.pstate.Load()&parkedBit == 0 {
			t.Errorf("connection %d of the crowd was woken; want it left parked", i+1)
		}
	}
	// The crowd still resumes, with the sweeper stopped.
	for i, client := range clients {
		roundTrip(t, client, fmt.Appendf(nil, "back %d", i))
	}
}

// TestParkedIdleTimeoutWithoutSweeper: IdleTimeout ends a parked
// connection by its own timer, with no sweeper running.
func TestParkedIdleTimeoutWithoutSweeper(t *testing.T) {
	f := newHookFactory(nil, echoData)
	p := listen(t, &Config{IdleTimeout: 500 * time.Millisecond}, "tcp", "127.0.0.1:0", f)
	_, c, h := servedConn(t, p, f)
	waitParked(t, c)
	p.sweep.halt() // as if the sweeper had already stopped
	if reason := recv(t, h.lost); !errors.Is(reason, os.ErrDeadlineExceeded) {
		t.Fatalf("ConnectionLost(%v); want os.ErrDeadlineExceeded", reason)
	}
}

// TestSweeperStopsWithLastConnection: the sweeper ends as soon as the
// port has no connection left, without waiting for its lists to empty.
func TestSweeperStopsWithLastConnection(t *testing.T) {
	f := newHookFactory(nil, echoData)
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	client, _, h := servedConn(t, p, f)
	waitFor(t, "sweeper running", func() bool { return sweeperRunning(p) })
	client.Close()
	recv(t, h.lost)
	waitSweeperStopped(t, p)
}
