package netport

import (
	"os"
	"time"
)

// Parking. A goroutine blocked in a read costs its stack (2 KiB at least)
// for as long as the connection stays idle, which for a server holding
// many quiet clients is most of what a connection costs. So once a
// readiness-read connection has been idle for parkDelay, its goroutine
// hands it to the idle watcher (park_linux.go) and returns; when data,
// EOF or an error arrives, the watcher starts a new goroutine that
// carries on with the same read loop. Anything else that needs the
// goroutine (LoseConnection, AbortConnection, a failed Write, Shutdown's
// drain, IdleTimeout) wakes the connection the same way, through wake.
//
// Exactly one goroutine serves a connection at any time: pstate says
// whether the connection is parked, and the one that clears the parked
// bit with a compare-and-swap is the one that carries on. A connection
// parks only when nothing unusual is going on (paused, draining,
// lingering, half-closed), so that those paths keep their goroutine and
// work as before.
//
// Idleness is noticed by the port's sweeper (sweep.go), not by a timer of
// each connection's own (a timer per connection costs the accept path a
// timer insertion and a poller wake-up): a connection about to wait in
// the poller records the sweeper's epoch (blockedAt) and lists itself for
// that epoch, a read that finds data clears blockedAt, and every parkTick
// the sweeper asks the connections listed two epochs before that are
// still waiting to park, through requestPark. The connection's goroutine
// then parks, unless data came meanwhile. Adopted connections have no
// port and keep their goroutine.

// parkTick is the sweeper's period: a connection parks once it has been
// idle between one and two ticks. Parking and resuming cost a few
// microseconds, so a connection in a quick exchange must not park between
// messages; and each tick looks at every connection that went to wait
// during one epoch.
const parkTick = 50 * time.Millisecond

// pstate bits: the connection is parked; an event came while it was not
// parked (the next park is then given up). The rest is a generation,
// bumped on every park, so that a late IdleTimeout timer from an earlier
// park cannot wake a later one. It wraps after 2^30 parks, far more than
// can happen between a timer's start and its run.
const (
	parkedBit  = 1
	pendingBit = 2
	genShift   = 2
)

// idleState belongs to the goroutine that serves the connection; parking
// and waking hand it from one goroutine to the next.
type idleState struct {
	at       int64       // IdleTimeout's deadline (monoSince), when there is one; 0: none
	timer    *time.Timer // IdleTimeout while parked
	watch    *idleWatcher
	id       int32 // the connection's key in the watcher
	parkable bool  // the connection may park (Linux, readiness read, a port)
	added    bool  // the descriptor is in the watcher's epoll set
	heard    bool  // data has reached the protocol: Conn.heard without mu
}

// quiet's verdicts on a read deadline that expired.
const (
	quietNotMine  = iota // not the sweeper's: IdleTimeout or Shutdown's
	quietRead            // read on
	quietParked          // parked: the goroutine must return
	quietTimedOut        // IdleTimeout passed
)

// requestPark wakes the connection's goroutine from its wait in the
// poller, so that it parks; called by the sweeper.
func (c *Conn) requestPark() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parkReq || c.unusual.Load() || c.ending.Load() || !c.userRDLocked().IsZero() || c.sending() {
		// A connection with a read deadline of the user's keeps its
		// goroutine, to be there when the deadline passes; one with a send
		// queue keeps it until the queue has drained.
		return
	}
	c.parkReq = true
	c.raw.SetReadDeadline(aLongTimeAgo)
}

// restoreDeadlineLocked puts back the read deadline a park request or
// Shutdown's drain replaced: the earlier of the user's and IdleTimeout's,
// or none (deadline.go).
func (c *Conn) restoreDeadlineLocked() {
	c.raw.SetReadDeadline(c.readDeadlineLocked())
}

// quiet decides what an expired read deadline means: the sweeper's
// request to park (then it parks, unless data came since), IdleTimeout,
// or someone else's deadline.
func (c *Conn) quiet() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.parkReq {
		return quietNotMine
	}
	c.parkReq = false
	if c.unusual.Load() || c.ending.Load() || c.sending() {
		// Let prepareRead and readError handle it as before, with the
		// deadline drain or LoseConnection set, if they set one.
		if !c.lingering && !c.drainReq {
			c.restoreDeadlineLocked()
		}
		return quietRead
	}
	if !c.userRDLocked().IsZero() {
		// The user set a read deadline since the request: no parking.
		c.restoreDeadlineLocked()
		return quietRead
	}
	now := time.Now()
	if c.idleTimeout() > 0 && monoSince(now) >= c.idle.at {
		return quietTimedOut
	}
	if c.blockedAt.Load() == 0 {
		// Data came since the sweeper looked: busy after all.
		c.restoreDeadlineLocked()
		return quietRead
	}
	switch c.parkLocked(now) {
	case parkDone:
		return quietParked
	case parkFailed:
		// Parking is not possible here: read on in this goroutine, as
		// before parking existed.
		c.idle.parkable = false
		c.blockedAt.Store(0)
	}
	c.restoreDeadlineLocked()
	return quietRead
}

// parkLocked's results.
const (
	parkDone   = iota // parked
	parkRaced         // an event came meanwhile: read on
	parkFailed        // this connection cannot park
)

// beginPark readies a park of generation gen+1 once the connection is
// registered with the watcher: it clears the read deadline, starts the
// IdleTimeout timer and returns the new generation.
func (c *Conn) beginPark(now time.Time) uint32 {
	gen := c.pstate.Load()>>genShift + 1
	c.pstate.Store(gen << genShift) // drops a stale pending bit
	c.raw.SetReadDeadline(time.Time{})
	c.blockedAt.Store(0)
	if c.idleTimeout() > 0 {
		c.idle.timer = time.AfterFunc(time.Duration(c.idle.at-monoSince(now)), func() { c.expire(gen) })
	}
	return gen
}

// commitPark publishes the park of generation gen; it reports false when
// an event came since beginPark, and then the caller reads on.
func (c *Conn) commitPark(gen uint32) bool {
	c.countParked(true)
	if c.pstate.CompareAndSwap(gen<<genShift, gen<<genShift|parkedBit) {
		return true
	}
	c.countParked(false)
	c.stopTimer()
	return false
}

// wake gives a parked connection a goroutine again; it does nothing when
// the connection is not parked. Callers change what the goroutine is to
// see (ending, drainReq...) first.
func (c *Conn) wake() {
	if c.claim() {
		resume(c)
	}
}

// resumeQueue carries parked connections to the goroutines started to
// resume them. A go statement whose function has a receiver or arguments
// allocates a closure for them; resumeNext has neither, so giving a
// connection its goroutine back allocates nothing.
var resumeQueue = make(chan *Conn, 256)

// resume starts a goroutine that serves c, which it has claimed. Each
// goroutine takes one connection from the queue, so a send that finds the
// queue full waits only until one of those already started runs.
func resume(c *Conn) {
	resumeQueue <- c
	go resumeNext()
}

func resumeNext() { (<-resumeQueue).resumeServe(false) }

// claim clears the parked bit and reports whether this call did.
func (c *Conn) claim() bool {
	for {
		s := c.pstate.Load()
		if s&parkedBit == 0 {
			return false
		}
		if c.pstate.CompareAndSwap(s, s&^parkedBit) {
			return true
		}
	}
}

// notify is the watcher's wake: it also records an event that comes while
// the connection is not parked, so that a park under way is given up.
func (c *Conn) notify() {
	for {
		s := c.pstate.Load()
		switch {
		case s&parkedBit != 0:
			if c.pstate.CompareAndSwap(s, s&^parkedBit) {
				resume(c)
				return
			}
		case s&pendingBit != 0:
			return
		default:
			if c.pstate.CompareAndSwap(s, s|pendingBit) {
				return
			}
		}
	}
}

// expire is IdleTimeout's timer for the park of generation gen. It runs
// on a goroutine of its own, which serves the connection to its end. When
// it comes before the park is published, it makes the park fail instead,
// and the goroutine still serving the connection finds the time is up.
func (c *Conn) expire(gen uint32) {
	for {
		s := c.pstate.Load()
		switch s {
		case gen<<genShift | parkedBit:
			if c.pstate.CompareAndSwap(s, gen<<genShift) {
				c.resumeServe(true)
				return
			}
		case gen << genShift:
			if c.pstate.CompareAndSwap(s, s|pendingBit) {
				return
			}
		default:
			return
		}
	}
}

func (c *Conn) stopTimer() {
	if c.idle.timer != nil {
		c.idle.timer.Stop()
		c.idle.timer = nil
	}
}

// resumeServe carries on serving a connection that was parked.
func (c *Conn) resumeServe(expired bool) {
	c.countParked(false)
	parked := false
	defer func() {
		if !parked {
			c.finish()
		}
	}()
	if expired {
		c.idle.timer = nil
		c.setEnd(lost(c.opError("read", os.ErrDeadlineExceeded)))
	} else {
		c.stopTimer()
		if parked = c.readLoop(); parked {
			return
		}
	}
	c.end()
}

// monoBase anchors the instants a Conn keeps as an int64 (idleState.at):
// 8 bytes where a time.Time takes 24, and still read from the monotonic
// clock, since both ends of the subtraction carry its reading.
var monoBase = time.Now()

// monoSince returns t as nanoseconds since monoBase.
func monoSince(t time.Time) int64 { return int64(t.Sub(monoBase)) }

// monoMillis returns the time in milliseconds since monoBase, wrapping
// after about 49 days: only differences between two readings under that
// are meaningful.
func monoMillis() uint32 { return uint32(time.Since(monoBase) / time.Millisecond) }
