package netport

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The server side of the benchmarks runs in a child process (the test
// binary re-executed), so that its getrusage CPU time counts the server
// alone and not the client driving it. The child serves one kind of server
// and answers a line protocol on stdin/stdout:
//
//	addr 127.0.0.1:40123   first line it prints, once it is listening
//	cpu                    its user+system CPU time so far, in nanoseconds
//	mallocs                runtime.MemStats.Mallocs so far
//	rss                    VmRSS in bytes, after a GC that also returns
//	                       freed memory to the system (and, when profiling,
//	                       a heap profile written next to the CPU profile)
//	faults                 its page faults so far (minor and major)
//	heap, stack, meta      runtime.MemStats' HeapInuse, StackInuse, and the
//	                       runtime's own records (span structures, GC
//	                       metadata and the rest of OtherSys), in bytes
//	mspan, gcsys, othersys three parts of meta: MSpanInuse, GCSys, OtherSys
//
// It stops when stdin closes.
const (
	benchChild      = "bench-server"
	benchKindEnv    = "NETPORT_BENCH_SERVER"     // "plain" or "netport"
	benchModeEnv    = "NETPORT_BENCH_MODE"       // "echo" or "sink"
	benchProfileEnv = "NETPORT_BENCH_CPUPROFILE" // file for the child's CPU profile
	benchHeapEnv    = "NETPORT_BENCH_HEAPALL"    // "1": record every allocation for the heap profile
)

// The two server kinds compared by every benchmark.
const (
	kindPlain   = "plain"   // net.Listen and the hand-written accept loop
	kindNetport = "netport" // netport.Listen with a protocol
	kindQueued  = "queued"  // the same with Config.WriteBuffer: Write never blocks
)

// The two behaviours a benchmark server can have.
const (
	modeEcho = "echo" // write back every byte
	modeSink = "sink" // discard, writing one ack byte per sinkAckEvery bytes read
)

// sinkAckEvery is how many bytes a sink reads per ack byte it writes back,
// so that a streaming client knows when the server has read everything.
const sinkAckEvery = 1 << 20

// plainBufSize is the read buffer of the hand-written idiom.
const plainBufSize = 4 << 10

func init() { children[benchChild] = benchServerMain }

func benchServerMain() int {
	if err := raiseFileLimit(); err != nil {
		fmt.Fprintln(os.Stderr, "bench server: raising RLIMIT_NOFILE:", err)
	}
	if path := os.Getenv(benchProfileEnv); path != "" {
		if os.Getenv(benchHeapEnv) == "1" {
			// Every allocation in the heap profile; it slows every
			// allocation, so only the idle-memory benchmark asks.
			runtime.MemProfileRate = 1
		}
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench server:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench server:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	addr, stop, err := startBenchServer(os.Getenv(benchKindEnv), os.Getenv(benchModeEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench server:", err)
		return 1
	}
	defer stop()
	fmt.Printf("addr %s\n", addr)
	if err := serveControl(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench server:", err)
		return 1
	}
	return 0
}

// serveControl answers the parent's queries until stdin closes. It
// allocates nothing per query, so that the mallocs it reports are the
// server's own.
func serveControl(in *os.File, out *os.File) error {
	r := bufio.NewReader(in)
	var num []byte
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return nil // the parent closed stdin: stop serving
		}
		var v int64
		switch string(bytes.TrimSpace(line)) {
		case "cpu":
			v = processCPU()
		case "faults":
			v = pageFaults()
		case "mallocs":
			v = mallocs()
		case "rss":
			v = settledRSS()
			writeHeapProfile()
		case "heap", "stack", "meta", "mspan", "gcsys", "othersys":
			v = memStat(string(bytes.TrimSpace(line)))
		default:
			return fmt.Errorf("unknown query %q", line)
		}
		num = strconv.AppendInt(num[:0], v, 10)
		num = append(num, '\n')
		if _, err := out.Write(num); err != nil {
			return err
		}
	}
}

// startBenchServer starts one server of the given kind and mode on
// 127.0.0.1:0; stop ends it.
func startBenchServer(kind, mode string) (addr string, stop func(), err error) {
	if mode != modeEcho && mode != modeSink {
		return "", nil, fmt.Errorf("unknown mode %q", mode)
	}
	switch kind {
	case kindPlain:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", nil, err
		}
		handle := benchPlainEcho
		if mode == modeSink {
			handle = plainSink
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go handle(c)
			}
		}()
		return ln.Addr().String(), func() { ln.Close() }, nil
	case kindNetport, kindQueued:
		f := FactoryFunc(func(net.Addr) Protocol { return &benchEcho{} })
		if mode == modeSink {
			f = func(net.Addr) Protocol { return &benchSink{} }
		}
		var cfg *Config
		if kind == kindQueued {
			cfg = &Config{WriteBuffer: 64 << 10}
		}
		p, err := cfg.Listen("tcp", "127.0.0.1:0", f)
		if err != nil {
			return "", nil, err
		}
		return p.Addr().String(), func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			p.Shutdown(ctx)
		}, nil
	}
	return "", nil, fmt.Errorf("unknown server kind %q", kind)
}

// benchPlainEcho is the handler of the standard-library idiom.
func benchPlainEcho(c net.Conn) {
	defer c.Close()
	buf := make([]byte, plainBufSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, err := c.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// plainSink discards what it reads, acking every sinkAckEvery bytes.
func plainSink(c net.Conn) {
	defer c.Close()
	buf := make([]byte, plainBufSize)
	var count sinkCounter
	for {
		n, err := c.Read(buf)
		for a := count.add(n); a > 0; a-- {
			if _, err := c.Write(ackByte); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// benchEcho is the netport echo protocol: it writes back in DataReceived.
type benchEcho struct{ t Transport }

func (e *benchEcho) ConnectionMade(t Transport) { e.t = t }
func (e *benchEcho) DataReceived(b []byte)      { e.t.Write(b) }
func (e *benchEcho) ConnectionLost(error)       {}

// benchSink is the netport sink protocol, acking as plainSink does.
type benchSink struct {
	t     Transport
	count sinkCounter
}

func (s *benchSink) ConnectionMade(t Transport) { s.t = t }
func (s *benchSink) ConnectionLost(error)       {}
func (s *benchSink) DataReceived(b []byte) {
	for a := s.count.add(len(b)); a > 0; a-- {
		s.t.Write(ackByte)
	}
}

var ackByte = []byte{'k'}

// sinkCounter counts bytes read and says how many acks are due.
type sinkCounter int

func (s *sinkCounter) add(n int) int {
	*s += sinkCounter(n)
	acks := int(*s / sinkAckEvery)
	*s %= sinkAckEvery
	return acks
}

// processCPU returns the user and system CPU time this process has used,
// in nanoseconds.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// pageFaults returns the page faults this process has taken.
func pageFaults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return int64(ru.Minflt) + int64(ru.Majflt)
}

var memStats runtime.MemStats // package level: ReadMemStats would make a local escape

func mallocs() int64 {
	runtime.ReadMemStats(&memStats)
	return int64(memStats.Mallocs)
}

// memStat returns one of the memory figures of the control protocol.
func memStat(which string) int64 {
	runtime.ReadMemStats(&memStats)
	switch which {
	case "heap":
		return int64(memStats.HeapInuse)
	case "stack":
		return int64(memStats.StackInuse)
	case "mspan":
		return int64(memStats.MSpanInuse)
	case "gcsys":
		return int64(memStats.GCSys)
	case "othersys":
		return int64(memStats.OtherSys)
	}
	return int64(memStats.MSpanInuse + memStats.MCacheInuse + memStats.GCSys + memStats.OtherSys + memStats.BuckHashSys)
}

// writeHeapProfile writes a heap profile next to the CPU profile, when
// the child writes one.
func writeHeapProfile() {
	path := os.Getenv(benchProfileEnv)
	if path == "" {
		return
	}
	f, err := os.Create(strings.TrimSuffix(path, ".pprof") + ".heap.pprof")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench server:", err)
		return
	}
	defer f.Close()
	pprof.WriteHeapProfile(f)
}

// settledRSS returns the resident set size once garbage is collected and
// given back: two collections empty sync.Pool (its victim cache survives
// one), and FreeOSMemory returns the freed pages, so that what remains is
// what live objects and goroutine stacks hold.
func settledRSS() int64 {
	runtime.GC()
	debug.FreeOSMemory()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range bytes.Lines(status) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(rest) // "1234", "kB"
			if len(f) == 2 && string(f[1]) == "kB" {
				kb, err := strconv.ParseInt(string(f[0]), 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return -1
}

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit, for the
// benchmarks that hold thousands of connections. (Go raises it at start
// already; this also covers a binary that was started with it lowered.)
func raiseFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur == lim.Max {
		return nil
	}
	lim.Cur = lim.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

// fileLimit returns the soft RLIMIT_NOFILE.
func fileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return lim.Cur
}
