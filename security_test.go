//go:build linux

package netport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	children["list-sockets"] = childListSockets
}

// childListSockets prints "socket N" for every descriptor above 2 that is
// a socket, as a process started by the tests inherited it.
func childListSockets() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			fmt.Printf("socket %d\n", fd)
		}
	}
	return 0
}

// inheritedSockets starts the list-sockets child with files as its
// descriptors 3 and on, and returns the socket descriptors it has.
func inheritedSockets(tb testing.TB, files ...*os.File) []int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	cmd := childCommand(ctx, "list-sockets")
	cmd.ExtraFiles = files
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("child list-sockets: %v\n%s", err, stderr.String())
	}
	fds := []int{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var fd int
		if _, err := fmt.Sscanf(sc.Text(), "socket %d", &fd); err != nil {
			tb.Fatalf("child list-sockets: %q: %v", sc.Text(), err)
		}
		fds = append(fds, fd)
	}
	slices.Sort(fds)
	return fds
}

// TestNoDescriptorLeaksIntoChildProcesses opens every kind of descriptor
// netport makes (fresh tcp and unix ports, an adopted port, an accepted
// connection, a Port.File duplicate) and starts a child process: it
// inherits none of them unless it is given one explicitly.
func TestNoDescriptorLeaksIntoChildProcesses(t *testing.T) {
	checkLeaks(t)
	// Sockets that this test process itself inherited without
	// close-on-exec are not netport's doing.
	baseline := inheritedSockets(t)
	if len(baseline) > 0 {
		t.Logf("the test process passes on sockets it inherited: %v", baseline)
	}

	f := newHookFactory(nil, echoData)
	tcp := listen(t, nil, "tcp", "127.0.0.1:0", f)
	listen(t, nil, "unix", filepath.Join(t.TempDir(), "sock"), f)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lf, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	adopted, err := AdoptStreamPort(int(lf.Fd()), syscall.AF_INET, f)
	lf.Close()
	if err != nil {
		t.Fatalf("AdoptStreamPort: %v", err)
	}
	t.Cleanup(func() { shutdown(t, adopted) })
	for _, p := range []*Port{tcp, adopted} {
		c := dial(t, p)
		roundTrip(t, c, []byte("accepted"))
	}
	file, err := tcp.File()
	if err != nil {
		t.Fatalf("Port.File: %v", err)
	}
	defer file.Close()

	if got := inheritedSockets(t); !slices.Equal(got, baseline) {
		t.Errorf("sockets a child process inherits: got %v; want %v", got, baseline)
	}
	want := append([]int{3}, baseline...)
	slices.Sort(want)
	if got := inheritedSockets(t, file); !slices.Equal(got, want) {
		t.Errorf("sockets a child process given Port.File inherits: got %v; want %v", got, want)
	}
}

// umask returns the process's file mode creation mask.
func umask(tb testing.TB) os.FileMode {
	tb.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Skipf("cannot read the umask: %v", err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				tb.Fatalf("Umask in /proc/self/status: %q: %v", v, err)
			}
			return os.FileMode(m)
		}
	}
	tb.Skip("no Umask in /proc/self/status")
	return 0
}

// TestUnixModeSetBeforeListen checks that a fresh unix socket file has
// Config.UnixMode before the socket listens, so that no client can
// connect while the file has the mode the umask gave it.
func TestUnixModeSetBeforeListen(t *testing.T) {
	checkLeaks(t)
	mode := os.FileMode(0o600)
	if 0o777&^umask(t) == mode {
		mode = 0o640
	}
	var hookErrs []string
	called := false
	testHookBeforeListen = func(path string) {
		called = true
		fi, err := os.Stat(path)
		if err != nil {
			hookErrs = append(hookErrs, err.Error())
		} else if got := fi.Mode().Perm(); got != mode {
			hookErrs = append(hookErrs, fmt.Sprintf("mode before listen(2): got %v; want %v", got, mode))
		}
		c, err := net.DialTimeout("unix", path, testTimeout)
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			hookErrs = append(hookErrs, fmt.Sprintf("connect before listen(2): %v; want ECONNREFUSED", err))
		}
	}
	t.Cleanup(func() { testHookBeforeListen = nil })

	path := filepath.Join(t.TempDir(), "sock")
	p := listen(t, &Config{UnixMode: mode}, "unix", path, newHookFactory(nil, echoData))
	testHookBeforeListen = nil
	if !called {
		t.Fatal("testHookBeforeListen not called")
	}
	for _, msg := range hookErrs {
		t.Error(msg)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
		t.Errorf("mode after Listen: got %v, %v; want %v", fi.Mode().Perm(), err, mode)
	}
	roundTrip(t, dial(t, p), []byte("after listen"))
}

// uidGate serves only peers whose uid is uid: it checks in ConnectionMade
// (BuildProtocol does not see the connection) and closes the others.
type uidGate struct{ uid int }

func (g *uidGate) ConnectionMade(t Transport) {
	cred, err := PeerCredentials(t)
	if err != nil || cred.UID != g.uid {
		t.LoseConnection()
		return
	}
	t.Write([]byte("welcome\n"))
}

func (g *uidGate) DataReceived([]byte)  {}
func (g *uidGate) ConnectionLost(error) {}

// TestRefusePeerByUID refuses a unix-socket client by its uid.
func TestRefusePeerByUID(t *testing.T) {
	tests := []struct {
		name string
		uid  int
		want string
	}{
		{"allowed", os.Getuid(), "welcome\n"},
		{"refused", os.Getuid() + 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkLeaks(t)
			f := FactoryFunc(func(net.Addr) Protocol { return &uidGate{uid: tt.uid} })
			p := listen(t, nil, "unix", filepath.Join(t.TempDir(), "sock"), f)
			c := dial(t, p)
			c.SetReadDeadline(time.Now().Add(testTimeout))
			got, err := io.ReadAll(io.LimitReader(c, int64(len("welcome\n"))))
			if err != nil || string(got) != tt.want {
				t.Fatalf("client read: got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
