package netport_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"syscall"
	"time"

	"github.com/netport/netport"
)

// echo writes back every byte it receives.
type echo struct{ t netport.Transport }

func (e *echo) ConnectionMade(t netport.Transport) { e.t = t }
func (e *echo) DataReceived(b []byte)              { e.t.Write(b) }
func (e *echo) ConnectionLost(error)               {}

var echoFactory = netport.FactoryFunc(func(net.Addr) netport.Protocol { return &echo{} })

// Listen replaces net.Listen and the accept loop: every connection is
// served on its own goroutine by the protocol the factory builds.
func ExampleListen() {
	p, err := netport.Listen("tcp", "127.0.0.1:0", echoFactory)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "hello\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	// Output: hello
}

// Config.Listen shapes the socket and the connections: here a backlog, a
// limit on live connections and an idle timeout.
func ExampleConfig_Listen() {
	cfg := &netport.Config{Backlog: 128, MaxConns: 1000, IdleTimeout: time.Minute}
	p, err := cfg.Listen("tcp", "127.0.0.1:0", echoFactory)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	fmt.Println(p.Addr().Network())
	// Output: tcp
}

// Serve takes any net.Listener: one made elsewhere, wrapped, or in memory.
func ExampleServe() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	p, err := netport.Serve(ln, echoFactory) // the port owns ln from here
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	fmt.Println(p.Listening())
	// Output: true
}

// Handler serves connections in the blocking style of net/http.
func ExampleHandler() {
	greet := netport.Handler(func(c net.Conn) {
		fmt.Fprintf(c, "hello from %s\n", c.LocalAddr().Network())
	})
	p, err := netport.Listen("tcp", "127.0.0.1:0", greet)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	// Output: hello from tcp
}

// Shutdown stops accepting, asks every connection to finish and waits for
// them, up to a limit.
func ExamplePort_Shutdown() {
	p, err := netport.Listen("tcp", "127.0.0.1:0", echoFactory)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		log.Print(err)
	}
	fmt.Println(p.Listening())
	// Output: false
}

// NewMemoryListener serves a protocol without a socket: dial the listener
// and talk to the protocol over a buffered in-memory connection.
func ExampleNewMemoryListener() {
	ln := netport.NewMemoryListener()
	p, err := netport.Serve(ln, echoFactory)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown(context.Background()) // runs last: after c.Close

	c, err := ln.Dial()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "hello over memory\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	fmt.Println(p.Addr().Network())
	// Output:
	// hello over memory
	// memory
}

// upper is a line protocol: it answers each line in upper case and hangs
// up on "quit".
type upper struct {
	t   netport.Transport
	buf []byte
}

func (u *upper) ConnectionMade(t netport.Transport) { u.t = t }
func (u *upper) ConnectionLost(error)               {}
func (u *upper) DataReceived(b []byte) {
	u.buf = append(u.buf, b...)
	for {
		line, rest, ok := bytes.Cut(u.buf, []byte("\n"))
		if !ok {
			return
		}
		u.buf = rest
		if string(line) == "quit" {
			u.t.LoseConnection()
			return
		}
		u.t.Write(append(bytes.ToUpper(line), '\n'))
	}
}

// startServer is the code under test: it opens its port through whatever
// Reactor it is given (a *netport.Config in production).
func startServer(r netport.Reactor) (*netport.Port, error) {
	return r.Listen("tcp", "127.0.0.1:7007",
		netport.FactoryFunc(func(net.Addr) netport.Protocol { return &upper{} }))
}

// A MemoryReactor lets a test run code written against the Reactor
// interface without a socket: it records the call and serves the real
// protocol in memory, reached by the address the code asked for.
func ExampleMemoryReactor() {
	r := netport.NewMemoryReactor()
	p, err := startServer(r)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Shutdown(context.Background())

	call := r.ListenCalls()[0]
	fmt.Println(call.Network, call.Address)

	c, err := r.Dial(call.Network, call.Address)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "hello\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	// Output:
	// tcp 127.0.0.1:7007
	// HELLO
}

// A StringTransport unit-tests one protocol: call its methods directly and
// look at what it wrote and whether it hung up.
func ExampleStringTransport() {
	tr := new(netport.StringTransport)
	u := new(upper)
	u.ConnectionMade(tr)
	u.DataReceived([]byte("hel"))
	u.DataReceived([]byte("lo\nquit\n"))
	fmt.Printf("%q\n", tr.Value())
	fmt.Println(tr.Disconnecting())
	// Output:
	// "HELLO\n"
	// true
}

// A RaisingReactor tests how code copes when it cannot listen.
func ExampleRaisingReactor() {
	r := netport.RaisingReactor{Err: &net.OpError{Op: "listen", Net: "tcp", Err: syscall.EADDRINUSE}}
	_, err := startServer(r)
	fmt.Println(err)
	fmt.Println(errors.Is(err, syscall.EADDRINUSE))
	// Output:
	// listen tcp: address already in use
	// true
}
