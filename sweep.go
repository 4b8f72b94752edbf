package netport

import (
	"sync"
	"sync/atomic"
	"time"
)

// The sweeper notices idle connections (park.go) with work proportional
// to the connections that went to wait since its last ticks, not to all
// of the port's connections, and it runs only while there is such a
// connection.
//
// Time is cut into epochs, one per parkTick. A connection whose read
// finds nothing (readReady) records the epoch in which it began to wait
// (blockedAt) and puts itself on the port's list for the current epoch,
// once per epoch; a read that finds data clears blockedAt. At each tick
// the sweeper takes the list of two epochs before and asks each
// connection on it that is still waiting since then to park. A parked
// connection is on no list, and a connection served without a readiness
// read (an in-memory one, a TLS or wrapped one) never reaches readReady,
// so neither costs the sweeper anything; once every list is empty the
// sweeper stops, and the next connection to wait starts it again.
//
// The sweeper holds no lock while it walks a list: connections put
// themselves on the current epoch's list, which is not the one it walks,
// and the list lock is held only to swap lists.

// firstEpoch is a port's first epoch: 0 in blockedAt means "not
// waiting", and 0 in Conn.listed must not look like a recent epoch.
const firstEpoch = 3

// sweeper is a port's record of the connections that may need parking.
// Its zero value is ready once epoch is set to firstEpoch.
type sweeper struct {
	// epoch is the current epoch; it changes only under mu, so that a
	// connection listing itself under mu lists itself for the epoch it
	// read.
	epoch atomic.Uint32

	mu sync.Mutex
	// lists[e%3] holds the connections that began to wait (or waited
	// again) during epoch e, for the current epoch e and the one before;
	// the third is empty, or the one the sweeper is walking.
	lists [3][]*Conn    // guarded by mu
	stop  chan struct{} // guarded by mu: closed to end the sweeper; nil when none runs

	// visits counts the connections the sweeper has looked at, and
	// starts how many times it was started: what the tests watch.
	visits atomic.Uint64
	starts atomic.Uint64
}

// waiting records that the connection's read found nothing and that its
// goroutine goes to wait for data; called by readReady on the goroutine
// serving the connection.
func (c *Conn) waiting() {
	s := &c.port.sweep
	e := s.epoch.Load()
	if c.blockedAt.Load() == 0 {
		c.blockedAt.Store(e)
	}
	// Already on this epoch's list: nothing to do, as long as the epoch
	// did not move on meanwhile (then the sweeper may have walked this
	// list before it saw blockedAt).
	if c.listed == e && s.epoch.Load() == e {
		return
	}
	s.list(c)
}

// list puts c on the current epoch's list, and starts the sweeper when
// none runs.
func (s *sweeper) list(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.epoch.Load()
	if c.blockedAt.Load() == 0 {
		c.blockedAt.Store(e)
	}
	if c.listed != e {
		c.listed = e
		s.lists[e%3] = append(s.lists[e%3], c)
	}
	if s.stop == nil {
		p := c.port
		s.stop = make(chan struct{})
		s.starts.Add(1)
		// c's own goroutine counts in wg, so the count is not zero and
		// Shutdown's Wait cannot be under way without seeing this Add.
		p.wg.Add(1)
		go p.runSweeper(s.stop)
	}
}

// halt ends the sweeper and drops the lists; called by forget, with the
// port's mu held, when the port has no connection left.
func (s *sweeper) halt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		close(s.stop)
		s.stop = nil
	}
	for i := range s.lists {
		clear(s.lists[i])
		s.lists[i] = nil
	}
}

// runSweeper is the port's sweeper goroutine: every parkTick it asks the
// connections that have waited for data since two epochs ago to park. It
// returns when stop is closed, or when no connection is listed, and
// counts in wg so that Shutdown waits for it too.
func (p *Port) runSweeper(stop chan struct{}) {
	defer p.wg.Done()
	s := &p.sweep
	t := time.NewTicker(parkTick)
	defer t.Stop()
	var spare []*Conn
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		if s.stop != stop {
			s.mu.Unlock() // halted while the tick came
			return
		}
		e := s.epoch.Load() + 1
		if e == 0 {
			// After 2^32 ticks: skip 0, which means "not waiting";
			// 2^32 ≡ 1 (mod 3), so the lists keep their order.
			e = 1
		}
		s.epoch.Store(e)
		// The list of epoch e-2 sits where epoch e+1's will go.
		due := s.lists[(e+1)%3]
		s.lists[(e+1)%3] = spare
		if len(due) == 0 && len(s.lists[(e+2)%3]) == 0 && len(s.lists[e%3]) == 0 {
			if s.stop == stop {
				s.stop = nil
			}
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		for i, c := range due {
			s.visit(c, e)
			due[i] = nil
		}
		spare = nil
		if cap(due) <= 64 || len(due) >= cap(due)/4 {
			// Keep the array unless a crowd that came once left it
			// much larger than what comes now.
			spare = due[:0]
		}
	}
}

// visit asks c to park if it has waited since two epochs before e. A
// connection that went on reading since is on a later list, or on none
// until it waits again.
func (s *sweeper) visit(c *Conn, e uint32) {
	s.visits.Add(1)
	b := c.blockedAt.Load()
	if b == 0 || e-b < 2 {
		return
	}
	if c.pausedWaiting() || c.sending() {
		// Paused by another goroutine while it waits for data, or
		// with a send queue still draining: it cannot park now, but
		// may become able to without ever leaving the wait, and then
		// nothing would list it again. Look again two ticks later.
		s.mu.Lock()
		cur := s.epoch.Load()
		s.lists[cur%3] = append(s.lists[cur%3], c)
		s.mu.Unlock()
		return
	}
	c.requestPark()
}

// pausedWaiting reports whether the protocol is paused and the
// connection is not ending.
func (c *Conn) pausedWaiting() bool {
	if !c.unusual.Load() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paused && !c.ending.Load()
}
