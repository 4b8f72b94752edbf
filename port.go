package netport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A Port owns one listening socket, fresh or adopted, and serves it: one
// accept goroutine, and one goroutine for every accepted connection, which
// calls Factory.BuildProtocol and then the protocol's callbacks. Make one
// with Listen, Serve or AdoptStreamPort; its methods are safe for
// concurrent use.
type Port struct {
	cfg     *Config
	ln      net.Listener
	factory Factory
	addr    net.Addr
	file    *socketFile // socket file this port created, removed on close
	log     *slog.Logger
	bufs    *bufferPool
	counted bool  // StartFactory was counted for this port
	stopErr error // the accept error that stopped the port; written before done is closed

	closing   atomic.Bool
	closeOnce sync.Once
	closed    chan struct{} // closed when closing starts: wakes the accept goroutine's waits
	done      chan struct{} // closed when the accept goroutine has finished
	closeErr  error         // from closing the listener; written before done is closed

	slots chan struct{} // one token per live connection when MaxConns > 0; nil otherwise

	mu       sync.Mutex
	conns    connSet        // guarded by mu: every connection not yet ended
	paused   bool           // guarded by mu
	draining bool           // guarded by mu: Shutdown has asked every connection to end
	resume   chan struct{}  // guarded by mu: closed by ResumeProducing
	wg       sync.WaitGroup // one count per connection goroutine
	builds   sync.WaitGroup // one count per connection not yet through BuildProtocol (track, startBuild)

	sweep sweeper // the connections that may need parking (sweep.go)

	reserve   int // spare descriptor released on EMFILE; -1 when none
	acceptLog rateLimiter

	stats portCounters    // Stats (stats.go)
	base  context.Context // from Config.BaseContext, set before accepting (context.go)
}

// serve is the one loop behind every kind of Port. From the call on, ln
// belongs to the port: on error (StartFactory panicked) it is closed and
// file removed, and the error is a *net.OpError with the given Op.
func (c *Config) serve(op string, ln net.Listener, f Factory, file *socketFile) (*Port, error) {
	p := &Port{
		cfg:     c,
		ln:      ln,
		factory: f,
		addr:    ln.Addr(),
		file:    file,
		log:     c.logger(),
		bufs:    poolFor(c.readBufferSize()),
		closed:  make(chan struct{}),
		done:    make(chan struct{}),
		reserve: -1,
	}
	if err := p.setBase(); err != nil {
		ln.Close()
		file.remove()
		return nil, err
	}
	counted, err := startFactory(p.log, p.addr, f)
	if err != nil {
		ln.Close()
		file.remove()
		return nil, &net.OpError{Op: op, Net: p.addr.Network(), Addr: p.addr, Err: err}
	}
	p.counted = counted
	if c != nil && c.MaxConns > 0 {
		p.slots = make(chan struct{}, c.MaxConns)
	}
	if _, ok := ln.(syscall.Conn); ok {
		// Only a listener with a descriptor can run out of them.
		p.reserve = reserveFD()
	}
	p.sweep.epoch.Store(firstEpoch)
	logListening(p.log, p.addr, c.tlsKind())
	go p.acceptLoop()
	return p, nil
}

// Addr returns the address the port listens on, with port 0 resolved. It
// still answers after Close.
func (p *Port) Addr() net.Addr { return p.addr }

// Factory returns the factory that builds the port's protocols.
func (p *Port) Factory() Factory { return p.factory }

// Done returns a channel that is closed once the port has stopped
// listening, whether by Close, Shutdown or a fatal accept error.
func (p *Port) Done() <-chan struct{} { return p.done }

// Listening reports whether the port still accepts connections (paused
// counts as listening).
func (p *Port) Listening() bool {
	select {
	case <-p.done:
		return false
	default:
		return !p.closing.Load()
	}
}

// String describes the port, e.g. "tcp 127.0.0.1:8080 (*main.echoFactory)",
// with " not listening" added once it has stopped.
func (p *Port) String() string {
	s := fmt.Sprintf("%s %s (%T)", p.addr.Network(), p.addr.String(), p.factory)
	if !p.Listening() {
		s += " not listening"
	}
	return s
}

// Close stops listening: it closes the listening socket (or, for an adopted
// one, this port's duplicate of it), removes a unix socket file the port
// created, waits for the accept goroutine to end and for the BuildProtocol
// of the connections it accepted, and calls StopFactory when this was the
// last port serving the factory. So no BuildProtocol runs after Close has
// returned, and every client accepted over net's own connections is
// served. Close never waits for a client, though: a connection still in
// its TLS handshake, or whose listener's RemoteAddr is still waiting (a
// PROXY-protocol header, say), when Close begins is closed without
// BuildProtocol. Connections are otherwise left alone; Shutdown ends them
// too. Because it waits for BuildProtocol, Close must not be called from
// inside BuildProtocol (start it on a goroutine of its own there). Close
// is idempotent: later calls return nil. The error is the listener's
// close error, if any.
func (p *Port) Close() error {
	first := false
	p.closeOnce.Do(func() {
		first = true
		p.stop()
	})
	<-p.done
	if first {
		return p.closeErr
	}
	return nil
}

// StopProducing is Close, for Twisted's producer interface.
func (p *Port) StopProducing() { p.Close() }

// stop starts closing: it wakes the accept goroutine and closes the
// listener, which the goroutine's cleanup then finishes.
func (p *Port) stop() {
	// Under mu, so that startBuild sees either closing or a count that
	// finish waits for.
	p.mu.Lock()
	p.closing.Store(true)
	p.mu.Unlock()
	close(p.closed)
	if m, ok := p.ln.(interface{ stopAccepting() error }); ok {
		// An in-memory listener's Close ends the connections it handed
		// out; a port must leave them open, as over a real socket.
		p.closeErr = m.stopAccepting()
	} else {
		p.closeErr = p.ln.Close()
	}
}

// Shutdown stops the port gracefully: it closes it, asks every connection
// to end (Drain when the protocol has it, LoseConnection otherwise; a
// Handler's read side is closed), and waits until every ConnectionLost has
// returned. After a nil return no goroutine of the port runs.
//
// A connection accepted less than a second before Shutdown that has not
// yet received any data is asked once its first data has reached the
// protocol, or a second after Shutdown began if that comes first: its
// client's request may still be on the way, and ending the connection at
// once would leave the client unanswered (net/http gives such connections
// five seconds). A Handler's reads are its own, so a Handler connection
// accepted less than a second before Shutdown is asked a second after
// Shutdown began. So a silent new client can make Shutdown take up to a
// second longer.
//
// When ctx ends first, Shutdown aborts the connections still open
// (ConnectionLost gets a reason matching ErrConnectionAborted and
// ErrConnectionLost, and wrapping ctx.Err()) and returns ctx.Err() at
// once, as http.Server.Shutdown does, without waiting for their
// goroutines. What may still run then: the goroutine of each connection
// that was still open, until it has called ConnectionLost (at once for
// one waiting on its socket; a callback or Handler that blocks without
// doing I/O is not interrupted, and its goroutine ends when it returns),
// and the port's internal goroutine that waits for those. Each
// connection's Done channel tells when it has finished.
//
// Shutdown waits for every connection, so a protocol callback (or a
// Handler) must not call it on its own goroutine: it would wait for
// itself until ctx ends. From a callback, start it on a goroutine of its
// own (go p.Shutdown(ctx)), or call Close, which waits only for
// BuildProtocol calls under way (so not from BuildProtocol itself).
func (p *Port) Shutdown(ctx context.Context) error {
	// Stop accepting, and ask every connection to end at once, before
	// waiting for Close: a connection whose BuildProtocol is still
	// running (Close waits for it) hears the request as soon as its
	// protocol starts, and one that the accept goroutine tracks from now
	// on hears it in track.
	p.closeOnce.Do(p.stop)
	p.mu.Lock()
	p.draining = true
	for c := range p.conns.all() {
		c.drain(false)
	}
	p.mu.Unlock()

	ended := make(chan struct{})
	go func() {
		<-p.done
		p.wg.Wait()
		close(ended)
	}()
	// The connections that drain postponed, still silent after the
	// grace, are asked then.
	grace := time.NewTimer(firstDataGrace)
	defer grace.Stop()
wait:
	for {
		select {
		case <-ended:
			return nil
		case <-grace.C:
			p.mu.Lock()
			for c := range p.conns.all() {
				c.drain(true)
			}
			p.mu.Unlock()
		case <-ctx.Done():
			break wait
		}
	}
	cause := fmt.Errorf("%w: %w", ErrConnectionAborted, ctx.Err())
	p.mu.Lock()
	for c := range p.conns.all() {
		c.abort(cause)
	}
	p.mu.Unlock()
	return ctx.Err()
}

// PauseProducing stops accepting: new clients wait in the listen backlog
// until ResumeProducing. A client that an Accept already under way returns
// (a listener without SetDeadline cannot be woken, and a real socket can
// return one in the instant before the deadline is seen) is held unserved
// until ResumeProducing, and closed if the port closes first.
func (p *Port) PauseProducing() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		return
	}
	p.paused = true
	p.resume = make(chan struct{})
	if d, ok := p.ln.(interface{ SetDeadline(time.Time) error }); ok {
		// Wake an Accept already blocked in the kernel.
		d.SetDeadline(aLongTimeAgo)
	}
}

// ResumeProducing undoes PauseProducing.
func (p *Port) ResumeProducing() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused {
		return
	}
	p.paused = false
	if d, ok := p.ln.(interface{ SetDeadline(time.Time) error }); ok {
		d.SetDeadline(time.Time{})
	}
	close(p.resume)
}

// aLongTimeAgo is a deadline in the past, to wake a blocked call at once.
var aLongTimeAgo = time.Unix(1, 0)

// File returns a duplicate of the listening socket, close-on-exec, to hand
// to a child process through exec.Cmd.ExtraFiles; the caller closes it.
// Unlike net's File methods, passing it to exec leaves the port's own
// socket non-blocking. It works on Linux, macOS and the BSDs. It returns an
// error wrapping net.ErrClosed once the port is closed, and
// ErrNotSupported for a listener with no descriptor and on systems without
// Unix descriptors (Windows).
func (p *Port) File() (*os.File, error) {
	if !p.Listening() {
		return nil, &net.OpError{Op: "file", Net: p.addr.Network(), Addr: p.addr, Err: net.ErrClosed}
	}
	sc, ok := p.ln.(syscall.Conn)
	if !ok {
		return nil, &net.OpError{Op: "file", Net: p.addr.Network(), Addr: p.addr, Err: ErrNotSupported}
	}
	f, err := dupFile(sc, p.addr.String())
	if err != nil {
		return nil, &net.OpError{Op: "file", Net: p.addr.Network(), Addr: p.addr, Err: err}
	}
	return f, nil
}

// acceptLoop is the port's one accept goroutine.
func (p *Port) acceptLoop() {
	defer p.finish()
	var delay time.Duration
	for {
		if !p.waitReady() {
			return
		}
		nc, err := p.ln.Accept()
		if err != nil {
			p.releaseSlot()
			if p.closing.Load() {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) && p.pauseRequested() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				// The listener was closed under the port (a MemoryListener's
				// Close, say): a normal stop, which finish logs.
				return
			}
			p.stats.acceptErrors.Add(1)
			switch {
			case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
				if p.shed(err) {
					continue
				}
			case isTemporary(err):
				p.acceptLog.log(p.log, "netport: accept failed; retrying", p.addr, err)
			default:
				p.log.Error("netport: accept failed; port stopped", "addr", logAddr(p.addr), "err", err)
				p.stopErr = err
				return
			}
			delay = nextDelay(delay)
			if !p.sleep(delay) {
				return
			}
			continue
		}
		delay = 0
		// PauseProducing may have come while Accept was under way: hold
		// the client until the port resumes.
		if !p.waitResumed() {
			nc.Close()
			p.releaseSlot()
			return
		}
		p.track(nc)
	}
}

// pauseRequested reports whether a deadline error came from PauseProducing
// (or a ResumeProducing that raced with it), rather than a real timeout.
func (p *Port) pauseRequested() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused || p.resume != nil
}

// waitReady blocks while the port is paused or at MaxConns, and reports
// false once the port is closing.
func (p *Port) waitReady() bool {
	if !p.waitResumed() {
		return false
	}
	if p.slots != nil {
		select {
		case p.slots <- struct{}{}:
		case <-p.closed:
			return false
		}
	}
	return !p.closing.Load()
}

// waitResumed blocks while the port is paused, and reports false once the
// port is closing.
func (p *Port) waitResumed() bool {
	for {
		p.mu.Lock()
		paused, resume := p.paused, p.resume
		if !paused {
			p.resume = nil
		}
		p.mu.Unlock()
		if !paused {
			return true
		}
		select {
		case <-resume:
		case <-p.closed:
			return false
		}
	}
}

func (p *Port) releaseSlot() {
	if p.slots != nil {
		<-p.slots
	}
}

// sleep waits d, and reports false if the port closed meanwhile.
func (p *Port) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.closed:
		return false
	}
}

// track registers a connection before its goroutine starts, so that
// Shutdown never misses one.
func (p *Port) track(nc net.Conn) {
	p.stats.accepted.Add(1)
	c := newConn(p.cfg, p, nc)
	p.mu.Lock()
	p.conns.add(c)
	p.wg.Add(1)
	useTLS := p.cfg != nil && p.cfg.TLS != nil
	// Close waits for the BuildProtocol of a connection whose set-up
	// cannot block: net's own, without TLS. Any other (a handshake, a
	// wrapper whose RemoteAddr may wait for a PROXY header) is counted
	// by startBuild once it is set up, or closed unserved if Close came
	// first, so that Close never waits for a client.
	counted := !useTLS && isNetsOwn(nc)
	if counted {
		p.builds.Add(1)
	}
	if p.draining {
		// Accepted while Shutdown was stopping the port: it must hear
		// Shutdown's request too.
		c.drain(false)
	}
	p.mu.Unlock()
	go c.serve(p.factory, useTLS, counted)
}

// forget is called by a connection's goroutine when it has ended.
func (p *Port) forget(c *Conn) {
	p.mu.Lock()
	p.conns.remove(c)
	if p.conns.len() == 0 {
		// No connection is left to list itself: let go of the sweeper
		// and of the ended connections its lists still hold.
		p.sweep.halt()
	}
	p.mu.Unlock()
	p.releaseSlot()
	p.wg.Done()
}

// finish runs when the accept goroutine returns, for any reason.
// StopFactory comes after every BuildProtocol under way has returned, and
// none starts after it (startBuild).
func (p *Port) finish() {
	p.closeOnce.Do(p.stop)
	p.file.remove()
	releaseFD(p.reserve)
	p.reserve = -1
	p.builds.Wait()
	if p.counted {
		stopFactory(p.log, p.addr, p.factory)
	}
	logStopped(p.log, p.addr, p.cfg.tlsKind(), p.stopErr)
	close(p.done)
}
