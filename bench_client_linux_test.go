//go:build linux

package netport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The benchmarks' clients: they run in the benchmark process, or in a
// crowd child (bench_crowd_linux_test.go).

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

// benchPingPong sends size bytes on every connection and reads the echo
// back, rounds times, and returns how long each round trip took.
func benchPingPong(cs []net.Conn, rounds, size int) ([]time.Duration, error) {
	lat := make([][]time.Duration, len(cs))
	var next atomic.Int32
	err := eachConn(cs, func(c net.Conn) error {
		mine := make([]time.Duration, 0, rounds)
		defer func() { lat[next.Add(1)-1] = mine }()
		msg := make([]byte, size)
		got := make([]byte, size)
		for range rounds {
			t0 := time.Now()
			if _, err := c.Write(msg); err != nil {
				return err
			}
			if _, err := io.ReadFull(c, got); err != nil {
				return err
			}
			mine = append(mine, time.Since(t0))
		}
		return nil
	})
	return slices.Concat(lat...), err
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

// streamEcho writes mib MiB in 64 KiB writes on every connection while
// reading the echo back, and returns once all of it has come back.
func streamEcho(cs []net.Conn, mib int) error {
	const chunk = 64 << 10
	return eachConn(cs, func(c net.Conn) error {
		read := make(chan error, 1)
		go func() {
			_, err := io.CopyN(io.Discard, c, int64(mib)<<20)
			read <- err
		}()
		buf := make([]byte, chunk)
		for range mib * (1 << 20 / chunk) {
			if _, err := c.Write(buf); err != nil {
				<-read
				return err
			}
		}
		return <-read
	})
}

// openIdle opens n connections to addr from the address from (nil for
// any), workers at a time, each having exchanged one message; they are
// returned open, for the caller to close, even on error.
func openIdle(addr string, from net.Addr, n, workers int) ([]net.Conn, error) {
	d := net.Dialer{Timeout: benchWait, LocalAddr: from}
	if from != nil {
		// Bound to an address with port 0, a socket would take its port
		// for itself, and n of them would take most of the system's
		// ephemeral ports; with IP_BIND_ADDRESS_NO_PORT the port is chosen
		// at connect and shared by connections to other destinations.
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			})
			return errors.Join(err, serr)
		}
	}
	cs := make([]net.Conn, n)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				c, err := d.Dial("tcp", addr)
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
				// No deadline while idle: it would keep a timer per
				// connection in this process.
				c.SetDeadline(time.Time{})
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
