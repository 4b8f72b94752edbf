//go:build linux

package netport

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// whoami tells each client which process served it, then closes.
type whoami struct{}

func (whoami) ConnectionMade(t Transport) {
	fmt.Fprintf(t, "%d\n", os.Getpid())
	t.LoseConnection()
}
func (whoami) DataReceived([]byte)  {}
func (whoami) ConnectionLost(error) {}

var whoamiFactory = FactoryFunc(func(net.Addr) Protocol { return whoami{} })

func init() {
	children["handoff"] = childHandoff
}

// childHandoff adopts descriptor 3, says "ready", and serves until its
// standard input closes.
func childHandoff() int {
	p, err := AdoptStreamPort(3, syscall.AF_INET, whoamiFactory)
	if err != nil {
		fmt.Fprintln(os.Stderr, "adopt:", err)
		return 1
	}
	os.NewFile(3, "inherited").Close()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "shutdown:", err)
		return 1
	}
	return 0
}

// TestHandoffToChildProcess hands a listening socket to a child process
// with Port.File while clients keep connecting: the parent stops, the
// child serves, and no client is refused at any point.
func TestHandoffToChildProcess(t *testing.T) {
	p, err := Listen("tcp4", "127.0.0.1:0", whoamiFactory)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	addr := p.Addr().String()

	// Clients connect without pause, before, during and after the handoff.
	type answer struct {
		pid int
		err error
	}
	answers := make(chan answer)
	stop := make(chan struct{})
	clientDone := make(chan struct{})
	go func() {
		defer close(clientDone)
		for {
			pid, err := askPid(addr)
			select {
			case answers <- answer{pid, err}:
			case <-stop:
				return
			}
		}
	}()
	defer func() {
		close(stop)
		<-clientDone
	}()

	waitForPid := func(want int) {
		t.Helper()
		for {
			a := recv(t, answers)
			if a.err != nil {
				t.Fatalf("a client failed during the handoff: %v", a.err)
			}
			if a.pid == want {
				return
			}
		}
	}
	waitForPid(os.Getpid())

	f, err := p.File()
	if err != nil {
		t.Fatalf("File: %v", err)
	}
	cmd := childCommand(context.Background(), "handoff")
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	exited := make(chan error, 1)
	defer func() {
		stdin.Close()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("child: %v", err)
			}
		case <-time.After(testTimeout):
			cmd.Process.Kill()
			t.Errorf("child did not exit")
		}
	}()
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
		io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	if got := recv(t, ready); got != "ready" {
		t.Fatalf("child said %q; want ready", got)
	}

	shutdown(t, p)
	waitForPid(cmd.Process.Pid)
	// And a few more, all from the child.
	for i := 0; i < 20; i++ {
		a := recv(t, answers)
		if a.err != nil {
			t.Fatalf("client after the handoff: %v", a.err)
		}
		if a.pid != cmd.Process.Pid {
			t.Fatalf("served by pid %d after the parent stopped; want the child %d", a.pid, cmd.Process.Pid)
		}
	}
}

func askPid(addr string) (int, error) {
	c, err := net.DialTimeout("tcp4", addr, testTimeout)
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
