//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSIGHUPRestarts sends SIGHUP to a server while a client keeps
// dialling it: the server starts its own binary again, hands it its
// ports and exits 0, and no client is refused or reset meanwhile.
func TestSIGHUPRestarts(t *testing.T) {
	// The new process outlives the old one; as a subreaper this test
	// becomes its parent then, and can wait for it.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skipf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	defer errR.Close()
	old := start(t, func(cmd *exec.Cmd) { cmd.Stdout, cmd.Stderr = outW, errW },
		"SELF", "-listen", "tcp:127.0.0.1:0", "-listen", "udp:127.0.0.1:0")
	// Both processes write to these pipes: read them until both exit.
	outW.Close()
	errW.Close()
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	stderr := newSyncBuffer()
	go io.Copy(stderr, errR)
	defer func() {
		if t.Failed() {
			t.Logf("servers' stderr:\n%s", stderr)
		}
	}()
	next := func() string {
		t.Helper()
		select {
		case l := <-lines:
			return l
		case <-time.After(testTimeout):
			t.Fatalf("no output within %v", testTimeout)
		}
		return ""
	}
	_, tcpAddr := listening(t, next())
	_, udpAddr := listening(t, next())

	type result struct{ dials, failures int }
	stop := make(chan struct{})
	results := make(chan result, 1)
	go func() {
		var r result
		defer func() { results <- r }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			r.dials++
			if err := echoOnce(tcpAddr); err != nil {
				r.failures++
				t.Errorf("dial %d during the restart: %v", r.dials, err)
			}
		}
	}()

	old.cmd.Process.Signal(syscall.SIGHUP)
	if code := old.wait(t); code != 0 {
		t.Fatalf("old process: exit status %d; want 0", code)
	}
	stderr.waitFor(t, "restarted: the new process serves")
	m := regexp.MustCompile(`pid=(\d+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no pid in the log:\n%s", stderr)
	}
	pid, _ := strconv.Atoi(m[1])
	newProc, _ := os.FindProcess(pid)
	exited := make(chan *os.ProcessState, 1)
	go func() {
		st, _ := newProc.Wait()
		exited <- st
	}()
	defer func() {
		newProc.Signal(syscall.SIGTERM)
		select {
		case st := <-exited:
			if st == nil || !st.Success() {
				t.Errorf("new process: %v; want exit status 0", st)
			}
		case <-time.After(testTimeout):
			newProc.Kill()
			<-exited
			t.Errorf("new process did not exit on SIGTERM")
		}
	}()
	for _, want := range []string{tcpAddr, udpAddr} {
		if _, got := listening(t, next()); got != want {
			t.Errorf("new process: listening on %s; want the inherited %s", got, want)
		}
	}
	// Some more dials, all served by the new process alone.
	for range 20 {
		if err := echoOnce(tcpAddr); err != nil {
			t.Errorf("after the old process exited: %v", err)
		}
	}
	echoesDatagram(t, "udp", udpAddr)
	close(stop)
	r := <-results
	t.Logf("%d dials during and after the restart, %d failed", r.dials, r.failures)
}

// echoOnce dials address, writes a message and checks the echo.
func echoOnce(address string) error {
	c, err := net.DialTimeout("tcp", address, testTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	msg := []byte("restart?")
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(got) != string(msg) {
		return fmt.Errorf("echo: got %q; want %q", got, msg)
	}
	return nil
}
