package netport

// closedChan is the channel handed out for an event that has already
// happened, so that a connection asked after its end needs none of its
// own.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// endLocked returns a channel closed once the connection's end is
// decided, made when first asked for; called with mu held.
func (c *Conn) endLocked() <-chan struct{} {
	if c.endCh == nil {
		if c.ending.Load() {
			return closedChan
		}
		c.endCh = make(chan struct{})
	}
	return c.endCh
}

// kickLocked returns the channel that drain uses to wake the connection's
// goroutine from a wait, made when first needed; called with mu held. It
// holds one token, so that a drain that comes before the wait is not lost.
func (c *Conn) kickLocked() chan struct{} {
	if c.kick == nil {
		c.kick = make(chan struct{}, 1)
	}
	return c.kick
}
