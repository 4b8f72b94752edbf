//go:build linux

package netport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// exhaustLimit is the RLIMIT_NOFILE of the child that runs out of
// descriptors: low, so that filling the table is quick.
const exhaustLimit = 64

func init() {
	children["exhaust-descriptors"] = childExhaustDescriptors
}

// countingListener counts the calls to Accept. Embedding the listener
// keeps its SyscallConn, SetDeadline and File methods visible to the port.
type countingListener struct {
	*net.TCPListener
	calls atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	l.calls.Add(1)
	return l.TCPListener.Accept()
}

// lineCounter is a log destination that only counts lines.
type lineCounter struct{ n atomic.Int64 }

func (l *lineCounter) Write(p []byte) (int, error) {
	l.n.Add(int64(bytes.Count(p, []byte("\n"))))
	return len(p), nil
}

// cpuTime returns the CPU time this process has used.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childExhaustDescriptors serves echo on a port whose process has run out
// of descriptors. It prints "addr ADDRESS", fills its descriptor table and
// prints "full N"; then it answers commands on standard input: "stats"
// prints "stats ACCEPTS LOGLINES CPU" (Accept calls, log lines and CPU
// time since the table was full), "free" closes the filler descriptors
// and prints "freed". It shuts the port down when standard input closes.
func childExhaustDescriptors() int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		return 1
	}
	if err := limitDescriptors(); err != nil {
		return fail("%v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail("listen: %v", err)
	}
	cl := &countingListener{TCPListener: ln.(*net.TCPListener)}
	logs := new(lineCounter)
	cfg := &Config{Logger: slog.New(slog.NewTextHandler(logs, nil))}
	p, err := cfg.Serve(cl, plainEchoFactory)
	if err != nil {
		return fail("serve: %v", err)
	}
	fmt.Printf("addr %s\n", p.Addr())

	fillers, err := fillDescriptors()
	if err != nil {
		return fail("%v", err)
	}
	calls0, cpu0 := cl.calls.Load(), cpuTime()
	fmt.Printf("full %d\n", len(fillers))

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "stats":
			fmt.Printf("stats %d %d %d\n", cl.calls.Load()-calls0, logs.n.Load(), cpuTime()-cpu0)
		case "free":
			for _, fd := range fillers {
				unix.Close(fd)
			}
			fillers = nil
			fmt.Println("freed")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		return fail("shutdown: %v", err)
	}
	return 0
}

// childProcess is a running child routine spoken to line by line.
type childProcess struct {
	tb    testing.TB
	stdin io.WriteCloser
	lines <-chan string
}

// startChildProcess starts the child routine name and stops it at cleanup.
func startChildProcess(tb testing.TB, name string) *childProcess {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*testTimeout)
	cmd := childCommand(ctx, name)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatalf("start child %s: %v", name, err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	tb.Cleanup(func() {
		stdin.Close() // the child's signal to stop
		for range lines {
			// Drain what the test did not read, until the child exits.
		}
		err := cmd.Wait()
		cancel()
		if err != nil {
			tb.Errorf("child %s: %v\n%s", name, err, stderr.String())
		}
	})
	return &childProcess{tb: tb, stdin: stdin, lines: lines}
}

// expect reads the child's next line, which must start with prefix, and
// returns the rest.
func (c *childProcess) expect(prefix string) string {
	c.tb.Helper()
	var line string
	select {
	case l, ok := <-c.lines:
		if !ok {
			c.tb.Fatalf("child: output ended; want a line starting %q", prefix)
		}
		line = l
	case <-time.After(testTimeout):
		c.tb.Fatalf("child: no line within %v; want one starting %q", testTimeout, prefix)
	}
	rest, found := strings.CutPrefix(line, prefix)
	if !found {
		c.tb.Fatalf("child: got %q; want a line starting %q", line, prefix)
	}
	return strings.TrimSpace(rest)
}

func (c *childProcess) send(cmd string) {
	c.tb.Helper()
	if _, err := fmt.Fprintln(c.stdin, cmd); err != nil {
		c.tb.Fatalf("child: send %q: %v", cmd, err)
	}
}

// TestDescriptorExhaustion runs a port in a child process whose descriptor
// table is full: queued clients must be closed at once rather than hang in
// the backlog, the accept goroutine must not spin, the log must stay
// quiet, and the port must serve again once descriptors are freed.
func TestDescriptorExhaustion(t *testing.T) {
	checkLeaks(t)
	const clients = 20
	child := startChildProcess(t, "exhaust-descriptors")
	addr := child.expect("addr ")
	child.expect("full ")

	closed := 0
	for i := range clients {
		c, err := net.DialTimeout("tcp", addr, testTimeout)
		if err != nil {
			t.Fatalf("client %d: dial: %v", i, err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(make([]byte, 1))
		c.Close()
		switch {
		case n == 0 && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)):
			closed++
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.Fatalf("client %d: not closed within 1s; want EOF or a reset", i)
		default:
			t.Fatalf("client %d: read: %d, %v; want EOF or a reset", i, n, err)
		}
	}

	child.send("stats")
	var accepts, logLines int
	var cpu time.Duration
	if _, err := fmt.Sscan(child.expect("stats "), &accepts, &logLines, &cpu); err != nil {
		t.Fatalf("child stats: %v", err)
	}
	t.Logf("%d of %d clients closed at once; %d log lines; %d Accept calls; CPU %v",
		closed, clients, logLines, accepts, cpu)
	if logLines < 1 || logLines > clients/4 {
		t.Errorf("log lines: got %d; want between 1 and %d (rate limited)", logLines, clients/4)
	}
	// Each client costs one Accept that fails and one that takes it; a
	// spinning loop would make thousands.
	if limit := 3*clients + 2; accepts > limit {
		t.Errorf("Accept calls: got %d; want at most %d", accepts, limit)
	}

	child.send("free")
	child.expect("freed")
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatalf("dial after freeing descriptors: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	roundTrip(t, c, []byte("served again"))
}

// limitProto echoes one line per connection, once the test releases it,
// and counts the connections live at once.
type limitProto struct {
	t       Transport
	line    []byte
	live    *atomic.Int32
	maxLive *atomic.Int32
	made    chan<- struct{}
	release <-chan struct{}
}

func (l *limitProto) ConnectionMade(t Transport) {
	l.t = t
	n := l.live.Add(1)
	for {
		m := l.maxLive.Load()
		if n <= m || l.maxLive.CompareAndSwap(m, n) {
			break
		}
	}
	l.made <- struct{}{}
}

func (l *limitProto) DataReceived(b []byte) {
	l.line = append(l.line, b...)
	if bytes.IndexByte(l.line, '\n') < 0 {
		return
	}
	select {
	case <-l.release:
	case <-time.After(testTimeout):
		l.t.AbortConnection()
		return
	}
	l.t.Write(l.line)
}

func (l *limitProto) ConnectionLost(error) { l.live.Add(-1) }

// TestOverloadMaxConns floods a port limited to 4 connections with 50
// clients: no more than 4 are ever served at once, and every client is
// served in turn.
func TestOverloadMaxConns(t *testing.T) {
	checkLeaks(t)
	const maxConns, clients = 4, 50
	var live, maxLive atomic.Int32
	made := make(chan struct{}, clients)
	release := make(chan struct{})
	f := FactoryFunc(func(net.Addr) Protocol {
		return &limitProto{live: &live, maxLive: &maxLive, made: made, release: release}
	})
	p := listen(t, &Config{MaxConns: maxConns}, "tcp", "127.0.0.1:0", f)

	errc := make(chan error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- floodClient(p.Addr().String(), i)
		}()
	}
	t.Cleanup(wg.Wait)

	// The first four are held; a fifth must wait in the backlog.
	for range maxConns {
		recv(t, made)
	}
	quiet(t, made, "connection made beyond MaxConns")
	for i := range clients {
		select {
		case release <- struct{}{}:
		case <-time.After(testTimeout):
			t.Fatalf("released %d of %d clients; the rest were never served", i, clients)
		}
	}
	for range clients {
		if err := recv(t, errc); err != nil {
			t.Error(err)
		}
	}
	if got := maxLive.Load(); got != maxConns {
		t.Errorf("most connections live at once: got %d; want %d", got, maxConns)
	}
}

// floodClient sends one line and reads it back.
func floodClient(addr string, i int) error {
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	msg := fmt.Sprintf("client %d\n", i)
	if _, err := io.WriteString(c, msg); err != nil {
		return fmt.Errorf("client %d: write: %w", i, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
		return fmt.Errorf("client %d: echo: got %q, %v; want %q", i, got, err, msg)
	}
	return nil
}

// fillDescriptors opens /dev/null until the process is out of descriptors
// (EMFILE) and returns what it opened, for the caller to close.
func fillDescriptors() ([]int, error) {
	var fillers []int
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EMFILE) {
			return fillers, nil
		}
		if err != nil {
			for _, fd := range fillers {
				unix.Close(fd)
			}
			return nil, fmt.Errorf("open /dev/null: %w", err)
		}
		fillers = append(fillers, fd)
	}
}

// limitDescriptors lowers the process's descriptor limit to exhaustLimit.
func limitDescriptors() error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	lim.Cur = exhaustLimit
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("setrlimit: %w", err)
	}
	return nil
}
