package netport

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The send queue: Config.WriteBuffer above 0 makes Write never block.
//
// On net's own *net.TCPConn and *net.UnixConn, Write first offers the
// bytes to the socket without waiting (sendraw_unix.go); what the socket
// takes whole is neither copied nor queued. Only what it does not take is
// copied into the queue, and a flusher goroutine, started when a queue
// forms and gone once it is empty, sends it as the poller reports the
// socket writable. While it runs, every Write appends to the queue, so the
// bytes keep their order. Other connections (TLS, in-memory, a user's
// wrapper) have no write that cannot block: there every Write is copied
// into the queue, and the flusher sends it with the connection's own
// blocking Write, at most flushChunk bytes at a time.
//
// An idle connection holds no queued bytes: the buffer is dropped each
// time the queue empties.

// flushChunk bounds one blocking write of the flusher, so that
// WriteTimeout, which bounds each of them, measures progress rather than
// the time to send the whole queue.
const flushChunk = 64 << 10

// sendState is a connection's send queue and producer; made on first use
// (the first Write with a WriteBuffer, or RegisterProducer).
type sendState struct {
	c *Conn

	// rc is the raw connection of net's own socket types, nil for others.
	// wfn and ffn are bound once so that no closure is allocated per write.
	rc   syscall.RawConn
	wfn  func(fd uintptr) bool
	ffn  func(fd uintptr) bool
	wb   []byte        // the direct write's rest; guarded by c.wmu
	werr syscall.Errno // the direct write's error; guarded by c.wmu

	wg        sync.WaitGroup // the flusher goroutine
	busy      atomic.Bool    // mirrors flushing: set only with c.wmu held
	producing atomic.Bool    // mirrors prod != nil

	// mu guards the fields below. It is never held across a call that
	// may block, nor across a call to the producer.
	mu       sync.Mutex
	q        byteQueue
	flushing bool  // a flusher runs; the queue is empty when it is false
	ferr     error // the flusher's write failed
	loseReq  bool  // LoseConnection waits for the queue and the producer
	finReq   bool  // LoseWriteConnection waits for the queue
	ended    bool  // the connection ended: the queue is gone
	producerState
}

// send returns the connection's sendState, making it on first use.
func (c *Conn) send() *sendState {
	if s := c.snd.Load(); s != nil {
		return s
	}
	s := &sendState{c: c}
	s.rc = rawSendConn(c.nc)
	if s.rc != nil {
		s.wfn = s.writeNow
		s.ffn = s.flushReady
	}
	if !c.snd.CompareAndSwap(nil, s) {
		return c.snd.Load()
	}
	return s
}

// sendPath reports whether Write goes through the send queue or the
// producer's bookkeeping rather than the plain blocking write.
func (c *Conn) sendPath() bool {
	return c.writeBuffer() > 0 || c.snd.Load() != nil
}

func (c *Conn) writeBuffer() int {
	if c.cfg == nil || c.cfg.WriteBuffer <= 0 {
		return 0
	}
	return c.cfg.WriteBuffer
}

func (c *Conn) maxWriteBuffer() int {
	if c.cfg.MaxWriteBuffer > 0 {
		return c.cfg.MaxWriteBuffer
	}
	return DefaultMaxWriteBufferFactor * c.cfg.WriteBuffer
}

// sending reports whether the connection has bytes queued; such a
// connection does not park.
func (c *Conn) sending() bool {
	s := c.snd.Load()
	return s != nil && s.busy.Load()
}

// sendWrite is Write (b) and WriteSequence (bufs, seq true) on the send
// path.
func (c *Conn) sendWrite(op string, b []byte, bufs [][]byte, seq bool) (int, error) {
	if c.writeBuffer() == 0 {
		return c.blockingWrite(op, b, bufs, seq)
	}
	s := c.send()
	c.wmu.Lock()
	if err := c.writable(op); err != nil {
		c.wmu.Unlock()
		return 0, err
	}
	total, sent := len(b), 0
	if seq {
		total = 0
		for _, x := range bufs {
			total += len(x)
		}
	}
	if total == 0 {
		c.wmu.Unlock()
		return 0, nil
	}
	// busy is set only under wmu, which this Write holds: false means
	// that no flusher runs nor can start (one still returning leaves the
	// socket to this Write as soon as it has).
	direct := s.rc != nil && !s.busy.Load()
	if direct {
		// No flusher runs, and none can start while wmu is held: the
		// socket is this Write's alone.
		var err error
		if !seq {
			b, err = s.tryWrite(b)
			sent = total - len(b)
		} else {
			bufs, sent, err = s.tryWriteSeq(bufs)
		}
		if err != nil {
			c.wmu.Unlock()
			c.fail(err)
			return sent, err
		}
		if sent == total {
			c.wmu.Unlock()
			if s.producing.Load() {
				s.sent()
			}
			return total, nil
		}
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		c.wmu.Unlock()
		return sent, c.opError(op, net.ErrClosed)
	}
	size := s.q.len() + total - sent
	if size > c.maxWriteBuffer() {
		s.mu.Unlock()
		c.wmu.Unlock()
		err := c.opError(op, ErrWriteBufferFull)
		c.fail(err)
		return sent, err
	}
	if !seq {
		s.q.push(b)
	} else {
		for _, x := range bufs {
			s.q.push(x)
		}
	}
	start := !s.flushing
	if start {
		s.flushing = true
		s.busy.Store(true)
		s.wg.Add(1)
	}
	pause := s.prod != nil && s.streaming && !s.full && size > c.writeBuffer()
	if pause {
		s.full = true
	}
	s.mu.Unlock()
	c.wmu.Unlock()
	if start {
		if s.rc != nil {
			go s.flushRaw()
		} else {
			go s.flushConn()
		}
	}
	if pause {
		s.pump()
	}
	return total, nil
}

// sent is called after a Write that the socket took whole: a pull
// producer is owed its next ResumeProducing.
func (s *sendState) sent() {
	s.mu.Lock()
	pull := s.prod != nil && !s.streaming
	if pull {
		s.more = true
	}
	s.mu.Unlock()
	if pull {
		s.pump()
	}
}

// blockingWrite is the blocking Write (WriteBuffer 0) with a producer's
// bookkeeping: a streaming producer is paused while the write waits for
// the peer, and a pull producer is asked for more once it returns. On
// net's own sockets the bytes are first offered without waiting, so only
// a write that must wait pauses the producer; on other connections it is
// paused for the length of every Write.
func (c *Conn) blockingWrite(op string, b []byte, bufs [][]byte, seq bool) (int, error) {
	s := c.send()
	c.wmu.Lock()
	if err := c.writable(op); err != nil {
		c.wmu.Unlock()
		return 0, err
	}
	c.armWriteDeadline()
	total, sent := len(b), 0
	if seq {
		total = 0
		for _, x := range bufs {
			total += len(x)
		}
	}
	var err error
	if s.rc != nil {
		if !seq {
			b, err = s.tryWrite(b)
			sent = total - len(b)
		} else {
			bufs, sent, err = s.tryWriteSeq(bufs)
		}
	}
	if err == nil && sent < total {
		s.mu.Lock()
		pause := s.prod != nil && s.streaming && !s.full
		if pause {
			s.full = true
		}
		s.mu.Unlock()
		if pause {
			s.pump()
		}
		if !seq {
			var n int
			n, err = c.nc.Write(b)
			sent += n
		} else {
			// WriteTo consumes the slice it is given, not the caller's.
			nb := net.Buffers(append([][]byte(nil), bufs...))
			var n int64
			n, err = nb.WriteTo(c.nc)
			sent += int(n)
		}
	}
	if err != nil {
		c.fail(err)
	}
	c.wmu.Unlock()
	s.mu.Lock()
	resume := s.prod != nil && (s.full || !s.streaming)
	s.full = false
	if s.prod != nil && !s.streaming && err == nil {
		s.more = true
	}
	s.mu.Unlock()
	if resume {
		s.pump()
	}
	return sent, err
}

// tryWriteSeq offers each buffer to the socket in turn, without waiting;
// it returns what is left (the rest of the first buffer not taken whole,
// and those after it) and how many bytes were sent.
func (s *sendState) tryWriteSeq(bufs [][]byte) ([][]byte, int, error) {
	sent := 0
	for i, b := range bufs {
		rest, err := s.tryWrite(b)
		sent += len(b) - len(rest)
		if err != nil {
			return nil, sent, err
		}
		if len(rest) > 0 {
			left := append([][]byte{rest}, bufs[i+1:]...)
			return left, sent, nil
		}
	}
	return nil, sent, nil
}

// tryWrite offers b to the socket without waiting and returns the part it
// did not take; called with c.wmu held and no flusher running.
func (s *sendState) tryWrite(b []byte) ([]byte, error) {
	s.wb, s.werr = b, 0
	err := s.rc.Write(s.wfn)
	rest, errno := s.wb, s.werr
	s.wb = nil
	if err != nil {
		return rest, s.c.opError("write", err)
	}
	if errno != 0 {
		return rest, s.c.opError("write", errnoError(errno))
	}
	return rest, nil
}

// flushRaw is the flusher of net's own sockets: it waits for the poller
// to report the socket writable and sends what it can, until the queue is
// empty or a write fails. WriteTimeout bounds each wait, and the deadline
// starts again whenever some bytes went out.
func (s *sendState) flushRaw() {
	defer s.wg.Done()
	c := s.c
	for {
		c.armWriteDeadline()
		err := s.rc.Write(s.ffn)
		s.mu.Lock()
		if err == nil {
			err, s.ferr = s.ferr, nil
		} else {
			err = c.opError("write", err)
		}
		s.mu.Unlock()
		if err != nil {
			c.fail(err)
			return
		}
		if s.settle() {
			return
		}
	}
}

// flushReady is flushRaw's write, called by the poller.
func (s *sendState) flushReady(fd uintptr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	progress := false
	for {
		b := s.q.peek()
		if len(b) == 0 || s.ended {
			return true
		}
		n, errno := writeErrno(int(fd), b)
		switch errno {
		case 0:
			s.q.consume(n)
			progress = true
		case syscall.EINTR:
		case syscall.EAGAIN:
			// Back to flushRaw when bytes went out, so that it moves
			// WriteTimeout's deadline; otherwise wait in the poller.
			return progress && s.c.writeTimeout() > 0
		default:
			s.ferr = errnoError(errno)
			return true
		}
	}
}

// flushConn is the flusher of every other connection: blocking writes of
// the queue's head, at most flushChunk bytes each, without holding any
// lock, so that Write can append meanwhile.
func (s *sendState) flushConn() {
	defer s.wg.Done()
	c := s.c
	for {
		s.mu.Lock()
		b := s.q.peek()
		if s.ended {
			b = nil
		}
		s.mu.Unlock()
		if len(b) == 0 {
			if s.settle() {
				return
			}
			continue
		}
		if len(b) > flushChunk {
			b = b[:flushChunk]
		}
		c.armWriteDeadline()
		n, err := c.nc.Write(b)
		s.mu.Lock()
		if !s.ended {
			s.q.consume(n)
		}
		s.mu.Unlock()
		if err != nil {
			c.fail(err)
			return
		}
	}
}

// settle ends the flusher once the queue is empty: the buffer is dropped,
// the producer is resumed (a streaming one that was paused; a pull one in
// any case) and a LoseConnection that waited goes ahead. It reports false
// when more was queued meanwhile.
func (s *sendState) settle() bool {
	s.mu.Lock()
	if s.q.len() > 0 && !s.ended {
		s.mu.Unlock()
		return false
	}
	if s.rc != nil && s.c.writeTimeout() > 0 {
		// An expired WriteTimeout deadline would fail the next direct
		// write; a deadline of the user's stays.
		var t time.Time
		if v := s.c.view.Load(); v != nil {
			if u := v.wd.Load(); u != 0 {
				t = time.Unix(0, u)
			}
		}
		s.c.raw.SetWriteDeadline(t)
	}
	s.flushing = false
	s.busy.Store(false)
	s.q = byteQueue{}
	if s.prod != nil {
		if s.streaming {
			s.full = false
		} else {
			s.more = true
		}
	}
	lose := s.loseReq && s.prod == nil && !s.ended
	fin := s.finReq && !s.ended
	s.finReq = false
	s.mu.Unlock()
	s.pump()
	if fin {
		s.c.LoseWriteConnection()
	}
	if lose {
		s.c.LoseConnection()
	}
	return true
}

// closeWriteLater defers LoseWriteConnection's FIN while bytes are
// queued; settle calls it again once they have gone out. Called with
// c.wmu held.
func (c *Conn) closeWriteLater() bool {
	s := c.snd.Load()
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || !s.flushing {
		return false
	}
	s.finReq = true
	return true
}

// loseLater defers LoseConnection while bytes are queued or a producer is
// registered; the flusher (settle) or UnregisterProducer calls it again
// once neither holds. Called with c.wmu held, so that no Write slips in
// between the check and the close.
func (c *Conn) loseLater() bool {
	s := c.snd.Load()
	if s == nil || c.ending.Load() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || (!s.flushing && s.prod == nil) {
		return false
	}
	s.loseReq = true
	return true
}

// endSend runs as the connection ends, before it is closed. After a clean
// end (the peer closed its side) what is queued is sent first; then the
// queue is dropped, the flusher is waited for, the connection is
// unregistered from the transports it produced for, and its own producer
// gets StopProducing.
func (c *Conn) endSend() {
	s := c.snd.Load()
	if s == nil {
		return
	}
	c.mu.Lock()
	clean := errors.Is(c.reason, ErrConnectionDone)
	c.mu.Unlock()
	if clean {
		s.wg.Wait()
	}
	s.mu.Lock()
	consumers := s.stopSendLocked()
	s.mu.Unlock()
	c.closeNC() // frees a flusher still waiting for the peer
	s.wg.Wait()
	s.busy.Store(false)
	for _, cons := range consumers {
		cons.dropProducer(c)
	}
	s.pump()
}

func errnoError(errno syscall.Errno) error { return os.NewSyscallError("write", errno) }
