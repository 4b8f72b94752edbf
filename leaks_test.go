package netport

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// warmUpDescriptors makes the runtime open the descriptors it opens lazily
// on first use (the network poller's), so that a count taken afterwards is
// not disturbed by them.
func warmUpDescriptors() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return
	}
	defer ln.Close()
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
	}
}

// openDescriptors returns this process's open descriptors, each with what
// /proc/self/fd says it is. It fails where /proc is missing.
func openDescriptors() (map[int]string, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	fds := make(map[int]string, len(ents))
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		// The descriptor of the directory being read is gone by now.
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			fds[fd] = target
		}
	}
	return fds, nil
}

// leakedDescriptors returns the descriptors open now that were not open in
// before, when there are more open now than there were; nil otherwise.
//
// The runtime keeps some descriptors of its own for a while: the pipes
// that splice(2) uses (io.Copy between two TCP connections) wait in a
// sync.Pool until garbage collection drops them and a finalizer closes
// them. So a count that is too high is taken again after collecting
// garbage, for up to a second, before it counts as a leak.
func leakedDescriptors(before map[int]string) []string {
	deadline := time.Now().Add(time.Second)
	for {
		after, err := openDescriptors()
		if err != nil || len(after) <= len(before) {
			return nil
		}
		if time.Now().After(deadline) {
			var leaked []string
			for fd, target := range after {
				if before[fd] != target {
					leaked = append(leaked, fmt.Sprintf("%d -> %s", fd, target))
				}
			}
			slices.Sort(leaked)
			return leaked
		}
		// Two collections empty a sync.Pool; finalizers then run on
		// their own goroutine, soon after.
		runtime.GC()
		runtime.GC()
		<-time.After(10 * time.Millisecond)
	}
}

// checkLeaks makes tb fail if, once its other cleanups have run, a
// goroutine it started still runs or more descriptors are open than when
// checkLeaks was called. Call it first in the test, so that its cleanup
// runs last; tests using it must not run in parallel with others.
func checkLeaks(tb testing.TB) {
	tb.Helper()
	warmUpDescriptors()
	ignore := goleak.IgnoreCurrent()
	before, fdErr := openDescriptors()
	tb.Cleanup(func() {
		goleak.VerifyNone(tb, ignore)
		if fdErr != nil {
			return
		}
		if leaked := leakedDescriptors(before); leaked != nil {
			tb.Errorf("descriptors: %d more open than at the start of the test (%v); want none",
				len(leaked), leaked)
		}
	})
}

// soakProto echoes what it receives and closes the connection once
// soakMessage bytes have gone back, so that TIME_WAIT stays on the
// server's side and the clients' ephemeral ports are not used up.
type soakProto struct {
	t    Transport
	n    int
	lost *atomic.Int64 // counts ConnectionLost
	bad  *atomic.Int64 // counts ConnectionLost reasons other than ErrConnectionDone
}

const soakMessage = 16

func (s *soakProto) ConnectionMade(t Transport) { s.t = t }

func (s *soakProto) DataReceived(b []byte) {
	s.t.Write(b)
	if s.n += len(b); s.n >= soakMessage {
		s.t.LoseConnection()
	}
}

func (s *soakProto) ConnectionLost(reason error) {
	if !errors.Is(reason, ErrConnectionDone) {
		s.bad.Add(1)
	}
	s.lost.Add(1)
}

// TestSoakShortConnections serves 20,000 short connections (2,000 with
// -short) from a few concurrent clients, and checks that goroutines and
// descriptors are back to where they started.
func TestSoakShortConnections(t *testing.T) {
	checkLeaks(t)
	total, clients := 20000, 4
	limit := 2 * time.Minute
	if testing.Short() {
		total, limit = 2000, 30*time.Second
	}
	var lost, bad atomic.Int64
	f := FactoryFunc(func(net.Addr) Protocol { return &soakProto{lost: &lost, bad: &bad} })
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	addr := p.Addr().String()

	start := time.Now()
	deadline := start.Add(limit)
	var next atomic.Int64
	errc := make(chan error, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(total) {
				if time.Now().After(deadline) {
					errc <- fmt.Errorf("soak did not finish within %v", limit)
					return
				}
				if err := soakOnce(addr, deadline); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	// Each ConnectionLost ends before its connection's goroutine does;
	// Shutdown waits for those, so the count is final after it.
	shutdown(t, p)
	if got := lost.Load(); got != int64(total) {
		t.Fatalf("ConnectionLost calls: got %d; want %d", got, total)
	}
	if got := bad.Load(); got != 0 {
		t.Fatalf("connections lost with an error: got %d; want 0", got)
	}
	t.Logf("%d connections in %v (%.0f/s)", total, elapsed.Round(time.Millisecond),
		float64(total)/elapsed.Seconds())
}

// soakOnce connects, echoes soakMessage bytes and reads the server's close.
func soakOnce(addr string, deadline time.Time) error {
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	msg := []byte("0123456789abcdef")
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, soakMessage+1)
	n, err := io.ReadFull(c, got)
	if !errors.Is(err, io.ErrUnexpectedEOF) || string(got[:n]) != string(msg) {
		return fmt.Errorf("echo then close: got %q, %v; want %q then EOF", got[:n], err, msg)
	}
	return nil
}
