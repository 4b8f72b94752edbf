package netport

import (
	"bytes"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// sendKind is one kind of connection the send queue must serve: net's own
// sockets (the direct write and the poller's flusher) and the rest (TLS,
// memory: the blocking flusher).
type sendKind struct {
	name string
	// serve starts a port with cfg and f and returns a dial function.
	serve func(tb testing.TB, cfg *Config, f Factory) (*Port, func() net.Conn)
}

func sendKinds(t *testing.T) []sendKind {
	socket := func(network, address string) func(testing.TB, *Config, Factory) (*Port, func() net.Conn) {
		return func(tb testing.TB, cfg *Config, f Factory) (*Port, func() net.Conn) {
			if network == "unix" {
				address = filepath.Join(tb.TempDir(), "sock")
			}
			p := listen(tb, cfg, network, address, f)
			return p, func() net.Conn { return dial(tb, p) }
		}
	}
	return []sendKind{
		{"tcp", socket("tcp", "127.0.0.1:0")},
		{"unix", socket("unix", "")},
		{"tls", func(tb testing.TB, cfg *Config, f Factory) (*Port, func() net.Conn) {
			server, client := testTLS(tb)
			var c Config
			if cfg != nil {
				c = *cfg
			}
			c.TLS = server
			p := listen(tb, &c, "tcp", "127.0.0.1:0", f)
			return p, func() net.Conn {
				tc := dialTLS(tb, p, client)
				tc.SetDeadline(time.Now().Add(testTimeout))
				return tc
			}
		}},
		{"memory", func(tb testing.TB, cfg *Config, f Factory) (*Port, func() net.Conn) {
			ln := NewMemoryListener()
			p, err := cfg.Serve(ln, f)
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { shutdown(tb, p) })
			return p, func() net.Conn {
				c, err := ln.Dial()
				if err != nil {
					tb.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(testTimeout))
				tb.Cleanup(func() { c.Close() })
				return c
			}
		}},
	}
}

// pattern returns n bytes that tell their position, so that a reordered or
// lost chunk shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// readN reads exactly n bytes from c.
func readN(tb testing.TB, c net.Conn, n int) []byte {
	tb.Helper()
	b := make([]byte, n)
	if m, err := io.ReadFull(c, b); err != nil {
		tb.Fatalf("read %d bytes: got %d: %v", n, m, err)
	}
	return b
}

// TestWriteBufferNeverBlocks: with WriteBuffer set, Write and
// WriteSequence return at once while the peer reads nothing, and the
// peer then reads every byte in order.
func TestWriteBufferNeverBlocks(t *testing.T) {
	const total = 8 << 20
	for _, k := range sendKinds(t) {
		t.Run(k.name, func(t *testing.T) {
			want := pattern(total)
			written := make(chan error, 1)
			f := newHookFactory(func(tr Transport) {
				const chunk = 64 << 10
				for off := 0; off < total/2; off += chunk {
					if _, err := tr.Write(want[off : off+chunk]); err != nil {
						written <- err
						return
					}
				}
				for off := total / 2; off < total; off += 2 * chunk {
					if err := tr.WriteSequence([][]byte{want[off : off+chunk], want[off+chunk : off+2*chunk]}); err != nil {
						written <- err
						return
					}
				}
				written <- nil
			}, nil)
			_, dialer := k.serve(t, &Config{WriteBuffer: 64 << 10, MaxWriteBuffer: 2 * total}, f)
			c := dialer()
			c.Write([]byte{0}) // TLS: the handshake completes on the client's first use
			if err := recv(t, written); err != nil {
				t.Fatalf("writing with the peer not reading: %v", err)
			}
			if got := readN(t, c, total); !bytes.Equal(got, want) {
				t.Fatalf("peer read %d bytes that differ from what was written", len(got))
			}
		})
	}
}

// countingProducer records the calls it gets.
type countingProducer struct {
	mu                    sync.Mutex
	pauses, resumes, stop int
	paused                bool
	events                chan string
}

func newCountingProducer() *countingProducer {
	return &countingProducer{events: make(chan string, 1024)}
}

func (p *countingProducer) PauseProducing() {
	p.mu.Lock()
	p.pauses++
	p.paused = true
	p.mu.Unlock()
	p.events <- "pause"
}

func (p *countingProducer) ResumeProducing() {
	p.mu.Lock()
	p.resumes++
	p.paused = false
	p.mu.Unlock()
	p.events <- "resume"
}

func (p *countingProducer) StopProducing() {
	p.mu.Lock()
	p.stop++
	p.mu.Unlock()
	p.events <- "stop"
}

func (p *countingProducer) stops() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stop
}

// expectEvent waits for the producer's next call and checks it.
func expectEvent(tb testing.TB, p *countingProducer, want string) {
	tb.Helper()
	if got := recv(tb, p.events); got != want {
		tb.Fatalf("producer got %s; want %s", got, want)
	}
}

// TestStreamingProducerPausedAndResumed: a streaming producer is paused
// once the queue passes WriteBuffer and resumed once it is empty.
func TestStreamingProducerPausedAndResumed(t *testing.T) {
	const total = 8 << 20
	for _, k := range sendKinds(t) {
		t.Run(k.name, func(t *testing.T) {
			prod := newCountingProducer()
			f := newHookFactory(func(tr Transport) {
				if err := tr.RegisterProducer(prod, true); err != nil {
					t.Errorf("RegisterProducer: %v", err)
				}
				tr.Write(pattern(total))
			}, nil)
			_, dialer := k.serve(t, &Config{WriteBuffer: 64 << 10, MaxWriteBuffer: 2 * total}, f)
			c := dialer()
			c.Write([]byte{0})
			expectEvent(t, prod, "pause")
			readN(t, c, total)
			expectEvent(t, prod, "resume")
			c.Close()
			expectEvent(t, prod, "stop")
		})
	}
}

// TestBlockingWritePausesProducer: with blocking writes a streaming
// producer is paused while a Write waits for the peer, and resumed when
// it returns.
func TestBlockingWritePausesProducer(t *testing.T) {
	const total = 16 << 20
	for _, k := range sendKinds(t) {
		t.Run(k.name, func(t *testing.T) {
			prod := newCountingProducer()
			returned := make(chan struct{})
			f := newHookFactory(func(tr Transport) {
				tr.RegisterProducer(prod, true)
				go func() {
					tr.Write(pattern(total))
					close(returned)
				}()
			}, nil)
			_, dialer := k.serve(t, nil, f)
			c := dialer()
			c.Write([]byte{0})
			expectEvent(t, prod, "pause")
			readN(t, c, total)
			waitClosed(t, returned, "the blocked Write to return")
			expectEvent(t, prod, "resume")
		})
	}
}

// pullSender is a pull producer writing total bytes in chunks, one chunk
// each time it is asked, then unregistering and closing. Being
// unregistered, it gets no StopProducing.
type pullSender struct {
	tr          Transport
	data        []byte
	off, chunk  int
	asked       int
	finished    chan struct{} // closed once all is written
	stopped     chan struct{}
	stoppedOnce sync.Once
}

func (p *pullSender) ResumeProducing() {
	p.asked++
	if p.off == len(p.data) {
		return
	}
	end := min(p.off+p.chunk, len(p.data))
	b := p.data[p.off:end]
	p.off = end
	p.tr.Write(b)
	if p.off == len(p.data) {
		p.tr.UnregisterProducer()
		p.tr.LoseConnection()
		close(p.finished)
	}
}
func (p *pullSender) PauseProducing() {}
func (p *pullSender) StopProducing()  { p.stoppedOnce.Do(func() { close(p.stopped) }) }

// TestPullProducer: a pull producer is asked at registration and after
// each write has gone out, in both write models, and LoseConnection after
// UnregisterProducer delivers everything it wrote.
func TestPullProducer(t *testing.T) {
	const total = 4 << 20
	for _, wb := range []int{0, 64 << 10} {
		for _, k := range sendKinds(t) {
			t.Run(k.name+"/WriteBuffer="+strconv.Itoa(wb), func(t *testing.T) {
				want := pattern(total)
				senders := make(chan *pullSender, 1)
				f := newHookFactory(func(tr Transport) {
					p := &pullSender{tr: tr, data: want, chunk: 100 << 10, finished: make(chan struct{}), stopped: make(chan struct{})}
					senders <- p
					go tr.RegisterProducer(p, false) // blocking writes: it runs the whole transfer
				}, nil)
				_, dialer := k.serve(t, &Config{WriteBuffer: wb}, f)
				c := dialer()
				c.Write([]byte{0})
				p := recv(t, senders)
				if got := readAll(t, c); !bytes.Equal(got, want) {
					t.Fatalf("peer read %d bytes; want the %d written, in order", len(got), total)
				}
				waitClosed(t, p.finished, "the producer to finish")
				select {
				case <-p.stopped:
					t.Fatal("StopProducing called on a producer that had unregistered")
				default:
				}
				if want := (total + p.chunk - 1) / p.chunk; p.asked < want {
					t.Fatalf("ResumeProducing called %d times; want at least %d", p.asked, want)
				}
			})
		}
	}
}
