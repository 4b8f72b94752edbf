package netport

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// drainProto answers Drain: it reports the call, and once the test
// releases it, sends a last word and closes.
type drainProto struct {
	*hookProto
	drained chan struct{}
	release chan struct{} // nil: ignore Drain
}

func (d drainProto) Drain() {
	close(d.drained)
	if d.release == nil {
		return
	}
	t := d.t
	go func() {
		<-d.release
		t.Write([]byte("bye"))
		t.LoseConnection()
	}()
}

// drainServed listens with a factory of drainProtos (release as given),
// dials, round-trips once, and returns the port, the client and the
// server's protocol.
func drainServed(tb testing.TB, network, address string, release chan struct{}) (*Port, net.Conn, drainProto) {
	tb.Helper()
	built := make(chan drainProto, 1)
	f := FactoryFunc(func(net.Addr) Protocol {
		d := drainProto{newHookProto(nil, echoData), make(chan struct{}), release}
		built <- d
		return d
	})
	p, err := Listen(network, address, f)
	if err != nil {
		tb.Fatal(err)
	}
	c := dial(tb, p)
	roundTrip(tb, c, []byte("hi"))
	return p, c, recv(tb, built)
}

// shutdownAsync runs p.Shutdown(ctx) and reports its result.
func shutdownAsync(ctx context.Context, p *Port) <-chan error {
	errc := make(chan error, 1)
	go func() { errc <- p.Shutdown(ctx) }()
	return errc
}

// untilEOF reads c until EOF in the background, then closes it, as a
// client that answers the server's close; the result is what it read.
func untilEOF(c net.Conn) <-chan []byte {
	ch := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(c)
		c.Close()
		ch <- b
	}()
	return ch
}

// lostAlready reports whether ConnectionLost has been called, without
// waiting.
func lostAlready(h *hookProto) (error, bool) {
	select {
	case reason := <-h.lost:
		return reason, true
	default:
		return nil, false
	}
}

func TestShutdownDrain(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			release := make(chan struct{})
			var once sync.Once
			t.Cleanup(func() { once.Do(func() { close(release) }) })
			p, c, d := drainServed(t, tt.network, tt.address, release)

			ctx, cancel := contextWithTimeout(testTimeout)
			defer cancel()
			errc := shutdownAsync(ctx, p)
			waitClosed(t, d.drained, "Drain")
			read := untilEOF(c)
			once.Do(func() { close(release) })
			if got := string(recv(t, read)); got != "bye" {
				t.Fatalf("client read until EOF: got %q; want \"bye\"", got)
			}
			if err := recv(t, errc); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			reason, ok := lostAlready(d.hookProto)
			if !ok {
				t.Fatalf("Shutdown returned before ConnectionLost")
			}
			if !errors.Is(reason, ErrConnectionDone) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
			}
		})
	}
}

func TestShutdownLosesConnectionsWithoutDrain(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newHookFactory(nil, echoData)
			p, err := Listen(tt.network, tt.address, f)
			if err != nil {
				t.Fatal(err)
			}
			// Idle connections, and one that is paused.
			const n = 3
			var protos []*hookProto
			var reads []<-chan []byte
			for i := range n {
				c := dial(t, p)
				roundTrip(t, c, []byte("hi"))
				h := recv(t, f.built)
				if i == 1 {
					recv(t, h.made).PauseProducing()
				}
				protos = append(protos, h)
				reads = append(reads, untilEOF(c))
			}

			ctx, cancel := contextWithTimeout(testTimeout)
			defer cancel()
			if err := p.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			for i, h := range protos {
				reason, ok := lostAlready(h)
				if !ok {
					t.Fatalf("connection %d: Shutdown returned before ConnectionLost", i)
				}
				if !errors.Is(reason, ErrConnectionDone) {
					t.Errorf("connection %d: ConnectionLost(%v); want ErrConnectionDone", i, reason)
				}
			}
			for _, r := range reads {
				if got := recv(t, r); len(got) != 0 {
					t.Errorf("client read: got %q; want EOF", got)
				}
			}
		})
	}
}

func TestShutdownContextEnds(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			p, c, d := drainServed(t, tt.network, tt.address, nil)

			ctx, cancel := context.WithTimeout(context.Background(), quietPeriod)
			defer cancel()
			if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Shutdown: got %v; want context.DeadlineExceeded", err)
			}
			waitClosed(t, d.drained, "Drain")
			// Shutdown returns at once; the aborted connection's
			// goroutine calls ConnectionLost on its own.
			reason := recv(t, d.lost)
			if !errors.Is(reason, ErrConnectionLost) || !errors.Is(reason, ErrConnectionAborted) ||
				!errors.Is(reason, context.DeadlineExceeded) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionLost and ErrConnectionAborted wrapping context.DeadlineExceeded", reason)
			}
			_, err := c.Read(make([]byte, 1))
			var ne net.Error
			if err == nil || errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("client read: got %v; want EOF or a reset", err)
			}
		})
	}
}

// halfOpenProto implements HalfCloseable and does nothing when the peer
// half-closes: the connection stays open until the port shuts down.
type halfOpenProto struct {
	*hookProto
	readLost chan struct{}
}

func (h halfOpenProto) ReadConnectionLost() { close(h.readLost) }

func TestShutdownAfterPeerHalfClose(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			built := make(chan halfOpenProto, 1)
			f := FactoryFunc(func(net.Addr) Protocol {
				h := halfOpenProto{newHookProto(nil, echoData), make(chan struct{})}
				built <- h
				return h
			})
			p, err := Listen(tt.network, tt.address, f)
			if err != nil {
				t.Fatal(err)
			}
			c := dial(t, p)
			roundTrip(t, c, []byte("hi"))
			closeWrite(t, c)
			h := recv(t, built)
			waitClosed(t, h.readLost, "ReadConnectionLost")
			read := untilEOF(c)
			ctx, cancel := contextWithTimeout(testTimeout)
			defer cancel()
			if err := p.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if reason, ok := lostAlready(h.hookProto); !ok || !errors.Is(reason, ErrConnectionDone) {
				t.Fatalf("ConnectionLost(%v) called: %v; want ErrConnectionDone before Shutdown returns", reason, ok)
			}
			if got := recv(t, read); len(got) != 0 {
				t.Fatalf("client read: got %q; want EOF", got)
			}
		})
	}
}

func TestShutdownHandler(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			reading := make(chan struct{})
			f := Handler(func(c net.Conn) {
				close(reading)
				b, _ := io.ReadAll(c) // ends when Shutdown closes the read side
				c.Write(append(b, " bye"...))
			})
			p, err := Listen(tt.network, tt.address, f)
			if err != nil {
				t.Fatal(err)
			}
			c := dial(t, p)
			if _, err := c.Write([]byte("hi")); err != nil {
				t.Fatal(err)
			}
			waitClosed(t, reading, "serve to start")
			read := untilEOF(c)
			ctx, cancel := contextWithTimeout(testTimeout)
			defer cancel()
			if err := p.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if got := string(recv(t, read)); got != "hi bye" {
				t.Fatalf("client read until EOF: got %q; want \"hi bye\"", got)
			}
		})
	}
}

// TestShutdownLeavesNoGoroutine does not run in parallel: goleak looks at
// every goroutine of the process.
func TestShutdownLeavesNoGoroutine(t *testing.T) {
	f := newHookFactory(nil, echoData)
	p1, err := Listen("tcp", "127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := Listen("tcp", "127.0.0.1:0", Handler(func(c net.Conn) { io.Copy(c, c) }))
	if err != nil {
		p1.Close()
		t.Fatal(err)
	}
	var reads []<-chan []byte
	for i, p := range []*Port{p1, p1, p1, p2, p2} {
		c := dial(t, p)
		roundTrip(t, c, []byte("hi"))
		if i < 3 {
			h := recv(t, f.built)
			if i == 1 {
				recv(t, h.made).PauseProducing()
			}
		}
		reads = append(reads, untilEOF(c))
	}
	ctx, cancel := contextWithTimeout(testTimeout)
	defer cancel()
	for _, p := range []*Port{p1, p2} {
		if err := p.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	}
	for _, r := range reads {
		recv(t, r)
	}
	goleak.VerifyNone(t)
}

// TestShutdownReachesAPausedProtocol: a connection paused with data in
// hand still answers Shutdown's Drain, rather than holding Shutdown until
// its context ends.
func TestShutdownReachesAPausedProtocol(t *testing.T) {
	released := make(chan struct{})
	close(released)
	p, c, d := drainServed(t, "tcp", "127.0.0.1:0", released)
	recv(t, d.made).PauseProducing()
	if _, err := c.Write([]byte("held while paused")); err != nil {
		t.Fatal(err)
	}
	read := untilEOF(c)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v; want nil: Drain must reach a paused protocol", err)
	}
	if got := string(recv(t, read)); got != "bye" {
		t.Fatalf("client read until EOF: got %q; want \"bye\"", got)
	}
	if reason := recv(t, d.lost); !errors.Is(reason, ErrConnectionDone) {
		t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
	}
}
