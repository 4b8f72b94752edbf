//go:build linux

package netport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

func TestParseListenEnv(t *testing.T) {
	const self = 1234
	tests := []struct {
		name             string
		pid, fds, names  string
		wantN            int
		wantNames        []string
		wantOK           bool
		wantErr          string // in the message; "" for no error
		wantStrconvError bool
	}{
		{name: "good", pid: "1234", fds: "2", names: "a:b", wantN: 2, wantNames: []string{"a", "b"}, wantOK: true},
		{name: "good without names", pid: "1234", fds: "1", wantN: 1, wantOK: true},
		{name: "empty names", pid: "1234", fds: "3", names: "a::c", wantN: 3, wantNames: []string{"a", "", "c"}, wantOK: true},
		{name: "unset pid", fds: "2"},
		{name: "malformed pid", pid: "12x4", fds: "2"},
		{name: "other pid", pid: "1235", fds: "2", names: "a:b"},
		{name: "malformed fds", pid: "1234", fds: "two", wantOK: true, wantErr: `LISTEN_FDS="two"`, wantStrconvError: true},
		{name: "unset fds", pid: "1234", wantOK: true, wantErr: `LISTEN_FDS=""`, wantStrconvError: true},
		{name: "huge fds", pid: "1234", fds: "99999999999", wantOK: true, wantErr: `LISTEN_FDS="99999999999"`, wantStrconvError: true},
		{name: "zero", pid: "1234", fds: "0", names: "a", wantOK: true},
		{name: "negative", pid: "1234", fds: "-1", wantOK: true, wantErr: `LISTEN_FDS="-1"`},
		{name: "too few names", pid: "1234", fds: "2", names: "a", wantOK: true, wantErr: `LISTEN_FDNAMES="a"`},
		{name: "too many names", pid: "1234", fds: "2", names: "a:b:c", wantOK: true, wantErr: `LISTEN_FDNAMES="a:b:c"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, names, ok, err := parseListenEnv(tc.pid, tc.fds, tc.names, self)
			if ok != tc.wantOK {
				t.Errorf("got ok %v; want %v", ok, tc.wantOK)
			}
			if tc.wantErr == "" {
				if err != nil || n != tc.wantN || !slices.Equal(names, tc.wantNames) {
					t.Errorf("got %d, %q, %v; want %d, %q, nil", n, names, err, tc.wantN, tc.wantNames)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got error %v; want one containing %s", err, tc.wantErr)
			}
			var numErr *strconv.NumError
			if errors.As(err, &numErr) != tc.wantStrconvError {
				t.Errorf("got %v; want wrapping a *strconv.NumError: %v", err, tc.wantStrconvError)
			}
		})
	}
}

func TestInspect(t *testing.T) {
	tests := []struct {
		name string
		ipv6 bool
		fd   func(testing.TB) int
		want SocketInfo // FD is filled in
	}{
		{name: "tcp4 listener", fd: netFD("tcp4"),
			want: SocketInfo{Family: unix.AF_INET, Type: unix.SOCK_STREAM, Listening: true}},
		{name: "tcp6 bound", ipv6: true, fd: rawFD(unix.AF_INET6, unix.SOCK_STREAM, loopback6, false),
			want: SocketInfo{Family: unix.AF_INET6, Type: unix.SOCK_STREAM}},
		{name: "udp4", fd: netFD("udp4"),
			want: SocketInfo{Family: unix.AF_INET, Type: unix.SOCK_DGRAM}},
		{name: "unix listener", fd: netFD("unix"),
			want: SocketInfo{Family: unix.AF_UNIX, Type: unix.SOCK_STREAM, Listening: true}},
		{name: "unixpacket", fd: rawFD(unix.AF_UNIX, unix.SOCK_SEQPACKET, nil, false),
			want: SocketInfo{Family: unix.AF_UNIX, Type: unix.SOCK_SEQPACKET}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ipv6 {
				skipWithoutIPv6(t)
			}
			fd := tc.fd(t)
			tc.want.FD = fd
			got, err := Inspect(fd)
			if err != nil {
				t.Fatalf("Inspect(%d): %v", fd, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Inspect(%d) mismatch (-want +got):\n%s", fd, diff)
			}
		})
	}
}

// closedFD returns a descriptor number that was open a moment ago.
func closedFD(tb testing.TB) int {
	tb.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	fd := fdOf(r)
	r.Close()
	w.Close()
	return fd
}

// pipeFD returns the read end of a pipe, closed when the test ends.
func pipeFD(tb testing.TB) int {
	tb.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close(); w.Close() })
	return fdOf(r)
}

// tempFileFD returns a regular file, closed when the test ends.
func tempFileFD(tb testing.TB) int {
	tb.Helper()
	f, err := os.CreateTemp(tb.TempDir(), "file")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return fdOf(f)
}

func TestInspectErrors(t *testing.T) {
	tests := []struct {
		name string
		fd   func(testing.TB) int
		want error
	}{
		{"closed descriptor", closedFD, syscall.EBADF},
		{"pipe", pipeFD, syscall.ENOTSOCK},
		{"regular file", tempFileFD, syscall.ENOTSOCK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Inspect(tc.fd(t))
			var oe *net.OpError
			if !errors.Is(err, tc.want) || !errors.As(err, &oe) || oe.Op != "inspect" {
				t.Errorf("got %v; want a *net.OpError with Op inspect matching %v", err, tc.want)
			}
		})
	}
}

// listenVars are the socket-activation variables Inherited reads.
var listenVars = []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}

func TestInheritedUnset(t *testing.T) {
	for _, v := range listenVars {
		if _, ok := os.LookupEnv(v); ok {
			t.Skipf("%s is set in the test's environment", v)
		}
	}
	resetInherited()
	t.Cleanup(resetInherited)
	if infos, err := Inherited(); infos != nil || err != nil {
		t.Errorf("got %+v, %v; want nil, nil", infos, err)
	}
}

func TestInheritedInProcess(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	t.Run("zero descriptors", func(t *testing.T) {
		resetInherited()
		t.Cleanup(resetInherited)
		t.Setenv("LISTEN_PID", pid)
		t.Setenv("LISTEN_FDS", "0")
		if infos, err := Inherited(); infos != nil || err != nil {
			t.Errorf("got %+v, %v; want nil, nil", infos, err)
		}
		if v, ok := os.LookupEnv("LISTEN_FDS"); ok {
			t.Errorf("LISTEN_FDS=%q after Inherited; want it unset", v)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		resetInherited()
		t.Cleanup(resetInherited)
		t.Setenv("LISTEN_PID", pid)
		t.Setenv("LISTEN_FDS", "two")
		_, err := Inherited()
		var numErr *strconv.NumError
		if !errors.As(err, &numErr) {
			t.Fatalf("got %v; want an error wrapping a *strconv.NumError", err)
		}
		if infos, again := Inherited(); infos != nil || again != err {
			t.Errorf("second call: got %+v, %v; want nil, %v", infos, again, err)
		}
		if v := os.Getenv("LISTEN_FDS"); v != "two" {
			t.Errorf("LISTEN_FDS=%q after a failed Inherited; want it kept", v)
		}
	})
}

// setListenPIDEnv tells a child routine to set LISTEN_PID to its own
// process id, which its parent cannot know before starting it.
const setListenPIDEnv = "NETPORT_TEST_SET_LISTEN_PID"

func init() {
	children["inherited"] = childInherited
	children["inherited-other-pid"] = childInheritedOtherPID
	children["inherited-not-socket"] = childInheritedNotSocket
}

// childChecks collects what a child routine found wrong.
type childChecks []string

func (c *childChecks) errorf(format string, args ...any) {
	*c = append(*c, fmt.Sprintf(format, args...))
}

// status prints the failures to standard error and returns the child's
// exit status.
func (c childChecks) status() int {
	for _, msg := range c {
		fmt.Fprintln(os.Stderr, msg)
	}
	if len(c) > 0 {
		return 1
	}
	return 0
}

// childSetup sets LISTEN_PID when the parent asked for it.
func childSetup() {
	if os.Getenv(setListenPIDEnv) != "" {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
}

// checkCloseOnExec checks whether descriptors 3 and on, up to n of them,
// are close-on-exec.
func (c *childChecks) checkCloseOnExec(n int, want bool) {
	for fd := listenFDsStart; fd < listenFDsStart+n; fd++ {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if got := flags&unix.FD_CLOEXEC != 0; err != nil || got != want {
			c.errorf("descriptor %d: got close-on-exec %v, %v; want %v", fd, got, err, want)
		}
	}
}

// childInherited expects a tcp4 listener named "a" on descriptor 3 and a
// unix listener named "b" on descriptor 4.
func childInherited() int {
	childSetup()
	var c childChecks
	want := []SocketInfo{
		{FD: 3, Name: "a", Family: unix.AF_INET, Type: unix.SOCK_STREAM, Listening: true},
		{FD: 4, Name: "b", Family: unix.AF_UNIX, Type: unix.SOCK_STREAM, Listening: true},
	}
	infos, err := Inherited()
	if diff := cmp.Diff(want, infos); err != nil || diff != "" {
		c.errorf("Inherited: error %v, mismatch (-want +got):\n%s", err, diff)
	}
	for _, v := range listenVars {
		if val, ok := os.LookupEnv(v); ok {
			c.errorf("%s=%q after Inherited; want it unset", v, val)
		}
	}
	if again, err := Inherited(); err != nil || !slices.Equal(again, infos) {
		c.errorf("second Inherited: got %+v, %v; want %+v, nil", again, err, infos)
	}
	c.checkCloseOnExec(2, true)
	return c.status()
}

// childInheritedOtherPID expects variables meant for another process.
func childInheritedOtherPID() int {
	var c childChecks
	if infos, err := Inherited(); infos != nil || err != nil {
		c.errorf("Inherited: got %+v, %v; want nil, nil", infos, err)
	}
	for _, v := range listenVars {
		if _, ok := os.LookupEnv(v); !ok {
			c.errorf("%s unset by Inherited; want it left for its process", v)
		}
	}
	c.checkCloseOnExec(1, false)
	return c.status()
}

// childInheritedNotSocket expects a socket on descriptor 3 and a pipe,
// named "bad", on descriptor 4.
func childInheritedNotSocket() int {
	childSetup()
	var c childChecks
	infos, err := Inherited()
	if infos != nil || !errors.Is(err, syscall.ENOTSOCK) {
		c.errorf("Inherited: got %+v, %v; want nil and an error matching ENOTSOCK", infos, err)
	} else if msg := err.Error(); !strings.Contains(msg, "descriptor 4") || !strings.Contains(msg, `"bad"`) {
		c.errorf("Inherited: got %q; want it to name descriptor 4 and \"bad\"", msg)
	}
	if again, err2 := Inherited(); again != nil || err2 != err {
		c.errorf("second Inherited: got %+v, %v; want nil, %v", again, err2, err)
	}
	if _, ok := os.LookupEnv("LISTEN_FDS"); !ok {
		c.errorf("LISTEN_FDS unset after a failed Inherited; want it kept")
	}
	c.checkCloseOnExec(2, true)
	return c.status()
}

// runChild runs the test binary as the child routine name, with env added
// to a clean environment and files as descriptors 3 and on.
func runChild(tb testing.TB, name string, env []string, files ...*os.File) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), adoptTimeout)
	defer cancel()
	cmd := childCommand(ctx, name, env...)
	cmd.ExtraFiles = files
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("child %s: %v\n%s", name, err, out)
	}
}

func TestInheritedChild(t *testing.T) {
	tcp, _ := netFile(t, "tcp4", "127.0.0.1:0")
	uln, _ := netFile(t, "unix", testAddress(t, "unix"))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	tests := []struct {
		name, child string
		env         []string
		files       []*os.File
	}{
		{"two sockets", "inherited",
			[]string{setListenPIDEnv + "=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=a:b"}, []*os.File{tcp, uln}},
		{"another process", "inherited-other-pid",
			[]string{"LISTEN_PID=" + strconv.Itoa(os.Getpid()), "LISTEN_FDS=1", "LISTEN_FDNAMES=a"}, []*os.File{tcp}},
		{"not a socket", "inherited-not-socket",
			[]string{setListenPIDEnv + "=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=good:bad"}, []*os.File{tcp, r}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runChild(t, tc.child, tc.env, tc.files...)
		})
	}
}
