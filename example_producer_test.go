package netport_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"strings"
	"sync"

	"github.com/netport/netport"
)

// chatRoom is a fan-out server: every message a member sends goes to
// every other member.
type chatRoom struct {
	mu      sync.Mutex
	members map[netport.Transport]bool
	dropped chan error // members ended because they did not read
}

type chatter struct {
	room *chatRoom
	t    netport.Transport
}

func (c *chatter) ConnectionMade(t netport.Transport) {
	c.t = t
	c.room.mu.Lock()
	c.room.members[t] = true
	c.room.mu.Unlock()
	t.Write([]byte("welcome\n"))
}

func (c *chatter) DataReceived(b []byte) {
	c.room.mu.Lock()
	defer c.room.mu.Unlock()
	for m := range c.room.members {
		if m != c.t {
			m.Write(b) // with a WriteBuffer, never waits for a slow member
		}
	}
}

func (c *chatter) ConnectionLost(reason error) {
	c.room.mu.Lock()
	delete(c.room.members, c.t)
	c.room.mu.Unlock()
	if errors.Is(reason, netport.ErrWriteBufferFull) {
		c.room.dropped <- reason
	}
}

// With Config.WriteBuffer set, Write never blocks, so a broadcast to many
// clients is not held up by one that stops reading: its queue grows until
// MaxWriteBuffer, and then it is dropped.
func ExampleConfig_chat() {
	room := &chatRoom{members: make(map[netport.Transport]bool), dropped: make(chan error, 1)}
	ln := netport.NewMemoryListener()
	cfg := &netport.Config{WriteBuffer: 4 << 10, MaxWriteBuffer: 64 << 10}
	p, err := cfg.Serve(ln, netport.FactoryFunc(func(net.Addr) netport.Protocol {
		return &chatter{room: room}
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown(context.Background())

	// A member has joined once it is welcome.
	join := func() (net.Conn, *bufio.Reader) {
		c, err := ln.Dial()
		if err != nil {
			log.Fatal(err)
		}
		in := bufio.NewReader(c)
		if _, err := in.ReadString('\n'); err != nil {
			log.Fatal(err)
		}
		return c, in
	}
	alice, _ := join()
	defer alice.Close()
	stuck, _ := join() // reads nothing more
	defer stuck.Close()
	bob, bobIn := join()
	defer bob.Close()

	got := 0
	for i := range 200 {
		fmt.Fprintf(alice, "message %03d %s\n", i, strings.Repeat(".", 1000))
		if _, err := bobIn.ReadString('\n'); err != nil {
			log.Fatal(err)
		}
		got++
	}
	fmt.Println("bob received", got, "messages")
	fmt.Println("stuck member dropped:", errors.Is(<-room.dropped, netport.ErrWriteBufferFull))
	// Output:
	// bob received 200 messages
	// stuck member dropped: true
}

// relay writes what it receives to its peer.
type relay struct{ peer netport.Transport }

func (r *relay) ConnectionMade(netport.Transport) {}
func (r *relay) DataReceived(b []byte)            { r.peer.Write(b) }
func (r *relay) ConnectionLost(error)             {}

// front is the client's side of a proxy: it dials the backend and relays
// both ways.
type front struct {
	relay
	cfg  *netport.Config
	dial func() (net.Conn, error)
}

func (f *front) ConnectionMade(a netport.Transport) {
	nc, err := f.dial()
	if err != nil {
		a.AbortConnection()
		return
	}
	b, err := f.cfg.ServeConn(nc, netport.FactoryFunc(func(net.Addr) netport.Protocol {
		return &relay{peer: a}
	}))
	if err != nil {
		a.AbortConnection()
		return
	}
	f.peer = b
	// Each side produces what the other writes: when one side's peer
	// reads slowly, the other side stops reading from its own peer. When
	// one side ends, the other gets StopProducing, which closes it.
	b.RegisterProducer(a, true)
	a.RegisterProducer(b, true)
}

// A proxy in two lines: each connection is the other's producer.
func ExampleProducer() {
	backend := netport.NewMemoryListener()
	bp, err := netport.Serve(backend, netport.FactoryFunc(func(net.Addr) netport.Protocol {
		return &shout{}
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer bp.Shutdown(context.Background())

	frontend := netport.NewMemoryListener()
	cfg := &netport.Config{WriteBuffer: 64 << 10}
	fp, err := cfg.Serve(frontend, netport.FactoryFunc(func(net.Addr) netport.Protocol {
		return &front{cfg: cfg, dial: backend.Dial}
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer fp.Shutdown(context.Background())

	c, err := frontend.Dial()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "hello through the proxy\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	// Output:
	// HELLO THROUGH THE PROXY
}

// shout answers with what it receives, in upper case.
type shout struct{ t netport.Transport }

func (s *shout) ConnectionMade(t netport.Transport) { s.t = t }
func (s *shout) DataReceived(b []byte)              { s.t.Write(bytes.ToUpper(b)) }
func (s *shout) ConnectionLost(error)               {}

// ServeConn serves a connection the program opened itself, here the
// client side of an in-memory connection.
func ExampleConfig_ServeConn() {
	ln := netport.NewMemoryListener()
	p, err := netport.Serve(ln, netport.FactoryFunc(func(net.Addr) netport.Protocol { return &shout{} }))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown(context.Background())

	nc, err := ln.Dial()
	if err != nil {
		log.Fatal(err)
	}
	replies := make(chan string, 1)
	c, err := netport.ServeConn(nc, &greeter{replies: replies})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(<-replies)
	c.LoseConnection()
	<-c.Done()
	// Output:
	// HI
}

// greeter says hi when connected and reports the answer.
type greeter struct{ replies chan string }

func (g *greeter) BuildProtocol(net.Addr) netport.Protocol { return g }
func (g *greeter) ConnectionMade(t netport.Transport)      { t.Write([]byte("hi")) }
func (g *greeter) DataReceived(b []byte)                   { g.replies <- string(b) }
func (g *greeter) ConnectionLost(error)                    {}

// pullFile is a pull producer: each ResumeProducing writes the next chunk,
// and the last one ends the transfer.
type pullFile struct {
	t      netport.Transport
	chunks []string
}

func (p *pullFile) ResumeProducing() {
	if len(p.chunks) == 0 {
		p.t.UnregisterProducer()
		p.t.LoseConnection()
		return
	}
	p.t.Write([]byte(p.chunks[0]))
	p.chunks = p.chunks[1:]
}
func (p *pullFile) PauseProducing() {}
func (p *pullFile) StopProducing()  {}

// SetBufferFull lets a unit test drive a producer the way a send queue
// would, without a connection.
func ExampleStringTransport_SetBufferFull() {
	var tr netport.StringTransport
	p := &pullFile{t: &tr, chunks: []string{"one ", "two ", "three"}}
	tr.RegisterProducer(p, false) // a pull producer is asked at once
	fmt.Printf("%q\n", tr.String())
	tr.SetBufferFull(false) // the queue drained: asked again
	tr.SetBufferFull(false)
	tr.SetBufferFull(false)
	fmt.Printf("%q disconnecting=%v\n", tr.String(), tr.Disconnecting())
	// Output:
	// "one "
	// "one two three" disconnecting=true
}
