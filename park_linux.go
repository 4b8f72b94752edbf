package netport

import (
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// canPark says whether a readiness-read connection may park (park.go).
const canPark = true

// An idleWatcher holds the parked connections of the whole process in one
// epoll set, and wakes each when its socket becomes readable. Its one
// goroutine waits for the epoll descriptor itself to become readable in
// Go's own poller, so no thread is blocked on it. It lives while any
// connection that has parked is still open: the last one to end closes
// it, and the next to park makes a new one.
//
// A connection is registered one-shot, so that an event wakes it once
// and then nothing fires until it parks again; it is keyed by a small
// number rather than a pointer, and an event for a key that is gone, or
// for a connection not parked, does no harm.
type idleWatcher struct {
	epfd int
	file *os.File
	conn syscall.RawConn

	// The members, by their key (the epoll event's data): a slice with
	// a list of free keys rather than a map, whose entries cost an idle
	// connection two to three times as much. Guarded by watchMu.
	conns []*Conn
	free  []int32
	count int

	// dead is set when epoll_wait failed and the loop gave up: every
	// member was woken, and each leaves this watcher the next time it
	// parks, for a new one.
	dead atomic.Bool
}

var (
	watchMu sync.Mutex
	watcher *idleWatcher // guarded by watchMu; nil while nothing is parked

	// epollWaitFault, when set by a test, makes the next epoll_wait fail
	// with the errno it holds.
	epollWaitFault atomic.Int32
)

// joinWatcher makes c a member of the watcher, starting one if none runs.
func (c *Conn) joinWatcher() error {
	watchMu.Lock()
	defer watchMu.Unlock()
	if watcher == nil {
		w, err := newIdleWatcher()
		if err != nil {
			return err
		}
		watcher = w
		go w.loop()
	}
	w := watcher
	var id int32
	if n := len(w.free); n > 0 {
		// A key is reused at once: an event the loop took for the
		// connection that had it wakes the new one for nothing, which
		// then finds no data and waits again.
		id = w.free[n-1]
		w.free = w.free[:n-1]
	} else {
		id = int32(len(w.conns))
		w.conns = append(w.conns, nil)
	}
	w.conns[id] = c
	w.count++
	c.idle.watch, c.idle.id = w, id
	return nil
}

// leaveWatcher ends c's membership; the last member closes the watcher.
func (c *Conn) leaveWatcher() {
	w := c.idle.watch
	if w == nil {
		return
	}
	c.idle.watch = nil
	watchMu.Lock()
	w.conns[c.idle.id] = nil
	w.free = append(w.free, c.idle.id)
	w.count--
	last := w.count == 0
	if last && watcher == w {
		watcher = nil
	}
	watchMu.Unlock()
	if last {
		// Wakes the watcher's goroutine, which then returns; closing
		// the epoll descriptor drops whatever it still holds.
		w.file.Close()
	}
}

func newIdleWatcher() (*idleWatcher, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("setnonblock", err)
	}
	f := os.NewFile(uintptr(fd), "netport-idle")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &idleWatcher{epfd: fd, file: f, conn: rc}, nil
}

// loop waits for events until the watcher is closed.
func (w *idleWatcher) loop() {
	events := make([]syscall.EpollEvent, 128)
	var n int
	var werr error
	ready := func(fd uintptr) bool {
		for {
			if e := epollWaitFault.Swap(0); e != 0 {
				n, werr = 0, syscall.Errno(e)
				return true
			}
			m, err := syscall.EpollWait(int(fd), events, 0)
			switch {
			case err == syscall.EINTR:
				continue
			case err != nil:
				n, werr = 0, err
				return true
			}
			n = m
			return m > 0
		}
	}
	var woken []*Conn
	for {
		if err := w.conn.Read(ready); err != nil {
			return // closed by the last member to leave
		}
		if werr != nil {
			w.fail()
			return
		}
		watchMu.Lock()
		for _, ev := range events[:n] {
			if ev.Fd < 0 || int(ev.Fd) >= len(w.conns) {
				continue
			}
			if c := w.conns[ev.Fd]; c != nil {
				woken = append(woken, c)
			}
		}
		watchMu.Unlock()
		for i, c := range woken {
			c.notify()
			woken[i] = nil
		}
		woken = woken[:0]
	}
}

// fail gives up a watcher whose epoll_wait failed: no event would ever
// wake its members, so every one is woken now and reads on with its own
// goroutine; the next connection to park starts a new watcher. The epoll
// descriptor stays open until the last member has left, so that each can
// still take its registration out.
func (w *idleWatcher) fail() {
	w.dead.Store(true)
	watchMu.Lock()
	if watcher == w {
		watcher = nil
	}
	members := make([]*Conn, 0, w.count)
	for _, c := range w.conns {
		if c != nil {
			members = append(members, c)
		}
	}
	empty := w.count == 0
	watchMu.Unlock()
	if empty {
		w.file.Close()
	}
	for _, c := range members {
		c.notify()
	}
}

// parkLocked registers the connection's socket with the watcher and
// parks the connection; called with mu held, by the goroutine serving it,
// after a read found nothing. Holding mu keeps out the changes that would
// need the goroutine (drain, LoseConnection...): they come before, and
// parkLocked's caller sees them, or after, and they find it parked.
func (c *Conn) parkLocked(now time.Time) int {
	if w := c.idle.watch; w != nil && w.dead.Load() {
		c.unwatchLocked()
		c.leaveWatcher()
	}
	if c.idle.watch == nil {
		if err := c.joinWatcher(); err != nil {
			return parkFailed
		}
	}
	w := c.idle.watch
	gen := c.beginPark(now)
	if !c.register() {
		c.stopTimer()
		return parkFailed
	}
	if !c.commitPark(gen) {
		return parkRaced
	}
	if w.dead.Load() && c.claim() {
		// The watcher failed meanwhile, perhaps before this park was
		// published, so that its wake-up was lost: read on instead.
		c.stopTimer()
		return parkRaced
	}
	return parkDone
}

// register arms the one-shot registration of the socket; it reports false
// when the socket cannot be watched (closed, or not pollable).
func (c *Conn) register() bool {
	op := syscall.EPOLL_CTL_ADD
	if c.idle.added {
		op = syscall.EPOLL_CTL_MOD
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: c.idle.id}
	if err := epollControl(c.rc, c.idle.watch.epfd, op, ev); err != nil {
		return false
	}
	c.idle.added = true
	return true
}

// unwatch takes the socket out of the epoll set before it is closed:
// closing would not, while another descriptor (a File taken from the
// connection, say) still refers to the socket. Every path that closes a
// connection's socket calls it first, from whichever goroutine.
func (c *Conn) unwatch() {
	c.mu.Lock()
	c.unwatchLocked()
	c.mu.Unlock()
}

// unwatchLocked is unwatch with mu held; mu guards idle.added, which
// register sets under it too.
func (c *Conn) unwatchLocked() {
	if !c.idle.added {
		return
	}
	c.idle.added = false
	c.rc.Control(func(fd uintptr) {
		syscall.EpollCtl(c.idle.watch.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
}
