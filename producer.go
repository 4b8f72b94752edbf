package netport

import "net"

// A Producer writes to a transport and can be told to wait, as Twisted's
// IPushProducer. Register one with Transport.RegisterProducer: a streaming
// producer is paused while the transport cannot keep up and resumed when
// it can; a pull producer (Twisted's IPullProducer) is only ever asked for
// more with ResumeProducing. StopProducing is called once, when the
// connection ends.
//
// *Conn is a Producer (of the data it reads from its peer), so a proxy
// is b.RegisterProducer(a, true) and a.RegisterProducer(b, true): when b's
// peer reads slowly, a stops reading from its own peer.
//
// The transport never calls one producer's methods concurrently, and
// calls them in the order it decided them, but not always on the same
// goroutine; they may call the transport back (Write, UnregisterProducer,
// LoseConnection). With blocking writes (Config.WriteBuffer 0),
// PauseProducing is called while the transport holds its write lock, so
// it must not write to that same transport.
type Producer interface {
	PauseProducing()
	ResumeProducing()
	StopProducing()
}

// The calls the transport owes its producer.
const (
	callNone = iota
	callPause
	callResume
	callStop
)

// producerState is the producer part of a connection's sendState;
// guarded by sendState.mu. Decisions (pause, resume, stop) are recorded
// here under the lock and delivered by pump without it, so that a
// producer may call the transport back.
type producerState struct {
	prod      Producer
	streaming bool
	full      bool     // a streaming producer should be paused
	told      bool     // a streaming producer was last told to pause
	more      bool     // a pull producer is owed a ResumeProducing
	stop      Producer // owed a StopProducing: the connection ended
	calling   bool     // a goroutine is delivering calls (pump)

	// consumers are the connections this one is registered on as a
	// producer: when it ends it unregisters itself from them, since a
	// LoseConnection waiting for it would otherwise wait for ever.
	consumers []*Conn
}

// RegisterProducer makes p the producer of the data written to the
// connection; see Transport. When p is itself a *Conn and that connection
// ends, it is unregistered at once, so that a LoseConnection waiting for
// it goes ahead.
func (c *Conn) RegisterProducer(p Producer, streaming bool) error {
	s := c.send()
	s.mu.Lock()
	if s.ended || c.ending.Load() {
		s.mu.Unlock()
		p.StopProducing()
		return c.opError("register", net.ErrClosed)
	}
	if s.prod != nil {
		s.mu.Unlock()
		return c.opError("register", ErrProducerRegistered)
	}
	s.prod, s.streaming, s.told = p, streaming, false
	s.producing.Store(true)
	s.full = streaming && s.q.len() > c.writeBuffer()
	s.more = !streaming
	s.mu.Unlock()
	if pc, ok := p.(*Conn); ok && pc != c && !pc.send().addConsumer(c) {
		// The producer has ended already: it can produce nothing more.
		c.dropProducer(pc)
	}
	s.pump()
	return nil
}

// UnregisterProducer forgets the registered producer, if any; a
// LoseConnection that was waiting for it goes ahead.
func (c *Conn) UnregisterProducer() {
	s := c.snd.Load()
	if s == nil {
		return
	}
	s.mu.Lock()
	p := s.prod
	lose := s.clearProducerLocked()
	s.mu.Unlock()
	if pc, ok := p.(*Conn); ok && pc != c {
		pc.send().removeConsumer(c)
	}
	if lose {
		c.LoseConnection()
	}
}

// dropProducer unregisters p if it is still the registered producer; a
// connection that ends calls it on each transport it produces for.
func (c *Conn) dropProducer(p Producer) {
	s := c.send()
	s.mu.Lock()
	lose := false
	if s.prod == p {
		lose = s.clearProducerLocked()
	}
	s.mu.Unlock()
	if lose {
		c.LoseConnection()
	}
}

// clearProducerLocked forgets the producer and reports whether a
// LoseConnection is now free to go ahead.
func (s *sendState) clearProducerLocked() bool {
	s.prod, s.full, s.told, s.more = nil, false, false, false
	s.producing.Store(false)
	return s.loseReq && !s.flushing && !s.ended
}

func (s *sendState) addConsumer(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.consumers = append(s.consumers, c)
	return true
}

func (s *sendState) removeConsumer(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.consumers {
		if x == c {
			s.consumers = append(s.consumers[:i], s.consumers[i+1:]...)
			return
		}
	}
}

// pump delivers the calls owed to the producer, one at a time and in
// order. A goroutine that finds another already delivering leaves its
// decision to that one, which loops until nothing is owed; so a producer
// that writes from ResumeProducing (as pull producers do) is asked again
// by the loop rather than by recursion.
func (s *sendState) pump() {
	s.mu.Lock()
	if s.calling {
		s.mu.Unlock()
		return
	}
	s.calling = true
	for {
		p, call := s.nextCallLocked()
		if call == callNone {
			s.calling = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.c.callProducer(p, call)
		s.mu.Lock()
	}
}

// nextCallLocked picks the next call owed, and marks it delivered.
func (s *sendState) nextCallLocked() (Producer, int) {
	if p := s.stop; p != nil {
		s.stop = nil
		return p, callStop
	}
	switch {
	case s.prod == nil:
	case s.streaming && s.full != s.told:
		s.told = s.full
		if s.full {
			return s.prod, callPause
		}
		return s.prod, callResume
	case !s.streaming && s.more:
		s.more = false
		return s.prod, callResume
	}
	return nil, callNone
}

// callProducer makes one call; a panic in it ends the connection, as a
// panic in any other callback does.
func (c *Conn) callProducer(p Producer, call int) {
	name := "StopProducing"
	defer func() {
		if r := recover(); r != nil {
			c.logPanic(name, r)
			c.abort(panicError(r))
		}
	}()
	switch call {
	case callPause:
		name = "PauseProducing"
		p.PauseProducing()
	case callResume:
		name = "ResumeProducing"
		p.ResumeProducing()
	case callStop:
		p.StopProducing()
	}
}

// stopSendLocked records the end: the queue is dropped and the producer is
// owed its StopProducing. It returns the connections to unregister from.
func (s *sendState) stopSendLocked() []*Conn {
	s.ended = true
	s.q = byteQueue{}
	if s.prod != nil {
		s.stop = s.prod
	}
	s.prod, s.full, s.told, s.more = nil, false, false, false
	s.producing.Store(false)
	consumers := s.consumers
	s.consumers = nil
	return consumers
}

// opError is a *net.OpError about this connection.
func (c *Conn) opError(op string, err error) error {
	local := c.LocalAddr()
	return &net.OpError{Op: op, Net: local.Network(), Source: local, Addr: c.RemoteAddr(), Err: err}
}

// producer returns the registered producer, or nil.
func (c *Conn) producer() Producer {
	s := c.snd.Load()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.prod
}
