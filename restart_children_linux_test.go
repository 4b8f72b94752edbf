//go:build linux

package netport

// The child routines that Restart starts in the restart tests, and the
// starter the tests use for them.

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	children["restart-serve"] = childRestartServe
	children["restart-exit"] = func() int { return 7 }
	children["restart-hang"] = childRestartHang
	children["restart-grandchild"] = childRestartGrandchild
	children["restart-grandchild-check"] = childRestartGrandchildCheck
}

// pidEcho answers every datagram with the process id.
type pidEcho struct{ d *DatagramPort }

func (p *pidEcho) StartProtocol(d *DatagramPort) { p.d = d }
func (p *pidEcho) DatagramReceived(_ []byte, from net.Addr) {
	p.d.WriteTo([]byte(strconv.Itoa(os.Getpid())), from)
}

// restartVarsUnset checks that none of the variables a Restart passes is
// left in the environment.
func (c *childChecks) restartVarsUnset() {
	for _, v := range restartVars {
		if val, ok := os.LookupEnv(v); ok {
			c.errorf("%s=%q after Inherited; want it unset", v, val)
		}
	}
}

// childRestartServe serves the sockets "web" (tcp), "dns" (udp) and
// "local" (unix) it inherits from a Restart, calls Ready, and shuts down
// once its standard input closes.
func childRestartServe() int {
	var c childChecks
	infos, err := Inherited()
	var names []string
	for _, info := range infos {
		names = append(names, info.Name)
	}
	if err != nil || !slices.Equal(names, []string{"web", "dns", "local"}) {
		c.errorf("Inherited: got %+v, %v; want web, dns and local", infos, err)
		return c.status()
	}
	c.restartVarsUnset()
	c.checkCloseOnExec(3, true)
	var ports []*Port
	var dgrams []*DatagramPort
	for _, info := range infos {
		if info.Type == syscall.SOCK_DGRAM {
			d, err := AdoptDatagramPort(info.FD, info.Family, &pidEcho{}, 0)
			if err != nil {
				c.errorf("AdoptDatagramPort %s: %v", info.Name, err)
				continue
			}
			dgrams = append(dgrams, d)
		} else {
			p, err := AdoptStreamPort(info.FD, info.Family, whoamiFactory)
			if err != nil {
				c.errorf("AdoptStreamPort %s: %v", info.Name, err)
				continue
			}
			ports = append(ports, p)
		}
		os.NewFile(uintptr(info.FD), info.Name).Close()
	}
	if len(c) > 0 {
		return c.status()
	}
	if err := Ready(); err != nil {
		c.errorf("Ready: %v", err)
	}
	if err := Ready(); err != nil {
		c.errorf("second Ready: %v", err)
	}
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, p := range ports {
		if err := p.Shutdown(ctx); err != nil {
			c.errorf("Shutdown: %v", err)
		}
	}
	for _, d := range dgrams {
		d.Close()
	}
	return c.status()
}

// childRestartHang says "started" and never calls Ready.
func childRestartHang() int {
	fmt.Println("started")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// childRestartGrandchild starts a process of its own that gets every
// variable of the Restart, as a program passing its environment on would
// (the descriptors leak to it too, since they are not close-on-exec before
// Inherited), and expects that process not to take the sockets. Then it
// takes them itself and calls Ready.
func childRestartGrandchild() int {
	var c childChecks
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, childEnv+"=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, childEnv+"=restart-grandchild-check",
		RestartParentEnv+"="+strconv.Itoa(os.Getppid()), RestartReadyEnv+"=4")
	if out, err := cmd.CombinedOutput(); err != nil {
		c.errorf("grandchild: %v\n%s", err, out)
	}
	infos, err := Inherited()
	if err != nil || len(infos) != 1 || infos[0].Name != "web" {
		c.errorf("Inherited: got %+v, %v; want the socket web", infos, err)
	}
	c.restartVarsUnset()
	if len(c) == 0 {
		if err := Ready(); err != nil {
			c.errorf("Ready: %v", err)
		}
	}
	return c.status()
}

// childRestartGrandchildCheck expects Inherited to see no socket, and
// Ready to do nothing, in a process whose parent is not the one named.
func childRestartGrandchildCheck() int {
	var c childChecks
	if _, ok := os.LookupEnv("LISTEN_FDS"); !ok {
		c.errorf("LISTEN_FDS is not set: the check would prove nothing")
	}
	if infos, err := Inherited(); infos != nil || err != nil {
		c.errorf("Inherited in a grandchild: got %+v, %v; want nil, nil", infos, err)
	}
	if err := Ready(); err != nil {
		c.errorf("Ready in a grandchild: got %v; want nil", err)
	}
	if _, ok := os.LookupEnv(RestartParentEnv); !ok {
		c.errorf("%s unset in a grandchild; want it left for its process", RestartParentEnv)
	}
	return c.status()
}

// childEnviron is this process's environment without the variables that
// choose a child routine or pass sockets.
func childEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(restartVars, k) && k != setListenPIDEnv && k != childEnv {
			env = append(env, kv)
		}
	}
	return append(env, "GORACE=atexit_sleep_ms=0")
}

// restartChild is a child routine started by Restart.
type restartChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser // closing it ends the child
	stderr *lockedBuffer
	exited chan error // from Wait, once started and ended
}

// newRestartChild prepares the child routine name for Restart; the test's
// cleanup ends it.
func newRestartChild(tb testing.TB, name string) *restartChild {
	tb.Helper()
	rc := &restartChild{stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	rc.cmd = exec.Command(os.Args[0], "-test.run=^$")
	rc.cmd.Env = append(childEnviron(), childEnv+"="+name)
	rc.cmd.Stderr = rc.stderr
	r, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	rc.cmd.Stdin, rc.stdin = r, w
	tb.Cleanup(func() {
		r.Close()
		w.Close()
		if tb.Failed() {
			tb.Logf("child %s stderr:\n%s", name, rc.stderr)
		}
	})
	return rc
}

// restart runs Restart with the child and, once it returns, waits for the
// child in the background.
func (rc *restartChild) restart(ctx context.Context, sockets ...NamedSocket) (*os.Process, error) {
	proc, err := Restart(ctx, rc.cmd, sockets...)
	if err == nil {
		go func() { rc.exited <- rc.cmd.Wait() }()
	}
	return proc, err
}

// stop closes the child's standard input and expects it to exit 0.
func (rc *restartChild) stop(tb testing.TB) {
	tb.Helper()
	rc.stdin.Close()
	select {
	case err := <-rc.exited:
		if err != nil {
			tb.Errorf("child: %v\n%s", err, rc.stderr)
		}
	case <-time.After(testTimeout):
		rc.cmd.Process.Kill()
		<-rc.exited
		tb.Errorf("child did not exit within %v", testTimeout)
	}
}
