package netport

import (
	"errors"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestDatagramConnectionRefused(t *testing.T) {
	gone, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peer := gone.LocalAddr().(*net.UDPAddr)
	gone.Close()
	conn, err := net.DialUDP("udp", nil, peer)
	if err != nil {
		t.Fatal(err)
	}
	r := newDgRecorder()
	d, err := (*Config)(nil).servePacket(conn, r, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })

	// Twice, to see that the port goes on reading after a refusal; once
	// with no address and once with the peer's.
	for _, to := range []net.Addr{nil, peer} {
		if _, err := d.WriteTo([]byte("anyone?"), to); err != nil {
			t.Fatalf("WriteTo(%v) on a connected port: %v", to, err)
		}
		waitClosed(t, r.refused, "ConnectionRefused")
	}
	select {
	case <-d.Done():
		t.Fatal("port stopped after ConnectionRefused")
	default:
	}
	other := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: peer.Port + 1}
	if _, err := d.WriteTo([]byte("x"), other); !errors.Is(err, net.ErrWriteToConnected) {
		t.Errorf("WriteTo(%v) on a port connected to %v: %v; want net.ErrWriteToConnected", other, peer, err)
	}
}

// dgPending returns the size of the first datagram queued on the
// port's socket.
func dgPending(tb testing.TB, d *DatagramPort) int {
	tb.Helper()
	rc, err := d.PacketConn().(syscall.Conn).SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		tb.Fatal(err)
	}
	if ierr != nil {
		tb.Fatalf("SIOCINQ: %v", ierr)
	}
	return n
}

func TestDatagramPauseResume(t *testing.T) {
	r := newDgRecorder()
	d := dgListen(t, nil, "udp", "127.0.0.1:0", r, 0)
	c := dgClient(t, d.Addr())
	dgSend(t, c, d.Addr(), []byte("before"))
	r.recv(t)

	r.paused.Store(true)
	d.PauseProducing()
	d.PauseProducing()
	msgs := []string{"a", "bb", "ccc"}
	for _, m := range msgs {
		dgSend(t, c, d.Addr(), []byte(m))
	}
	// The datagrams stay queued in the socket. The port may have read the
	// first one and hold it: the runtime can complete a read that raced
	// with the deadline PauseProducing set. So the queue starts with the
	// first or the second datagram.
	queued := func(n int) bool { return n == len(msgs[0]) || n == len(msgs[1]) }
	deadline := time.Now().Add(datagramWait)
	for n := dgPending(t, d); !queued(n); n = dgPending(t, d) {
		if time.Now().After(deadline) {
			t.Fatalf("queued datagram: %d bytes; want %d or %d", n, len(msgs[0]), len(msgs[1]))
		}
		runtime.Gosched()
	}
	// Proving an absence takes a window: a port that ignored the pause
	// would deliver within microseconds.
	select {
	case dg := <-r.got:
		t.Fatalf("DatagramReceived(%q) while paused", dg.data)
	case <-time.After(50 * time.Millisecond):
	}
	if n := dgPending(t, d); !queued(n) {
		t.Fatalf("queued datagram after the pause window: %d bytes; want %d or %d", n, len(msgs[0]), len(msgs[1]))
	}
	r.paused.Store(false)
	d.ResumeProducing()
	d.ResumeProducing()
	for _, want := range msgs {
		if got := string(r.recv(t).data); got != want {
			t.Errorf("after resume got %q; want %q", got, want)
		}
	}
	if n := r.early.Load(); n != 0 {
		t.Errorf("%d datagrams delivered while paused; want 0", n)
	}
}

func TestDatagramReusePort(t *testing.T) {
	c := &Config{ReusePort: true}
	d1 := dgListen(t, c, "udp", "127.0.0.1:0", newDgRecorder(), 0)
	d2 := dgListen(t, c, "udp", d1.Addr().String(), newDgRecorder(), 0)
	if d1.Addr().String() != d2.Addr().String() {
		t.Errorf("second port on %v; want %v", d2.Addr(), d1.Addr())
	}
}
