package netport

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestNextDelay(t *testing.T) {
	want := []time.Duration{
		5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
		40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond,
		320 * time.Millisecond, 640 * time.Millisecond, time.Second, time.Second,
	}
	var d time.Duration
	for i, w := range want {
		d = nextDelay(d)
		if d != w {
			t.Fatalf("delay %d: got %v; want %v", i, d, w)
		}
	}
}

func TestIsTemporary(t *testing.T) {
	opErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
	}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{opErr(syscall.ECONNABORTED), true},
		{opErr(syscall.ENOBUFS), true},
		{opErr(syscall.ENOMEM), true},
		{opErr(syscall.EPERM), true},
		{&net.OpError{Op: "accept", Err: os.ErrDeadlineExceeded}, true},
		{opErr(syscall.EINVAL), false},
		{opErr(syscall.EBADF), false},
		{net.ErrClosed, false},
		{errors.New("not an accept error"), false},
	} {
		if got := isTemporary(tt.err); got != tt.want {
			t.Errorf("isTemporary(%v) = %v; want %v", tt.err, got, tt.want)
		}
	}
}

// faultyListener returns errs from its first Accept calls, then accepts
// from the listener it wraps. It has no SetDeadline and no descriptor, as
// a listener of the caller's own making.
type faultyListener struct {
	net.Listener
	mu    sync.Mutex
	errs  []error
	calls []time.Time // when each failing Accept was called
}

func (l *faultyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.calls = append(l.calls, time.Now())
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func faulty(tb testing.TB, errs ...error) *faultyListener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return &faultyListener{Listener: ln, errs: errs}
}

// serve serves ln for tb and shuts the port down at cleanup.
func serve(tb testing.TB, cfg *Config, ln net.Listener, f Factory) *Port {
	tb.Helper()
	p, err := cfg.Serve(ln, f)
	if err != nil {
		tb.Fatalf("Serve: %v", err)
	}
	tb.Cleanup(func() { shutdown(tb, p) })
	return p
}

func TestAcceptTemporaryErrors(t *testing.T) {
	tempErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
	}
	ln := faulty(t, tempErr(syscall.ECONNABORTED), tempErr(syscall.ENOBUFS),
		tempErr(syscall.ECONNABORTED), tempErr(syscall.ENOBUFS))
	logger, logs := testLogger()
	p := serve(t, &Config{Logger: logger}, ln, newEchoFactory())

	roundTrip(t, dial(t, p), []byte("still serving"))
	if !p.Listening() {
		t.Fatalf("Listening() = false after temporary errors; want true")
	}
	// The errors came within a second: one line for all of them.
	if n := logs.count("accept failed"); n != 1 {
		t.Fatalf("log has %d accept error lines; want 1:\n%s", n, logs)
	}
	ln.mu.Lock()
	calls := ln.calls
	ln.mu.Unlock()
	for i := 1; i < len(calls); i++ {
		// The back-off before retry i is nextDelay applied i times.
		var min time.Duration
		for range i {
			min = nextDelay(min)
		}
		if gap := calls[i].Sub(calls[i-1]); gap < min {
			t.Errorf("retry %d came after %v; want at least %v of back-off", i, gap, min)
		}
	}
}

func TestAcceptFatalError(t *testing.T) {
	fatal := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EINVAL)}
	logger, logs := testLogger()
	p := serve(t, &Config{Logger: logger}, faulty(t, fatal), newEchoFactory())
	waitClosed(t, p.Done(), "the port to stop after a fatal accept error")
	if p.Listening() {
		t.Fatalf("Listening() = true after a fatal accept error; want false")
	}
	log := logs.String()
	if !strings.Contains(log, "port stopped") || !strings.Contains(log, syscall.EINVAL.Error()) {
		t.Fatalf("log %q: want a line saying the port stopped, with the error", log)
	}
}

// faultyFDListener is a faultyListener with a descriptor, as net's own
// listeners have: a port holds a spare descriptor only for such a one.
type faultyFDListener struct {
	*faultyListener
}

func (l faultyFDListener) SyscallConn() (syscall.RawConn, error) {
	return l.Listener.(syscall.Conn).SyscallConn()
}

// TestAcceptEMFILEWithDescriptorsFreeAgain: accept(2) reports EMFILE
// before it looks at the queue, so the client the port then accepts with
// its spare descriptor released may come after descriptors were freed.
// Here they are (the EMFILE is simulated), so that client is served, not
// shed; the real exhaustion, where queued clients are closed, is in
// exhaustion_test.go.
func TestAcceptEMFILEWithDescriptorsFreeAgain(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	logger, logs := testLogger()
	f := newEchoFactory()
	p := serve(t, &Config{Logger: logger}, faultyFDListener{faulty(t, emfile)}, f)

	roundTrip(t, dial(t, p), []byte("served once descriptors are free"))
	roundTrip(t, dial(t, p), []byte("served again"))
	if !strings.Contains(logs.String(), "out of descriptors") {
		t.Fatalf("log %q: want a line about running out of descriptors", logs)
	}
}

// handListener hands out the connections the test gives it. Like any
// listener of the caller's making it has no SetDeadline, so an Accept
// under way cannot be woken by PauseProducing.
type handListener struct {
	calls  chan struct{} // one value per Accept call
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newHandListener() *handListener {
	return &handListener{calls: make(chan struct{}, 16), conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *handListener) Accept() (net.Conn, error) {
	l.calls <- struct{}{}
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *handListener) Addr() net.Addr { return &net.UnixAddr{Name: "hand", Net: "unix"} }

func TestPauseHoldsClientAcceptedMeanwhile(t *testing.T) {
	for _, end := range []string{"resume", "close"} {
		t.Run(end, func(t *testing.T) {
			ln := newHandListener()
			f := newEchoFactory()
			p := serve(t, nil, ln, f)
			recv(t, ln.calls) // Accept is under way
			p.PauseProducing()
			server, client := net.Pipe()
			defer client.Close()
			client.SetDeadline(time.Now().Add(testTimeout))
			select {
			case ln.conns <- server:
			case <-time.After(testTimeout):
				t.Fatal("Accept did not take the connection")
			}
			quiet(t, f.built, "BuildProtocol while paused")
			if end == "close" {
				p.Close()
				if _, err := client.Read(make([]byte, 1)); err != io.EOF {
					t.Fatalf("held client after Close: got %v; want EOF", err)
				}
				return
			}
			p.ResumeProducing()
			recv(t, f.built)
			roundTrip(t, client, []byte("served after resume"))
		})
	}
}
