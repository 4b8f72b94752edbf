package netport_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/netport/netport"
	"golang.org/x/net/netutil"
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

// Config.Listen shapes the socket and the connections it serves: here a
// backlog, a limit on live connections and an idle timeout, after which a
// silent client is hung up on.
func ExampleConfig_Listen() {
	cfg := &netport.Config{Backlog: 128, MaxConns: 1000, IdleTimeout: 100 * time.Millisecond}
	p, err := cfg.Listen("tcp", "127.0.0.1:0", echoFactory)
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
	got, err := io.ReadAll(c) // the echo, then EOF once the client is idle
	fmt.Printf("%q %v\n", got, err)
	// Output: "hello\n" <nil>
}

// Serve takes any net.Listener: one made elsewhere, wrapped (here by
// netutil.LimitListener), or in memory.
func ExampleServe() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	// The port owns the listener from here, and closes it.
	tcp, err := netport.Serve(netutil.LimitListener(ln, 100), echoFactory)
	if err != nil {
		log.Fatal(err)
	}
	defer tcp.Close()
	ml := netport.NewMemoryListener()
	mem, err := netport.Serve(ml, echoFactory)
	if err != nil {
		log.Fatal(err)
	}
	defer mem.Close()

	c1, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c1.Close()
	c2, err := ml.Dial()
	if err != nil {
		log.Fatal(err)
	}
	defer c2.Close()
	for _, c := range []net.Conn{c1, c2} {
		fmt.Fprintf(c, "hello over %s\n", c.LocalAddr().Network())
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Print(line)
	}
	// Output:
	// hello over tcp
	// hello over memory
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

// Shutdown stops accepting, asks every connection to finish (the client
// sees the end of its stream) and waits for them, up to a limit.
func ExamplePort_Shutdown() {
	p, err := netport.Listen("tcp", "127.0.0.1:0", echoFactory)
	if err != nil {
		log.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "hello\n")
	r := bufio.NewReader(c)
	line, _ := r.ReadString('\n') // served: the connection is live
	fmt.Print(line)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		log.Print(err)
	}
	_, err = r.ReadByte()
	fmt.Println(err, p.Listening())
	// Output:
	// hello
	// EOF false
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
// A Config that no port can use is refused when the port is made, with an
// error naming the field.
func ExampleErrInvalidConfig() {
	_, err := (&netport.Config{MaxConns: -1}).Listen("tcp", "127.0.0.1:0", echoFactory)
	fmt.Println(errors.Is(err, netport.ErrInvalidConfig))
	fmt.Println(err)
	// Output:
	// true
	// listen tcp: netport: invalid configuration: Config.MaxConns is negative (-1)
}

// A zero RaisingReactor fails too, with ErrReactorRaised.
func ExampleErrReactorRaised() {
	_, err := startServer(netport.RaisingReactor{})
	fmt.Println(errors.Is(err, netport.ErrReactorRaised))
	// Output: true
}

func ExampleRaisingReactor() {
	r := netport.RaisingReactor{Err: &net.OpError{Op: "listen", Net: "tcp", Err: syscall.EADDRINUSE}}
	_, err := startServer(r)
	fmt.Println(err)
	fmt.Println(errors.Is(err, syscall.EADDRINUSE))
	// Output:
	// listen tcp: address already in use
	// true
}

// AdoptStreamPort serves a listening socket someone else made. Here the
// socket comes from net.Listen in the same process; in real use it comes
// from systemd, a parent process or a unix-socket handoff.
func ExampleAdoptStreamPort() {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		log.Fatal(err)
	}
	p, err := netport.AdoptStreamPort(int(f.Fd()), syscall.AF_INET, echoFactory)
	f.Close() // the port has its own duplicate
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "served by the adopted socket\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	// Output: served by the adopted socket
}

// Adoption checks the descriptor before anything starts; each refusal
// names its cause and matches with errors.Is.
func ExampleAdoptStreamPort_errors() {
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	_, err := netport.AdoptStreamPort(int(r.Fd()), syscall.AF_INET, echoFactory)
	fmt.Println(errors.Is(err, syscall.ENOTSOCK))
	_, err = netport.AdoptStreamPort(int(r.Fd()), 1<<16+7, echoFactory)
	fmt.Println(errors.Is(err, netport.ErrUnsupportedAddressFamily))
	// Output:
	// true
	// true
}

// AdoptStreamConnection serves one connected socket, such as the one an
// inetd-style manager passes as standard input (netport.Inspect(0) tells
// its family).
func ExampleAdoptStreamConnection() {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	f, _ := server.(*net.TCPConn).File()
	server.Close()
	c, err := netport.AdoptStreamConnection(int(f.Fd()), syscall.AF_INET, echoFactory)
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(client, "adopted\n")
	line, _ := bufio.NewReader(client).ReadString('\n')
	fmt.Print(line)
	c.LoseConnection()
	<-c.Done()
	// Output: adopted
}

// Inherited returns the sockets a service manager passed by systemd socket
// activation: none here, since no service manager started this process.
func ExampleInherited() {
	socks, err := netport.Inherited()
	if err != nil {
		log.Fatal(err) // malformed LISTEN_* variables
	}
	fmt.Println(len(socks), "sockets inherited")
	// Output: 0 sockets inherited
}

// Inspect tells what a descriptor is, e.g. standard input under inetd.
func ExampleInspect() {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	f, _ := ln.(*net.TCPListener).File()
	defer f.Close()
	info, err := netport.Inspect(int(f.Fd()))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Family == syscall.AF_INET, info.Type == syscall.SOCK_STREAM, info.Listening)
	// Output: true true true
}

// Port.File hands the listening socket over, typically to a child
// process through exec.Cmd.ExtraFiles (where it is descriptor 3), which
// adopts it. Here this process adopts it itself: once the old port has
// shut down, the new one serves the same address.
func ExamplePort_File() {
	old, err := netport.Listen("tcp4", "127.0.0.1:0", netport.Handler(func(c net.Conn) {
		fmt.Fprintln(c, "old port")
	}))
	if err != nil {
		log.Fatal(err)
	}
	f, err := old.File()
	if err != nil {
		log.Fatal(err)
	}
	next, err := netport.AdoptStreamPort(int(f.Fd()), syscall.AF_INET, netport.Handler(func(c net.Conn) {
		fmt.Fprintln(c, "new port")
	}))
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	defer next.Close()
	old.Shutdown(context.Background())

	c, err := net.Dial("tcp4", old.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	// Output: new port
}

// PeerCredentials tells who is at the other end of a unix socket, so a
// server can refuse a user.
func ExamplePeerCredentials() {
	onlyMe := netport.FactoryFunc(func(net.Addr) netport.Protocol { return &ownerOnly{} })
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	p, err := netport.Listen("unix", filepath.Join(dir, "sock"), onlyMe)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("unix", p.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Print(line)
	// Output: welcome
}

// ownerOnly serves only the user this process runs as.
type ownerOnly struct{}

func (ownerOnly) ConnectionMade(t netport.Transport) {
	cred, err := netport.PeerCredentials(t)
	if err != nil || cred.UID != os.Getuid() {
		t.AbortConnection()
		return
	}
	fmt.Fprintln(t, "welcome")
}
func (ownerOnly) DataReceived([]byte)  {}
func (ownerOnly) ConnectionLost(error) {}

// Over in-memory connections a protocol's timeouts can be tested in the
// fake time of a testing/synctest bubble: here an IdleTimeout of one hour
// fires at once in real time. synctest.Test needs a test's *testing.T,
// which an example has not: TestSynctestExample runs testIdle.
func ExampleNewMemoryListener_synctest() {
	testIdle := func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ln := netport.NewMemoryListener() // made inside the bubble
			cfg := &netport.Config{IdleTimeout: time.Hour}
			p, err := cfg.Serve(ln, echoFactory)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			defer p.Close()
			c, err := ln.Dial()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			io.ReadAll(c) // EOF when the port closes the idle connection
			if waited := time.Since(start); waited != time.Hour {
				t.Errorf("closed after %v of fake time; want 1h", waited)
			}
		})
	}
	synctestExample = testIdle
}

// synctestExample is the test ExampleNewMemoryListener_synctest writes.
var synctestExample func(t *testing.T)

func TestSynctestExample(t *testing.T) {
	ExampleNewMemoryListener_synctest()
	synctestExample(t)
}
