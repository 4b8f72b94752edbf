//go:build linux

package netport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func init() {
	children["stop-factory-panics"] = childStopFactoryPanics
}

// panickyFactory panics in StartFactory or StopFactory while its switch is
// on, and counts what ran.
type panickyFactory struct {
	panicStart, panicStop atomic.Bool
	starts, stops         atomic.Int32
}

func (f *panickyFactory) BuildProtocol(net.Addr) Protocol { return newHookProto(nil, echoData) }

func (f *panickyFactory) StartFactory() {
	if f.panicStart.Load() {
		panic("StartFactory boom")
	}
	f.starts.Add(1)
}

func (f *panickyFactory) StopFactory() {
	if f.panicStop.Load() {
		panic("StopFactory boom")
	}
	f.stops.Add(1)
}

// noPanic runs fn and fails tb if it panics, so that a panic that escapes
// netport fails this test instead of the whole run.
func noPanic(tb testing.TB, what string, fn func()) {
	tb.Helper()
	defer func() {
		if r := recover(); r != nil {
			tb.Fatalf("%s panicked: %v", what, r)
		}
	}()
	fn()
}

func TestStartFactoryPanicReleasesEverything(t *testing.T) {
	sockPath := filepath.Join(t.TempDir(), "sock")
	adoptFile, _ := netFile(t, "tcp4", "127.0.0.1:0")
	opens := []struct {
		name string
		open func(cfg *Config, f Factory) (*Port, error)
	}{
		{"Listen tcp", func(cfg *Config, f Factory) (*Port, error) { return cfg.Listen("tcp", "127.0.0.1:0", f) }},
		{"Listen unix", func(cfg *Config, f Factory) (*Port, error) { return cfg.Listen("unix", sockPath, f) }},
		{"Serve", func(cfg *Config, f Factory) (*Port, error) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			return cfg.Serve(ln, f)
		}},
		{"AdoptStreamPort", func(cfg *Config, f Factory) (*Port, error) {
			return cfg.AdoptStreamPort(fdOf(adoptFile), familyOf("tcp4"), f)
		}},
	}
	for _, tt := range opens {
		t.Run(tt.name, func(t *testing.T) {
			logger, logs := testLogger()
			cfg := &Config{Logger: logger}
			f := new(panickyFactory)
			f.panicStart.Store(true)
			before := countFDs(t)
			var err error
			noPanic(t, tt.name, func() {
				var p *Port
				if p, err = tt.open(cfg, f); p != nil {
					p.Close()
				}
			})
			if err == nil || !strings.Contains(err.Error(), "StartFactory") || !strings.Contains(err.Error(), "panic") {
				t.Fatalf("%s with a panicking StartFactory: got %v; want an error saying StartFactory panicked", tt.name, err)
			}
			var oe *net.OpError
			if !errors.As(err, &oe) {
				t.Errorf("error %T; want a *net.OpError", err)
			}
			if after := countFDs(t); after != before {
				t.Errorf("descriptors: %d after the failed call; want %d as before", after, before)
			}
			if logs.count("StartFactory boom") != 1 || logs.count("goroutine") == 0 {
				t.Errorf("log: got %q; want the panic logged once with its stack", logs.String())
			}
			if _, err := os.Stat(sockPath); err == nil {
				t.Errorf("unix socket file %s left behind", sockPath)
			}

			// The factory's lock is free: the next port with it starts.
			f.panicStart.Store(false)
			opened := make(chan error, 1)
			go func() {
				p, err := tt.open(cfg, f)
				if err == nil {
					err = p.Close()
				}
				opened <- err
			}()
			if err := recvWithin(t, opened, testTimeout, "the next port with the same factory"); err != nil {
				t.Fatalf("next port: %v", err)
			}
			if s, e := f.starts.Load(), f.stops.Load(); s != 1 || e != 1 {
				t.Errorf("got %d StartFactory, %d StopFactory; want 1, 1", s, e)
			}
		})
	}
}

// TestStopFactoryPanicIsRecovered runs in a child process: before the fix
// the panic killed the process.
func TestStopFactoryPanicIsRecovered(t *testing.T) {
	ctx, cancel := contextWithTimeout(testTimeout)
	defer cancel()
	out, err := childCommand(ctx, "stop-factory-panics").CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "StopFactory boom") || !strings.Contains(string(out), "goroutine") {
		t.Fatalf("child's log: got %q; want the StopFactory panic logged with its stack", out)
	}
}

func childStopFactoryPanics() int {
	f := new(panickyFactory)
	f.panicStop.Store(true)
	p, err := Listen("tcp", "127.0.0.1:0", f)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := p.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "Close:", err)
		return 1
	}
	// The count went down all the same: the next port starts the
	// factory again.
	f.panicStop.Store(false)
	p, err = Listen("tcp", "127.0.0.1:0", f)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p.Close()
	if s, e := f.starts.Load(), f.stops.Load(); s != 2 || e != 1 {
		fmt.Fprintf(os.Stderr, "got %d StartFactory, %d StopFactory; want 2, 1\n", s, e)
		return 1
	}
	return 0
}

// closeWatchFactory records BuildProtocol calls made after Close returned
// or after StopFactory ran; BuildProtocol blocks while hold is set.
type closeWatchFactory struct {
	closed, stopped atomic.Bool
	late            atomic.Int32
	builds          atomic.Int32
	built           chan struct{} // when not nil, told of each build, if it has room
	entered         chan struct{}
	hold            chan struct{} // nil: no wait
	mu              sync.Mutex
	events          []string
}

func (f *closeWatchFactory) note(e string) {
	f.mu.Lock()
	f.events = append(f.events, e)
	f.mu.Unlock()
}

func (f *closeWatchFactory) BuildProtocol(net.Addr) Protocol {
	if f.closed.Load() || f.stopped.Load() {
		f.late.Add(1)
	}
	f.builds.Add(1)
	if f.hold != nil {
		f.entered <- struct{}{}
		<-f.hold
	}
	f.note("built")
	select {
	case f.built <- struct{}{}:
	default:
	}
	return newHookProto(nil, echoData)
}

func (f *closeWatchFactory) StopFactory() {
	f.stopped.Store(true)
	f.note("stopped")
}

// TestNoBuildAfterClose: a connection accepted but not yet built when
// Close begins (here, held in its TLS handshake) is closed without
// BuildProtocol.
func TestNoBuildAfterClose(t *testing.T) {
	server, client := testTLS(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sig := &acceptSignal{Listener: ln, accepted: make(chan net.Conn, 1)}
	f := new(closeWatchFactory)
	p, err := (&Config{TLS: server}).Serve(sig, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, p) })
	raw := dial(t, p)
	recv(t, sig.accepted) // its goroutine now waits for the ClientHello
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	f.closed.Store(true)

	tc := tls.Client(raw, client)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if _, err := tc.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read after Close: got data; want the connection closed")
	}
	shutdown(t, p) // waits for the connection's goroutine
	if n := f.builds.Load(); n != 0 {
		t.Fatalf("BuildProtocol: %d calls after Close had returned (%d after StopFactory); want none", n, f.late.Load())
	}
}

// TestCloseWaitsForBuildInFlight: Close returns, and StopFactory runs, only
// after a BuildProtocol under way has returned.
func TestCloseWaitsForBuildInFlight(t *testing.T) {
	f := &closeWatchFactory{entered: make(chan struct{}, 1), hold: make(chan struct{})}
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(f.hold) }) }) // before the port's
	c := dial(t, p)
	recv(t, f.entered)
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	quiet(t, closed, "Close while BuildProtocol runs")
	release.Do(func() { close(f.hold) })
	if err := recv(t, closed); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	events := strings.Join(f.events, " ")
	f.mu.Unlock()
	if events != "built stopped" {
		t.Fatalf("events: got %q; want %q", events, "built stopped")
	}
	roundTrip(t, c, []byte("built before Close: served"))
}

// TestNoBuildAfterCloseHammer closes ports while clients keep connecting:
// no BuildProtocol may start after Close has returned or StopFactory ran.
func TestNoBuildAfterCloseHammer(t *testing.T) {
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	for i := 0; i < rounds; i++ {
		f := &closeWatchFactory{built: make(chan struct{}, 5)}
		p, err := Listen("tcp", "127.0.0.1:0", f)
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for j := 0; j < 4; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, err := net.DialTimeout("tcp", p.Addr().String(), testTimeout)
					if err != nil {
						return // the port has closed
					}
					c.Close()
				}
			}()
		}
		// Close once some connections have been built.
		for k := 0; k < cap(f.built); k++ {
			recv(t, f.built)
		}
		p.Close()
		f.closed.Store(true)
		close(stop)
		wg.Wait()
		shutdown(t, p)
		if n := f.late.Load(); n != 0 {
			t.Fatalf("round %d: %d BuildProtocol calls after Close had returned; want none", i, n)
		}
	}
}
