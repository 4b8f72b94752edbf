// Accept errors: back-off, descriptor exhaustion and rate-limited logs.

package netport

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// shed handles EMFILE and ENFILE: it frees the spare descriptor, accepts
// the client at the head of the queue and closes it at once, so that
// queued clients see a close instead of hanging (it serves the client
// instead if descriptors were freed meanwhile), then takes the spare again.
// It reports false when there is no spare, so the caller backs off.
func (p *Port) shed(err error) bool {
	p.acceptLog.log(p.log, "netport: out of descriptors; closing a queued connection", p.addr, err)
	if p.reserve < 0 {
		p.reserve = reserveFD()
		return false
	}
	releaseFD(p.reserve)
	p.reserve = -1
	// accept(2) fails with EMFILE before it looks at the queue, so this
	// Accept may well wait for the next client, and descriptors may be
	// freed meanwhile.
	nc, aerr := p.ln.Accept()
	p.reserve = reserveFD()
	if aerr == nil {
		if p.reserve >= 0 && p.trySlot() {
			// The spare was taken besides nc's descriptor: the process
			// has descriptors again, so the client is served, not shed.
			p.track(nc)
		} else {
			p.stats.shed.Add(1)
			nc.Close()
			if p.reserve < 0 {
				p.reserve = reserveFD()
			}
		}
	}
	return !p.closing.Load()
}

// trySlot takes a MaxConns slot if one is free, without waiting.
func (p *Port) trySlot() bool {
	if p.slots == nil {
		return true
	}
	select {
	case p.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// nextDelay doubles the accept back-off from 5 ms up to 1 s.
func nextDelay(d time.Duration) time.Duration {
	const lo, hi = 5 * time.Millisecond, time.Second
	if d == 0 {
		return lo
	}
	if d *= 2; d > hi {
		d = hi
	}
	return d
}

// isTemporary reports whether an accept error is worth retrying.
func isTemporary(err error) bool {
	// ECONNABORTED, EINTR and EAGAIN never come from net's own listeners,
	// which retry them, but may from a listener of the caller's making.
	for _, e := range []error{syscall.ENOBUFS, syscall.ENOMEM, syscall.EPERM,
		syscall.ECONNABORTED, syscall.EINTR, syscall.EAGAIN, os.ErrDeadlineExceeded} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (r *rateLimiter) log(l *slog.Logger, msg string, addr net.Addr, err error) {
	r.mu.Lock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < time.Second {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	n := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	l.Warn(msg, "addr", addr.String(), "err", err, "suppressed", n)
}

// rateLimiter lets one log line through per second and counts the rest.
type rateLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}
