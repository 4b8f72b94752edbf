//go:build linux

package netport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// askPidOn dials network/address and reads the whoami answer.
func askPidOn(network, address string) (int, error) {
	c, err := net.DialTimeout(network, address, testTimeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("reading the answer: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(line))
}

// askPidDatagram sends a datagram to addr and reads the pidEcho answer.
func askPidDatagram(tb testing.TB, addr net.Addr) int {
	tb.Helper()
	c, err := net.Dial(addr.Network(), addr.String())
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := c.Write([]byte("who")); err != nil {
		tb.Fatal(err)
	}
	buf := make([]byte, 32)
	n, err := c.Read(buf)
	if err != nil {
		tb.Fatalf("datagram answer: %v", err)
	}
	pid, err := strconv.Atoi(string(buf[:n]))
	if err != nil {
		tb.Fatal(err)
	}
	return pid
}

// Handover phases, as the client loop sees them when it dials.
const (
	beforeRestart = iota
	duringHandover
	afterShutdown
)

// TestRestartHandover hands a tcp port, a udp port and a unix port to a
// new process with Restart while a client keeps dialling: no dial is
// refused or reset, and every client that dials once the old ports have
// shut down is served by the new process.
func TestRestartHandover(t *testing.T) {
	web, err := Listen("tcp4", "127.0.0.1:0", whoamiFactory)
	if err != nil {
		t.Fatal(err)
	}
	defer web.Close()
	dns, err := ListenPacket("udp4", "127.0.0.1:0", &pidEcho{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	path := filepath.Join(t.TempDir(), "sock")
	local, err := Listen("unix", path, whoamiFactory)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if pid := askPidDatagram(t, dns.Addr()); pid != os.Getpid() {
		t.Fatalf("datagram answer before the restart: got pid %d; want %d", pid, os.Getpid())
	}

	type answer struct {
		pid, phase int
		err        error
	}
	var phase atomic.Int32
	stop := make(chan struct{})
	enough := make(chan struct{}) // closed after 20 answers dialled after the shutdown
	results := make(chan []answer, 1)
	go func() {
		var got []answer
		after := 0
		defer func() { results <- got }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ph := int(phase.Load())
			network, address := "tcp4", web.Addr().String()
			if i%2 == 1 {
				network, address = "unix", path
			}
			pid, err := askPidOn(network, address)
			got = append(got, answer{pid, ph, err})
			if ph == afterShutdown {
				if after++; after == 20 {
					close(enough)
				}
			}
		}
	}()

	child := newRestartChild(t, "restart-serve")
	// Variables of this process's own activation must not reach the child.
	child.cmd.Env = append(child.cmd.Env, "LISTEN_PID=1", "LISTEN_FDS=9", "LISTEN_FDNAMES=x", RestartReadyEnv+"=99")
	phase.Store(duringHandover)
	ctx, cancel := contextWithTimeout(testTimeout)
	defer cancel()
	proc, err := child.restart(ctx, NamedSocket{"web", web}, NamedSocket{"dns", dns}, NamedSocket{"local", local})
	if err != nil {
		close(stop)
		<-results
		t.Fatalf("Restart: %v", err)
	}
	defer child.stop(t)
	shutdown(t, web)
	shutdown(t, local)
	dns.Close()
	phase.Store(afterShutdown)
	select {
	case <-enough:
	case <-time.After(testTimeout):
		t.Errorf("no 20 answers after the shutdown within %v", testTimeout)
	}
	close(stop)
	got := <-results

	counts := make(map[int]int)
	for _, a := range got {
		switch {
		case a.err != nil:
			t.Errorf("a client dialling in phase %d failed: %v", a.phase, a.err)
		case a.phase == beforeRestart && a.pid != os.Getpid(),
			a.phase == duringHandover && a.pid != os.Getpid() && a.pid != proc.Pid,
			a.phase == afterShutdown && a.pid != proc.Pid:
			t.Errorf("a client dialling in phase %d was served by pid %d; want the old %d or the new %d",
				a.phase, a.pid, os.Getpid(), proc.Pid)
		}
		if a.phase == duringHandover {
			counts[a.pid]++
		}
	}
	t.Logf("%d connections in all; during the handover %d served by the old process, %d by the new",
		len(got), counts[os.Getpid()], counts[proc.Pid])
	if pid := askPidDatagram(t, dns.Addr()); pid != proc.Pid {
		t.Errorf("datagram answer after the shutdown: got pid %d; want the new %d", pid, proc.Pid)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("unix socket file after the old port's Shutdown: %v; want it left to the new process", err)
	}
}

// TestRestartFailures starts new processes that never call Ready: one
// exits, one hangs until ctx ends. Restart returns an error, the process
// has been waited for, and the old port keeps serving.
func TestRestartFailures(t *testing.T) {
	p := listen(t, nil, "tcp4", "127.0.0.1:0", whoamiFactory)
	t.Run("exits", func(t *testing.T) {
		child := newRestartChild(t, "restart-exit")
		_, err := child.restart(context.Background(), NamedSocket{"web", p})
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 7 {
			t.Errorf("Restart: got %v; want an *exec.ExitError with status 7", err)
		}
		if child.cmd.ProcessState == nil {
			t.Errorf("the new process was not waited for")
		}
	})
	t.Run("hangs", func(t *testing.T) {
		child := newRestartChild(t, "restart-hang")
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		child.cmd.Stdout = w
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			// Cancel once the new process runs, so that it surely hangs
			// rather than not having started yet.
			bufio.NewReader(r).ReadString('\n')
			cancel()
		}()
		_, err = child.restart(ctx, NamedSocket{"web", p})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Restart: got %v; want an error wrapping context.Canceled", err)
		}
		st := child.cmd.ProcessState
		if st == nil {
			t.Fatalf("the new process was not waited for")
		}
		if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Errorf("the new process ended with %v; want it killed", st)
		}
	})
	if pid, err := askPidOn("tcp4", p.Addr().String()); err != nil || pid != os.Getpid() {
		t.Errorf("after the failed restarts: got pid %d, %v; want the old port serving (%d)", pid, err, os.Getpid())
	}
	if !p.Listening() {
		t.Errorf("the old port stopped listening")
	}
}

// TestRestartGrandchild checks that a process started by the new one does
// not take the sockets as its own, even with every variable passed on.
func TestRestartGrandchild(t *testing.T) {
	p := listen(t, nil, "tcp4", "127.0.0.1:0", whoamiFactory)
	child := newRestartChild(t, "restart-grandchild")
	ctx, cancel := contextWithTimeout(testTimeout)
	defer cancel()
	if _, err := child.restart(ctx, NamedSocket{"web", p}); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	child.stop(t)
}

func TestRestartErrors(t *testing.T) {
	closed, err := Listen("tcp4", "127.0.0.1:0", whoamiFactory)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	closedDgram, err := ListenPacket("udp4", "127.0.0.1:0", &pidEcho{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	closedDgram.Close()
	p := listen(t, nil, "tcp4", "127.0.0.1:0", whoamiFactory)
	withFiles := exec.Command(os.Args[0])
	withFiles.ExtraFiles = []*os.File{os.Stdin}
	tests := []struct {
		name    string
		cmd     *exec.Cmd
		sockets []NamedSocket
		want    error  // matched with errors.Is, when not nil
		msg     string // in the message
	}{
		{"nil command", nil, nil, nil, "no command"},
		{"ExtraFiles", withFiles, nil, nil, "ExtraFiles"},
		{"colon in a name", exec.Command(os.Args[0]), []NamedSocket{{"a:b", p}}, nil, `"a:b"`},
		{"closed port", exec.Command(os.Args[0]), []NamedSocket{{"web", closed}}, net.ErrClosed, `"web"`},
		{"closed datagram port", exec.Command(os.Args[0]), []NamedSocket{{"dns", closedDgram}}, net.ErrClosed, `"dns"`},
		{"nil socket", exec.Command(os.Args[0]), []NamedSocket{{"web", nil}}, nil, "nil"},
	}
	before := countFDs(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Restart(context.Background(), tc.cmd, tc.sockets...)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v; want an error containing %s (matching %v)", err, tc.msg, tc.want)
			}
			if tc.cmd != nil && tc.cmd.Process != nil {
				t.Errorf("the command was started")
			}
		})
	}
	t.Run("ctx already done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		cmd := exec.Command(os.Args[0])
		if _, err := Restart(ctx, cmd, NamedSocket{"web", p}); !errors.Is(err, context.Canceled) || cmd.Process != nil {
			t.Errorf("got %v, started %v; want context.Canceled and nothing started", err, cmd.Process != nil)
		}
	})
	if after := countFDs(t); after != before {
		t.Errorf("got %d open descriptors after the failed calls; want %d", after, before)
	}
}

func TestParseRestartEnv(t *testing.T) {
	const parent = 1234
	tests := []struct {
		ppid, fd string
		forUs    bool
		wantFD   int
	}{
		{"1234", "5", true, 5},
		{"1234", "", true, -1},
		{"1234", "2", true, -1},
		{"1234", "x", true, -1},
		{"1235", "5", false, -1},
		{"", "5", false, -1},
		{"12x4", "5", false, -1},
	}
	for _, tc := range tests {
		forUs, fd := parseRestartEnv(tc.ppid, tc.fd, parent)
		if forUs != tc.forUs || fd != tc.wantFD {
			t.Errorf("parseRestartEnv(%q, %q, %d): got %v, %d; want %v, %d",
				tc.ppid, tc.fd, parent, forUs, fd, tc.forUs, tc.wantFD)
		}
	}
}

// TestReadyWithoutRestart: a process that no Restart started gets nil.
func TestReadyWithoutRestart(t *testing.T) {
	if restarted.forUs {
		t.Skip("the test binary itself was started by a Restart")
	}
	if err := Ready(); err != nil {
		t.Errorf("Ready: got %v; want nil", err)
	}
}

// TestReadyPipe checks what Ready writes, and its errors: no descriptor,
// and an old process that is gone (the pipe has no reader).
func TestReadyPipe(t *testing.T) {
	dupOf := func(f *os.File) int {
		fd, err := syscall.Dup(int(f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := ready(dupOf(w)); err != nil {
		t.Fatalf("ready: %v", err)
	}
	w.Close()
	if b, err := io.ReadAll(r); err != nil || len(b) != 1 {
		t.Errorf("read from the pipe: got %q, %v; want one byte, then EOF", b, err)
	}

	if err := ready(-1); err == nil || !strings.Contains(err.Error(), RestartReadyEnv) {
		t.Errorf("ready(-1): got %v; want an error naming %s", err, RestartReadyEnv)
	}

	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	r2.Close()
	if err := ready(dupOf(w2)); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("ready with no reader: got %v; want an error wrapping EPIPE", err)
	}
}

// TestRestartFileKeepsListenerNonblocking: the file Restart hands a new
// process for a plain *net.TCPListener is a duplicate whose Fd (which
// exec calls) leaves the old listener's socket non-blocking.
func TestRestartFileKeepsListenerNonblocking(t *testing.T) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := socketFileOf(NamedSocket{"web", ln})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Fd() // what exec.Cmd does with ExtraFiles
	rc, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) })
	if ferr != nil {
		t.Fatal(ferr)
	}
	if flags&unix.O_NONBLOCK == 0 {
		t.Fatal("the old listener's socket lost O_NONBLOCK")
	}
}
