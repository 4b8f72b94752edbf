package netport

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func streamNetworks(t *testing.T) []struct{ network, address string } {
	nets := []struct{ network, address string }{
		{"tcp", "127.0.0.1:0"},
		{"tcp4", "127.0.0.1:0"},
		{"unix", filepath.Join(t.TempDir(), "sock")},
	}
	if hasIPv6() {
		nets = append(nets, struct{ network, address string }{"tcp6", "[::1]:0"})
	}
	return nets
}

func TestEchoOverEveryNetwork(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newEchoFactory()
			p := listen(t, nil, tt.network, tt.address, f)
			c := dial(t, p)
			roundTrip(t, c, []byte("hello, netport"))
			proto := recv(t, f.built)
			c.Close()
			reason := recv(t, proto.lost)
			if !errors.Is(reason, ErrConnectionDone) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
			}
			proto.mu.Lock()
			ev := proto.events
			proto.mu.Unlock()
			if ev[0] != "made" || ev[len(ev)-1] != "lost" {
				t.Fatalf("events %v; want made first and lost last", ev)
			}
		})
	}
}

func TestPortAddrAndClose(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			p := listen(t, nil, tt.network, tt.address, newEchoFactory())
			addr := p.Addr()
			switch a := addr.(type) {
			case *net.TCPAddr:
				if a.Port == 0 {
					t.Fatalf("Addr() = %v; want port 0 resolved", a)
				}
			case *net.UnixAddr:
				if a.Name != tt.address {
					t.Fatalf("Addr() = %v; want %s", a, tt.address)
				}
			default:
				t.Fatalf("Addr() is %T; want *net.TCPAddr or *net.UnixAddr", addr)
			}
			if !p.Listening() {
				t.Fatalf("Listening() = false before Close; want true")
			}
			c := dial(t, p)
			roundTrip(t, c, []byte("before"))

			if err := p.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case <-p.Done():
			default:
				t.Fatalf("Done not closed when Close returned: the accept goroutine may still run")
			}
			if p.Listening() {
				t.Fatalf("Listening() = true after Close; want false")
			}
			if err := p.Close(); err != nil {
				t.Fatalf("second Close: got %v; want nil", err)
			}
			if got := p.Addr(); got.String() != addr.String() {
				t.Fatalf("Addr() after Close = %v; want %v", got, addr)
			}
			// Close leaves the open connection alone.
			roundTrip(t, c, []byte("after Close"))
			if nc, err := net.DialTimeout(addr.Network(), addr.String(), testTimeout); err == nil {
				nc.Close()
				t.Fatalf("dial after Close: got a connection; want an error")
			}
		})
	}
}

func TestPortString(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			p := listen(t, nil, tt.network, tt.address, newEchoFactory())
			// "tcp 127.0.0.1:NNNN (*netport.echoFactory)": the network of the
			// address (tcp4 and tcp6 ports have tcp addresses), and the port
			// number resolved.
			want := `^unix ` + regexp.QuoteMeta(tt.address)
			if tt.network != "unix" {
				host, _, _ := net.SplitHostPort(tt.address)
				want = `^tcp ` + regexp.QuoteMeta(net.JoinHostPort(host, "")) + `[1-9][0-9]*`
			}
			want += ` \(\*netport\.echoFactory\)`
			if s := p.String(); !regexp.MustCompile(want + `$`).MatchString(s) {
				t.Fatalf("String() = %q; want a match for %s$", s, want)
			}
			p.Close()
			if s := p.String(); !regexp.MustCompile(want + ` not listening$`).MatchString(s) {
				t.Fatalf("String() after Close = %q; want a match for %s not listening$", s, want)
			}
		})
	}
}

func TestPortPauseProducing(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newEchoFactory()
			p := listen(t, nil, tt.network, tt.address, f)
			p.PauseProducing()
			p.PauseProducing() // twice is once
			if !p.Listening() {
				t.Fatalf("Listening() = false while paused; want true")
			}
			// The kernel completes the connection; the port leaves it in the
			// backlog.
			c := dial(t, p)
			if _, err := c.Write([]byte("waiting")); err != nil {
				t.Fatal(err)
			}
			quiet(t, f.built, "BuildProtocol while paused")
			p.ResumeProducing()
			p.ResumeProducing()
			recv(t, f.built)
			got := make([]byte, len("waiting"))
			if _, err := readFull(c, got); err != nil || string(got) != "waiting" {
				t.Fatalf("echo after resume: got %q, %v; want \"waiting\"", got, err)
			}
			roundTrip(t, dial(t, p), []byte("served at once"))
		})
	}
}

func TestPortStopProducing(t *testing.T) {
	p := listen(t, nil, "tcp", "127.0.0.1:0", newEchoFactory())
	p.StopProducing()
	waitClosed(t, p.Done(), "Done after StopProducing")
	if p.Listening() {
		t.Fatalf("Listening() = true after StopProducing; want false")
	}
}
