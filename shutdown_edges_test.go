package netport

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

// replyHandler reads until EOF, then writes "bye" (when the read ended
// cleanly) and reports the read's error.
func replyHandler(errc chan<- error, read chan<- struct{}) func(net.Conn) {
	return func(c net.Conn) {
		b := make([]byte, 2)
		if _, err := io.ReadFull(c, b); err != nil {
			errc <- err
			return
		}
		if read != nil {
			read <- struct{}{}
		}
		_, err := io.ReadAll(c)
		if err == nil {
			_, err = c.Write([]byte("bye"))
		}
		errc <- err
	}
}

// TestShutdownHandlerMemory: over a MemoryListener, Shutdown closes a
// Handler's read side only, so the handler sees EOF and its reply reaches
// the client, as over TCP.
func TestShutdownHandlerMemory(t *testing.T) {
	errc, read := make(chan error, 1), make(chan struct{}, 1)
	ml := NewMemoryListener()
	p, err := Serve(ml, Handler(replyHandler(errc, read)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ml.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	c.Write([]byte("hi"))
	recv(t, read)
	shutdown(t, p)
	if err := recv(t, errc); err != nil {
		t.Fatalf("handler: %v; want EOF and its reply written", err)
	}
	if got, err := io.ReadAll(c); string(got) != "bye" || err != nil {
		t.Fatalf("client read %q, %v; want \"bye\", nil", got, err)
	}
}

// TestShutdownBeforeHandlerStarts: a Shutdown that comes while the
// connection is still being set up (BuildProtocol has not returned) still
// lets the handler read EOF, not the deadline that woke the connection,
// and write its reply.
func TestShutdownBeforeHandlerStarts(t *testing.T) {
	errc := make(chan error, 1)
	building, release := make(chan struct{}), make(chan struct{})
	h := Handler(replyHandler(errc, nil))
	f := FactoryFunc(func(remote net.Addr) Protocol {
		close(building)
		<-release
		return h.BuildProtocol(remote)
	})
	p, err := Listen("tcp", "127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	client := dial(t, p)
	client.Write([]byte("hi"))
	waitClosed(t, building, "BuildProtocol")
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	shut := shutdownAsync(ctx, p)
	waitDrainRequested(t, p)
	close(release)
	if err := recv(t, errc); err != nil {
		t.Fatalf("handler: %v; want EOF and its reply written", err)
	}
	if got := readAll(t, client); string(got) != "bye" {
		t.Fatalf("client read %q; want \"bye\"", got)
	}
	if err := recv(t, shut); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// waitDrainRequested waits until Shutdown has asked every connection of
// p to end, failing tb after testTimeout.
func waitDrainRequested(tb testing.TB, p *Port) {
	tb.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		p.mu.Lock()
		all := p.conns.len() > 0
		for c := range p.conns.all() {
			c.mu.Lock()
			all = all && c.drainReq
			c.mu.Unlock()
		}
		p.mu.Unlock()
		if all {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("Shutdown's drain not seen after %v", testTimeout)
		}
		runtime.Gosched()
	}
}

// blockingDrain blocks in Drain, without I/O, until released.
type blockingDrain struct {
	*hookProto
	draining chan struct{}
	release  chan struct{}
}

func (b blockingDrain) Drain() {
	close(b.draining)
	<-b.release
}

// TestShutdownReturnsWhenContextEnds: a callback that blocks without I/O
// does not keep Shutdown past its context: it returns ctx.Err() at once,
// and the connection, aborted, ends when the callback returns.
func TestShutdownReturnsWhenContextEnds(t *testing.T) {
	checkLeaks(t)
	built := make(chan blockingDrain, 1)
	f := FactoryFunc(func(net.Addr) Protocol {
		b := blockingDrain{newHookProto(nil, echoData), make(chan struct{}), make(chan struct{})}
		built <- b
		return b
	})
	p, err := Listen("tcp", "127.0.0.1:0", f)
	if err != nil {
		t.Fatal(err)
	}
	client := dial(t, p)
	roundTrip(t, client, []byte("hi"))
	b := recv(t, built)
	ctx, cancel := context.WithCancel(context.Background())
	shut := shutdownAsync(ctx, p)
	waitClosed(t, b.draining, "Drain")
	cancel()
	// The Drain callback is still blocked: Shutdown must not wait for it.
	if err := recv(t, shut); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v; want context.Canceled", err)
	}
	close(b.release)
	reason := recv(t, b.lost)
	if !errors.Is(reason, ErrConnectionAborted) || !errors.Is(reason, ErrConnectionLost) || !errors.Is(reason, context.Canceled) {
		t.Fatalf("ConnectionLost(%v); want ErrConnectionAborted and ErrConnectionLost wrapping context.Canceled", reason)
	}
}
