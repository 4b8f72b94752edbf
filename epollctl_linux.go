package netport

import (
	"sync"
	"syscall"
)

// An epollOp is one epoll_ctl call made through RawConn.Control, with the
// function Control calls bound once: a connection parks every time it
// goes idle, and parking should allocate nothing (a closure capturing the
// event and the error would cost three allocations each time).
type epollOp struct {
	epfd, op int
	ev       syscall.EpollEvent
	err      error
	run      func(fd uintptr)
}

var epollOps = sync.Pool{New: func() any {
	o := new(epollOp)
	o.run = o.ctl
	return o
}}

// ctl makes the call, adding the descriptor when it was not in the set
// and modifying it when it already was.
func (o *epollOp) ctl(fd uintptr) {
	o.err = syscall.EpollCtl(o.epfd, o.op, int(fd), &o.ev)
	switch o.err {
	case syscall.ENOENT:
		o.err = syscall.EpollCtl(o.epfd, syscall.EPOLL_CTL_ADD, int(fd), &o.ev)
	case syscall.EEXIST:
		o.err = syscall.EpollCtl(o.epfd, syscall.EPOLL_CTL_MOD, int(fd), &o.ev)
	}
}

// epollControl adds (op EPOLL_CTL_ADD) or re-arms (EPOLL_CTL_MOD) rc's
// descriptor in the epoll set epfd with ev. Control holds the descriptor
// open, so that its number cannot name another socket by the time
// epoll_ctl runs.
func epollControl(rc syscall.RawConn, epfd, op int, ev syscall.EpollEvent) error {
	o := epollOps.Get().(*epollOp)
	o.epfd, o.op, o.ev, o.err = epfd, op, ev, nil
	cerr := rc.Control(o.run)
	err := o.err
	o.err = nil
	epollOps.Put(o)
	if cerr != nil {
		return cerr
	}
	return err
}
