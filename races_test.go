package netport

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// plainEcho writes back what it receives.
type plainEcho struct{ t Transport }

func (e *plainEcho) ConnectionMade(t Transport) { e.t = t }
func (e *plainEcho) DataReceived(b []byte)      { e.t.Write(b) }
func (e *plainEcho) ConnectionLost(error)       {}

var plainEchoFactory = FactoryFunc(func(net.Addr) Protocol { return new(plainEcho) })

// raceBudget bounds a race loop: a loop still running at the deadline
// fails the test instead of stalling the run.
const raceBudget = 30 * time.Second

// raceLoop runs round n times (a fifth as many with -short), failing tb
// if the rounds take longer than raceBudget.
func raceLoop(tb testing.TB, n int, round func(i int)) {
	tb.Helper()
	if testing.Short() {
		n /= 5
	}
	start := time.Now()
	deadline := start.Add(raceBudget)
	for i := range n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d rounds done within %v; want all", i, n, raceBudget)
		}
		round(i)
		if tb.Failed() {
			tb.FailNow()
		}
	}
	tb.Logf("%d rounds in %v", n, time.Since(start).Round(time.Millisecond))
}

// raceTarget opens one kind of port for the race loops: open returns the
// port and a function dialing it.
type raceTarget struct {
	name string
	open func(cfg *Config, f Factory, i int) (*Port, func() (net.Conn, error), error)
}

// listen is open, failing tb on error.
func (r raceTarget) listen(tb testing.TB, cfg *Config, f Factory, i int) (*Port, func() (net.Conn, error)) {
	tb.Helper()
	p, dial, err := r.open(cfg, f, i)
	if err != nil {
		tb.Fatalf("%s: %v", r.name, err)
	}
	return p, dial
}

func raceTargets(t *testing.T) []raceTarget {
	dir := t.TempDir()
	fresh := func(network string, address func(int) string) func(*Config, Factory, int) (*Port, func() (net.Conn, error), error) {
		return func(cfg *Config, f Factory, i int) (*Port, func() (net.Conn, error), error) {
			p, err := cfg.Listen(network, address(i), f)
			if err != nil {
				return nil, nil, err
			}
			addr := p.Addr()
			return p, func() (net.Conn, error) { return net.DialTimeout(addr.Network(), addr.String(), testTimeout) }, nil
		}
	}
	return []raceTarget{
		{"tcp", fresh("tcp", func(int) string { return "127.0.0.1:0" })},
		{"unix", fresh("unix", func(i int) string { return filepath.Join(dir, fmt.Sprint(i)) })},
		{"memory", func(cfg *Config, f Factory, _ int) (*Port, func() (net.Conn, error), error) {
			l := NewMemoryListener()
			p, err := cfg.Serve(l, f)
			if err != nil {
				return nil, nil, err
			}
			return p, l.Dial, nil
		}},
	}
}

// echoOrClosed writes one byte on a fresh connection and reads: it must
// come back, or the connection must end (EOF or a reset); a client left
// hanging fails.
func echoOrClosed(c net.Conn) error {
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := c.Write([]byte("x")); err != nil {
		if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
			return nil
		}
		return fmt.Errorf("write: %w", err)
	}
	b := make([]byte, 1)
	n, err := c.Read(b)
	switch {
	case n == 1 && b[0] == 'x':
		return nil
	case n == 0 && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)):
		return nil
	}
	return fmt.Errorf("read: got %q, %v; want the echo, EOF or a reset", b[:n], err)
}

// hammer starts n clients that dial over and over (at most maxDials
// times each), checking every connection with echoOrClosed, until a dial
// is refused. dialed yields once per connection made; wait waits for the
// clients and reports the first failure.
func hammer(n int, dial func() (net.Conn, error)) (dialed <-chan struct{}, wait func() error) {
	const maxDials = 100
	ch := make(chan struct{}, n*maxDials)
	errc := make(chan error, n)
	for range n {
		go func() {
			for range maxDials {
				c, err := dial()
				if err != nil {
					break // the port is closed
				}
				ch <- struct{}{}
				if err := echoOrClosed(c); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	return ch, func() error {
		var first error
		for range n {
			if err := <-errc; err != nil && first == nil {
				first = err
			}
		}
		return first
	}
}

// afterDials waits for k connections, so that the rounds of a race loop
// stop a port at different points of its clients' traffic.
func afterDials(tb testing.TB, dialed <-chan struct{}, k int) {
	tb.Helper()
	for range k {
		recv(tb, dialed)
	}
}

// TestRaceCloseVsAccept closes ports while clients connect: Close returns,
// every client is served or closed, and nothing is left running.
func TestRaceCloseVsAccept(t *testing.T) {
	for _, tt := range raceTargets(t) {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			raceLoop(t, 1000, func(i int) {
				p, dial := tt.listen(t, nil, plainEchoFactory, i)
				dialed, wait := hammer(2, dial)
				afterDials(t, dialed, i%4)
				if err := p.Close(); err != nil {
					t.Errorf("round %d: Close: %v", i, err)
				}
				if p.Listening() {
					t.Errorf("round %d: Listening after Close", i)
				}
				waitClosed(t, p.Done(), "Done after Close")
				if err := wait(); err != nil {
					t.Errorf("round %d: %v", i, err)
				}
				// Close leaves accepted connections open; their clients
				// have closed them, and Shutdown waits for their goroutines.
				shutdown(t, p)
			})
		})
	}
}

// madeLost counts ConnectionMade and ConnectionLost calls.
type madeLost struct {
	made, lost atomic.Int64
}

func (m *madeLost) factory() Factory {
	return FactoryFunc(func(net.Addr) Protocol { return &countingEcho{m: m} })
}

// countingEcho is plainEcho counting its callbacks.
type countingEcho struct {
	plainEcho
	m *madeLost
}

func (c *countingEcho) ConnectionMade(t Transport) {
	c.m.made.Add(1)
	c.plainEcho.ConnectionMade(t)
}

func (c *countingEcho) ConnectionLost(error) { c.m.lost.Add(1) }

// TestRaceShutdownVsNewConnection shuts ports down while clients connect:
// when Shutdown returns, every connection made has been lost.
func TestRaceShutdownVsNewConnection(t *testing.T) {
	for _, tt := range raceTargets(t) {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			raceLoop(t, 1000, func(i int) {
				var m madeLost
				p, dial := tt.listen(t, nil, m.factory(), i)
				dialed, wait := hammer(3, dial)
				afterDials(t, dialed, i%4)
				shutdown(t, p)
				if made, lost := m.made.Load(), m.lost.Load(); made != lost {
					t.Errorf("round %d: after Shutdown: %d ConnectionMade, %d ConnectionLost; want as many", i, made, lost)
				}
				if err := wait(); err != nil {
					t.Errorf("round %d: %v", i, err)
				}
			})
		})
	}
}

// TestRaceCloseDuringPause closes ports while they are being paused and
// resumed, and ends connections while they are paused.
func TestRaceCloseDuringPause(t *testing.T) {
	for _, tt := range raceTargets(t) {
		t.Run(tt.name+"/port", func(t *testing.T) {
			checkLeaks(t)
			raceLoop(t, 1000, func(i int) {
				p, dial := tt.listen(t, nil, plainEchoFactory, i)
				// One client is there before the pausing starts, so that no
				// round runs without one, whatever the hammer's timing.
				first, err := dial()
				if err != nil {
					t.Fatalf("round %d: dial: %v", i, err)
				}
				firstDone := make(chan error, 1)
				go func() { firstDone <- echoOrClosed(first) }()
				toggled := make(chan struct{})
				go func() {
					defer close(toggled)
					for range 10 {
						p.PauseProducing()
						p.ResumeProducing()
					}
					p.PauseProducing()
				}()
				// Not waiting for a dial: a paused memory listener holds
				// its dialers until it resumes or closes.
				_, wait := hammer(1, dial)
				closed := make(chan error, 1)
				go func() { closed <- p.Close() }()
				if err := recv(t, closed); err != nil {
					t.Errorf("round %d: Close: %v", i, err)
				}
				waitClosed(t, toggled, "PauseProducing and ResumeProducing after Close")
				if err := wait(); err != nil {
					t.Errorf("round %d: %v", i, err)
				}
				if err := recv(t, firstDone); err != nil {
					t.Errorf("round %d: the first client: %v", i, err)
				}
				shutdown(t, p)
			})
		})
		t.Run(tt.name+"/conn", func(t *testing.T) {
			checkLeaks(t)
			f := newHookFactory(func(tr Transport) { tr.PauseProducing() }, echoData)
			p, dial := tt.listen(t, nil, f, -1)
			t.Cleanup(func() { shutdown(t, p) })
			raceLoop(t, 1000, func(i int) {
				c, err := dial()
				if err != nil {
					t.Fatalf("round %d: dial: %v", i, err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(testTimeout))
				h := recv(t, f.built)
				tr := recv(t, h.made)
				c.Write([]byte("held while paused"))
				read := untilEOF(c)
				var wg sync.WaitGroup
				wg.Add(2)
				go func() {
					defer wg.Done()
					tr.ResumeProducing()
					tr.PauseProducing()
				}()
				go func() {
					defer wg.Done()
					if i%2 == 0 {
						tr.LoseConnection()
					} else {
						tr.AbortConnection()
					}
				}()
				wg.Wait()
				recv(t, h.lost)
				recv(t, read)
			})
		})
	}
}

// TestRaceWriteVsLoseConnection writes to one connection from many
// goroutines while others call LoseConnection: ConnectionLost comes once,
// the client reads whole writes only, and later writes fail with
// net.ErrClosed.
func TestRaceWriteVsLoseConnection(t *testing.T) {
	const writers, closers, writes = 8, 2, 20
	unit := []byte("0123456789")
	for _, tt := range raceTargets(t) {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			f := newHookFactory(nil, nil)
			p, dial := tt.listen(t, nil, f, -1)
			t.Cleanup(func() { shutdown(t, p) })
			raceLoop(t, 1000, func(i int) {
				c, err := dial()
				if err != nil {
					t.Fatalf("round %d: dial: %v", i, err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(testTimeout))
				read := untilEOF(c)
				h := recv(t, f.built)
				tr := recv(t, h.made)
				var wg sync.WaitGroup
				for g := range writers + closers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if g < closers {
							tr.LoseConnection()
							return
						}
						for range writes {
							if _, err := tr.Write(unit); err != nil {
								return
							}
						}
					}()
				}
				wg.Wait()
				if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionDone) {
					t.Errorf("round %d: ConnectionLost(%v); want ErrConnectionDone", i, reason)
				}
				waitClosed(t, tr.(*Conn).Done(), "Conn.Done")
				if reason, ok := lostAlready(h); ok {
					t.Errorf("round %d: second ConnectionLost(%v); want one", i, reason)
				}
				if _, err := tr.Write(unit); !errors.Is(err, net.ErrClosed) {
					t.Errorf("round %d: Write after ConnectionLost: %v; want net.ErrClosed", i, err)
				}
				got := recv(t, read)
				if len(got)%len(unit) != 0 || !bytes.Equal(got, bytes.Repeat(unit, len(got)/len(unit))) {
					t.Errorf("round %d: client read %q; want whole writes of %q", i, got, unit)
				}
			})
		})
	}
}

// sequenceFactory records its StartFactory and StopFactory calls and
// checks, in them, the number it has running against the ports open.
type sequenceFactory struct {
	open *atomic.Int32 // ports being opened or open, counted by the test

	// StartFactory and StopFactory are called with netport's factory lock
	// held; mu makes the recording safe to read from the test as well.
	mu      sync.Mutex
	seq     []byte // 'S' for StartFactory, 'X' for StopFactory
	active  int
	invalid []string
}

func (f *sequenceFactory) BuildProtocol(net.Addr) Protocol { return new(plainEcho) }

func (f *sequenceFactory) StartFactory() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq = append(f.seq, 'S')
	f.active++
	if open := int(f.open.Load()); f.active > 1 || f.active > open {
		f.invalid = append(f.invalid, fmt.Sprintf("StartFactory: %d started with %d ports open", f.active, open))
	}
}

func (f *sequenceFactory) StopFactory() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq = append(f.seq, 'X')
	f.active--
	if f.active < 0 {
		f.invalid = append(f.invalid, fmt.Sprintf("StopFactory: %d started", f.active))
	}
}

// TestRaceStartStopFactory opens and closes many ports serving one factory
// at once: StartFactory and StopFactory alternate strictly, and the
// factory never counts as started more than once or without an open port.
func TestRaceStartStopFactory(t *testing.T) {
	checkLeaks(t)
	const workers = 8
	var open atomic.Int32
	f := &sequenceFactory{open: &open}
	targets := raceTargets(t)
	rounds := 1000 / workers
	if testing.Short() {
		rounds /= 5
	}
	deadline := time.Now().Add(raceBudget)
	errc := make(chan error, workers)
	for w := range workers {
		go func() {
			errc <- func() error {
				tt := targets[w%len(targets)]
				for i := range rounds {
					if time.Now().After(deadline) {
						return fmt.Errorf("%d of %d rounds done within %v; want all", i, rounds, raceBudget)
					}
					open.Add(1)
					p, _, err := tt.open(nil, f, w*rounds+i)
					if err != nil {
						return err
					}
					err = p.Close()
					open.Add(-1)
					if err != nil {
						return fmt.Errorf("Close: %w", err)
					}
				}
				return nil
			}()
		}()
	}
	for range workers {
		if err := recv(t, errc); err != nil {
			t.Error(err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, msg := range f.invalid {
		t.Error(msg)
	}
	seq := string(f.seq)
	if len(seq) == 0 || strings.ReplaceAll(seq, "SX", "") != "" {
		t.Errorf("StartFactory (S) and StopFactory (X) calls: got %q; want SX repeated", seq)
	}
	t.Logf("%d StartFactory/StopFactory pairs over %d ports", len(seq)/2, workers*rounds)
}
