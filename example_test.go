package netport_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net"
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
