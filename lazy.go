package netport

// connWaits holds the channels a connection's goroutine or its user may
// wait on. Most connections never need one, so a Conn makes it, and each
// channel in it, only when first asked for, under its mu: an idle
// connection keeps as little as possible.
type connWaits struct {
	done chan struct{} // closed after ConnectionLost has returned
	end  chan struct{} // closed when the end is decided
	kick chan struct{} // one token: drain wakes the goroutine from a wait

	resume chan struct{} // made by PauseProducing, closed by ResumeProducing
}

// closedChan is the channel handed out for an event that has already
// happened, so that a connection asked after its end needs none of its
// own.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// waitsLocked returns c's connWaits, made when first needed; called with
// mu held.
func (c *Conn) waitsLocked() *connWaits {
	if c.waits == nil {
		c.waits = new(connWaits)
	}
	return c.waits
}

// endLocked returns a channel closed once the connection's end is
// decided, made when first asked for; called with mu held.
func (c *Conn) endLocked() <-chan struct{} {
	if c.ending.Load() {
		return closedChan
	}
	w := c.waitsLocked()
	if w.end == nil {
		w.end = make(chan struct{})
	}
	return w.end
}

// kickLocked returns the channel that drain uses to wake the connection's
// goroutine from a wait, made when first needed; called with mu held. It
// holds one token, so that a drain that comes before the wait is not lost.
func (c *Conn) kickLocked() chan struct{} {
	w := c.waitsLocked()
	if w.kick == nil {
		w.kick = make(chan struct{}, 1)
	}
	return w.kick
}
