//go:build linux

package netport

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The benchmarks compare netport with the plain standard-library idiom
// (net.Listen, an accept loop, a goroutine per connection reading into a
// 4 KiB buffer) in the same run: both servers run side by side in child
// processes (see bench_linux_test.go), the same client in this process
// drives each in turn, alternating which goes first, and each reports the
// server's own CPU time per operation. Every benchmark reports the plain
// figure, the netport figure and their ratio, netport/plain.
//
//	go test -run '^$' -bench . -benchtime 5s -count 1 .
//
// runs the set in well under a minute (BENCHMARKS.md has the figures);
// -short skips the 10,000-connection one. An iteration is a fixed amount
// of work on each server, so a time -benchtime is the one to use: it
// bounds the whole run, and the idle-memory benchmark, whose iteration
// takes seconds, then runs it once or twice.
//
// Set NETPORT_BENCH_PROFILE_DIR to a directory to have every server child
// write a CPU profile there, named after the benchmark and server kind.
const benchProfileDirEnv = "NETPORT_BENCH_PROFILE_DIR"

// benchWait bounds every wait for a child or a client operation: a hang
// fails the benchmark instead of stalling the run. It is no timing
// assertion; a slow machine is still far inside it.
const benchWait = 2 * time.Minute

// BenchmarkEchoRequest: 64 persistent connections, each sending 64 bytes
// and waiting for the echo, over and over. One iteration is
// echoRounds round trips on every connection, on each server. A third
// server, netport with Config.WriteBuffer (Write never blocks), runs in
// the same rounds; its ratio to plain is queued-cpu-ratio.
func BenchmarkEchoRequest(b *testing.B) {
	const conns, echoRounds, size = 64, 50, 64
	servers := append(startPair(b, modeEcho), startBenchChild(b, kindQueued, modeEcho))
	clients := make([][]net.Conn, len(servers))
	for i, s := range servers {
		clients[i] = dialMany(b, s.addr, conns)
	}
	// Warm both servers up (goroutine stacks, pools) before measuring.
	for i := range servers {
		if err := benchPingPong(clients[i], 5, size); err != nil {
			b.Fatal(err)
		}
	}
	meters := make([]meter, len(servers))
	round := 0
	for b.Loop() {
		for k := range servers {
			i := (k + round) % len(servers) // each server goes first in turn
			meters[i].measure(b, servers[i], conns*echoRounds, func() error {
				return benchPingPong(clients[i], echoRounds, size)
			})
		}
		round++
	}
	report(b, "req", meters[:2])
	b.ReportMetric(meters[0].allocsPerOp(), "plain-allocs/req")
	b.ReportMetric(meters[1].allocsPerOp(), "netport-allocs/req")
	b.ReportMetric(meters[2].cpuPerOp(), "queued-cpu-ns/req")
	b.ReportMetric(meters[2].cpuPerOp()/meters[0].cpuPerOp(), "queued-cpu-ratio")
	b.ReportMetric(meters[2].allocsPerOp(), "queued-allocs/req")
	b.ReportMetric(meters[2].cores(meters[2].serverCPU), "queued-server-cores")
}

// BenchmarkAcceptConn: 32 concurrent clients, each connecting, exchanging
// a 16-byte echo and closing, over and over. One iteration is connRounds
// connections per client, on each server.
func BenchmarkAcceptConn(b *testing.B) {
	const clients, connRounds = 32, 10
	servers := startPair(b, modeEcho)
	for _, s := range servers {
		if err := churn(s.addr, clients, 2); err != nil {
			b.Fatal(err)
		}
	}
	meters := make([]meter, len(servers))
	round := 0
	for b.Loop() {
		for _, i := range order(round) {
			meters[i].measure(b, servers[i], clients*connRounds, func() error {
				return churn(servers[i].addr, clients, connRounds)
			})
		}
		round++
	}
	report(b, "conn", meters)
	b.ReportMetric(meters[0].allocsPerOp(), "plain-allocs/conn")
	b.ReportMetric(meters[1].allocsPerOp(), "netport-allocs/conn")
}

// BenchmarkStream: 4 connections streaming 64 KiB writes to a server that
// discards them (acking every MiB, so that the client knows when the
// server has read it all). One iteration is streamMiB MiB on every
// connection, on each server; the figure is CPU per MiB.
func BenchmarkStream(b *testing.B) {
	const conns, streamMiB = 4, 16
	servers := startPair(b, modeSink)
	clients := make([][]net.Conn, len(servers))
	for i, s := range servers {
		clients[i] = dialMany(b, s.addr, conns)
		if err := stream(clients[i], 1); err != nil {
			b.Fatal(err)
		}
	}
	meters := make([]meter, len(servers))
	round := 0
	for b.Loop() {
		for _, i := range order(round) {
			meters[i].measure(b, servers[i], conns*streamMiB, func() error {
				return stream(clients[i], streamMiB)
			})
		}
		round++
	}
	report(b, "MiB", meters)
}

// BenchmarkIdleConn: 10,000 connections that each exchanged one 16-byte
// message and then sit idle; the figure is the server's resident memory
// per connection. One iteration starts a fresh child of each kind (a
// server that has served connections before keeps some of their memory
// for reuse, which would flatter the second measurement), so a run
// usually has one iteration.
func BenchmarkIdleConn(b *testing.B) {
	if testing.Short() {
		b.Skip("holds 10,000 connections; skipped with -short")
	}
	const conns = 10000
	if err := raiseFileLimit(); err != nil {
		b.Fatalf("raising RLIMIT_NOFILE: %v", err)
	}
	if lim := fileLimit(); lim < conns+100 {
		b.Skipf("RLIMIT_NOFILE is %d; need %d", lim, conns+100)
	}
	var perConn [2]float64
	round := 0
	for b.Loop() {
		for _, i := range order(round) {
			kind := []string{kindPlain, kindNetport}[i]
			perConn[i] += idleRSS(b, kind, conns)
		}
		round++
	}
	plain, np := perConn[0]/float64(round), perConn[1]/float64(round)
	b.ReportMetric(plain, "plain-B/conn")
	b.ReportMetric(np, "netport-B/conn")
	b.ReportMetric(np/plain, "mem-ratio")
}

// idleFor is how long the connections of BenchmarkIdleConn sit idle
// before the server's memory is read.
const idleFor = 4 * parkTick

// idleRSS measures one fresh server's resident memory per idle connection.
func idleRSS(b *testing.B, kind string, conns int) float64 {
	b.Helper()
	s := startBenchChild(b, kind, modeEcho)
	defer s.stop(b)
	before := s.query(b, "rss")
	cs, err := openIdle(s.addr, conns, 32)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	if err != nil {
		b.Fatal(err)
	}
	// The workload: the connections now sit idle, long enough for
	// netport's sweeper to see them idle (a few of its ticks).
	<-time.After(idleFor)
	after := s.query(b, "rss")
	return float64(after-before) / float64(conns)
}

// startPair starts a plain and a netport server child, in that order.
func startPair(b *testing.B, mode string) []*benchChildProc {
	b.Helper()
	return []*benchChildProc{
		startBenchChild(b, kindPlain, mode),
		startBenchChild(b, kindNetport, mode),
	}
}

// order alternates which server goes first, so that neither always runs
// right after the other has warmed (or cooled) the caches.
func order(round int) []int {
	if round%2 == 0 {
		return []int{0, 1}
	}
	return []int{1, 0}
}

// A meter sums what the measured phases of one server cost.
type meter struct {
	ops       int64
	serverCPU time.Duration
	clientCPU time.Duration
	wall      time.Duration
	mallocs   int64
}

// measure runs one phase of ops operations against s and adds its cost.
// The child's malloc count is read outside the CPU window, because
// ReadMemStats stops the world.
func (m *meter) measure(b *testing.B, s *benchChildProc, ops int, run func() error) {
	b.Helper()
	m0 := s.query(b, "mallocs")
	c0 := s.query(b, "cpu")
	p0 := processCPU()
	t0 := time.Now()
	err := run()
	wall := time.Since(t0)
	p1 := processCPU()
	c1 := s.query(b, "cpu")
	m1 := s.query(b, "mallocs")
	if err != nil {
		b.Fatalf("%s server: %v", s.kind, err)
	}
	m.ops += int64(ops)
	m.serverCPU += time.Duration(c1 - c0)
	m.clientCPU += time.Duration(p1 - p0)
	m.wall += wall
	m.mallocs += m1 - m0
}

func (m *meter) cpuPerOp() float64    { return float64(m.serverCPU.Nanoseconds()) / float64(m.ops) }
func (m *meter) allocsPerOp() float64 { return float64(m.mallocs) / float64(m.ops) }

// cores is how many CPUs a side kept busy on average.
func (m *meter) cores(d time.Duration) float64 { return d.Seconds() / m.wall.Seconds() }

// report prints the server CPU per operation of both kinds, their ratio,
// and how busy each side was, which tells which one saturated.
func report(b *testing.B, unit string, m []meter) {
	b.ReportMetric(m[0].cpuPerOp(), "plain-cpu-ns/"+unit)
	b.ReportMetric(m[1].cpuPerOp(), "netport-cpu-ns/"+unit)
	b.ReportMetric(m[1].cpuPerOp()/m[0].cpuPerOp(), "cpu-ratio")
	for i, kind := range []string{kindPlain, kindNetport} {
		b.ReportMetric(m[i].cores(m[i].serverCPU), kind+"-server-cores")
		b.ReportMetric(m[i].cores(m[i].clientCPU), kind+"-client-cores")
	}
}

// benchChildProc is a running server child and its control pipes.
type benchChildProc struct {
	kind    string
	addr    string
	cmd     *exec.Cmd
	ctl     io.WriteCloser
	out     *os.File
	rd      *bufio.Reader
	stopped bool
}

// startBenchChild starts a server child and waits for its address. The
// child is stopped at cleanup if the caller has not stopped it before.
func startBenchChild(b *testing.B, kind, mode string) *benchChildProc {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childEnv+"="+benchChild, benchKindEnv+"="+kind, benchModeEnv+"="+mode)
	if dir := os.Getenv(benchProfileDirEnv); dir != "" {
		name := strings.NewReplacer("/", "_", " ", "_").Replace(b.Name())
		cmd.Env = append(cmd.Env, benchProfileEnv+"="+filepath.Join(dir, name+"-"+kind+".pprof"))
	}
	cmd.Stderr = os.Stderr
	ctl, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("starting %s server: %v", kind, err)
	}
	s := &benchChildProc{kind: kind, cmd: cmd, ctl: ctl, out: out.(*os.File), rd: bufio.NewReader(out)}
	b.Cleanup(func() { s.stop(b) })
	line := s.readLine(b)
	addr, ok := strings.CutPrefix(line, "addr ")
	if !ok {
		b.Fatalf("%s server said %q; want \"addr HOST:PORT\"", kind, line)
	}
	s.addr = addr
	return s
}

func (s *benchChildProc) readLine(b *testing.B) string {
	b.Helper()
	s.out.SetReadDeadline(time.Now().Add(benchWait))
	line, err := s.rd.ReadString('\n')
	if err != nil {
		b.Fatalf("reading from %s server: %v", s.kind, err)
	}
	return strings.TrimSuffix(line, "\n")
}

// query asks the child one question of its control protocol.
func (s *benchChildProc) query(b *testing.B, q string) int64 {
	b.Helper()
	if _, err := io.WriteString(s.ctl, q+"\n"); err != nil {
		b.Fatalf("asking %s server %q: %v", s.kind, q, err)
	}
	line := s.readLine(b)
	v, err := strconv.ParseInt(line, 10, 64)
	if err != nil || v < 0 {
		b.Fatalf("%s server answered %q to %q", s.kind, line, q)
	}
	return v
}

// stop closes the child's stdin, which ends it, and waits for it; a child
// that does not exit within benchWait is killed.
func (s *benchChildProc) stop(b *testing.B) {
	if s.stopped {
		return
	}
	s.stopped = true
	s.ctl.Close()
	exited := make(chan error, 1)
	go func() { exited <- s.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			b.Errorf("%s server: %v", s.kind, err)
		}
	case <-time.After(benchWait):
		s.cmd.Process.Kill()
		<-exited
		b.Errorf("%s server did not exit within %v; killed", s.kind, benchWait)
	}
}

// dialMany opens n connections to addr, closed at cleanup.
func dialMany(b *testing.B, addr string, n int) []net.Conn {
	b.Helper()
	cs := make([]net.Conn, 0, n)
	b.Cleanup(func() {
		for _, c := range cs {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", addr, benchWait)
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// eachConn runs fn for every connection on its own goroutine, with a
// deadline on each, and returns the first error.
func eachConn(cs []net.Conn, fn func(c net.Conn) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for i, c := range cs {
		c.SetDeadline(time.Now().Add(benchWait))
		wg.Go(func() { errs[i] = fn(c) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// benchPingPong sends size bytes on every connection and reads the echo back,
// rounds times.
func benchPingPong(cs []net.Conn, rounds, size int) error {
	return eachConn(cs, func(c net.Conn) error {
		msg := make([]byte, size)
		got := make([]byte, size)
		for range rounds {
			if _, err := c.Write(msg); err != nil {
				return err
			}
			if _, err := io.ReadFull(c, got); err != nil {
				return err
			}
		}
		return nil
	})
}

// churn runs clients goroutines that each connect to addr rounds times:
// write 16 bytes, read the echo, half-close, and close once the server
// has closed too. Waiting for the server's close keeps the server's work
// for each connection inside the measured phase.
func churn(addr string, clients, rounds int) error {
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for i := range clients {
		wg.Go(func() {
			for range rounds {
				if errs[i] = benchExchange(addr); errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// benchExchange connects to addr, echoes 16 bytes, half-closes, waits for the
// server's close and closes.
func benchExchange(addr string) error {
	c, err := net.DialTimeout("tcp", addr, benchWait)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(benchWait))
	var msg, got [16]byte
	if _, err := c.Write(msg[:]); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, got[:]); err != nil {
		return err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	if n, err := c.Read(got[:]); n != 0 || err != io.EOF {
		return fmt.Errorf("after half-close: read %d bytes, %v; want 0, EOF", n, err)
	}
	return nil
}

// stream writes mib MiB in 64 KiB writes on every connection, then reads
// the sink's acks for them.
func stream(cs []net.Conn, mib int) error {
	const chunk = 64 << 10
	return eachConn(cs, func(c net.Conn) error {
		buf := make([]byte, chunk)
		for range mib * (sinkAckEvery / chunk) {
			if _, err := c.Write(buf); err != nil {
				return err
			}
		}
		acks := make([]byte, mib)
		_, err := io.ReadFull(c, acks)
		return err
	})
}

// openIdle opens n connections to addr, workers at a time, each having
// exchanged one message; they are returned open, for the caller to close,
// even on error.
func openIdle(addr string, n, workers int) ([]net.Conn, error) {
	cs := make([]net.Conn, n)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				c, err := net.DialTimeout("tcp", addr, benchWait)
				if err != nil {
					errs[w] = err
					return
				}
				cs[i] = c
				c.SetDeadline(time.Now().Add(benchWait))
				var msg, got [16]byte
				if _, err := c.Write(msg[:]); err != nil {
					errs[w] = err
					return
				}
				if _, err := io.ReadFull(c, got[:]); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	open := cs[:0]
	for _, c := range cs {
		if c != nil {
			open = append(open, c)
		}
	}
	return open, errors.Join(errs...)
}
