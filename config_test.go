//go:build linux

package netport

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// badConfigs are settings every entry point must refuse, with the word
// the error must contain.
func badConfigs() []struct {
	name string
	cfg  *Config
	word string
} {
	return []struct {
		name string
		cfg  *Config
		word string
	}{
		{"negative Backlog", &Config{Backlog: -1}, "Backlog"},
		{"negative MaxConns", &Config{MaxConns: -1}, "MaxConns"},
		{"negative ReadBufferSize", &Config{ReadBufferSize: -1}, "ReadBufferSize"},
		{"negative IdleTimeout", &Config{IdleTimeout: -time.Second}, "IdleTimeout"},
		{"negative WriteTimeout", &Config{WriteTimeout: -time.Second}, "WriteTimeout"},
		{"negative WriteBuffer", &Config{WriteBuffer: -1}, "WriteBuffer"},
		{"negative MaxWriteBuffer", &Config{MaxWriteBuffer: -1}, "MaxWriteBuffer"},
		{"MaxWriteBuffer below WriteBuffer", &Config{WriteBuffer: 1 << 16, MaxWriteBuffer: 1 << 10}, "MaxWriteBuffer"},
		{"TLS without certificate", &Config{TLS: &tls.Config{}}, "certificate"},
	}
}

func checkInvalid(tb testing.TB, call string, err error, word string) {
	tb.Helper()
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), word) {
		tb.Errorf("%s: got %v; want an error wrapping ErrInvalidConfig naming %s", call, err, word)
	}
	var oe *net.OpError
	if err != nil && !errors.As(err, &oe) {
		tb.Errorf("%s: error %T; want a *net.OpError", call, err)
	}
}

func TestInvalidConfigRefusedEverywhere(t *testing.T) {
	lnFile, _ := netFile(t, "tcp4", "127.0.0.1:0")
	connFile, _ := connectedFile(t)
	for _, bc := range badConfigs() {
		t.Run(bc.name, func(t *testing.T) {
			f := newEchoFactory()
			before := countFDs(t)
			if p, err := bc.cfg.Listen("tcp", "127.0.0.1:0", f); true {
				if p != nil {
					p.Close()
				}
				checkInvalid(t, "Listen", err, bc.word)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if p, err := bc.cfg.Serve(ln, f); true {
				if p != nil {
					p.Close()
				}
				checkInvalid(t, "Serve", err, bc.word)
			}
			if p, err := bc.cfg.AdoptStreamPort(fdOf(lnFile), unix.AF_INET, f); true {
				if p != nil {
					p.Close()
				}
				checkInvalid(t, "AdoptStreamPort", err, bc.word)
			}
			if c, err := bc.cfg.AdoptStreamConnection(fdOf(connFile), unix.AF_INET, f); true {
				if c != nil {
					c.AbortConnection()
				}
				checkInvalid(t, "AdoptStreamConnection", err, bc.word)
			}
			if c, err := (&MemoryReactor{Config: bc.cfg}).AdoptStreamConnection(0, unix.AF_INET, f); true {
				if c != nil {
					c.AbortConnection()
				}
				checkInvalid(t, "MemoryReactor.AdoptStreamConnection", err, bc.word)
			}
			if ln, err := bc.cfg.NetListen("tcp", "127.0.0.1:0"); true {
				if ln != nil {
					ln.Close()
				}
				checkInvalid(t, "NetListen", err, bc.word)
			}
			if ln, err := bc.cfg.AdoptListener(fdOf(lnFile), unix.AF_INET); true {
				if ln != nil {
					ln.Close()
				}
				checkInvalid(t, "AdoptListener", err, bc.word)
			}
			if bc.cfg.TLS == nil { // TLS does not concern datagram ports or plain conns
				if c, err := bc.cfg.AdoptConn(fdOf(connFile), unix.AF_INET); true {
					if c != nil {
						c.Close()
					}
					checkInvalid(t, "AdoptConn", err, bc.word)
				}
				if d, err := bc.cfg.ListenPacket("udp", "127.0.0.1:0", newDgRecorder(), 0); true {
					if d != nil {
						d.Close()
					}
					checkInvalid(t, "ListenPacket", err, bc.word)
				}
			}
			if after := countFDs(t); after != before {
				t.Errorf("descriptors: %d after the refused calls; want %d", after, before)
			}
		})
	}
}

func TestNilFactoryAndNegativePacketSizeMatchErrInvalidConfig(t *testing.T) {
	lnFile, _ := netFile(t, "tcp4", "127.0.0.1:0")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name, word string
		call       func() error
	}{
		{"Listen", "Factory", func() error { _, err := Listen("tcp", "127.0.0.1:0", nil); return err }},
		{"Serve", "Factory", func() error { _, err := Serve(ln, nil); return err }},
		{"AdoptStreamPort", "Factory", func() error { _, err := AdoptStreamPort(fdOf(lnFile), unix.AF_INET, nil); return err }},
		{"ListenPacket nil", "DatagramProtocol", func() error { _, err := ListenPacket("udp", "127.0.0.1:0", nil, 0); return err }},
		{"ListenPacket negative", "maxPacketSize", func() error {
			_, err := ListenPacket("udp", "127.0.0.1:0", newDgRecorder(), -1)
			return err
		}},
		{"MemoryReactor.AdoptDatagramPort negative", "maxPacketSize", func() error {
			_, err := NewMemoryReactor().AdoptDatagramPort(3, unix.AF_INET, newDgRecorder(), -1)
			return err
		}},
	}
	for _, c := range calls {
		checkInvalid(t, c.name, c.call(), c.word)
	}
}

func TestTLSWithGetCertificateAccepted(t *testing.T) {
	server, client := testTLS(t)
	cert := server.Certificates[0]
	cfg := &Config{TLS: &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		return &cert, nil
	}}}
	p := listen(t, cfg, "tcp", "127.0.0.1:0", newEchoFactory())
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: testTimeout}, "tcp", p.Addr().String(), client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	roundTrip(t, c, []byte("hello"))
}

// keepAliveOf reads SO_KEEPALIVE and TCP_KEEPIDLE of a served connection.
func keepAliveOf(tb testing.TB, tr Transport) (on bool, idle time.Duration) {
	tb.Helper()
	rc, err := tr.Conn().(syscall.Conn).SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var ka, secs int
	var kerr, ierr error
	rc.Control(func(fd uintptr) {
		ka, kerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		secs, ierr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
	})
	if kerr != nil || ierr != nil {
		tb.Fatalf("getsockopt: %v, %v", kerr, ierr)
	}
	return ka != 0, time.Duration(secs) * time.Second
}

func TestKeepAlive(t *testing.T) {
	for _, tt := range []struct {
		name      string
		keepAlive time.Duration
		on        bool
		idle      time.Duration
	}{
		{"zero is net's default", 0, true, DefaultKeepAlive},
		{"set", 42 * time.Second, true, 42 * time.Second},
		{"negative disables", -1, false, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newHookFactory(nil, nil)
			p := listen(t, &Config{KeepAlive: tt.keepAlive}, "tcp", "127.0.0.1:0", f)
			dial(t, p)
			tr := recv(t, recv(t, f.built).made)
			on, idle := keepAliveOf(t, tr)
			if on != tt.on || (tt.on && idle != tt.idle) {
				t.Fatalf("keep-alive: got %v, idle %v; want %v, idle %v", on, idle, tt.on, tt.idle)
			}
		})
	}
}

// TestNoDelayIsNetsDefault checks what Config's doc says: TCP_NODELAY is
// set on served TCP connections.
func TestNoDelayIsNetsDefault(t *testing.T) {
	f := newHookFactory(nil, nil)
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	dial(t, p)
	tr := recv(t, recv(t, f.built).made)
	rc, err := tr.Conn().(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY) })
	if gerr != nil || v == 0 {
		t.Fatalf("TCP_NODELAY: got %d, %v; want set", v, gerr)
	}
}
