package netport

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// bufferPool lends read buffers of one size. A connection holds a buffer
// only while data is being read and delivered, so an idle connection costs
// no buffer at all.
type bufferPool struct {
	size int
	pool sync.Pool
}

var pools sync.Map // read buffer size -> *bufferPool

func poolFor(size int) *bufferPool {
	if p, ok := pools.Load(size); ok {
		return p.(*bufferPool)
	}
	bp := &bufferPool{size: size}
	bp.pool.New = func() any {
		b := make([]byte, size)
		return &b
	}
	p, _ := pools.LoadOrStore(size, bp)
	return p.(*bufferPool)
}

// bufPool returns the pool c's buffers come from: its port's, or for a
// connection served outside a port the shared one of its size (not kept
// in the Conn: every idle connection would keep the pointer).
func (c *Conn) bufPool() *bufferPool {
	if c.port != nil {
		return c.port.bufs
	}
	return poolFor(c.cfg.readBufferSize())
}

func (c *Conn) getBuf() []byte {
	if c.buf == nil {
		c.buf = c.bufPool().pool.Get().(*[]byte)
	}
	return *c.buf
}

func (c *Conn) putBuf() {
	if c.buf != nil {
		c.bufPool().pool.Put(c.buf)
		c.buf = nil
	}
}

// readLoop reads and delivers data until the connection ends, or until
// it parks: then it reports true, and a goroutine the idle watcher starts
// carries on (park.go).
//
// The readiness read keeps its buffer from one read to the next while
// data keeps coming, and readReady gives it back before the goroutine
// parks, so a busy connection takes one buffer from the pool per burst
// rather than one per read, and an idle one still holds none. Every other
// place that may block gives it back first (prepareRead, the end of the
// loop); the blocking buffered read returns it after every read.
func (c *Conn) readLoop() (parked bool) {
	if c.rc == nil {
		c.useRawRead()
	}
	for c.prepareRead() {
		n, err := c.read()
		if n > 0 {
			if c.deliverable() {
				c.deliver((*c.buf)[:n:n])
				if !c.idle.heard {
					c.heardFirst()
				}
			}
		}
		if err != nil || c.rc == nil {
			c.putBuf()
		}
		if err == nil {
			continue
		}
		if c.idle.parkable && errors.Is(err, os.ErrDeadlineExceeded) {
			// Once parked, another goroutine may own the connection:
			// nothing here may touch it again.
			switch c.quiet() {
			case quietRead:
				continue
			case quietParked:
				return true
			}
		}
		if !c.readError(err) {
			break
		}
	}
	c.putBuf()
	return false
}

// prepareRead answers Shutdown's request, waits while paused and sets the
// idle deadline. It reports false when the connection has ended.
func (c *Conn) prepareRead() bool {
	if !c.unusual.Load() && !c.ending.Load() && c.idleTimeout() == 0 {
		// Nothing to answer or wait for, and no deadline to set (the
		// deadline must be set under mu, so that it cannot overwrite the
		// one drain or the sweeper uses to wake this goroutine).
		return true
	}
	for {
		c.mu.Lock()
		switch {
		case c.lingering:
			c.mu.Unlock()
			return true // LoseConnection set the deadline
		case c.ending.Load():
			c.mu.Unlock()
			return false
		case c.drainReq:
			c.drainReq = false
			c.noteLocked()
			c.parkReq = false
			c.restoreDeadlineLocked()
			c.mu.Unlock()
			c.putBuf() // answerDrain may wait for a Write in flight
			c.answerDrain()
			continue
		case c.paused:
			resume, end, kick := c.waits.resume, c.endLocked(), c.kickLocked()
			c.mu.Unlock()
			c.putBuf()
			select {
			case <-resume:
			case <-end:
			case <-kick:
			}
			continue
		}
		if d := c.idleTimeout(); d > 0 {
			c.idle.at = monoSince(time.Now().Add(d))
			if !c.parkReq {
				c.raw.SetReadDeadline(c.readDeadlineLocked())
			}
		}
		c.mu.Unlock()
		return true
	}
}

// answerDrain calls the protocol's Drain, or LoseConnection without one.
func (c *Conn) answerDrain() {
	if d, ok := c.proto.(Drainer); ok {
		c.call("Drain", d.Drain)
		return
	}
	// LoseConnection waits for a registered producer to be unregistered
	// (Twisted's rule), which a protocol without Drain may never do: a
	// proxy's two sides would wait for each other until Shutdown's ctx
	// ends. Shutdown stops and unregisters it first.
	if p := c.producer(); p != nil {
		c.UnregisterProducer()
		c.callProducer(p, callStop)
	}
	c.LoseConnection()
}

// read reads once into a lent buffer.
func (c *Conn) read() (int, error) {
	if c.rc == nil {
		return c.nc.Read(c.getBuf())
	}
	n, err := c.rawRead()
	if err != nil {
		return 0, err
	}
	switch {
	case n > 0:
		return int(n), nil
	case n == 0:
		return 0, io.EOF
	default:
		return 0, c.opError("read", os.NewSyscallError("read", syscall.Errno(-n)))
	}
}

// deliverable waits while the protocol is paused, with data in hand, and
// reports whether the data should reach DataReceived.
func (c *Conn) deliverable() bool {
	if !c.unusual.Load() && !c.ending.Load() {
		return true // neither paused nor lingering: no need for mu
	}
	for {
		c.mu.Lock()
		paused, lingering, drainReq := c.paused, c.lingering, c.drainReq
		var resume chan struct{}
		if paused {
			resume = c.waits.resume
		}
		var end, kick <-chan struct{}
		if paused && !drainReq {
			end, kick = c.endLocked(), c.kickLocked()
		}
		if paused && drainReq {
			// Shutdown must reach a paused protocol too.
			c.drainReq = false
			c.noteLocked()
			c.restoreDeadlineLocked()
		}
		c.mu.Unlock()
		if lingering || c.ending.Load() {
			return false // LoseConnection discards what comes after it
		}
		if !paused {
			return true
		}
		if drainReq {
			c.answerDrain()
			continue
		}
		select {
		case <-resume:
		case <-end:
		case <-kick:
		}
	}
}

// readError decides what a read error means and reports whether to read
// on.
func (c *Conn) readError(err error) bool {
	c.mu.Lock()
	lingering, drainReq := c.lingering, c.drainReq
	c.mu.Unlock()
	switch {
	case lingering || c.ending.Load():
		return false
	case errors.Is(err, io.EOF):
		c.peerClosed()
		return false
	case errors.Is(err, os.ErrDeadlineExceeded) && drainReq:
		return true
	default:
		c.setEnd(lost(err))
		return false
	}
}

// peerClosed handles the peer's FIN: the end of the connection, unless
// the protocol implements HalfCloseable and still wants to write.
func (c *Conn) peerClosed() {
	c.mu.Lock()
	c.readClosed = true
	wc := c.writeClosed
	c.mu.Unlock()
	hc, ok := c.proto.(HalfCloseable)
	if !ok || wc {
		c.setEnd(done(nil))
		return
	}
	c.call("ReadConnectionLost", hc.ReadConnectionLost)
	c.mu.Lock()
	end, kick := c.endLocked(), c.kickLocked()
	c.mu.Unlock()
	for {
		select {
		case <-end:
			return
		case <-kick:
			c.mu.Lock()
			drainReq := c.drainReq
			c.drainReq = false
			c.noteLocked()
			c.mu.Unlock()
			if drainReq {
				c.answerDrain()
			}
		}
	}
}
