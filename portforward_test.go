package netport

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// A port of Twisted's twisted.protocols.portforward: ProxyServer accepts
// a client, connects to the backend with a ProxyClient, and each side
// registers the other as its streaming producer, so that a slow reader on
// either side stops the reading on the other.

// proxy is portforward.Proxy: what one side receives, it writes to the
// other; when one side ends, the other is closed.
type proxy struct {
	tr   Transport
	peer Transport
}

func (p *proxy) DataReceived(b []byte) { p.peer.Write(b) }

func (p *proxy) ConnectionLost(error) {
	if p.peer != nil {
		p.peer.LoseConnection()
	}
}

// proxyServer is portforward.ProxyServer.
type proxyServer struct {
	proxy
	cfg  *Config
	dial func() (net.Conn, error)
}

func (s *proxyServer) ConnectionMade(t Transport) {
	s.tr = t
	// Don't read anything from the connecting client until there is
	// somewhere to send it to.
	t.PauseProducing()
	nc, err := s.dial()
	if err != nil {
		t.LoseConnection()
		return
	}
	client := &proxyClient{server: s}
	if _, err := s.cfg.ServeConn(nc, FactoryFunc(func(net.Addr) Protocol { return client })); err != nil {
		t.LoseConnection()
	}
}

// proxyClient is portforward.ProxyClient.
type proxyClient struct {
	proxy
	server *proxyServer
}

func (c *proxyClient) ConnectionMade(t Transport) {
	c.tr = t
	c.peer = c.server.tr
	c.server.peer = t // read only once the server resumes, below
	t.RegisterProducer(c.peer, true)
	c.peer.RegisterProducer(t, true)
	c.peer.ResumeProducing()
}

// proxyFactory is portforward.ProxyFactory.
func proxyFactory(cfg *Config, network, address string) Factory {
	return FactoryFunc(func(net.Addr) Protocol {
		return &proxyServer{cfg: cfg, dial: func() (net.Conn, error) {
			return net.DialTimeout(network, address, testTimeout)
		}}
	})
}

// startForwarder serves a forwarder (WriteBuffer wb) to an echo backend,
// dials it and checks one round trip through it.
func startForwarder(t *testing.T, wb int) (fwd *Port, client net.Conn, backends *echoFactory) {
	t.Helper()
	backends = newEchoFactory()
	backend := listen(t, nil, "tcp", "127.0.0.1:0", backends)
	cfg := &Config{WriteBuffer: wb}
	fwd = listen(t, cfg, "tcp", "127.0.0.1:0", proxyFactory(cfg, "tcp", backend.Addr().String()))
	client = dial(t, fwd)
	roundTrip(t, client, []byte("hello through the forwarder"))
	return fwd, client, backends
}

// TestPortForward: bytes go both ways through the forwarder, and closing
// the client closes the backend connection, in both write models.
func TestPortForward(t *testing.T) {
	for _, wb := range []int{0, 16 << 10} {
		t.Run("WriteBuffer="+strconv.Itoa(wb), func(t *testing.T) {
			_, c, backends := startForwarder(t, wb)
			roundTrip(t, c, pattern(4<<20))
			c.Close()
			if reason := recv(t, recv(t, backends.built).lost); !errors.Is(reason, ErrConnectionDone) {
				t.Fatalf("backend ConnectionLost(%v); want ErrConnectionDone", reason)
			}
		})
	}
}

// TestPortForwardShutdown: Shutdown ends a forwarder's connections, whose
// two sides are each other's producers, without waiting for its context:
// a protocol without Drain has its producer stopped and unregistered, so
// that LoseConnection need not wait for it.
func TestPortForwardShutdown(t *testing.T) {
	for _, wb := range []int{0, 16 << 10} {
		t.Run("WriteBuffer="+strconv.Itoa(wb), func(t *testing.T) {
			fwd, c, backends := startForwarder(t, wb)
			ctx, cancel := contextWithTimeout(testTimeout)
			defer cancel()
			if err := fwd.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v; want nil", err)
			}
			if got := readAll(t, c); len(got) != 0 {
				t.Fatalf("client read %q after Shutdown; want EOF", got)
			}
			recv(t, recv(t, backends.built).lost)
		})
	}
}

// proxyTransfer sends total bytes from a client through the forwarder
// that start makes (forwarding to backend) to a backend that reads them
// window bytes at a time, at most rate bytes a second (0: as fast as it
// can), and stops after each window to measure the heap: the largest
// growth over the start, after a GC, is returned.
func proxyTransfer(tb testing.TB, start func(backend string) net.Addr, total, window int, rate float64) uint64 {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	fwd := start(ln.Addr().String())

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	client, err := net.DialTimeout("tcp", fwd.String(), testTimeout)
	if err != nil {
		tb.Fatal(err)
	}
	defer client.Close()
	sent := make(chan error, 1)
	go func() {
		chunk := pattern(64 << 10)
		for n := 0; n < total; n += len(chunk) {
			if _, err := client.Write(chunk); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	back, err := ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	defer back.Close()
	buf := make([]byte, 64<<10)
	var peak uint64
	began := time.Now()
	for got := 0; got < total; {
		back.SetReadDeadline(time.Now().Add(testTimeout))
		end := min(got+window, total)
		for got < end {
			n, err := back.Read(buf[:min(len(buf), end-got)])
			if err != nil {
				tb.Fatalf("backend read after %d of %d bytes: %v", got, total, err)
			}
			got += n
		}
		if rate > 0 {
			// The throttle of a slow reader, not a synchronisation.
			if d := time.Duration(float64(got)/rate*float64(time.Second)) - time.Since(began); d > 0 {
				time.Sleep(d)
			}
		}
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		if m.HeapAlloc > before.HeapAlloc && m.HeapAlloc-before.HeapAlloc > peak {
			peak = m.HeapAlloc - before.HeapAlloc
		}
	}
	if err := recvWithin(tb, sent, testTimeout, "the client's writes"); err != nil {
		tb.Fatalf("client write: %v", err)
	}
	return peak
}

// TestProxyBoundsMemory: a 64 MiB transfer through the forwarder to a
// backend that reads in 4 MiB windows, stopping after each, keeps the
// forwarder's heap within a few WriteBuffers (12 at most here), because the producer
// stops the reading from the fast client while the backend's queue is
// full. Without producers the queue would take whatever the client can
// send while the backend pauses (MaxWriteBuffer here allows 1 GiB).
func TestProxyBoundsMemory(t *testing.T) {
	const writeBuffer = 256 << 10
	cfg := &Config{WriteBuffer: writeBuffer, MaxWriteBuffer: 1 << 30}
	peak := proxyTransfer(t, func(backend string) net.Addr {
		return listen(t, cfg, "tcp", "127.0.0.1:0", proxyFactory(cfg, "tcp", backend)).Addr()
	}, 64<<20, 4<<20, 0)
	t.Logf("heap growth at its largest: %d KiB (WriteBuffer %d KiB)", peak>>10, writeBuffer>>10)
	// Measured: 5 to 8 WriteBuffers on a busy machine (the live queue, an
	// emptied one kept for reuse, four read buffers, and what the
	// forwarder allocates between the GC and the reading of the figure).
	// Without producers it is over 50.
	if limit := uint64(12 * writeBuffer); peak > limit {
		t.Fatalf("heap grew by %d bytes; want at most %d (12 WriteBuffers)", peak, limit)
	}
}

// BenchmarkProxyMemory: the largest heap growth of a forwarder carrying
// NETPORT_PROXY_MIB MiB (default 64) to a backend reading 1 MiB windows at
// NETPORT_PROXY_RATE MiB/s (default 0: as fast as it can), for netport's
// forwarder (WriteBuffer 256 KiB, producers both ways) and, in the same
// run, the plain idiom (two io.Copy goroutines). The heap is the whole
// benchmark process's, client and backend included; both sides' figures
// carry the same client and backend costs.
func BenchmarkProxyMemory(b *testing.B) {
	const writeBuffer = 256 << 10
	mib, rate := 64, 0.0
	if v, err := strconv.Atoi(os.Getenv("NETPORT_PROXY_MIB")); err == nil && v > 0 {
		mib = v
	}
	if v, err := strconv.ParseFloat(os.Getenv("NETPORT_PROXY_RATE"), 64); err == nil && v > 0 {
		rate = v * (1 << 20)
	}
	cfg := &Config{WriteBuffer: writeBuffer, MaxWriteBuffer: 1 << 30}
	netportFwd := func(backend string) net.Addr {
		return listen(b, cfg, "tcp", "127.0.0.1:0", proxyFactory(cfg, "tcp", backend)).Addr()
	}
	plainFwd := func(backend string) net.Addr {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
		go func() {
			for {
				a, err := ln.Accept()
				if err != nil {
					return
				}
				c, err := net.Dial("tcp", backend)
				if err != nil {
					a.Close()
					continue
				}
				go func() { io.Copy(c, a); c.Close() }()
				go func() { io.Copy(a, c); a.Close() }()
			}
		}()
		return ln.Addr()
	}
	var peak [2]uint64
	for b.Loop() {
		peak[0] = max(peak[0], proxyTransfer(b, plainFwd, mib<<20, 1<<20, rate))
		peak[1] = max(peak[1], proxyTransfer(b, netportFwd, mib<<20, 1<<20, rate))
	}
	b.ReportMetric(float64(peak[0])/(1<<10), "plain-heap-KiB")
	b.ReportMetric(float64(peak[1])/(1<<10), "netport-heap-KiB")
	b.ReportMetric(float64(peak[1])/writeBuffer, "netport-heap-WriteBuffers")
	b.ReportMetric(float64(peak[1])/float64(max(peak[0], 1)), "heap-ratio")
}
