package netport_test

import (
	"bufio"
	"context"
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
	"time"

	"github.com/netport/netport"
)

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
