//go:build linux

package netport

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
// echoRounds round trips on every connection, on each server. It runs
// with no other connection (idle=0), and with a crowd of idle ones held
// open on each server by a child process (idle=18000, skipped with
// -short), which netport has parked; p99 is the round trip's 99th
// percentile latency, as the client sees it. A third
// server, netport with Config.WriteBuffer (Write never blocks), runs in
// the same rounds; its ratio to plain is queued-cpu-ratio. With a crowd,
// a plain and a netport server without one run in the same rounds too:
// *-crowd-cost is CPU per request with the crowd over without, and
// *-nocrowd-p99-µs the round trip without it.
func BenchmarkEchoRequest(b *testing.B) {
	for _, idle := range crowdSizes() {
		b.Run(fmt.Sprintf("idle=%d", idle), func(b *testing.B) { benchEchoRequest(b, idle) })
	}
}

func benchEchoRequest(b *testing.B, idle int) {
	const conns, echoRounds, size = 64, 50, 64
	servers := append(startPair(b, modeEcho), startBenchChild(b, kindQueued, modeEcho))
	crowdPair(b, servers, idle)
	if idle > 0 {
		// The same pair without a crowd, measured in the same rounds:
		// sub-benchmarks run tens of seconds apart, and the machine's
		// load moves in between (as in benchAcceptConn).
		servers = append(servers, startPair(b, modeEcho)...)
	}
	clients := make([][]net.Conn, len(servers))
	for i, s := range servers {
		clients[i] = dialMany(b, s.addr, conns)
	}
	// Warm both servers up (goroutine stacks, pools) before measuring.
	for i := range servers {
		if _, err := benchPingPong(clients[i], 5, size); err != nil {
			b.Fatal(err)
		}
	}
	meters := make([]meter, len(servers))
	round := 0
	for b.Loop() {
		for k := range servers {
			i := (k + round) % len(servers) // each server goes first in turn
			meters[i].measure(b, servers[i], conns*echoRounds, func() error {
				lat, err := benchPingPong(clients[i], echoRounds, size)
				meters[i].lat = append(meters[i].lat, lat...)
				return err
			})
		}
		round++
	}
	// The phases above alternate, so each server's connections wait
	// through the others' phases, long enough for netport's to park: its
	// allocation count includes a park and resume per connection now and
	// then. steady-allocs/req counts one more round per server, right
	// after a round that woke every connection: requests alone.
	steady := make([]float64, 2)
	for i := range steady {
		if _, err := benchPingPong(clients[i], 1, size); err != nil {
			b.Fatal(err)
		}
		m0 := servers[i].query(b, "mallocs")
		if _, err := benchPingPong(clients[i], echoRounds, size); err != nil {
			b.Fatal(err)
		}
		steady[i] = float64(servers[i].query(b, "mallocs")-m0) / float64(conns*echoRounds)
	}
	report(b, "req", meters[:2])
	b.ReportMetric(meters[0].allocsPerOp(), "plain-allocs/req")
	b.ReportMetric(meters[1].allocsPerOp(), "netport-allocs/req")
	b.ReportMetric(steady[0], "plain-steady-allocs/req")
	b.ReportMetric(steady[1], "netport-steady-allocs/req")
	b.ReportMetric(meters[0].p99(), "plain-p99-µs")
	b.ReportMetric(meters[1].p99(), "netport-p99-µs")
	b.ReportMetric(meters[2].cpuPerOp(), "queued-cpu-ns/req")
	b.ReportMetric(meters[2].cpuPerOp()/meters[0].cpuPerOp(), "queued-cpu-ratio")
	b.ReportMetric(meters[2].allocsPerOp(), "queued-allocs/req")
	b.ReportMetric(meters[2].cores(meters[2].serverCPU), "queued-server-cores")
	if idle > 0 {
		b.ReportMetric(meters[0].cpuPerOp()/meters[3].cpuPerOp(), "plain-crowd-cost")
		b.ReportMetric(meters[1].cpuPerOp()/meters[4].cpuPerOp(), "netport-crowd-cost")
		b.ReportMetric(meters[3].p99(), "plain-nocrowd-p99-µs")
		b.ReportMetric(meters[4].p99(), "netport-nocrowd-p99-µs")
	}
}

// BenchmarkAcceptConn: 32 concurrent clients, each connecting, exchanging
// a 16-byte echo and closing, over and over. One iteration is connRounds
// connections per client, on each server. Like BenchmarkEchoRequest, it
// runs without and with a crowd of idle connections.
//
// With a crowd, a second pair of servers without one runs in the same
// rounds, and plain-crowd-cost and netport-crowd-cost are each kind's
// CPU per connection with the crowd over its CPU without: the cost of
// the crowd, measured side by side, so that a change in the machine's
// load between the two sub-benchmarks does not count as one. faults/conn
// are the server's page faults per connection.
func BenchmarkAcceptConn(b *testing.B) {
	for _, idle := range crowdSizes() {
		b.Run(fmt.Sprintf("idle=%d", idle), func(b *testing.B) { benchAcceptConn(b, idle) })
	}
}

func benchAcceptConn(b *testing.B, idle int) {
	const clients, connRounds = 32, 10
	servers := startPair(b, modeEcho)
	crowdPair(b, servers, idle)
	if idle > 0 {
		servers = append(servers, startPair(b, modeEcho)...)
	}
	for _, s := range servers {
		if err := churn(s.addr, clients, 2); err != nil {
			b.Fatal(err)
		}
	}
	meters := make([]meter, len(servers))
	round := 0
	for b.Loop() {
		for k := range servers {
			i := (k + round) % len(servers) // each server goes first in turn
			meters[i].measure(b, servers[i], clients*connRounds, func() error {
				return churn(servers[i].addr, clients, connRounds)
			})
		}
		round++
	}
	report(b, "conn", meters[:2])
	b.ReportMetric(meters[0].allocsPerOp(), "plain-allocs/conn")
	b.ReportMetric(meters[1].allocsPerOp(), "netport-allocs/conn")
	b.ReportMetric(meters[0].faultsPerOp(), "plain-faults/conn")
	b.ReportMetric(meters[1].faultsPerOp(), "netport-faults/conn")
	if idle > 0 {
		b.ReportMetric(meters[0].cpuPerOp()/meters[2].cpuPerOp(), "plain-crowd-cost")
		b.ReportMetric(meters[1].cpuPerOp()/meters[3].cpuPerOp(), "netport-crowd-cost")
		b.ReportMetric(meters[2].faultsPerOp(), "plain-nocrowd-faults/conn")
		b.ReportMetric(meters[3].faultsPerOp(), "netport-nocrowd-faults/conn")
	}
}

// BenchmarkStream: 4 connections streaming 64 KiB writes to a server that
// discards them (acking every MiB, so that the client knows when the
// server has read it all). One iteration is streamMiB MiB on every
// connection, on each server; the figure is CPU per MiB.
func BenchmarkStream(b *testing.B) { benchStreaming(b, modeSink, stream) }

// BenchmarkStreamEcho: BenchmarkStream's 4 connections and 64 KiB
// writes, but to echo servers, with the client reading the echo back as
// it writes. Both servers then write what they read, each with the
// buffer it reads into (4 KiB for plain, 64 KiB for netport), so the
// writes too are fewer for netport; the figure is server CPU per MiB
// received (and sent back).
func BenchmarkStreamEcho(b *testing.B) { benchStreaming(b, modeEcho, streamEcho) }

// benchStreaming runs a streaming benchmark: 4 connections to each server
// of a pair in the given mode, each iteration moving streamMiB MiB over
// every connection with run.
func benchStreaming(b *testing.B, mode string, run func([]net.Conn, int) error) {
	const conns, streamMiB = 4, 16
	servers := startPair(b, mode)
	clients := make([][]net.Conn, len(servers))
	for i, s := range servers {
		clients[i] = dialMany(b, s.addr, conns)
		if err := run(clients[i], 1); err != nil {
			b.Fatal(err)
		}
	}
	meters := make([]meter, len(servers))
	round := 0
	for b.Loop() {
		for _, i := range order(round) {
			meters[i].measure(b, servers[i], conns*streamMiB, func() error {
				return run(clients[i], streamMiB)
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
	var perConn [2]idleMem
	round := 0
	for b.Loop() {
		for _, i := range order(round) {
			kind := []string{kindPlain, kindNetport}[i]
			m := idleRSS(b, kind, conns)
			for j := range m {
				perConn[i][j] += m[j] / float64(conns)
			}
		}
		round++
	}
	for i, kind := range []string{kindPlain, kindNetport} {
		for j, what := range idleMemFigures {
			b.ReportMetric(perConn[i][j]/float64(round), kind+"-"+what+"-B/conn")
		}
	}
	b.ReportMetric(perConn[1][0]/perConn[0][0], "mem-ratio")
}

// idleMem is what idle connections add to a server's memory: resident,
// heap in use, stacks in use and the runtime's own records (and three
// parts of those), in bytes.
type idleMem [7]float64

var idleMemFigures = [...]string{"rss", "heap", "stack", "meta", "mspan", "gcsys", "othersys"}

// idleFor is how long the connections of BenchmarkIdleConn sit idle
// before the server's memory is read.
const idleFor = 4 * parkTick

// idleRSS measures what conns idle connections add to one fresh server's
// memory.
func idleRSS(b *testing.B, kind string, conns int) idleMem {
	b.Helper()
	s := startBenchChild(b, kind, modeEcho, benchHeapEnv+"=1")
	defer s.stop(b)
	var before, after idleMem
	for j, what := range idleMemFigures {
		before[j] = float64(s.query(b, what)) // rss first: it collects garbage
	}
	cs, err := openIdle(s.addr, nil, conns, 32)
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
	for j, what := range idleMemFigures {
		after[j] = float64(s.query(b, what))
	}
	for j := range after {
		after[j] -= before[j]
	}
	return after
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
	faults    int64
	lat       []time.Duration // round trips, when the workload times them
}

// measure runs one phase of ops operations against s and adds its cost.
// The child's malloc count is read outside the CPU window, because
// ReadMemStats stops the world.
func (m *meter) measure(b *testing.B, s *benchChildProc, ops int, run func() error) {
	b.Helper()
	m0 := s.query(b, "mallocs")
	f0 := s.query(b, "faults")
	c0 := s.query(b, "cpu")
	p0 := processCPU()
	t0 := time.Now()
	err := run()
	wall := time.Since(t0)
	p1 := processCPU()
	c1 := s.query(b, "cpu")
	f1 := s.query(b, "faults")
	m1 := s.query(b, "mallocs")
	if err != nil {
		b.Fatalf("%s server: %v", s.kind, err)
	}
	m.ops += int64(ops)
	m.serverCPU += time.Duration(c1 - c0)
	m.clientCPU += time.Duration(p1 - p0)
	m.wall += wall
	m.mallocs += m1 - m0
	m.faults += f1 - f0
}

func (m *meter) cpuPerOp() float64    { return float64(m.serverCPU.Nanoseconds()) / float64(m.ops) }
func (m *meter) allocsPerOp() float64 { return float64(m.mallocs) / float64(m.ops) }
func (m *meter) faultsPerOp() float64 { return float64(m.faults) / float64(m.ops) }

// p99 is the 99th percentile of the timed round trips, in microseconds.
func (m *meter) p99() float64 {
	if len(m.lat) == 0 {
		return 0
	}
	slices.Sort(m.lat)
	return float64(m.lat[len(m.lat)*99/100].Nanoseconds()) / 1e3
}

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
func startBenchChild(b *testing.B, kind, mode string, env ...string) *benchChildProc {
	b.Helper()
	env = append(env, benchKindEnv+"="+kind, benchModeEnv+"="+mode)
	s := startChildProc(b, kind, benchChild, env...)
	line := s.readLine(b)
	addr, ok := strings.CutPrefix(line, "addr ")
	if !ok {
		b.Fatalf("%s server said %q; want \"addr HOST:PORT\"", kind, line)
	}
	s.addr = addr
	return s
}

// startChildProc re-executes the test binary as the child routine name,
// with env added, and connects its control pipes; it is stopped at
// cleanup if the caller has not stopped it before.
func startChildProc(b *testing.B, kind, name string, env ...string) *benchChildProc {
	b.Helper()
	cmd := childCommand(context.Background(), name, env...)
	if dir := os.Getenv(benchProfileDirEnv); dir != "" && name == benchChild {
		n := strings.NewReplacer("/", "_", " ", "_").Replace(b.Name())
		cmd.Env = append(cmd.Env, benchProfileEnv+"="+filepath.Join(dir, n+"-"+kind+".pprof"))
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
		b.Fatalf("starting %s child: %v", kind, err)
	}
	s := &benchChildProc{kind: kind, cmd: cmd, ctl: ctl, out: out.(*os.File), rd: bufio.NewReader(out)}
	b.Cleanup(func() { s.stop(b) })
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
