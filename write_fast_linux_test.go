package netport

import (
	"bytes"
	"errors"
	"net"
	"os"
	"reflect"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWriteFirstTakesWhole: a Write the socket takes whole is sent by the
// try that cannot block, and, with a WriteTimeout, allocates nothing.
func TestWriteFirstTakesWhole(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newHookFactory(nil, nil)
			p := listen(t, &Config{WriteTimeout: testTimeout}, tt.network, tt.address, f)
			client := dial(t, p)
			c := recv(t, recv(t, f.built).made).(*Conn)
			msg, got := pattern(64), make([]byte, 64)
			c.wmu.Lock()
			n, err := c.writeFirst(msg)
			c.wmu.Unlock()
			want := 0
			if sendNoWait {
				want = len(msg) // race builds and others keep net's Write alone
			}
			if n != want || err != nil {
				t.Fatalf("writeFirst(64 bytes) = %d, %v; want %d, nil", n, err, want)
			}
			if n > 0 {
				if _, err := readFull(client, got[:n]); err != nil || !bytes.Equal(got[:n], msg[:n]) {
					t.Fatalf("client read %q, %v; want what writeFirst sent", got[:n], err)
				}
			}
			allocs := testing.AllocsPerRun(1000, func() {
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := readFull(client, got); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per Write; want 0", allocs)
			}
		})
	}
}

// TestWriteFirstPartial: a Write larger than the socket takes at once
// sends the rest with the blocking write: the peer reads every byte in
// order, and WriteTimeout bounds the wait for a peer that reads nothing.
func TestWriteFirstPartial(t *testing.T) {
	const total = 16 << 20
	want := pattern(total)
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			written := make(chan error, 2)
			f := newHookFactory(nil, func(tr Transport, b []byte) {
				n, err := tr.Write(want)
				if err == nil && n != total {
					err = errors.New("short write without an error")
				}
				written <- err
			})
			p := listen(t, &Config{WriteTimeout: testTimeout}, tt.network, tt.address, f)
			client := dial(t, p)
			client.Write([]byte("go"))
			recv(t, f.built)
			if got := readN(t, client, total); !bytes.Equal(got, want) {
				t.Fatal("client read other bytes than those written")
			}
			if err := recv(t, written); err != nil {
				t.Fatalf("Write: %v", err)
			}

			// A peer that reads nothing: WriteTimeout ends the Write.
			p2 := listen(t, &Config{WriteTimeout: 50 * time.Millisecond}, tt.network, addressAgain(t, tt.network, tt.address), f)
			stuck := dial(t, p2)
			stuck.Write([]byte("go"))
			h := recv(t, f.built)
			err := recv(t, written)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Write to a peer that reads nothing: %v; want os.ErrDeadlineExceeded", err)
			}
			if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionLost) || !errors.Is(reason, os.ErrDeadlineExceeded) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionLost wrapping os.ErrDeadlineExceeded", reason)
			}
		})
	}
}

// addressAgain returns a fresh address of the kind of address.
func addressAgain(t *testing.T, network, address string) string {
	if network == "unix" {
		return address + "2"
	}
	return address
}

// TestWriteFirstErrors: a Write to a peer that is gone fails with the
// error net's own Write gives in the same state (a reset over TCP, a
// broken pipe over a unix socket), field for field, and ConnectionLost
// gets it as its cause.
func TestWriteFirstErrors(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			// Paused, the connections do not read, so the reset reaches
			// the Write rather than a read.
			f := newHookFactory(func(tr Transport) { tr.(*Conn).PauseProducing() }, nil)
			p := listen(t, nil, tt.network, tt.address, f)
			var conns [2]*Conn
			var protos [2]*hookProto
			want := syscall.EPIPE
			for i := range conns {
				client := dial(t, p)
				protos[i] = recv(t, f.built)
				conns[i] = recv(t, protos[i].made).(*Conn)
				if tc, ok := client.(*net.TCPConn); ok {
					want = syscall.ECONNRESET
					tc.SetLinger(0) // Close sends a reset
				}
				client.Close()
				if want == syscall.ECONNRESET {
					waitTCPClosed(t, conns[i])
				}
			}
			msg := []byte("to a peer that is gone")
			_, got := conns[0].Write(msg)
			_, ref := conns[1].raw.Write(msg) // net's own Write
			conns[1].AbortConnection()
			if !errors.Is(got, want) {
				t.Fatalf("Write: %v; want %v", got, want)
			}
			var g, r *net.OpError
			if !errors.As(got, &g) || !errors.As(ref, &r) {
				t.Fatalf("Write: %#v, net's Write: %#v; want *net.OpError both", got, ref)
			}
			if g.Op != r.Op || g.Net != r.Net || g.Source.String() != r.Source.String() ||
				reflect.TypeOf(g.Addr) != reflect.TypeOf(r.Addr) || !reflect.DeepEqual(g.Err, r.Err) {
				t.Fatalf("Write: %#v; net's own Write in the same state: %#v", g, r)
			}
			reason := recv(t, protos[0].lost)
			var lostErr *net.OpError
			if !errors.Is(reason, ErrConnectionLost) || !errors.As(reason, &lostErr) || lostErr != g {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionLost wrapping the Write's error", reason)
			}
		})
	}
}

// waitTCPClosed waits until c's socket has taken in the peer's reset.
func waitTCPClosed(tb testing.TB, c *Conn) {
	tb.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(testTimeout)
	for {
		var state uint8
		c.rc.Control(func(fd uintptr) {
			if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
				state = info.State
			}
		})
		if state == unix.BPF_TCP_CLOSE {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			tb.Fatalf("the server's socket is in TCP state %d after %v; want closed by the reset", state, testTimeout)
		}
	}
}
