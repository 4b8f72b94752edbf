package netport

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// somaxconn is the kernel's cap on a listen(2) backlog.
func somaxconn(tb testing.TB) int {
	tb.Helper()
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		tb.Skipf("somaxconn: %v", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// unixConnects makes non-blocking connections to path until one fails
// (at most max), and returns how many succeeded and the failure.
func unixConnects(tb testing.TB, path string, max int) (int, error) {
	tb.Helper()
	for i := 0; i < max; i++ {
		fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { syscall.Close(fd) })
		if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
			return i, err
		}
	}
	return max, nil
}

func TestBacklogReachesListen(t *testing.T) {
	// Linux refuses a unix connection at once when the backlog is full, so
	// the backlog can be measured: backlog+1 connections wait, the next
	// gets EAGAIN.
	max := somaxconn(t)
	for _, backlog := range []int{2, 8} {
		t.Run(strconv.Itoa(backlog), func(t *testing.T) {
			if backlog > max {
				t.Skipf("somaxconn %d < %d", max, backlog)
			}
			// The bare listener, with no accept loop that could take a
			// connection off the queue while it is measured.
			path := filepath.Join(t.TempDir(), "sock")
			ln, file, err := (&Config{Backlog: backlog}).listenStream("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer file.remove()
			defer ln.Close()
			n, err := unixConnects(t, path, 64)
			if n != backlog+1 || !errors.Is(err, syscall.EAGAIN) {
				t.Fatalf("connections before a refusal: got %d, %v; want %d, EAGAIN", n, err, backlog+1)
			}
		})
	}
}

func TestReusePort(t *testing.T) {
	f := newEchoFactory()
	p1 := listen(t, &Config{ReusePort: true}, "tcp", "127.0.0.1:0", f)
	addr := p1.Addr().String()

	p, err := Listen("tcp", addr, f)
	if !errors.Is(err, syscall.EADDRINUSE) {
		if p != nil {
			p.Close()
		}
		t.Fatalf("second Listen on %s without ReusePort: got %v; want EADDRINUSE", addr, err)
	}

	p2 := listen(t, &Config{ReusePort: true}, "tcp", addr, f)
	if p2.Addr().String() != addr {
		t.Fatalf("second port's Addr() = %v; want %s", p2.Addr(), addr)
	}
	roundTrip(t, dial(t, p2), []byte("served by one of the two"))
}

func TestUnixMode(t *testing.T) {
	for _, mode := range []os.FileMode{0600, 0666} {
		t.Run(mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sock")
			p := listen(t, &Config{UnixMode: mode}, "unix", path, newEchoFactory())
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != mode {
				t.Fatalf("socket file mode: got %v; want %v", fi.Mode(), os.ModeSocket|mode)
			}
			roundTrip(t, dial(t, p), []byte("hi"))
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("socket file after Close: got %v; want it removed", err)
			}
		})
	}
}

func TestUnixPathExists(t *testing.T) {
	for _, kind := range []string{"file", "socket"} {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sock")
			if kind == "file" {
				if err := os.WriteFile(path, []byte("keep me"), 0644); err != nil {
					t.Fatal(err)
				}
			} else {
				ln, err := net.Listen("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
			}
			f := new(startStopFactory)
			p, err := Listen("unix", path, f)
			if !errors.Is(err, syscall.EADDRINUSE) {
				if p != nil {
					p.Close()
				}
				t.Fatalf("Listen on an existing path: got %v; want EADDRINUSE", err)
			}
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("the existing %s after a failed Listen: %v; want it left alone", kind, err)
			}
			f.check(t, "after a failed Listen", 0, 0)
		})
	}
}

// badListens are Listen calls that must fail, each with what the error
// must match.
func badListens(tb testing.TB) []struct {
	name, network, address string
	f                      Factory
	check                  func(error) bool
} {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { busy.Close() })
	dir := tb.TempDir()
	busyUnix := filepath.Join(dir, "busy")
	if err := os.WriteFile(busyUnix, nil, 0644); err != nil {
		tb.Fatal(err)
	}
	isListen := func(err error) bool {
		var op *net.OpError
		return errors.As(err, &op) && op.Op == "listen"
	}
	ef := newEchoFactory()
	return []struct {
		name, network, address string
		f                      Factory
		check                  func(error) bool
	}{
		{"address in use", "tcp", busy.Addr().String(), ef, func(err error) bool {
			return isListen(err) && errors.Is(err, syscall.EADDRINUSE)
		}},
		{"unix path in use", "unix", busyUnix, ef, func(err error) bool {
			return isListen(err) && errors.Is(err, syscall.EADDRINUSE)
		}},
		{"unix path in a missing directory", "unix", filepath.Join(dir, "missing", "sock"), ef, func(err error) bool {
			return isListen(err) && errors.Is(err, syscall.ENOENT)
		}},
		{"empty unix path", "unix", "", ef, isListen},
		{"missing port", "tcp", "127.0.0.1", ef, func(err error) bool {
			var ae *net.AddrError
			return isListen(err) && errors.As(err, &ae)
		}},
		{"malformed host", "tcp", "127.0.0:0:0", ef, isListen},
		{"port out of range", "tcp", "127.0.0.1:70000", ef, func(err error) bool {
			var ae *net.AddrError
			return isListen(err) && errors.As(err, &ae)
		}},
		{"unknown network", "sctp", "127.0.0.1:0", ef, func(err error) bool {
			var une net.UnknownNetworkError
			return isListen(err) && errors.As(err, &une)
		}},
		{"datagram network", "udp", "127.0.0.1:0", ef, func(err error) bool {
			var une net.UnknownNetworkError
			return isListen(err) && errors.As(err, &une)
		}},
		{"IPv4 address on tcp6", "tcp6", "127.0.0.1:0", ef, isListen},
		{"nil factory", "tcp", "127.0.0.1:0", nil, func(err error) bool { return err != nil }},
	}
}

func TestListenErrors(t *testing.T) {
	for _, tt := range badListens(t) {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Listen(tt.network, tt.address, tt.f)
			if p != nil {
				p.Close()
				t.Fatalf("Listen(%q, %q): got a port; want an error", tt.network, tt.address)
			}
			if !tt.check(err) {
				t.Fatalf("Listen(%q, %q): got %#v (%v); want a matching *net.OpError", tt.network, tt.address, err, err)
			}
		})
	}
}

func TestServeErrors(t *testing.T) {
	if p, err := Serve(nil, newEchoFactory()); p != nil || err == nil {
		t.Fatalf("Serve(nil, f): got %v, %v; want an error", p, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if p, err := Serve(ln, nil); p != nil || err == nil {
		t.Fatalf("Serve(ln, nil): got %v, %v; want an error", p, err)
	}
	// The listener is the port's from the call on, error or not.
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatalf("dial after Serve(ln, nil): got a connection; want ln closed")
	}
}

func TestFailedListensLeakNoDescriptor(t *testing.T) {
	bad := badListens(t)
	before := countFDs(t)
	for i := 0; i < 100; i++ {
		tt := bad[i%len(bad)]
		if p, err := Listen(tt.network, tt.address, tt.f); err == nil {
			p.Close()
			t.Fatalf("Listen(%q, %q) succeeded; want an error", tt.network, tt.address)
		}
	}
	if after := countFDs(t); after != before {
		t.Fatalf("open descriptors: got %d after 100 failed Listens; want %d as before", after, before)
	}
}

// TestCloseLeavesAReplacedSocketFile: a port removes its unix socket file
// on Close only while it is still the file it bound.
func TestCloseLeavesAReplacedSocketFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sock")
	p, err := Listen("unix", path, newEchoFactory())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("someone else's"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if got, err := os.ReadFile(path); err != nil || string(got) != "someone else's" {
		t.Fatalf("after Close: %q, %v; want the replacement left in place", got, err)
	}
}
