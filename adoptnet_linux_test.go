//go:build linux

package netport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// netAdopters are the exported calls that hand an adopted socket to a
// loop of the caller's, in socketKind order.
var netAdopters = []struct {
	kind  socketKind
	name  string
	adopt func(fd, family int) (io.Closer, error)
}{
	{listenerKind, "AdoptListener", func(fd, family int) (io.Closer, error) { return AdoptListener(fd, family) }},
	{connKind, "AdoptConn", func(fd, family int) (io.Closer, error) { return AdoptConn(fd, family) }},
	{packetKind, "AdoptPacketConn", func(fd, family int) (io.Closer, error) { return AdoptPacketConn(fd, family) }},
}

// TestAdoptNetErrors checks that the net-value adopt calls refuse every
// descriptor the Adopt*Port calls refuse, with the same errors, leaking
// nothing.
func TestAdoptNetErrors(t *testing.T) {
	for _, tc := range adoptErrorCases {
		for _, a := range netAdopters {
			if tc.kinds == nil || slices.Contains(tc.kinds, a.kind) {
				t.Run(tc.name+"/"+a.name, func(t *testing.T) { testAdoptError(t, tc, a.kind, a.adopt) })
			}
		}
	}
}

// TestAdoptNetKeepsSocket closes what the net-value adopt calls return and
// checks that the original socket still serves.
func TestAdoptNetKeepsSocket(t *testing.T) {
	accept, recv := acceptAndClose, recvOnce
	testAdoptedCloseKeepsSocket(t, "unix", netAdopters[listenerKind].adopt, accept, "")
	testAdoptedCloseKeepsSocket(t, "udp4", netAdopters[packetKind].adopt, recv, "ping")
}

func init() {
	children["adopt-listener-servers"] = childAdoptListenerServers
}

// childAdoptListenerServers takes a tcp4 listener "http" and a unix
// listener "rpc" with Inherited, serves the first with http.Server and the
// second with a gRPC-style loop, talks to both, and stops both.
func childAdoptListenerServers() int {
	childSetup()
	var c childChecks
	infos, err := Inherited()
	if err != nil || len(infos) != 2 || infos[0].Name != "http" || infos[1].Name != "rpc" {
		c.errorf("Inherited: got %+v, %v; want the sockets http and rpc", infos, err)
		return c.status()
	}
	var lns []net.Listener
	for _, info := range infos {
		ln, err := AdoptListener(info.FD, info.Family)
		if err != nil {
			c.errorf("AdoptListener(%d): %v", info.FD, err)
			return c.status()
		}
		os.NewFile(uintptr(info.FD), info.Name).Close()
		lns = append(lns, ln)
	}

	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pid %d", os.Getpid())
	})}
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Serve(lns[0]) }()
	rpcDone := make(chan error, 1)
	go func() { rpcDone <- grpcStyleServe(lns[1]) }()

	client := &http.Client{Timeout: testTimeout}
	resp, err := client.Get("http://" + lns[0].Addr().String() + "/")
	if err != nil {
		c.errorf("GET: %v", err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("pid %d", os.Getpid()); string(body) != want {
			c.errorf("GET: got %q; want %q", body, want)
		}
	}
	if err := rpcCall(lns[1].Addr()); err != nil {
		c.errorf("rpc: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		c.errorf("http Shutdown: %v", err)
	}
	if err := <-httpDone; !errors.Is(err, http.ErrServerClosed) {
		c.errorf("http Serve: got %v; want http.ErrServerClosed", err)
	}
	lns[1].Close()
	if err := <-rpcDone; !errors.Is(err, net.ErrClosed) {
		c.errorf("rpc Serve: got %v; want net.ErrClosed", err)
	}
	return c.status()
}

// grpcStyleServe is the shape of grpc.Server.Serve: accept until the
// listener fails, one goroutine per connection, and the accept error as
// the result. Each connection answers one line with "ok LINE".
func grpcStyleServe(ln net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(testTimeout))
			buf := make([]byte, 64)
			n, _ := c.Read(buf)
			fmt.Fprintf(c, "ok %s", buf[:n])
		}()
	}
}

// rpcCall makes one call to a grpcStyleServe server.
func rpcCall(addr net.Addr) error {
	c, err := net.DialTimeout(addr.Network(), addr.String(), testTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(c, "ping"); err != nil {
		return err
	}
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(got) != "ok ping" {
		return fmt.Errorf("got %q; want %q", got, "ok ping")
	}
	return nil
}

// TestAdoptListenerInheritedServers passes two listening sockets to a
// child process as systemd does; the child serves one with net/http and
// the other with a gRPC-style loop.
func TestAdoptListenerInheritedServers(t *testing.T) {
	tcp, _ := netFile(t, "tcp4", "127.0.0.1:0")
	uln, _ := netFile(t, "unix", testAddress(t, "unix"))
	runChild(t, "adopt-listener-servers",
		[]string{setListenPIDEnv + "=1", "LISTEN_FDS=2", "LISTEN_FDNAMES=http:rpc"}, tcp, uln)
}

// TestAdoptListenerTLS serves https with http.Server over an adopted
// listener that Config.TLS wraps.
func TestAdoptListenerTLS(t *testing.T) {
	server, client := testTLS(t)
	f, addr := netFile(t, "tcp4", "127.0.0.1:0")
	ln, err := (&Config{TLS: server}).AdoptListener(fdOf(f), syscall.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	testHTTPS(t, ln, addr, client)
}

// testHTTPS serves ln with http.Server and checks one https request.
func testHTTPS(t *testing.T, ln net.Listener, addr net.Addr, client *tls.Config) {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls %v", r.TLS != nil)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		ctx, cancel := contextWithTimeout(testTimeout)
		defer cancel()
		srv.Shutdown(ctx)
		if err := recv(t, done); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: got %v; want http.ErrServerClosed", err)
		}
	}()
	tr := &http.Transport{TLSClientConfig: client}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: testTimeout}
	resp, err := hc.Get("https://" + addr.String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "tls true" {
		t.Fatalf("got %q; want %q", body, "tls true")
	}
}

// TestAdoptConnRoundTrip adopts an accepted connection and talks through
// it.
func TestAdoptConnRoundTrip(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.DialTimeout("tcp4", ln.Addr().String(), testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sf, err := s.(filer).File()
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	c, err := AdoptConn(fdOf(sf), syscall.AF_INET)
	sf.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pingPong(t, client, c)
}

func TestNetListen(t *testing.T) {
	t.Run("backlog", func(t *testing.T) {
		const backlog = 2
		if somaxconn(t) < backlog {
			t.Skip("somaxconn too small")
		}
		path := filepath.Join(t.TempDir(), "sock")
		ln, err := (&Config{Backlog: backlog}).NetListen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		n, err := unixConnects(t, path, 64)
		if n != backlog+1 || !errors.Is(err, syscall.EAGAIN) {
			t.Fatalf("connections before a refusal: got %d, %v; want %d, EAGAIN", n, err, backlog+1)
		}
	})
	t.Run("reuseport", func(t *testing.T) {
		cfg := &Config{ReusePort: true}
		ln1, err := cfg.NetListen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln1.Close()
		addr := ln1.Addr().String()
		if ln, err := NetListen("tcp4", addr); !errors.Is(err, syscall.EADDRINUSE) {
			if ln != nil {
				ln.Close()
			}
			t.Fatalf("NetListen on %s without ReusePort: got %v; want EADDRINUSE", addr, err)
		}
		var oe *net.OpError
		if _, err := NetListen("tcp4", addr); !errors.As(err, &oe) || oe.Op != "listen" {
			t.Errorf("got %v; want a *net.OpError with Op listen", err)
		}
		ln2, err := cfg.NetListen("tcp4", addr)
		if err != nil {
			t.Fatalf("second NetListen with ReusePort: %v", err)
		}
		ln2.Close()
	})
	t.Run("unixmode", func(t *testing.T) {
		const mode = 0o600
		path := filepath.Join(t.TempDir(), "sock")
		var before os.FileMode
		testHookBeforeListen = func(p string) {
			if fi, err := os.Stat(p); err == nil {
				before = fi.Mode().Perm()
			}
		}
		defer func() { testHookBeforeListen = nil }()
		ln, err := (&Config{UnixMode: mode}).NetListen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		if before != mode {
			t.Errorf("mode before listen(2): got %v; want %v", before, os.FileMode(mode))
		}
		if _, ok := ln.(*net.UnixListener); !ok {
			t.Errorf("got a %T; want a *net.UnixListener", ln)
		}
		c, err := net.DialTimeout("unix", path, testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		ln.Close()
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket file after Close: got %v; want it removed", err)
		}
	})
	t.Run("tls", func(t *testing.T) {
		server, client := testTLS(t)
		ln, err := (&Config{TLS: server}).NetListen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		testHTTPS(t, ln, ln.Addr(), client)
	})
	t.Run("unknown network", func(t *testing.T) {
		var unknown net.UnknownNetworkError
		if _, err := NetListen("udp", "127.0.0.1:0"); !errors.As(err, &unknown) {
			t.Errorf("got %v; want a net.UnknownNetworkError", err)
		}
	})
	t.Run("bad address", func(t *testing.T) {
		_, err := NetListen("tcp4", "127.0.0.1:"+strconv.Itoa(1<<20))
		if err == nil || !strings.Contains(err.Error(), "listen") {
			t.Errorf("got %v; want a listen error", err)
		}
	})
}
