package netport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// currentWatcher returns the idle watcher in use, or nil.
func currentWatcher() *idleWatcher {
	watchMu.Lock()
	defer watchMu.Unlock()
	return watcher
}

// TestWatcherFailureResumesParked: when epoll_wait fails, the watcher
// wakes every parked connection instead of stranding them, and the next
// park starts a new watcher.
func TestWatcherFailureResumesParked(t *testing.T) {
	f := newHookFactory(nil, echoData)
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	a, ca, _ := servedConn(t, p, f)
	b, cb, _ := servedConn(t, p, f)
	waitParked(t, ca)
	waitParked(t, cb)
	old := currentWatcher()
	if old == nil {
		t.Fatal("connections parked, but no watcher")
	}
	t.Cleanup(func() { epollWaitFault.Store(0) })
	epollWaitFault.Store(int32(syscall.EINVAL))
	// The data wakes the watcher, whose epoll_wait then fails: a must be
	// served all the same, and b, parked too, must not be stranded.
	roundTrip(t, a, []byte("wakes the failing watcher"))
	roundTrip(t, b, []byte("b was resumed"))
	waitParked(t, cb)
	if w := currentWatcher(); w == old || w == nil {
		t.Fatalf("watcher after the failure: %p; want a new one (old %p)", w, old)
	}
	roundTrip(t, b, []byte("parked with the new watcher"))
	if !old.dead.Load() {
		t.Fatal("the failed watcher is not marked dead")
	}
}

// epollTargets counts the descriptors registered in the epoll set epfd.
func epollTargets(tb testing.TB, epfd int) int {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", epfd))
	if err != nil {
		tb.Fatal(err)
	}
	return strings.Count(string(b), "tfd:")
}

// TestAbortParkedUnwatches: aborting a parked connection takes its socket
// out of the watcher's epoll set before closing it, even while another
// descriptor (a File taken from the connection) keeps the socket alive,
// where close(2) alone would leave the registration behind.
func TestAbortParkedUnwatches(t *testing.T) {
	f := newHookFactory(nil, echoData)
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	_, ca, ha := servedConn(t, p, f)
	_, cb, _ := servedConn(t, p, f)
	waitParked(t, ca)
	waitParked(t, cb) // keeps the watcher open after a ends
	dup, err := ca.raw.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer dup.Close()
	w := ca.idle.watch
	if n := epollTargets(t, w.epfd); n != 2 {
		t.Fatalf("epoll set holds %d sockets; want 2", n)
	}
	ca.AbortConnection()
	if reason := recv(t, ha.lost); !errors.Is(reason, ErrConnectionAborted) {
		t.Fatalf("ConnectionLost(%v); want ErrConnectionAborted", reason)
	}
	waitClosed(t, ca.Done(), "a's end")
	if n := epollTargets(t, w.epfd); n != 1 {
		t.Fatalf("epoll set holds %d sockets after the abort; want 1", n)
	}
}

// TestParkedUserDeadline: a read deadline set on a parked connection
// takes its goroutine back, so the deadline ends the connection when it
// passes; a connection with a deadline set does not park again.
func TestParkedUserDeadline(t *testing.T) {
	f := newHookFactory(nil, echoData)
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	_, c, h := servedConn(t, p, f)
	waitParked(t, c)
	c.Conn().SetReadDeadline(time.Now().Add(userDeadline))
	wantDeadlineLost(t, recv(t, h.lost))
}
