package netport

import "sync/atomic"

// PortStats are a port's counters, as Port.Stats reads them. Accepted,
// Shed, Refused, AcceptErrors and Panics only grow; Active and Parked are
// what is the case at the moment of the call.
type PortStats struct {
	Accepted     uint64 // connections accepted and served (Shed ones are not)
	Active       uint64 // connections not yet ended, parked ones included
	Parked       uint64 // idle connections holding no goroutine (Linux)
	Shed         uint64 // clients accepted and closed at once because the process was out of descriptors
	Refused      uint64 // connections closed unserved because BuildProtocol returned nil (or panicked)
	AcceptErrors uint64 // failed accepts (each retried, or the last one, which stopped the port)
	Panics       uint64 // panics recovered in BuildProtocol, a protocol callback or a Handler
}

// portCounters are the counters behind PortStats. Each is written by one
// atomic add where the event happens; Accepted is written only by the
// accept goroutine, so its add is never contended.
type portCounters struct {
	accepted     atomic.Uint64
	parked       atomic.Uint64
	shed         atomic.Uint64
	refused      atomic.Uint64
	acceptErrors atomic.Uint64
	panics       atomic.Uint64
}

// Stats returns the port's counters. It is safe to call at any time, from
// any goroutine, also after the port has stopped; it costs a few atomic
// loads and one short lock (Active is the size of the set of connections
// that Shutdown walks, so that accepting and ending a connection pay no
// counter for it). The counters are read one by one, not as one snapshot.
func (p *Port) Stats() PortStats {
	p.mu.Lock()
	active := p.conns.len()
	p.mu.Unlock()
	return PortStats{
		Accepted:     p.stats.accepted.Load(),
		Active:       uint64(active),
		Parked:       p.stats.parked.Load(),
		Shed:         p.stats.shed.Load(),
		Refused:      p.stats.refused.Load(),
		AcceptErrors: p.stats.acceptErrors.Load(),
		Panics:       p.stats.panics.Load(),
	}
}

// countParked adds 1 to the parked count of c's port when parked is
// true, and takes 1 away otherwise. A park is counted before it is
// published and uncounted only after it has been claimed, so the count
// never goes below zero.
func (c *Conn) countParked(parked bool) {
	if c.port == nil {
		return
	}
	if parked {
		c.port.stats.parked.Add(1)
	} else {
		c.port.stats.parked.Add(^uint64(0))
	}
}

// countRefused counts a nil protocol on c's port.
func (c *Conn) countRefused() {
	if c.port != nil {
		c.port.stats.refused.Add(1)
	}
}

// countPanic counts a recovered panic on c's port.
func (c *Conn) countPanic() {
	if c.port != nil {
		c.port.stats.panics.Add(1)
	}
}
