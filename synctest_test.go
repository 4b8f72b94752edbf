package netport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

// realTimeLimit is how much real time a synctest test may take while hours
// pass in its bubble: far more than it needs, so a slow machine does not
// fail it, and far less than the fake durations it covers.
const realTimeLimit = 5 * time.Second

// servedInBubble serves f with cfg on a MemoryListener made in the
// current bubble, dials it, and returns the client end and the protocol
// the factory built. The port is shut down, and the client closed, at
// cleanup, which runs inside the bubble: it ends with no goroutine left.
func servedInBubble(t *testing.T, cfg *Config, f *hookFactory) (net.Conn, *hookProto) {
	t.Helper()
	ln := NewMemoryListener()
	p, err := cfg.Serve(ln, f)
	if err != nil {
		t.Fatalf("Serve: got %v; want nil", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: got %v; want nil", err)
		}
		ln.Close()
	})
	c, err := ln.Dial()
	if err != nil {
		t.Fatalf("Dial: got %v; want nil", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, recvWithin(t, f.built, time.Minute, "BuildProtocol")
}

// inRealTime runs f in a synctest bubble and fails the test when it takes
// more than realTimeLimit of real time.
func inRealTime(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	start := time.Now() // outside the bubble: the real clock
	synctest.Test(t, f)
	if got := time.Since(start); got > realTimeLimit {
		t.Fatalf("real time elapsed: got %v; want at most %v", got, realTimeLimit)
	}
}

// TestSynctestIdleTimeout shows that a Port serving a MemoryListener runs
// inside a synctest bubble: an hour's IdleTimeout passes in fake time.
func TestSynctestIdleTimeout(t *testing.T) {
	inRealTime(t, func(t *testing.T) {
		f := newHookFactory(nil, echoData)
		c, h := servedInBubble(t, &Config{IdleTimeout: time.Hour}, f)
		msg := []byte("one message, then silence")
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("Write: got %v; want nil", err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo: got %q, %v; want %q, nil", got, err, msg)
		}
		// The bubble's clock stands still until every goroutine waits, so
		// it reads the same as when the server set its idle deadline.
		start := time.Now()
		reason := recvWithin(t, h.lost, 2*time.Hour, "ConnectionLost")
		if !errors.Is(reason, ErrConnectionLost) || !errors.Is(reason, os.ErrDeadlineExceeded) {
			t.Fatalf("ConnectionLost(%v); want ErrConnectionLost wrapping os.ErrDeadlineExceeded", reason)
		}
		if got := time.Since(start); got != time.Hour {
			t.Fatalf("fake time until ConnectionLost: got %v; want 1h", got)
		}
		// The server closed its end: the client reads EOF.
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("client Read after the timeout: got %d, %v; want 0, EOF", n, err)
		}
	})
}

// TestSynctestWriteTimeout fills the 64 KiB a memory connection buffers
// towards a peer that never reads: the next Write blocks, then fails after
// WriteTimeout of fake time and ends the connection.
func TestSynctestWriteTimeout(t *testing.T) {
	inRealTime(t, func(t *testing.T) {
		const timeout = 10 * time.Minute
		c, h := servedInBubble(t, &Config{WriteTimeout: timeout}, newHookFactory(nil, nil))
		tr := recvWithin(t, h.made, time.Minute, "ConnectionMade")

		start := time.Now()
		full := bytes.Repeat([]byte{'x'}, memoryBufferSize)
		if n, err := tr.Write(full); n != len(full) || err != nil {
			t.Fatalf("Write of the buffer's size: got %d, %v; want %d, nil", n, err, len(full))
		}
		if got := time.Since(start); got != 0 {
			t.Fatalf("Write into an empty buffer took %v of fake time; want 0", got)
		}

		wrote := make(chan error, 1)
		go func() {
			_, err := tr.Write([]byte("one byte too many"))
			wrote <- err
		}()
		synctest.Wait()
		select {
		case err := <-wrote:
			t.Fatalf("Write to a full buffer: returned %v; want it blocked", err)
		default:
		}
		err := recvWithin(t, wrote, 2*timeout, "Write to a full buffer")
		if got := time.Since(start); got != timeout {
			t.Fatalf("fake time until the Write failed: got %v; want %v", got, timeout)
		}
		var opErr *net.OpError
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &opErr) {
			t.Fatalf("Write to a full buffer: got %v; want a *net.OpError wrapping os.ErrDeadlineExceeded", err)
		}
		reason := recvWithin(t, h.lost, time.Minute, "ConnectionLost")
		if !errors.Is(reason, ErrConnectionLost) || !errors.Is(reason, os.ErrDeadlineExceeded) {
			t.Fatalf("ConnectionLost(%v); want ErrConnectionLost wrapping os.ErrDeadlineExceeded", reason)
		}
		if _, err := tr.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write after the timeout: got %v; want net.ErrClosed", err)
		}
		// What fitted in the buffer still reaches the peer, then EOF.
		got, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(got, full) {
			t.Fatalf("client reads: got %d bytes, %v; want the %d buffered, then EOF", len(got), err, len(full))
		}
	})
}

// TestSynctestMemoryReactor runs code written against the Reactor
// interface in a bubble: the reactor's Config applies (an IdleTimeout of a
// day passes at once), and datagram ports work there too.
func TestSynctestMemoryReactor(t *testing.T) {
	inRealTime(t, func(t *testing.T) {
		r := &MemoryReactor{Config: &Config{IdleTimeout: 24 * time.Hour}}
		p, err := r.Listen("tcp", "127.0.0.1:7007", newHookFactory(nil, echoData))
		if err != nil {
			t.Fatalf("Listen: got %v; want nil", err)
		}
		t.Cleanup(func() { p.Shutdown(context.Background()) })
		d, err := r.ListenPacket("udp", "127.0.0.1:7007", &reactorDgEcho{}, 0)
		if err != nil {
			t.Fatalf("ListenPacket: got %v; want nil", err)
		}
		t.Cleanup(func() { d.Close() })
		peer := r.DatagramCalls()[0].Peer
		t.Cleanup(func() { peer.Close() })

		c, err := r.Dial("tcp", "127.0.0.1:7007")
		if err != nil {
			t.Fatalf("Dial: got %v; want nil", err)
		}
		t.Cleanup(func() { c.Close() })
		start := time.Now()
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatalf("Write: got %v; want nil", err)
		}
		got, err := io.ReadAll(c) // the echo, then EOF when the idle day is over
		if string(got) != "ping" || err != nil {
			t.Fatalf("client reads: got %q, %v; want \"ping\", then EOF", got, err)
		}
		if elapsed := time.Since(start); elapsed != 24*time.Hour {
			t.Fatalf("fake time until the server closed: got %v; want 24h", elapsed)
		}

		if _, err := peer.WriteTo([]byte("datagram"), d.Addr()); err != nil {
			t.Fatalf("Peer.WriteTo: got %v; want nil", err)
		}
		b := make([]byte, 16)
		n, _, err := peer.ReadFrom(b)
		if string(b[:n]) != "datagram" || err != nil {
			t.Fatalf("Peer.ReadFrom: got %q, %v; want \"datagram\", nil", b[:n], err)
		}
	})
}
