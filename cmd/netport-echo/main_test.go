package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runEnv makes a re-executed test binary run the server instead of the
// tests, so that every test drives a real process.
const runEnv = "NETPORT_ECHO_RUN"

// testTimeout bounds every wait: a hang fails the test.
const testTimeout = 15 * time.Second

func TestMain(m *testing.M) {
	if os.Getenv(runEnv) != "" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// proc is a running netport-echo process.
type proc struct {
	cmd    *exec.Cmd
	lines  chan string // its standard output, line by line
	stderr *syncBuffer
	exited chan struct{}
	err    error // from Wait, once exited is closed
}

// syncBuffer collects a process's standard error and lets a test wait for
// a piece of text in it.
type syncBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{})} }

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.changed)
	b.changed = make(chan struct{})
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the text contains want.
func (b *syncBuffer) waitFor(tb testing.TB, want string) {
	tb.Helper()
	deadline := time.After(testTimeout)
	for {
		b.mu.Lock()
		found, changed := strings.Contains(b.buf.String(), want), b.changed
		b.mu.Unlock()
		if found {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			tb.Fatalf("no %q on standard error within %v; got:\n%s", want, testTimeout, b)
		}
	}
}

// start runs argv (the server itself, or a launcher in front of it) with
// the server's arguments; self stands for the test binary.
func start(tb testing.TB, setup func(*exec.Cmd), argv ...string) *proc {
	tb.Helper()
	for i, a := range argv {
		if a == "SELF" {
			argv[i] = os.Args[0]
		}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	// A race-enabled binary waits a second before exiting 0 unless told
	// not to; races are still reported.
	cmd.Env = append(os.Environ(), runEnv+"=1",
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	s := &proc{cmd: cmd, lines: make(chan string, 16), stderr: newSyncBuffer(), exited: make(chan struct{})}
	cmd.Stderr = s.stderr
	if setup != nil {
		setup(cmd)
	}
	var stdout io.ReadCloser
	if cmd.Stdout == nil {
		var err error
		if stdout, err = cmd.StdoutPipe(); err != nil {
			tb.Fatal(err)
		}
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %v: %v", argv, err)
	}
	go func() {
		if stdout != nil {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				s.lines <- sc.Text()
			}
		}
		close(s.lines)
		s.err = cmd.Wait()
		close(s.exited)
	}()
	tb.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(testTimeout):
			cmd.Process.Kill()
			<-s.exited
		}
		if tb.Failed() {
			tb.Logf("server stderr:\n%s", s.stderr)
		}
	})
	return s
}

// line waits for the next line of standard output.
func (s *proc) line(tb testing.TB) string {
	tb.Helper()
	select {
	case l, ok := <-s.lines:
		if !ok {
			tb.Fatalf("server ended without the expected output; stderr:\n%s", s.stderr)
		}
		return l
	case <-time.After(testTimeout):
		tb.Fatalf("no output from the server within %v; stderr:\n%s", testTimeout, s.stderr)
	}
	return ""
}

// wait waits for the server to exit and returns its exit status.
func (s *proc) wait(tb testing.TB) int {
	tb.Helper()
	select {
	case <-s.exited:
	case <-time.After(testTimeout):
		tb.Fatalf("server did not exit within %v", testTimeout)
	}
	if s.err == nil {
		return 0
	}
	if ee, ok := s.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	tb.Fatalf("wait: %v", s.err)
	return -1
}

// listening parses a "listening NETWORK ADDRESS" line.
func listening(tb testing.TB, line string) (network, address string) {
	tb.Helper()
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "listening" {
		tb.Fatalf("got line %q; want \"listening NETWORK ADDRESS\"", line)
	}
	return f[1], f[2]
}

// echoes dials network/address, writes a message and checks the echo.
func echoes(tb testing.TB, network, address string) {
	tb.Helper()
	c, err := net.DialTimeout(network, address, testTimeout)
	if err != nil {
		tb.Fatalf("dial %s %s: %v", network, address, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	msg := fmt.Sprintf("hello over %s", network)
	if _, err := io.WriteString(c, msg); err != nil {
		tb.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		tb.Fatalf("read echo: %v", err)
	}
	if string(got) != msg {
		tb.Fatalf("echo: got %q; want %q", got, msg)
	}
}

// echoesDatagram sends a datagram from a socket of its own and checks the
// reply.
func echoesDatagram(tb testing.TB, network, address string) {
	tb.Helper()
	var c net.PacketConn
	var to net.Addr
	var err error
	if network == "unixgram" {
		local := filepath.Join(tb.TempDir(), "client")
		c, err = net.ListenPacket("unixgram", local)
		to = &net.UnixAddr{Name: address, Net: "unixgram"}
	} else {
		c, err = net.ListenPacket(network, "127.0.0.1:0")
		if err == nil {
			to, err = net.ResolveUDPAddr(network, address)
		}
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	msg := []byte("a datagram")
	if _, err := c.WriteTo(msg, to); err != nil {
		tb.Fatalf("send: %v", err)
	}
	buf := make([]byte, 100)
	n, _, err := c.ReadFrom(buf)
	if err != nil {
		tb.Fatalf("read echo: %v", err)
	}
	if string(buf[:n]) != string(msg) {
		tb.Fatalf("echo: got %q; want %q", buf[:n], msg)
	}
}

func TestListenFlags(t *testing.T) {
	dir := t.TempDir()
	args := []string{"SELF",
		"-listen", "tcp:127.0.0.1:0",
		"-listen", "unix:" + filepath.Join(dir, "s"),
		"-listen", "udp:127.0.0.1:0",
		"-listen", "unixgram:" + filepath.Join(dir, "d"),
	}
	if c, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		c.Close()
		args = append(args, "-listen", "tcp6:[::1]:0")
	}
	s := start(t, nil, args...)
	for i := 1; i < len(args); i += 2 {
		network, address := listening(t, s.line(t))
		switch network {
		case "udp", "unixgram":
			echoesDatagram(t, network, address)
		default:
			echoes(t, network, address)
		}
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	if code := s.wait(t); code != 0 {
		t.Fatalf("exit status after SIGINT: %d; want 0", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "s")); !os.IsNotExist(err) {
		t.Fatalf("unix socket file after exit: %v; want it removed", err)
	}
}

func TestSIGTERMShutsDownGracefully(t *testing.T) {
	s := start(t, nil, "SELF", "-listen", "tcp:127.0.0.1:0")
	network, address := listening(t, s.line(t))
	c, err := net.DialTimeout(network, address, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	io.WriteString(c, "x")
	io.ReadFull(c, make([]byte, 1))
	s.cmd.Process.Signal(syscall.SIGTERM)
	// The open connection is ended gracefully: EOF, not a reset.
	if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("read after SIGTERM: %d, %v; want 0, EOF", n, err)
	}
	if code := s.wait(t); code != 0 {
		t.Fatalf("exit status after SIGTERM: %d; want 0", code)
	}
}

func TestBadFlagsExitTwo(t *testing.T) {
	for _, tt := range []struct {
		args  []string
		usage bool // a flag error: the usage follows the error line
	}{
		{[]string{"-listen", "sctp:127.0.0.1:1"}, true},
		{[]string{"-listen", "tcp"}, true},
		{[]string{"-listen", "tcp:nonsense"}, true},
		{[]string{"-fd", "x"}, true},
		{[]string{"-nosuchflag"}, true},
		{[]string{"stray"}, true},
		{[]string{"-fd", "99"}, false}, // not open: a socket it cannot use
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			s := start(t, nil, append([]string{"SELF"}, tt.args...)...)
			if code := s.wait(t); code != 2 {
				t.Fatalf("exit status %d; want 2", code)
			}
			first, rest, _ := strings.Cut(strings.TrimSpace(s.stderr.String()), "\n")
			if !strings.HasPrefix(first, "netport-echo: ") {
				t.Fatalf("stderr %q; want a first line starting with netport-echo:", s.stderr.String())
			}
			if hasUsage := strings.HasPrefix(rest, "Usage: netport-echo"); hasUsage != tt.usage || (!tt.usage && rest != "") {
				t.Fatalf("stderr %q; want the error line%s", s.stderr.String(), map[bool]string{true: " and the usage", false: " only"}[tt.usage])
			}
		})
	}
}

func TestHelpPrintsUsageAndExitsZero(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		t.Run(arg, func(t *testing.T) {
			s := start(t, nil, "SELF", arg)
			if code := s.wait(t); code != 0 {
				t.Fatalf("exit status %d; want 0 (stderr %q)", code, s.stderr.String())
			}
			var lines []string
			for l := range s.lines {
				lines = append(lines, l)
			}
			out := strings.Join(lines, "\n")
			for _, want := range []string{"Usage: netport-echo", "-listen NETWORK:ADDRESS", "-inetd", "-fd N"} {
				if !strings.Contains(out, want) {
					t.Errorf("stdout %q; want it to contain %q", out, want)
				}
			}
			if s.stderr.String() != "" {
				t.Errorf("stderr %q; want nothing", s.stderr.String())
			}
		})
	}
}

func TestAddressInUseExitsTwo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := start(t, nil, "SELF", "-listen", "tcp:"+ln.Addr().String())
	if code := s.wait(t); code != 2 {
		t.Fatalf("exit status %d; want 2", code)
	}
	if !strings.Contains(s.stderr.String(), "address already in use") {
		t.Fatalf("stderr %q; want it to name the cause", s.stderr)
	}
}

func TestFdFlagAdoptsAnyDescriptor(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	addr := ln.Addr().String()
	ln.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := start(t, func(c *exec.Cmd) { c.ExtraFiles = []*os.File{f} }, "SELF", "-fd", "3")
	f.Close()
	network, address := listening(t, s.line(t))
	if address != addr {
		t.Fatalf("listening on %s; want the adopted %s", address, addr)
	}
	echoes(t, network, address)
}

func TestInetdFlagServesStandardInput(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	f, err := conn.(*net.TCPConn).File()
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := start(t, func(c *exec.Cmd) { c.Stdin = f; c.Stdout = io.Discard }, "SELF", "-inetd")
	f.Close()
	client.SetDeadline(time.Now().Add(testTimeout))
	io.WriteString(client, "inetd")
	got := make([]byte, 5)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "inetd" {
		t.Fatalf("echo: %q, %v; want inetd", got, err)
	}
	client.(*net.TCPConn).CloseWrite()
	if code := s.wait(t); code != 0 {
		t.Fatalf("exit status after the connection ended: %d; want 0", code)
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, tt := range []struct {
		in, network, address string
		ok                   bool
	}{
		{"tcp:127.0.0.1:0", "tcp", "127.0.0.1:0", true},
		{"tcp6:[::1]:7007", "tcp6", "[::1]:7007", true},
		{"unix:/run/echo.sock", "unix", "/run/echo.sock", true},
		{"udp:127.0.0.1:7007", "udp", "127.0.0.1:7007", true},
		{"unixgram:/run/echo.dgram", "unixgram", "/run/echo.dgram", true},
		{"tcp", "", "", false},
		{":127.0.0.1:1", "", "", false},
		{"tcp:", "", "", false},
		{"tcp:localhost", "", "", false},
		{"ip:1.2.3.4", "", "", false},
	} {
		e, err := parseEndpoint(tt.in)
		if (err == nil) != tt.ok || e.network != tt.network || e.address != tt.address {
			t.Errorf("parseEndpoint(%q) = %+v, %v; want %s %s ok=%v", tt.in, e, err, tt.network, tt.address, tt.ok)
		}
	}
}

func FuzzParseEndpoint(f *testing.F) {
	for _, s := range []string{"tcp:127.0.0.1:0", "unix:/x", "udp6:[::1]:53", "tcp", ":", "tcp::", "unixgram:@abstract"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseEndpoint(s)
		if err != nil {
			return
		}
		if e.network+":"+e.address != s {
			t.Fatalf("parseEndpoint(%q) = %+v; does not join back", s, e)
		}
		if e.address == "" {
			t.Fatalf("parseEndpoint(%q) accepted an empty address", s)
		}
	})
}
