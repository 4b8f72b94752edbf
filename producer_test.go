package netport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoseConnectionSendsQueueFirst: LoseConnection with bytes queued
// sends them all before the FIN.
func TestLoseConnectionSendsQueueFirst(t *testing.T) {
	const total = 4 << 20
	for _, k := range sendKinds(t) {
		t.Run(k.name, func(t *testing.T) {
			want := pattern(total)
			f := newHookFactory(func(tr Transport) {
				tr.Write(want)
				tr.LoseConnection()
			}, nil)
			_, dialer := k.serve(t, &Config{WriteBuffer: 16 << 10, MaxWriteBuffer: total}, f)
			c := dialer()
			c.Write([]byte{0})
			h := recv(t, f.built)
			if got := readAll(t, c); !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes before EOF; want the %d queued", len(got), total)
			}
			if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionDone) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
			}
		})
	}
}

// TestLoseConnectionWaitsForProducer: with a producer registered,
// LoseConnection waits for UnregisterProducer (Twisted's rule): what is
// written meanwhile still reaches the peer, and the FIN comes after it.
func TestLoseConnectionWaitsForProducer(t *testing.T) {
	for _, wb := range []int{0, 16 << 10} {
		t.Run(map[int]string{0: "blocking", 16 << 10: "queued"}[wb], func(t *testing.T) {
			f := newHookFactory(nil, nil)
			p := listen(t, &Config{WriteBuffer: wb}, "tcp", "127.0.0.1:0", f)
			c := dial(t, p)
			h := recv(t, f.built)
			tr := recv(t, h.made)
			prod := newCountingProducer()
			if err := tr.RegisterProducer(prod, true); err != nil {
				t.Fatal(err)
			}
			tr.Write([]byte("before"))
			if err := tr.LoseConnection(); err != nil {
				t.Fatal(err)
			}
			if _, err := tr.Write([]byte(" after")); err != nil {
				t.Fatalf("Write after LoseConnection, producer still registered: %v; want it sent", err)
			}
			if got := readN(t, c, len("before after")); string(got) != "before after" {
				t.Fatalf("read %q; want %q", got, "before after")
			}
			tr.UnregisterProducer()
			if got := readAll(t, c); len(got) != 0 {
				t.Fatalf("read %q more before EOF; want none", got)
			}
			if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionDone) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
			}
			if n := prod.stops(); n != 0 {
				t.Fatalf("StopProducing called %d times on an unregistered producer; want 0", n)
			}
		})
	}
}

// TestAbortConnectionDropsQueue: AbortConnection discards what is queued;
// the peer sees a reset before all of it.
func TestAbortConnectionDropsQueue(t *testing.T) {
	const total = 16 << 20
	f := newHookFactory(func(tr Transport) {
		tr.Write(pattern(total))
		tr.AbortConnection()
	}, nil)
	p := listen(t, &Config{WriteBuffer: 16 << 10, MaxWriteBuffer: total}, "tcp", "127.0.0.1:0", f)
	c := dial(t, p)
	h := recv(t, f.built)
	if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionLost) {
		t.Fatalf("ConnectionLost(%v); want ErrConnectionLost", reason)
	}
	n, err := io.Copy(io.Discard, c)
	if err == nil || n >= total {
		t.Fatalf("peer read %d bytes, then %v; want fewer than %d and a reset", n, err, total)
	}
}

// TestStopProducingOnce: StopProducing is called exactly once, and before
// ConnectionLost, whatever ends the connection.
func TestStopProducingOnce(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		end  func(t *testing.T, tr Transport, c net.Conn, p *Port)
		want error
	}{
		{"peer closes", Config{}, func(t *testing.T, tr Transport, c net.Conn, p *Port) { c.Close() }, ErrConnectionDone},
		{"peer resets", Config{}, func(t *testing.T, tr Transport, c net.Conn, p *Port) {
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}, ErrConnectionLost},
		{"AbortConnection", Config{}, func(t *testing.T, tr Transport, c net.Conn, p *Port) { tr.AbortConnection() }, ErrConnectionLost},
		{"panic in DataReceived", Config{}, func(t *testing.T, tr Transport, c net.Conn, p *Port) {
			c.Write([]byte("panic"))
		}, ErrConnectionLost},
		{"IdleTimeout", Config{IdleTimeout: 50 * time.Millisecond}, func(t *testing.T, tr Transport, c net.Conn, p *Port) {}, ErrConnectionLost},
		{"MaxWriteBuffer", Config{WriteBuffer: 1024, MaxWriteBuffer: 4096}, func(t *testing.T, tr Transport, c net.Conn, p *Port) {
			tr.Write(make([]byte, 64<<20))
		}, ErrWriteBufferFull},
		{"Shutdown", Config{}, func(t *testing.T, tr Transport, c net.Conn, p *Port) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			go p.Shutdown(ctx)
		}, ErrConnectionLost},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			f := newHookFactory(nil, func(tr Transport, b []byte) {
				if string(b) == "panic" {
					panic("test panic")
				}
			})
			logger, _ := testLogger()
			cfg := tt.cfg
			cfg.Logger = logger
			p := listen(t, &cfg, "tcp", "127.0.0.1:0", f)
			c := dial(t, p)
			h := recv(t, f.built)
			tr := recv(t, h.made)
			prod := newCountingProducer()
			if err := tr.RegisterProducer(prod, true); err != nil {
				t.Fatal(err)
			}
			tt.end(t, tr, c, p)
			reason := recv(t, h.lost)
			if !errors.Is(reason, tt.want) {
				t.Fatalf("ConnectionLost(%v); want %v", reason, tt.want)
			}
			if n := prod.stops(); n != 1 {
				t.Fatalf("StopProducing called %d times by ConnectionLost; want 1", n)
			}
			waitClosed(t, tr.(*Conn).Done(), "the connection's end")
			if n := prod.stops(); n != 1 {
				t.Fatalf("StopProducing called %d times; want 1", n)
			}
		})
	}
}

// TestRegisterProducerErrors: one producer at a time, and none on a
// connection that has ended.
func TestRegisterProducerErrors(t *testing.T) {
	f := newHookFactory(nil, nil)
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	c := dial(t, p)
	h := recv(t, f.built)
	tr := recv(t, h.made)
	first, second := newCountingProducer(), newCountingProducer()
	if err := tr.RegisterProducer(first, true); err != nil {
		t.Fatal(err)
	}
	if err := tr.RegisterProducer(second, false); !errors.Is(err, ErrProducerRegistered) {
		t.Fatalf("second RegisterProducer: %v; want ErrProducerRegistered", err)
	}
	if n := second.stops(); n != 0 {
		t.Fatalf("a refused producer got %d StopProducing; want 0", n)
	}
	tr.UnregisterProducer()
	if err := tr.RegisterProducer(second, true); err != nil {
		t.Fatalf("RegisterProducer after UnregisterProducer: %v", err)
	}
	c.Close()
	recv(t, h.lost)
	late := newCountingProducer()
	err := tr.RegisterProducer(late, true)
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("RegisterProducer on a lost connection: %v; want net.ErrClosed", err)
	}
	if n := late.stops(); n != 1 {
		t.Fatalf("StopProducing on a producer registered too late: %d calls; want 1", n)
	}
	if first.stops() != 0 || second.stops() != 1 {
		t.Fatalf("StopProducing: %d on the unregistered one, %d on the registered one; want 0 and 1", first.stops(), second.stops())
	}
}

// TestFanOut: one protocol broadcasting to 20 clients, one of which never
// reads. The other 19 receive every message while the stuck one is ended,
// by MaxWriteBuffer or by WriteTimeout.
func TestFanOut(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want error
	}{
		{"MaxWriteBuffer", Config{WriteBuffer: 16 << 10, MaxWriteBuffer: 256 << 10}, ErrWriteBufferFull},
		{"WriteTimeout", Config{WriteBuffer: 16 << 10, MaxWriteBuffer: 1 << 30, WriteTimeout: 100 * time.Millisecond}, os.ErrDeadlineExceeded},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			const clients, size = 20, 16 << 10
			f := newHookFactory(func(tr Transport) {
				// Small kernel buffers, so that the stuck client's
				// queue grows after a few messages.
				tr.Conn().(interface{ NetConn() net.Conn }).NetConn().(*net.TCPConn).SetWriteBuffer(4096)
			}, nil)
			p := listen(t, &tt.cfg, "tcp", "127.0.0.1:0", f)
			conns := make([]net.Conn, clients)
			protos := make([]*hookProto, clients)
			trs := make([]Transport, clients)
			for i := range conns {
				conns[i] = dial(t, p)
				protos[i] = recv(t, f.built)
				trs[i] = recv(t, protos[i].made)
			}
			stuck := conns[0]
			stuck.(*net.TCPConn).SetReadBuffer(4096)
			deadline := time.Now().Add(testTimeout)
			var reason error
			for i := 0; reason == nil; i++ {
				if time.Now().After(deadline) {
					t.Fatalf("the stuck client still served after %d messages", i)
				}
				msg := bytes.Repeat([]byte{byte(i)}, size)
				for _, tr := range trs {
					tr.Write(msg) // never blocks; the stuck one's fails once it is ended
				}
				for j, c := range conns[1:] {
					if got := readN(t, c, size); !bytes.Equal(got, msg) {
						t.Fatalf("client %d, message %d: got other bytes", j+1, i)
					}
				}
				select {
				case reason = <-protos[0].lost:
				default:
				}
			}
			if !errors.Is(reason, ErrConnectionLost) || !errors.Is(reason, tt.want) {
				t.Fatalf("stuck client's ConnectionLost(%v); want ErrConnectionLost wrapping %v", reason, tt.want)
			}
			for i, h := range protos[1:] {
				select {
				case err := <-h.lost:
					t.Fatalf("client %d lost too: %v", i+1, err)
				default:
				}
			}
		})
	}
}

// TestShutdownSendsQueue: Shutdown lets a connection send its queue before
// it closes, then returns nil.
func TestShutdownSendsQueue(t *testing.T) {
	const total = 4 << 20
	for _, k := range sendKinds(t) {
		t.Run(k.name, func(t *testing.T) {
			queued := make(chan struct{})
			f := newHookFactory(func(tr Transport) {
				tr.Write(pattern(total))
				close(queued)
			}, nil)
			p, dialer := k.serve(t, &Config{WriteBuffer: 16 << 10, MaxWriteBuffer: total}, f)
			c := dialer()
			c.Write([]byte{0})
			waitClosed(t, queued, "the queued write")
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			done := shutdownAsync(ctx, p)
			if got := readAll(t, c); !bytes.Equal(got, pattern(total)) {
				t.Fatalf("read %d bytes before EOF; want the %d queued", len(got), total)
			}
			if err := recv(t, done); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
		})
	}
}

// TestIdleTimeoutWithQueue: IdleTimeout still ends a connection that reads
// nothing, queue or not, and the queue goes with it.
func TestIdleTimeoutWithQueue(t *testing.T) {
	f := newHookFactory(func(tr Transport) { tr.Write(pattern(8 << 20)) }, nil)
	p := listen(t, &Config{WriteBuffer: 16 << 10, MaxWriteBuffer: 16 << 20, IdleTimeout: 100 * time.Millisecond}, "tcp", "127.0.0.1:0", f)
	dial(t, p)
	h := recv(t, f.built)
	if reason := recv(t, h.lost); !errors.Is(reason, os.ErrDeadlineExceeded) {
		t.Fatalf("ConnectionLost(%v); want the idle deadline", reason)
	}
}

// TestPeerHalfCloseSendsQueue: when the peer half-closes after its
// request, the reply already queued is still sent in full before the
// connection closes.
func TestPeerHalfCloseSendsQueue(t *testing.T) {
	const total = 4 << 20
	f := newHookFactory(nil, func(tr Transport, b []byte) { tr.Write(pattern(total)) })
	p := listen(t, &Config{WriteBuffer: 16 << 10, MaxWriteBuffer: total}, "tcp", "127.0.0.1:0", f)
	c := dial(t, p)
	c.Write([]byte("request"))
	closeWrite(t, c)
	if got := readAll(t, c); !bytes.Equal(got, pattern(total)) {
		t.Fatalf("read %d bytes before EOF; want the %d queued", len(got), total)
	}
}

// TestLoseWriteConnectionSendsQueueFirst: the FIN of a half-close comes
// after what is queued, and the connection still reads.
func TestLoseWriteConnectionSendsQueueFirst(t *testing.T) {
	const total = 4 << 20
	want := pattern(total)
	f := newHookFactory(func(tr Transport) {
		tr.Write(want)
		if err := tr.LoseWriteConnection(); err != nil {
			t.Errorf("LoseWriteConnection: %v", err)
		}
	}, nil)
	p := listen(t, &Config{WriteBuffer: 16 << 10, MaxWriteBuffer: total}, "tcp", "127.0.0.1:0", f)
	c := dial(t, p)
	h := recv(t, f.built)
	if got := readAll(t, c); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes before EOF; want the %d queued", len(got), total)
	}
	c.Write([]byte("still read"))
	if got := recv(t, h.data); string(got) != "still read" {
		t.Fatalf("DataReceived(%q) after the half-close; want %q", got, "still read")
	}
}

// TestDefaultMaxWriteBuffer: MaxWriteBuffer 0 means
// DefaultMaxWriteBufferFactor times WriteBuffer. Over memory connections
// every Write is queued, so the limit applies to the whole Write.
func TestDefaultMaxWriteBuffer(t *testing.T) {
	const wb = 1024
	limit := DefaultMaxWriteBufferFactor * wb
	for _, tt := range []struct {
		size int
		want error
	}{{limit, nil}, {limit + 1, ErrWriteBufferFull}} {
		ln := NewMemoryListener()
		f := newHookFactory(nil, nil)
		p, err := (&Config{WriteBuffer: wb}).Serve(ln, f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ln.Dial()
		if err != nil {
			t.Fatal(err)
		}
		tr := recv(t, recv(t, f.built).made)
		if _, err := tr.Write(make([]byte, tt.size)); !errors.Is(err, tt.want) {
			t.Errorf("Write of %d bytes with WriteBuffer %d: %v; want %v", tt.size, wb, err, tt.want)
		}
		c.Close()
		shutdown(t, p)
	}
}

// queuedDrainer queues a large reply when connected and, asked to drain,
// queues a last word behind it and closes.
type queuedDrainer struct {
	*hookProto
	reply []byte
}

func (d queuedDrainer) ConnectionMade(t Transport) {
	d.hookProto.ConnectionMade(t)
	t.Write(d.reply)
}

func (d queuedDrainer) Drain() {
	d.t.Write([]byte("bye"))
	d.t.LoseConnection()
}

// TestShutdownDrainWithQueue: Shutdown asks a protocol with a queue to
// Drain; what it writes then goes out after the queue, and Shutdown
// returns once all of it has.
func TestShutdownDrainWithQueue(t *testing.T) {
	const total = 4 << 20
	reply := pattern(total)
	f := FactoryFunc(func(net.Addr) Protocol { return queuedDrainer{newHookProto(nil, nil), reply} })
	p := listen(t, &Config{WriteBuffer: 16 << 10, MaxWriteBuffer: total}, "tcp", "127.0.0.1:0", f)
	c := dial(t, p)
	first := readN(t, c, 1) // the reply has begun: the connection is served
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	done := shutdownAsync(ctx, p)
	want := append(bytes.Clone(reply), "bye"...)
	if got := append(first, readAll(t, c)...); !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes before EOF; want the %d queued and %q", len(got), total, "bye")
	}
	if err := recv(t, done); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// overlapProducer notices calls that overlap.
type overlapProducer struct {
	in, overlaps, pauses atomic.Int32
	paused               atomic.Bool
}

func (p *overlapProducer) enter() {
	if p.in.Add(1) != 1 {
		p.overlaps.Add(1)
	}
	runtime.Gosched() // widen the window an overlap would need
}
func (p *overlapProducer) PauseProducing() {
	p.enter()
	p.pauses.Add(1)
	p.paused.Store(true)
	p.in.Add(-1)
}
func (p *overlapProducer) ResumeProducing() { p.enter(); p.paused.Store(false); p.in.Add(-1) }
func (p *overlapProducer) StopProducing()   { p.enter(); p.in.Add(-1) }

// TestProducerCallsNeverOverlap: writers on several goroutines and the
// flusher all decide pauses and resumes; the producer's calls still come
// one at a time, and the last one leaves it resumed once all is sent.
func TestProducerCallsNeverOverlap(t *testing.T) {
	const writers, writes, size = 4, 4000, 1024
	f := newHookFactory(nil, nil)
	p := listen(t, &Config{WriteBuffer: 4 << 10, MaxWriteBuffer: 64 << 20}, "tcp", "127.0.0.1:0", f)
	c := dial(t, p)
	tr := recv(t, recv(t, f.built).made)
	prod := new(overlapProducer)
	tr.RegisterProducer(prod, true)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			msg := make([]byte, size)
			for range writes {
				tr.Write(msg)
			}
		})
	}
	wg.Wait() // Write never blocks: the queue holds what the kernel did not take
	readN(t, c, writers*writes*size)
	// The flusher's last resume may still be on its way: a write that the
	// socket takes whole asks for nothing, so wait for the queue to settle.
	waitClosed(t, settled(tr.(*Conn)), "the queue to drain")
	if n := prod.overlaps.Load(); n != 0 {
		t.Fatalf("%d producer calls overlapped another; want none", n)
	}
	if prod.pauses.Load() == 0 {
		t.Fatal("the producer was never paused; want pauses (WriteBuffer 4 KiB)")
	}
	if prod.paused.Load() {
		t.Fatal("the producer is left paused with the queue empty; want resumed")
	}
}

// settled returns a channel closed once c has no queue and no call to
// its producer under way.
func settled(c *Conn) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		deadline := time.Now().Add(testTimeout)
		for time.Now().Before(deadline) {
			s := c.snd.Load()
			s.mu.Lock()
			idle := !s.flushing && !s.calling
			s.mu.Unlock()
			if idle {
				return
			}
			runtime.Gosched()
		}
	}()
	return ch
}
