package netport

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
)

// Reactor is what code that opens ports needs from netport, so that a test
// can hand it a [MemoryReactor] or a [RaisingReactor] instead of real
// sockets. *Config is the real one.
type Reactor interface {
	Listen(network, address string, f Factory) (*Port, error)
	Serve(ln net.Listener, f Factory) (*Port, error)
	AdoptStreamPort(fd, family int, f Factory) (*Port, error)
	AdoptStreamConnection(fd, family int, f Factory) (*Conn, error)
	AdoptDatagramPort(fd, family int, p DatagramProtocol, maxPacketSize int) (*DatagramPort, error)
	ListenPacket(network, address string, p DatagramProtocol, maxPacketSize int) (*DatagramPort, error)
}

var (
	_ Reactor = (*Config)(nil)
	_ Reactor = (*MemoryReactor)(nil)
	_ Reactor = RaisingReactor{}
)

// ListenCall records a MemoryReactor.Listen call.
type ListenCall struct {
	Network, Address string
	Factory          Factory
	Port             *Port
}

// ServeCall records a MemoryReactor.Serve call.
type ServeCall struct {
	Listener net.Listener
	Factory  Factory
	Port     *Port
}

// AdoptStreamPortCall records a MemoryReactor.AdoptStreamPort call.
type AdoptStreamPortCall struct {
	FD, Family int
	Factory    Factory
	Port       *Port
}

// AdoptStreamConnectionCall records a MemoryReactor.AdoptStreamConnection
// call. Peer is the other end of the in-memory connection: what a test
// writes to it reaches the protocol, and what the protocol writes can be
// read from it.
type AdoptStreamConnectionCall struct {
	FD, Family int
	Factory    Factory
	Conn       *Conn
	Peer       net.Conn
}

// DatagramCall records a MemoryReactor.AdoptDatagramPort or ListenPacket
// call. Peer is an in-memory packet connection whose datagrams, written to
// Port.Addr(), reach the protocol; the protocol's replies to Peer.LocalAddr
// can be read from it. Network and Address are empty for an adoption, FD
// and Family zero for ListenPacket.
type DatagramCall struct {
	Network, Address string
	FD, Family       int
	Protocol         DatagramProtocol
	MaxPacketSize    int
	Port             *DatagramPort
	Peer             net.PacketConn
}

// MemoryReactor is a [Reactor] for tests: it records every call and serves
// real *Port, *Conn and *DatagramPort values over in-memory listeners and
// connections, so that the code under test runs unchanged and no socket is
// opened. Dial reaches a port by the network and address it was opened
// with. Config, when set before the first call, shapes what is served (a
// TLS configuration, timeouts). Its methods are safe for concurrent use.
// The caller closes what the calls return, as with real sockets.
type MemoryReactor struct {
	Config *Config

	mu        sync.Mutex
	listens   []ListenCall
	serves    []ServeCall
	ports     []AdoptStreamPortCall
	conns     []AdoptStreamConnectionCall
	datagrams []DatagramCall
	byAddr    map[string]*MemoryListener // "network address" -> listener
}

// NewMemoryReactor returns an empty MemoryReactor.
func NewMemoryReactor() *MemoryReactor { return &MemoryReactor{} }

func (r *MemoryReactor) register(key string, ln *MemoryListener) {
	if r.byAddr == nil {
		r.byAddr = make(map[string]*MemoryListener)
	}
	r.byAddr[key] = ln
	r.byAddr["memory "+ln.Addr().String()] = ln
}

// Listen records the call and serves f on a new MemoryListener, which Dial
// reaches with the same network and address (or with "memory" and the
// port's Addr). Calling it twice with one address (other than port 0)
// while the first port is open returns an error wrapping
// syscall.EADDRINUSE, as a real socket would. Failed calls are not
// recorded, by this method or any other.
func (r *MemoryReactor) Listen(network, address string, f Factory) (*Port, error) {
	ln := NewMemoryListener()
	key := network + " " + address
	// Port 0 asks for a fresh port each time, as with real sockets; Dial
	// with that address reaches the latest.
	_, port, _ := net.SplitHostPort(address)
	r.mu.Lock()
	if old, ok := r.byAddr[key]; ok && port != "0" && !isClosed(old.done) {
		r.mu.Unlock()
		ln.Close()
		return nil, &net.OpError{Op: "listen", Net: network, Err: syscall.EADDRINUSE}
	}
	// The address is taken before serving, and the lock let go, so that a
	// StartFactory may call the reactor.
	r.register(key, ln)
	r.mu.Unlock()
	p, err := r.Config.Serve(ln, f)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		delete(r.byAddr, key)
		delete(r.byAddr, "memory "+ln.Addr().String())
		return nil, err
	}
	r.listens = append(r.listens, ListenCall{network, address, f, p})
	return p, nil
}

// Serve records the call and serves ln (real or in memory) as Config.Serve
// does.
func (r *MemoryReactor) Serve(ln net.Listener, f Factory) (*Port, error) {
	p, err := r.Config.Serve(ln, f)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ml, ok := ln.(*MemoryListener); ok {
		r.register("memory "+ml.Addr().String(), ml)
	}
	r.serves = append(r.serves, ServeCall{ln, f, p})
	return p, nil
}

// AdoptStreamPort records the call and serves f on a new MemoryListener,
// which Dial reaches with network "fd" and the descriptor number as the
// address. The descriptor is not touched, but family is checked as the
// real call checks it: an unknown one gives ErrUnsupportedAddressFamily.
func (r *MemoryReactor) AdoptStreamPort(fd, family int, f Factory) (*Port, error) {
	if err := checkAdoptFamily(family); err != nil {
		return nil, &net.OpError{Op: "adopt", Net: "memory", Err: err}
	}
	ln := NewMemoryListener()
	p, err := r.Config.Serve(ln, f)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.register("fd "+strconv.Itoa(fd), ln)
	r.ports = append(r.ports, AdoptStreamPortCall{fd, family, f, p})
	return p, nil
}

// AdoptStreamConnection records the call and serves f on one end of a new
// in-memory connection; the other end is the call's Peer. As the real
// call, it checks Config and family first (ErrInvalidConfig,
// ErrUnsupportedAddressFamily) and returns ErrNoProtocol when f builds
// none. The descriptor is not touched.
func (r *MemoryReactor) AdoptStreamConnection(fd, family int, f Factory) (*Conn, error) {
	if err := r.Config.checkStream(f); err != nil {
		return nil, &net.OpError{Op: "adopt", Net: "memory", Err: err}
	}
	if err := checkAdoptFamily(family); err != nil {
		return nil, &net.OpError{Op: "adopt", Net: "memory", Err: err}
	}
	peer, local, err := memoryConnPair()
	if err != nil {
		return nil, err
	}
	c, err := r.Config.serveConn(local, f)
	if err != nil {
		peer.Close()
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.conns = append(r.conns, AdoptStreamConnectionCall{fd, family, f, c, peer})
	return c, nil
}

// AdoptDatagramPort records the call and serves p on one end of a new
// in-memory packet pipe; the other end is the call's Peer. The descriptor
// is not touched, but family is checked as the real call checks it: an
// unknown one gives ErrUnsupportedAddressFamily.
func (r *MemoryReactor) AdoptDatagramPort(fd, family int, p DatagramProtocol, maxPacketSize int) (*DatagramPort, error) {
	if err := r.Config.checkDatagramArgs(p, maxPacketSize); err != nil {
		return nil, &net.OpError{Op: "adopt", Net: "memory", Err: err}
	}
	if err := checkAdoptFamily(family); err != nil {
		return nil, &net.OpError{Op: "adopt", Net: "memory", Err: err}
	}
	return r.datagram(DatagramCall{FD: fd, Family: family, Protocol: p, MaxPacketSize: maxPacketSize})
}

// ListenPacket records the call and serves p on one end of a new in-memory
// packet pipe; the other end is the call's Peer.
func (r *MemoryReactor) ListenPacket(network, address string, p DatagramProtocol, maxPacketSize int) (*DatagramPort, error) {
	return r.datagram(DatagramCall{Network: network, Address: address, Protocol: p, MaxPacketSize: maxPacketSize})
}

func (r *MemoryReactor) datagram(call DatagramCall) (*DatagramPort, error) {
	if call.Protocol == nil {
		return nil, &net.OpError{Op: "listen", Net: "memory", Err: errNilProtocol}
	}
	local, peer := NewMemoryPacketPipe()
	d, err := r.Config.servePacket(local, call.Protocol, call.MaxPacketSize)
	if err != nil {
		peer.Close()
		return nil, &net.OpError{Op: "listen", Net: "memory", Addr: local.LocalAddr(), Err: err}
	}
	call.Port, call.Peer = d, peer
	r.mu.Lock()
	defer r.mu.Unlock()
	r.datagrams = append(r.datagrams, call)
	return d, nil
}

// Dial connects to a port this reactor opened: by the network and address
// given to Listen, by "fd" and the descriptor number given to
// AdoptStreamPort, or by "memory" and the port's Addr. It returns an error
// wrapping syscall.ECONNREFUSED for an address nothing listens on.
func (r *MemoryReactor) Dial(network, address string) (net.Conn, error) {
	r.mu.Lock()
	ln := r.byAddr[network+" "+address]
	r.mu.Unlock()
	if ln == nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("netport: nothing listens on %s %s: %w", network, address, syscall.ECONNREFUSED)}
	}
	return ln.Dial()
}

// ListenCalls returns the Listen calls so far, oldest first.
func (r *MemoryReactor) ListenCalls() []ListenCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ListenCall(nil), r.listens...)
}

// ServeCalls returns the Serve calls so far, oldest first.
func (r *MemoryReactor) ServeCalls() []ServeCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ServeCall(nil), r.serves...)
}

// AdoptStreamPortCalls returns the AdoptStreamPort calls so far.
func (r *MemoryReactor) AdoptStreamPortCalls() []AdoptStreamPortCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]AdoptStreamPortCall(nil), r.ports...)
}

// AdoptStreamConnectionCalls returns the AdoptStreamConnection calls so
// far.
func (r *MemoryReactor) AdoptStreamConnectionCalls() []AdoptStreamConnectionCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]AdoptStreamConnectionCall(nil), r.conns...)
}

// DatagramCalls returns the AdoptDatagramPort and ListenPacket calls so
// far, in the order they were made.
func (r *MemoryReactor) DatagramCalls() []DatagramCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]DatagramCall(nil), r.datagrams...)
}

// memoryConnPair returns the two ends of a new in-memory connection.
func memoryConnPair() (client, server net.Conn, err error) {
	ln := NewMemoryListener()
	defer ln.stopAccepting()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		ch <- result{c, err}
	}()
	client, err = ln.Dial()
	res := <-ch
	if err != nil || res.err != nil {
		if client != nil {
			client.Close()
		}
		if res.c != nil {
			res.c.Close()
		}
		if err == nil {
			err = res.err
		}
		return nil, nil, err
	}
	return client, res.c, nil
}

// RaisingReactor is a [Reactor] whose every method fails, to test how code
// copes when it cannot listen or adopt. Every method returns Err, or
// [ErrReactorRaised] when Err is nil, so that a zero RaisingReactor{}
// fails too.
type RaisingReactor struct {
	Err error
}

// ErrReactorRaised is what a RaisingReactor with a nil Err returns.
var ErrReactorRaised = errors.New("netport: RaisingReactor refused the call")

func (r RaisingReactor) err() error {
	if r.Err == nil {
		return ErrReactorRaised
	}
	return r.Err
}

// Listen returns r.Err (ErrReactorRaised when nil).
func (r RaisingReactor) Listen(string, string, Factory) (*Port, error) { return nil, r.err() }

// Serve closes ln, as a failing Config.Serve does, and returns r.Err (ErrReactorRaised when nil).
func (r RaisingReactor) Serve(ln net.Listener, _ Factory) (*Port, error) {
	if ln != nil {
		ln.Close()
	}
	return nil, r.err()
}

// AdoptStreamPort returns r.Err (ErrReactorRaised when nil).
func (r RaisingReactor) AdoptStreamPort(int, int, Factory) (*Port, error) { return nil, r.err() }

// AdoptStreamConnection returns r.Err (ErrReactorRaised when nil).
func (r RaisingReactor) AdoptStreamConnection(int, int, Factory) (*Conn, error) {
	return nil, r.err()
}

// AdoptDatagramPort returns r.Err (ErrReactorRaised when nil).
func (r RaisingReactor) AdoptDatagramPort(int, int, DatagramProtocol, int) (*DatagramPort, error) {
	return nil, r.err()
}

// ListenPacket returns r.Err (ErrReactorRaised when nil).
func (r RaisingReactor) ListenPacket(string, string, DatagramProtocol, int) (*DatagramPort, error) {
	return nil, r.err()
}
