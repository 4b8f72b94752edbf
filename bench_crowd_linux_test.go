//go:build linux

package netport

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A crowd is a number of idle connections held open on a server by a
// child process of its own (the test binary re-executed), so that neither
// the benchmark process nor the other server's crowd counts against one
// process's descriptor limit. Each connection exchanges one 16-byte
// message, then stays idle until the child's stdin closes. The child
// prints "ready N" once all N are open.
const (
	benchCrowd    = "bench-crowd"
	crowdAddrEnv  = "NETPORT_BENCH_CROWD_ADDR"
	crowdSizeEnv  = "NETPORT_BENCH_CROWD_SIZE"
	crowdSize     = 18000 // under the 20,000 descriptors a process may open here
	crowdSettle   = 10 * parkTick
	idleCPUWindow = 2 * time.Second
	// idleCPUSettle is how long BenchmarkIdleCPU waits after crowdPair
	// before its first window: crowdPair's forced collection shrinks a
	// server's heap goal, and the runtime's background scavenger, finding
	// the heap above it, returns some memory and sleeps 1–2 s before
	// looking again; that one wake-up is the set-up's, not the idle
	// server's.
	idleCPUSettle = 3 * time.Second
)

func init() { children[benchCrowd] = crowdMain }

func crowdMain() int {
	if err := raiseFileLimit(); err != nil {
		fmt.Fprintln(os.Stderr, "crowd: raising RLIMIT_NOFILE:", err)
	}
	n, err := strconv.Atoi(os.Getenv(crowdSizeEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "crowd:", err)
		return 1
	}
	// From a loopback address of its own, so that the crowd does not take
	// the ephemeral ports that the benchmark's clients connect from.
	cs, err := openIdle(os.Getenv(crowdAddrEnv), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, n, 32)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "crowd:", err)
		return 1
	}
	fmt.Printf("ready %d\n", len(cs))
	io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
	return 0
}

// crowdSizes are the crowds the echo and accept benchmarks run with:
// none, and crowdSize unless -short.
func crowdSizes() []int {
	if testing.Short() {
		return []int{0}
	}
	return []int{0, crowdSize}
}

// crowdPair gives every server a crowd of n idle connections (none for
// n == 0), waits until netport has had the time to park them, and
// collects the garbage the crowd's arrival left, so that a collection
// does not land in the measured phases.
func crowdPair(b *testing.B, servers []*benchChildProc, n int) {
	b.Helper()
	if n == 0 {
		return
	}
	if err := raiseFileLimit(); err != nil {
		b.Fatalf("raising RLIMIT_NOFILE: %v", err)
	}
	if lim := fileLimit(); lim < uint64(n)+200 {
		b.Skipf("RLIMIT_NOFILE is %d; need %d", lim, n+200)
	}
	for _, s := range servers {
		c := startChildProc(b, "crowd of "+s.kind, benchCrowd,
			crowdAddrEnv+"="+s.addr, crowdSizeEnv+"="+strconv.Itoa(n))
		line := c.readLine(b)
		if got, _ := strings.CutPrefix(line, "ready "); got != strconv.Itoa(n) {
			b.Fatalf("crowd of %s server said %q; want \"ready %d\"", s.kind, line, n)
		}
	}
	<-time.After(crowdSettle)
	for _, s := range servers {
		s.query(b, "rss") // collects garbage
	}
}

// BenchmarkIdleCPU: each server holds N idle connections (N = 1,000 and
// 18,000; the larger is skipped with -short), and the figure is the CPU
// time each server uses per second of a quiet window, measured for both
// over the same window. One iteration is one window of idleCPUWindow.
// netport-extra-ns/conn/s is netport's CPU per second beyond plain's,
// per idle connection.
//
// The CPU is read from outside (threadsCPU), not with the control
// protocol's cpu query: answering a query wakes the server (its poller,
// a spinning thread, the runtime's monitor backing off for some
// milliseconds after), which costs each server 0.4–5 ms a window, more
// than the idle servers do, and the more so for a plain server with
// 18,000 goroutines.
func BenchmarkIdleCPU(b *testing.B) {
	for _, n := range []int{1000, crowdSize} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			if n > 1000 && testing.Short() {
				b.Skip("holds 18,000 connections on each server; skipped with -short")
			}
			servers := startPair(b, modeEcho)
			crowdPair(b, servers, n)
			<-time.After(idleCPUSettle)
			var cpu [2]time.Duration
			var wall time.Duration
			for b.Loop() {
				var c0 [2]time.Duration
				for i, s := range servers {
					c0[i] = s.threadsCPU(b)
				}
				t0 := time.Now()
				<-time.After(idleCPUWindow)
				wall += time.Since(t0)
				for i, s := range servers {
					cpu[i] += s.threadsCPU(b) - c0[i]
				}
			}
			perSec := func(d time.Duration) float64 { return float64(d.Microseconds()) / wall.Seconds() }
			plain, np := perSec(cpu[0]), perSec(cpu[1])
			b.ReportMetric(plain, "plain-cpu-µs/s")
			b.ReportMetric(np, "netport-cpu-µs/s")
			b.ReportMetric((np-plain)*1e3/float64(n), "netport-extra-ns/conn/s")
		})
	}
}

// threadsCPU returns the CPU time the child's threads have used, summed
// from the kernel's per-thread records (/proc/PID/task/TID/schedstat,
// nanoseconds on a CPU), which reading does not wake the child. A thread
// that ended is no longer counted; the Go runtime keeps its threads.
func (s *benchChildProc) threadsCPU(b *testing.B) time.Duration {
	b.Helper()
	dir := fmt.Sprintf("/proc/%d/task", s.cmd.Process.Pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		b.Fatalf("%s server's threads: %v", s.kind, err)
	}
	var sum time.Duration
	for _, t := range tasks {
		st, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // the thread ended meanwhile
			}
			b.Fatalf("%s server's thread %s: %v", s.kind, t.Name(), err)
		}
		run, _, _ := strings.Cut(string(st), " ")
		ns, err := strconv.ParseInt(run, 10, 64)
		if err != nil {
			b.Fatalf("%s server's thread %s: schedstat %q: %v", s.kind, t.Name(), st, err)
		}
		sum += time.Duration(ns)
	}
	return sum
}
