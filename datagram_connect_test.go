//go:build linux

package netport

import (
	"bytes"
	"errors"
	"net"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// dgGoneAddr returns a UDP address on loopback that nothing listens on.
func dgGoneAddr(tb testing.TB) *net.UDPAddr {
	tb.Helper()
	gone, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := gone.LocalAddr().(*net.UDPAddr)
	gone.Close()
	return addr
}

// dgNothing fails tb if pc receives a datagram within quietPeriod.
func dgNothing(tb testing.TB, pc net.PacketConn, what string) {
	tb.Helper()
	pc.SetReadDeadline(time.Now().Add(quietPeriod))
	defer pc.SetReadDeadline(time.Now().Add(datagramWait))
	b := make([]byte, 64)
	if n, from, err := pc.ReadFrom(b); err == nil {
		tb.Fatalf("%s: got %q from %v; want nothing", what, b[:n], from)
	}
}

// dgRead reads one datagram from pc.
func dgRead(tb testing.TB, pc net.PacketConn) []byte {
	tb.Helper()
	b := make([]byte, 1<<16)
	n, _, err := pc.ReadFrom(b)
	if err != nil {
		tb.Fatalf("ReadFrom: %v", err)
	}
	return b[:n]
}

func TestDatagramConnect(t *testing.T) {
	r := newDgRecorder()
	d := dgListen(t, nil, "udp", "127.0.0.1:0", r, 0)
	peer := dgClient(t, d.Addr())
	other := dgClient(t, d.Addr())

	// Datagrams from another sender that arrived before Connect are not
	// delivered after it: the port is paused while they arrive. The port
	// may have read the first and hold it (a read can complete as the
	// pause's deadline is set); it holds one at most, so the second waits
	// in the socket.
	d.PauseProducing()
	dgSend(t, other, d.Addr(), []byte("before connect 1"))
	dgSend(t, other, d.Addr(), []byte("before connect 2"))
	deadline := time.Now().Add(datagramWait)
	for dgPending(t, d) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the datagrams sent while paused never arrived")
		}
		runtime.Gosched()
	}
	if err := d.Connect(peer.LocalAddr()); err != nil {
		t.Fatalf("Connect(%v): %v", peer.LocalAddr(), err)
	}
	d.ResumeProducing()
	dgSend(t, other, d.Addr(), []byte("from other"))
	dgSend(t, peer, d.Addr(), []byte("from peer"))
	if got := r.recv(t); string(got.data) != "from peer" {
		t.Fatalf("first datagram after Connect: %q from %v; want %q from the peer %v", got.data, got.from, "from peer", peer.LocalAddr())
	}

	if n, err := d.Write([]byte("to peer")); err != nil || n != 7 {
		t.Fatalf("Write: %d, %v; want 7, nil", n, err)
	}
	if got := dgRead(t, peer); string(got) != "to peer" {
		t.Fatalf("peer got %q; want %q", got, "to peer")
	}
	for _, to := range []net.Addr{nil, (*net.UDPAddr)(nil), peer.LocalAddr()} {
		if _, err := d.WriteTo([]byte("to peer again"), to); err != nil {
			t.Fatalf("WriteTo(%#v) on a connected port: %v", to, err)
		}
		if got := dgRead(t, peer); string(got) != "to peer again" {
			t.Fatalf("peer got %q; want %q", got, "to peer again")
		}
	}
	_, err := d.WriteTo([]byte("elsewhere"), other.LocalAddr())
	if !errors.Is(err, ErrWriteToConnected) || !errors.Is(err, net.ErrWriteToConnected) {
		t.Fatalf("WriteTo another address: %v; want ErrWriteToConnected", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" {
		t.Errorf("WriteTo another address: %#v; want a *net.OpError with Op write", err)
	}
	if err := d.WriteSequence([][]byte{[]byte("else")}, other.LocalAddr()); !errors.Is(err, ErrWriteToConnected) {
		t.Errorf("WriteSequence to another address: %v; want ErrWriteToConnected", err)
	}
	dgNothing(t, other, "the other address after WriteTo was refused")
}

func TestDatagramNotConnected(t *testing.T) {
	d := dgListen(t, nil, "udp", "127.0.0.1:0", newDgRecorder(), 0)
	if _, err := d.Write([]byte("x")); !errors.Is(err, syscall.EDESTADDRREQ) {
		t.Errorf("Write on a port that is not connected: %v; want EDESTADDRREQ", err)
	}
	for _, to := range []net.Addr{nil, (*net.UDPAddr)(nil), (*net.UnixAddr)(nil)} {
		if _, err := d.WriteTo([]byte("x"), to); !errors.Is(err, syscall.EDESTADDRREQ) {
			t.Errorf("WriteTo(%#v): %v; want EDESTADDRREQ", to, err)
		}
		if err := d.WriteSequence([][]byte{[]byte("x")}, to); !errors.Is(err, syscall.EDESTADDRREQ) {
			t.Errorf("WriteSequence(%#v): %v; want EDESTADDRREQ", to, err)
		}
		if err := d.Connect(to); !errors.Is(err, syscall.EDESTADDRREQ) {
			t.Errorf("Connect(%#v): %v; want EDESTADDRREQ", to, err)
		}
	}
	if err := d.Connect(&net.UnixAddr{Name: "x", Net: "unixgram"}); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("Connect(a unix address) on a udp port: %v; want EAFNOSUPPORT", err)
	}
	if err := d.Connect(&net.UDPAddr{IP: net.IPv6loopback, Port: 9}); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("Connect(an IPv6 address) on an IPv4 port: %v; want EAFNOSUPPORT", err)
	}
	d.Close()
	if err := d.Connect(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Connect after Close: %v; want net.ErrClosed", err)
	}
	if err := d.WriteSequence([][]byte{[]byte("x")}, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteSequence after Close: %v; want net.ErrClosed", err)
	}
}

// An ICMP port unreachable is reported once, to the read or the write
// that asks first; both reach ConnectionRefused, on the port's goroutine.
func TestDatagramConnectRefused(t *testing.T) {
	t.Run("read", func(t *testing.T) {
		r := newDgRecorder()
		d := dgListen(t, nil, "udp", "127.0.0.1:0", r, 0)
		if err := d.Connect(dgGoneAddr(t)); err != nil {
			t.Fatal(err)
		}
		// The write succeeds: the refusal comes after it, to the
		// reading port.
		if _, err := d.Write([]byte("anyone?")); err != nil {
			t.Fatalf("Write: %v", err)
		}
		recvWithin(t, r.refused, datagramWait, "ConnectionRefused from the read side")
	})
	t.Run("write", func(t *testing.T) {
		r := newDgRecorder()
		d := dgListen(t, nil, "udp", "127.0.0.1:0", r, 0)
		// Paused, the port does not read, so a write finds the refusal.
		d.PauseProducing()
		if err := d.Connect(dgGoneAddr(t)); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(datagramWait)
		for {
			_, err := d.Write([]byte("anyone?"))
			if errors.Is(err, syscall.ECONNREFUSED) {
				break
			}
			if err != nil {
				t.Fatalf("Write: %v; want nil or ECONNREFUSED", err)
			}
			if time.Now().After(deadline) {
				t.Fatal("no Write saw ECONNREFUSED")
			}
			runtime.Gosched()
		}
		recvWithin(t, r.refused, datagramWait, "ConnectionRefused from the write side")
		// WriteSequence reports a refusal as well.
		for {
			err := d.WriteSequence([][]byte{[]byte("any"), []byte("one?")}, nil)
			if errors.Is(err, syscall.ECONNREFUSED) {
				break
			}
			if err != nil {
				t.Fatalf("WriteSequence: %v; want nil or ECONNREFUSED", err)
			}
			if time.Now().After(deadline) {
				t.Fatal("no WriteSequence saw ECONNREFUSED")
			}
			runtime.Gosched()
		}
		recvWithin(t, r.refused, datagramWait, "ConnectionRefused from WriteSequence")
		d.ResumeProducing()
		// Still serving: a datagram from the peer is delivered.
		select {
		case <-d.Done():
			t.Fatal("port stopped after ConnectionRefused")
		default:
		}
	})
}

// An adopted socket that was already connected is a connected port: the
// check happens at adoption (getpeername), and WriteTo elsewhere fails
// instead of going there.
func TestDatagramAdoptConnected(t *testing.T) {
	peer, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	peer.SetDeadline(time.Now().Add(datagramWait))
	other := dgClient(t, peer.LocalAddr())

	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	pa := peer.LocalAddr().(*net.UDPAddr)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: pa.Port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	d, err := AdoptDatagramPort(fd, unix.AF_INET, newDgRecorder(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.WriteTo([]byte("elsewhere"), other.LocalAddr()); !errors.Is(err, ErrWriteToConnected) {
		t.Fatalf("WriteTo another address on an adopted connected socket: %v; want ErrWriteToConnected", err)
	}
	dgNothing(t, other, "the other address")
	if _, err := d.Write([]byte("to peer")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got := dgRead(t, peer); string(got) != "to peer" {
		t.Fatalf("peer got %q; want %q", got, "to peer")
	}
}

// An adopted socket that is not connected connects as a fresh one does.
func TestDatagramAdoptThenConnect(t *testing.T) {
	peer := dgClient(t, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	r := newDgRecorder()
	d, err := AdoptDatagramPort(fd, unix.AF_INET, r, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Connect(peer.LocalAddr()); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if _, err := d.Write([]byte("hi")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got := dgRead(t, peer); string(got) != "hi" {
		t.Fatalf("peer got %q; want %q", got, "hi")
	}
	dgSend(t, peer, d.Addr(), []byte("back"))
	if got := r.recv(t); string(got.data) != "back" {
		t.Fatalf("port got %q; want %q", got.data, "back")
	}
}

// WriteSequence sends one datagram: the receiver reads the pieces joined
// in one read, and the next datagram separately.
func TestDatagramWriteSequence(t *testing.T) {
	many := make([][]byte, maxSendmsgPieces+1) // past IOV_MAX: joined first
	for i := range many {
		many[i] = []byte{'a' + byte(i%26)}
	}
	for _, n := range datagramNetworks() {
		t.Run(n.network, func(t *testing.T) {
			d := dgListen(t, nil, n.network, n.addr(t), newDgRecorder(), 0)
			c := dgClient(t, d.Addr())
			for _, bufs := range [][][]byte{
				{[]byte("one "), {}, []byte("datagram"), []byte(", three pieces")},
				{},
				many,
			} {
				if err := d.WriteSequence(bufs, c.LocalAddr()); err != nil {
					t.Fatalf("WriteSequence: %v", err)
				}
				if _, err := d.WriteTo([]byte("next"), c.LocalAddr()); err != nil {
					t.Fatal(err)
				}
				if got, want := dgRead(t, c), bytes.Join(bufs, nil); !bytes.Equal(got, want) {
					t.Fatalf("read %d bytes %.40q; want one datagram of %d bytes %.40q", len(got), got, len(want), want)
				}
				if got := dgRead(t, c); string(got) != "next" {
					t.Fatalf("second read %q; want %q", got, "next")
				}
			}
			// Connected, with no address.
			if err := d.Connect(c.LocalAddr()); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			if err := d.WriteSequence([][]byte{[]byte("to "), []byte("peer")}, nil); err != nil {
				t.Fatalf("WriteSequence on a connected port: %v", err)
			}
			if got := dgRead(t, c); string(got) != "to peer" {
				t.Fatalf("read %q; want %q", got, "to peer")
			}
		})
	}
	t.Run("too long", func(t *testing.T) {
		d := dgListen(t, nil, "udp", "127.0.0.1:0", newDgRecorder(), 0)
		big := bytes.Repeat([]byte("x"), 40000)
		err := d.WriteSequence([][]byte{big, big}, d.Addr())
		if !errors.Is(err, syscall.EMSGSIZE) {
			t.Fatalf("WriteSequence of 80000 bytes: %v; want EMSGSIZE", err)
		}
	})
}

// A unixgram port connects to a path.
func TestDatagramConnectUnixgram(t *testing.T) {
	r := newDgRecorder()
	d := dgListen(t, nil, "unixgram", filepath.Join(t.TempDir(), "s"), r, 0)
	peer := dgClient(t, d.Addr())
	if err := d.Connect(peer.LocalAddr()); err != nil {
		t.Fatalf("Connect(%v): %v", peer.LocalAddr(), err)
	}
	if _, err := d.Write([]byte("hello")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got := dgRead(t, peer); string(got) != "hello" {
		t.Fatalf("peer got %q; want %q", got, "hello")
	}
	if _, err := d.WriteTo([]byte("x"), &net.UnixAddr{Name: filepath.Join(t.TempDir(), "o"), Net: "unixgram"}); !errors.Is(err, ErrWriteToConnected) {
		t.Errorf("WriteTo another path: %v; want ErrWriteToConnected", err)
	}
}

// SetBroadcast: without SO_BROADCAST the kernel refuses a datagram to a
// broadcast address (EACCES); with it the datagram goes out. The
// receiver binds loopback's broadcast address, 127.255.255.255, which
// Linux delivers broadcasts to.
func TestDatagramSetBroadcast(t *testing.T) {
	rcv, err := net.ListenPacket("udp4", "127.255.255.255:0")
	if err != nil {
		t.Skipf("cannot bind loopback's broadcast address here: %v", err)
	}
	t.Cleanup(func() { rcv.Close() })
	rcv.SetDeadline(time.Now().Add(datagramWait))
	to := rcv.LocalAddr()

	// An adopted socket starts without SO_BROADCAST, unlike Go's own.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	d, err := AdoptDatagramPort(fd, unix.AF_INET, newDgRecorder(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if _, err := d.WriteTo([]byte("x"), to); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("WriteTo %v before SetBroadcast: %v; want EACCES", to, err)
	}
	if err := d.SetBroadcast(true); err != nil {
		t.Fatalf("SetBroadcast(true): %v", err)
	}
	if _, err := d.WriteTo([]byte("to all"), to); err != nil {
		t.Fatalf("WriteTo %v after SetBroadcast(true): %v", to, err)
	}
	if got := dgRead(t, rcv); string(got) != "to all" {
		t.Fatalf("broadcast receiver got %q; want %q", got, "to all")
	}
	if err := d.SetBroadcast(false); err != nil {
		t.Fatalf("SetBroadcast(false): %v", err)
	}
	if _, err := d.WriteTo([]byte("x"), to); !errors.Is(err, syscall.EACCES) {
		t.Fatalf("WriteTo %v after SetBroadcast(false): %v; want EACCES", to, err)
	}
	d.Close()
	if err := d.SetBroadcast(true); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SetBroadcast after Close: %v; want net.ErrClosed", err)
	}
}

// The memory double keeps up: Connect, Write, the filter and
// ErrWriteToConnected work; broadcast and multicast are ErrNotSupported.
func TestDatagramConnectMemory(t *testing.T) {
	r := NewMemoryReactor()
	if _, err := r.ListenMulticast("udp", "239.1.2.3:5353", newDgRecorder(), 0); !errors.As(err, new(net.UnknownNetworkError)) {
		t.Errorf("MemoryReactor.ListenMulticast(udp): %v; want net.UnknownNetworkError, as the real one", err)
	}
	rec := newDgRecorder()
	d, err := r.ListenMulticast("udp4", "239.1.2.3:5353", rec, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	peer := r.DatagramCalls()[0].Peer
	peer.SetDeadline(time.Now().Add(datagramWait))
	if err := d.Connect(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Errorf("Connect(a udp address) on a memory port: %v; want EAFNOSUPPORT", err)
	}
	if _, err := d.Write([]byte("x")); !errors.Is(err, syscall.EDESTADDRREQ) {
		t.Errorf("Write before Connect: %v; want EDESTADDRREQ", err)
	}
	if err := d.Connect(peer.LocalAddr()); err != nil {
		t.Fatalf("Connect(%v): %v", peer.LocalAddr(), err)
	}
	if _, err := d.Write([]byte("hi")); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := d.WriteSequence([][]byte{[]byte("h"), []byte("o")}, nil); err != nil {
		t.Fatalf("WriteSequence: %v", err)
	}
	for _, want := range []string{"hi", "ho"} {
		if got := dgRead(t, peer); string(got) != want {
			t.Fatalf("peer got %q; want %q", got, want)
		}
	}
	if _, err := d.WriteTo([]byte("x"), newMemoryAddr()); !errors.Is(err, ErrWriteToConnected) {
		t.Errorf("WriteTo another address: %v; want ErrWriteToConnected", err)
	}
	for name, err := range map[string]error{
		"SetBroadcast":          d.SetBroadcast(true),
		"JoinGroup":             d.JoinGroup(nil, net.IPv4(239, 1, 2, 3)),
		"LeaveGroup":            d.LeaveGroup(nil, net.IPv4(239, 1, 2, 3)),
		"SetMulticastInterface": d.SetMulticastInterface(nil),
		"SetMulticastTTL":       d.SetMulticastTTL(2),
		"SetMulticastLoopback":  d.SetMulticastLoopback(false),
	} {
		if !errors.Is(err, ErrNotSupported) {
			t.Errorf("%s on a memory port: %v; want ErrNotSupported", name, err)
		}
	}
	if got := r.DatagramCalls()[0]; got.Network != "udp4" || got.Address != "239.1.2.3:5353" {
		t.Errorf("recorded %q %q; want udp4 239.1.2.3:5353", got.Network, got.Address)
	}
}
