package netport_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"expvar"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
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

// datagramEcho sends every datagram back.
type datagramEcho struct{ port *netport.DatagramPort }

func (d *datagramEcho) StartProtocol(p *netport.DatagramPort)    { d.port = p }
func (d *datagramEcho) DatagramReceived(b []byte, from net.Addr) { d.port.WriteTo(b, from) }

// ListenPacket serves datagrams; each one reaches DatagramReceived.
func ExampleListenPacket() {
	d, err := netport.ListenPacket("udp4", "127.0.0.1:0", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	c, err := net.Dial("udp4", d.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	buf := make([]byte, 16)
	n, _ := c.Read(buf)
	fmt.Println(string(buf[:n]), d.MaxPacketSize())
	// Output: ping 8192
}

// AdoptDatagramPort serves a datagram socket someone else made, such as
// one systemd passes for ListenDatagram=.
func ExampleAdoptDatagramPort() {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer pc.Close() // closing the port leaves this one working
	f, _ := pc.(*net.UDPConn).File()
	d, err := netport.AdoptDatagramPort(int(f.Fd()), syscall.AF_INET, &datagramEcho{}, 512)
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	fmt.Println(d.Addr().String() == pc.LocalAddr().String(), d.MaxPacketSize())
	// Output: true 512
}

// Connect makes one address the port's only peer: Write sends to it, and
// WriteTo any other address fails with ErrWriteToConnected. Here the
// peer is the other end of a MemoryReactor's packet pipe.
func ExampleDatagramPort_Connect() {
	r := netport.NewMemoryReactor()
	d, err := r.ListenPacket("udp", "127.0.0.1:5353", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	peer := r.DatagramCalls()[0].Peer

	if err := d.Connect(peer.LocalAddr()); err != nil {
		log.Fatal(err)
	}
	d.Write([]byte("hello, peer"))
	buf := make([]byte, 64)
	n, _, _ := peer.ReadFrom(buf)
	fmt.Println(string(buf[:n]))

	other := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 53}
	_, err = d.WriteTo([]byte("x"), other)
	fmt.Println(errors.Is(err, netport.ErrWriteToConnected))
	// Output:
	// hello, peer
	// true
}

// Write needs a peer: on a port that is not connected it fails as
// write(2) does, with EDESTADDRREQ.
func ExampleDatagramPort_Write() {
	r := netport.NewMemoryReactor()
	d, err := r.ListenPacket("udp", "127.0.0.1:5353", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	_, err = d.Write([]byte("to whom?"))
	fmt.Println(errors.Is(err, syscall.EDESTADDRREQ))
	// Output: true
}

// WriteSequence sends its pieces as one datagram, as a header and a
// payload kept in separate buffers.
func ExampleDatagramPort_WriteSequence() {
	r := netport.NewMemoryReactor()
	d, err := r.ListenPacket("udp", "127.0.0.1:5353", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	peer := r.DatagramCalls()[0].Peer

	header, payload := []byte("HDR|"), []byte("payload")
	if err := d.WriteSequence([][]byte{header, payload}, peer.LocalAddr()); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _, _ := peer.ReadFrom(buf)
	fmt.Printf("one datagram: %q\n", buf[:n])
	// Output: one datagram: "HDR|payload"
}

// SetBroadcast allows datagrams to a broadcast address, which the system
// refuses (EACCES) without it; Go's own sockets start with it on, an
// adopted one may not.
func ExampleDatagramPort_SetBroadcast() {
	d, err := netport.ListenPacket("udp4", "127.0.0.1:0", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	fmt.Println(d.SetBroadcast(true))
	// Output: <nil>
}

// ListenMulticast and JoinGroup receive what is sent to a multicast
// group, here mDNS's. With ReusePort, other processes may serve the same
// group port at once. (Not run: it needs a network with multicast.)
func ExampleConfig_ListenMulticast() {
	group := net.IPv4(224, 0, 0, 251)
	cfg := &netport.Config{ReusePort: true}
	d, err := cfg.ListenMulticast("udp4", "224.0.0.251:5353", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	if err := d.JoinGroup(nil, group); err != nil { // nil: the system picks the interface
		log.Fatal(err)
	}
	defer d.LeaveGroup(nil, group)
}

// The sending side of multicast: which interface datagrams leave by, how
// far they travel (TTL) and whether this host's own members get a copy.
// (Not run: it needs a network with multicast.)
func ExampleDatagramPort_SetMulticastTTL() {
	d, err := netport.ListenMulticast("udp4", "0.0.0.0:0", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	eth0, err := net.InterfaceByName("eth0")
	if err != nil {
		log.Fatal(err)
	}
	if err := d.SetMulticastInterface(eth0); err != nil {
		log.Fatal(err)
	}
	if err := d.SetMulticastTTL(4); err != nil { // a few routers away; the default, 1, stays on this network
		log.Fatal(err)
	}
	if err := d.SetMulticastLoopback(false); err != nil { // no copy to members on this host
		log.Fatal(err)
	}
	d.WriteTo([]byte("announce"), &net.UDPAddr{IP: net.IPv4(239, 255, 0, 1), Port: 7007})
}

// A memory port records a ListenMulticast call but has no groups: the
// multicast calls answer ErrNotSupported.
func ExampleMemoryReactor_ListenMulticast() {
	r := netport.NewMemoryReactor()
	d, err := r.ListenMulticast("udp4", "224.0.0.251:5353", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	call := r.DatagramCalls()[0]
	fmt.Println(call.Network, call.Address)
	err = d.JoinGroup(nil, net.IPv4(224, 0, 0, 251))
	fmt.Println(errors.Is(err, netport.ErrNotSupported))
	// Output:
	// udp4 224.0.0.251:5353
	// true
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

// AdoptListener hands an inherited socket to a server that has its own
// accept loop, here net/http. The socket comes from net.Listen in the same
// process; in real use it comes from netport.Inherited (systemd, or a
// Restart).
func ExampleAdoptListener() {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	f, _ := ln.(*net.TCPListener).File()
	ln.Close()
	adopted, err := netport.AdoptListener(int(f.Fd()), syscall.AF_INET)
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "served by net/http")
	})}
	go srv.Serve(adopted)
	defer srv.Close()

	resp, err := http.Get("http://" + adopted.Addr().String() + "/")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(string(body))
	// Output: served by net/http
}

// AdoptConn hands an inherited connected socket (inetd's standard input,
// say) to code that wants a net.Conn.
func ExampleAdoptConn() {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer peer.Close()
	accepted, err := ln.Accept()
	if err != nil {
		log.Fatal(err)
	}
	f, _ := accepted.(*net.TCPConn).File()
	accepted.Close()
	c, err := netport.AdoptConn(int(f.Fd()), syscall.AF_INET)
	f.Close() // c has its own duplicate
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	peer.Write([]byte("hello"))
	buf := make([]byte, 5)
	io.ReadFull(c, buf)
	fmt.Println(string(buf))
	// Output: hello
}

// AdoptPacketConn hands an inherited datagram socket to code that wants a
// net.PacketConn (a DNS server's, say).
func ExampleAdoptPacketConn() {
	orig, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	f, _ := orig.(*net.UDPConn).File()
	orig.Close()
	pc, err := netport.AdoptPacketConn(int(f.Fd()), syscall.AF_INET)
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	defer pc.Close()
	c, _ := net.Dial("udp4", pc.LocalAddr().String())
	defer c.Close()
	c.Write([]byte("query"))
	buf := make([]byte, 16)
	n, _, _ := pc.ReadFrom(buf)
	fmt.Println(string(buf[:n]))
	// Output: query
}

// NetListen gives a plain net.Listener the socket options of Listen: a
// unix socket that only its owner may connect to, its mode set before it
// listens.
func ExampleConfig_NetListen() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "api.sock")
	ln, err := (&netport.Config{UnixMode: 0o600, Backlog: 64}).NetListen("unix", path)
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	fi, _ := os.Stat(path)
	fmt.Println(fi.Mode().Perm())
	// Output: -rw-------
}

// NetListen is Config.NetListen with a zero Config.
func ExampleNetListen() {
	ln, err := netport.NetListen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	fmt.Println(ln.Addr().Network())
	// Output: tcp
}

// Restart hands the ports to a new version of the program, as on SIGHUP;
// the new process finds them with Inherited and calls Ready, and this one
// then shuts its ports down. This example only compiles: it would start
// the program again.
func ExampleRestart() {
	web, err := netport.Listen("tcp", "127.0.0.1:8080", echoFactory)
	if err != nil {
		log.Fatal(err)
	}
	dns, err := netport.ListenPacket("udp", "127.0.0.1:8053", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	exe, _ := os.Executable()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	proc, err := netport.Restart(ctx, cmd,
		netport.NamedSocket{Name: "web", Socket: web},
		netport.NamedSocket{Name: "dns", Socket: dns})
	if err != nil {
		log.Printf("restart failed, still serving: %v", err)
		return
	}
	log.Printf("process %d serves now", proc.Pid)
	web.Shutdown(ctx)
	dns.Close()
}

// Ready, in the new process, tells the old one that it serves: call it
// once every inherited socket is adopted. Without a Restart behind this
// process it does nothing.
func ExampleReady() {
	socks, err := netport.Inherited()
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range socks {
		if s.Name == "web" {
			p, err := netport.AdoptStreamPort(s.FD, s.Family, echoFactory)
			if err != nil {
				log.Fatal(err)
			}
			defer p.Close()
		}
	}
	fmt.Println(netport.Ready())
	// Output: <nil>
}

// DatagramPort.File hands the datagram socket to another process, as
// Restart does.
func ExampleDatagramPort_File() {
	d, err := netport.ListenPacket("udp4", "127.0.0.1:0", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	f, err := d.File()
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	d.Close()
	info, _ := netport.Inspect(int(f.Fd()))
	fmt.Println(info.Type == syscall.SOCK_DGRAM)
	// Output: true
}

type requestIDKey struct{}

// watcher reports when its connection's context ends.
type watcher struct{ ended chan string }

func (w *watcher) ConnectionMade(t netport.Transport) {
	ctx := t.Context()
	go func() {
		<-ctx.Done() // the connection ended: stop work done for it
		w.ended <- ctx.Value(requestIDKey{}).(string)
	}()
}
func (w *watcher) DataReceived([]byte)  {}
func (w *watcher) ConnectionLost(error) {}

// BaseContext gives every connection's Transport.Context its values; the
// context is cancelled when the connection ends.
func ExampleConfig_baseContext() {
	cfg := &netport.Config{BaseContext: func(*netport.Port) context.Context {
		return context.WithValue(context.Background(), requestIDKey{}, "port-1")
	}}
	ended := make(chan string, 1)
	ml := netport.NewMemoryListener()
	p, err := cfg.Serve(ml, netport.FactoryFunc(func(net.Addr) netport.Protocol {
		return &watcher{ended: ended}
	}))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	c, _ := ml.Dial()
	c.Close()
	fmt.Println("context of", <-ended, "cancelled")
	// Output: context of port-1 cancelled
}

// HandlerContext's ctx tells a handler that the port shuts down, before its
// read ends, so it can say goodbye rather than take the EOF for a client
// that left.
func ExampleHandlerContext() {
	p, err := netport.Listen("tcp", "127.0.0.1:0", netport.HandlerContext(func(ctx context.Context, c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				if ctx.Err() != nil {
					fmt.Fprintln(c, "shutting down, goodbye")
				}
				return
			}
			fmt.Fprint(c, "ok ", line)
		}
	}))
	if err != nil {
		log.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	fmt.Fprintln(c, "hello")
	line, _ := r.ReadString('\n')
	fmt.Print(line)
	go p.Shutdown(context.Background())
	rest, _ := io.ReadAll(r)
	fmt.Print(string(rest))
	// Output:
	// ok hello
	// shutting down, goodbye
}

// Stats counts what a port did; export it to expvar (or Prometheus) in a
// few lines, without a metrics library in netport.
func ExamplePort_Stats() {
	ml := netport.NewMemoryListener()
	p, err := netport.Serve(ml, echoFactory)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	if expvar.Get("echo") == nil { // Publish panics on a name taken
		expvar.Publish("echo", expvar.Func(func() any { return p.Stats() }))
	}

	c, _ := ml.Dial()
	defer c.Close()
	fmt.Fprintf(c, "hi")
	io.ReadFull(c, make([]byte, 2))
	s := p.Stats()
	fmt.Println("accepted", s.Accepted, "active", s.Active)
	// Output: accepted 1 active 1
}

// A StringTransport's Context is Ctx: cancel it to play the end of the
// connection to the protocol under test.
func ExampleStringTransport_Context() {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &netport.StringTransport{Ctx: context.WithValue(ctx, requestIDKey{}, "test")}
	w := &watcher{ended: make(chan string, 1)}
	w.ConnectionMade(tr)
	cancel()
	fmt.Println(<-w.ended, "ended")
	// Output: test ended
}
