package netport

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// orderProto checks the callback contract from inside: it counts the
// callbacks running at once (more than one is an overlap) and records their
// order.
type orderProto struct {
	active   atomic.Int32
	overlaps atomic.Int32

	mu     sync.Mutex
	t      Transport
	events []string
	n      int // bytes received

	lost chan struct{}
}

func (o *orderProto) enter(ev string) {
	if o.active.Add(1) != 1 {
		o.overlaps.Add(1)
	}
	o.mu.Lock()
	o.events = append(o.events, ev)
	o.mu.Unlock()
	// Give an overlapping callback, if there is one, the time to start.
	runtime.Gosched()
}

func (o *orderProto) leave() { o.active.Add(-1) }

func (o *orderProto) ConnectionMade(t Transport) {
	o.enter("made")
	defer o.leave()
	o.mu.Lock()
	o.t = t
	o.mu.Unlock()
	// Poke the transport from another goroutine while data flows: none of
	// this may start a callback beside the running one.
	go func() {
		for i := 0; i < 50; i++ {
			t.PauseProducing()
			runtime.Gosched()
			t.ResumeProducing()
		}
	}()
}

func (o *orderProto) DataReceived(b []byte) {
	o.enter("data")
	defer o.leave()
	o.mu.Lock()
	o.n += len(b)
	t := o.t
	o.mu.Unlock()
	t.Write(b)
}

func (o *orderProto) ConnectionLost(error) {
	o.enter("lost")
	defer o.leave()
	close(o.lost)
}

func TestCallbacksInOrderNeverOverlapping(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			built := make(chan *orderProto, 1)
			f := FactoryFunc(func(net.Addr) Protocol {
				o := &orderProto{lost: make(chan struct{})}
				built <- o
				return o
			})
			p := listen(t, nil, tt.network, tt.address, f)
			c := dial(t, p)

			const writes, size = 200, 100
			var sent bytes.Buffer
			for i := 0; i < writes; i++ {
				msg := bytes.Repeat([]byte{byte('a' + i%26)}, size)
				sent.Write(msg)
				if _, err := c.Write(msg); err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			closeWrite(t, c)
			if got := readAll(t, c); !bytes.Equal(got, sent.Bytes()) {
				t.Fatalf("echo: got %d bytes; want the %d sent", len(got), sent.Len())
			}
			o := recv(t, built)
			waitClosed(t, o.lost, "ConnectionLost")

			if n := o.overlaps.Load(); n != 0 {
				t.Errorf("overlapping callbacks: got %d; want 0", n)
			}
			o.mu.Lock()
			defer o.mu.Unlock()
			if o.n != sent.Len() {
				t.Errorf("DataReceived bytes: got %d; want %d", o.n, sent.Len())
			}
			ev := o.events
			if len(ev) < 3 || ev[0] != "made" || ev[len(ev)-1] != "lost" {
				t.Fatalf("events %v; want made, data..., lost", ev)
			}
			for i, e := range ev[1 : len(ev)-1] {
				if e != "data" {
					t.Fatalf("event %d: got %q; want data", i+1, e)
				}
			}
		})
	}
}

func TestOneGoroutinePerConnection(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			release := make(chan struct{})
			f := newHookFactory(nil, func(tr Transport, b []byte) {
				if string(b) == "block" {
					<-release
				}
				tr.Write(b)
			})
			p := listen(t, nil, tt.network, tt.address, f)
			var once sync.Once
			t.Cleanup(func() { once.Do(func() { close(release) }) })

			slow := dial(t, p)
			if _, err := slow.Write([]byte("block")); err != nil {
				t.Fatal(err)
			}
			blocked := recv(t, f.built)
			recv(t, blocked.data) // the first connection is now stuck in DataReceived

			roundTrip(t, dial(t, p), []byte("not delayed"))

			once.Do(func() { close(release) })
			got := make([]byte, 5)
			if _, err := io.ReadFull(slow, got); err != nil || string(got) != "block" {
				t.Fatalf("slow connection: got %q, %v; want \"block\"", got, err)
			}
		})
	}
}

func TestBuildProtocolGetsRemoteAddress(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			remotes := make(chan net.Addr, 1)
			f := FactoryFunc(func(remote net.Addr) Protocol {
				remotes <- remote
				return newHookProto(nil, echoData)
			})
			p := listen(t, nil, tt.network, tt.address, f)
			c := dial(t, p)
			roundTrip(t, c, []byte("hi"))
			remote := recv(t, remotes)
			want := c.LocalAddr()
			if remote == nil || remote.Network() != want.Network() || remote.String() != want.String() {
				t.Fatalf("BuildProtocol(%v); want the client's address %v", remote, want)
			}
		})
	}
}

func TestNilProtocolClosesConnection(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			asked := make(chan struct{}, 1)
			f := FactoryFunc(func(net.Addr) Protocol {
				asked <- struct{}{}
				return nil
			})
			p := listen(t, nil, tt.network, tt.address, f)
			c := dial(t, p)
			recv(t, asked)
			n, err := c.Read(make([]byte, 1))
			if n != 0 || err != io.EOF {
				t.Fatalf("client read: got %d, %v; want 0, EOF", n, err)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			conns := make(chan net.Conn, 1)
			served := make(chan struct{})
			f := Handler(func(c net.Conn) {
				defer close(served)
				conns <- c
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				io.WriteString(c, "hello, "+line)
			})
			p := listen(t, nil, tt.network, tt.address, f)
			c := dial(t, p)
			if _, err := io.WriteString(c, "world\n"); err != nil {
				t.Fatal(err)
			}
			// EOF after the reply: the connection is closed when serve returns.
			if got := string(readAll(t, c)); got != "hello, world\n" {
				t.Fatalf("reply: got %q; want %q", got, "hello, world\n")
			}
			waitClosed(t, served, "serve to return")
			sc := recv(t, conns)
			if sc.RemoteAddr().String() != c.LocalAddr().String() {
				t.Errorf("serve's conn RemoteAddr: got %v; want %v", sc.RemoteAddr(), c.LocalAddr())
			}
		})
	}
}

// halfCloseProto echoes, and answers the peer's half-close with a last
// reply before it closes.
type halfCloseProto struct {
	*hookProto
	readLost chan struct{}
}

func (h halfCloseProto) ReadConnectionLost() {
	close(h.readLost)
	h.t.Write([]byte(" and goodbye"))
	h.t.LoseConnection()
}

func TestReadConnectionLost(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			built := make(chan halfCloseProto, 1)
			f := FactoryFunc(func(net.Addr) Protocol {
				h := halfCloseProto{newHookProto(nil, echoData), make(chan struct{})}
				built <- h
				return h
			})
			p := listen(t, nil, tt.network, tt.address, f)
			c := dial(t, p)
			roundTrip(t, c, []byte("hello"))
			closeWrite(t, c)
			if got, want := string(readAll(t, c)), " and goodbye"; got != want {
				t.Fatalf("after half-close: got %q; want %q", got, want)
			}
			h := recv(t, built)
			waitClosed(t, h.readLost, "ReadConnectionLost")
			if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionDone) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
			}
		})
	}
}

func TestHalfCloseWithoutReadConnectionLost(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newHookFactory(nil, echoData)
			p := listen(t, nil, tt.network, tt.address, f)
			c := dial(t, p)
			roundTrip(t, c, []byte("hello"))
			closeWrite(t, c)
			if got := readAll(t, c); len(got) != 0 {
				t.Fatalf("after half-close: got %q; want EOF", got)
			}
			h := recv(t, f.built)
			if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionDone) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
			}
		})
	}
}
