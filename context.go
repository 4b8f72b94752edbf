package netport

import (
	"context"
	"net"
	"sync"
)

// Contexts. A connection's context costs an allocation and a cancel
// function, which most protocols never use, so it is made on the first
// Context call; a connection that nobody asks holds none. The end path
// cancels it, or, when none was made, leaves a mark so that a later call
// gets one already cancelled.

// connContext is the context state of one connection.
type connContext struct {
	mu      sync.Mutex
	ctx     context.Context    // nil until the first Context call
	cancel  context.CancelFunc // cancels ctx
	hcancel context.CancelFunc // cancels a HandlerContext's ctx; nil until it is made
	ended   bool               // the connection has ended: contexts made from now on are cancelled
	drained bool               // Shutdown asked a Handler connection to finish
}

// baseContext calls Config.BaseContext for p, recovering a panic, which
// becomes the error.
func (c *Config) baseContext(p *Port) (ctx context.Context, err error) {
	if c == nil || c.BaseContext == nil {
		return context.Background(), nil
	}
	defer func() {
		if r := recover(); r != nil {
			ctx, err = nil, panicError(r)
		}
	}()
	if ctx = c.BaseContext(p); ctx == nil {
		ctx = context.Background()
	}
	return ctx, nil
}

// setBase fixes the port's base context, calling Config.BaseContext once.
func (p *Port) setBase() error {
	ctx, err := p.cfg.baseContext(p)
	if err != nil {
		return &net.OpError{Op: "listen", Net: p.addr.Network(), Addr: p.addr, Err: err}
	}
	p.base = ctx
	return nil
}

// endedContext marks a connection that ended before anybody asked for
// its context, so that the end path costs no allocation.
var endedContext = new(connContext)

// contextState returns c's context state, made on first use, or nil once
// the connection has ended without one.
func (c *Conn) contextState() *connContext {
	cc := c.ctxs.Load()
	if cc == nil {
		c.ctxs.CompareAndSwap(nil, new(connContext))
		cc = c.ctxs.Load()
	}
	if cc == endedContext {
		return nil
	}
	return cc
}

// Context returns the connection's context: it carries the values of the
// port's Config.BaseContext, and it is cancelled when the connection ends,
// before ConnectionLost is called (for a Handler, once serve has
// returned). It is made on the first call; a call after the end gets a
// context already cancelled. For a connection adopted with
// AdoptStreamConnection, BaseContext is called with a nil *Port.
func (c *Conn) Context() context.Context {
	cc := c.contextState()
	if cc == nil {
		return c.cancelledContext()
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.ctx == nil {
		cc.ctx, cc.cancel = context.WithCancel(c.base())
		if cc.ended {
			cc.cancel()
		}
	}
	return cc.ctx
}

// cancelledContext returns a context derived from the connection's base,
// already cancelled.
func (c *Conn) cancelledContext() context.Context {
	ctx, cancel := context.WithCancel(c.base())
	cancel()
	return ctx
}

// base returns the context the connection's context derives from.
func (c *Conn) base() context.Context {
	if c.port != nil {
		return c.port.base
	}
	ctx, err := c.cfg.baseContext(nil)
	if err != nil {
		c.cfg.logger().Error("netport: BaseContext panicked; using context.Background()", "err", err)
		return context.Background()
	}
	return ctx
}

// endContext cancels the connection's contexts, if any was made, and makes
// those asked for later cancelled; called once the connection has ended.
func (c *Conn) endContext() {
	cc := c.ctxs.Load()
	if cc == nil && c.ctxs.CompareAndSwap(nil, endedContext) {
		return // nobody asked: nothing to cancel, and nothing allocated
	}
	if cc = c.ctxs.Load(); cc == endedContext {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.ended = true
	if cc.cancel != nil {
		cc.cancel()
	}
}

// drainContext is Shutdown's request reaching a Handler connection: it
// cancels a HandlerContext's ctx, or makes it cancelled from the start.
// Called before the read side is closed.
func (c *Conn) drainContext() {
	cc := c.contextState()
	if cc == nil {
		return
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.drained = true
	if cc.hcancel != nil {
		cc.hcancel()
	}
}

// handlerContext returns the ctx a HandlerContext function gets: the
// connection's context, also cancelled by Shutdown's request.
func (c *Conn) handlerContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(c.Context())
	cc := c.contextState()
	if cc == nil {
		cancel()
		return ctx, cancel
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.hcancel = cancel
	if cc.drained {
		cancel()
	}
	return ctx, cancel
}

// HandlerContext is Handler for a function that takes a context: serve
// runs on the connection's own goroutine with the accepted connection, as
// with Handler, and ctx (the connection's Context, carrying the values of
// Config.BaseContext) is cancelled when Port.Shutdown asks the connection
// to finish, before its read side is closed, and when the connection ends.
// So a handler can write a goodbye when ctx is done, and, when a read
// gives io.EOF, tell a shutdown (ctx.Err() != nil) from a client that
// closed its side. The connection is closed when serve returns; a panic in
// serve is recovered and logged.
func HandlerContext(serve func(ctx context.Context, c net.Conn)) Factory {
	return FactoryFunc(func(net.Addr) Protocol { return handlerProtocol{serveCtx: serve} })
}

// runHandler calls the function of a Handler or a HandlerContext.
func (h handlerProtocol) run(c *Conn) {
	if h.serveCtx == nil {
		h.serve(c.handlerConn())
		return
	}
	ctx, cancel := c.handlerContext()
	defer cancel()
	h.serveCtx(ctx, c.handlerConn())
}
