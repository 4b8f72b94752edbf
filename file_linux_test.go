package netport

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	// The child checks that descriptor 3, the first of ExtraFiles, is a
	// listening socket.
	children["listening-fd3"] = func() int {
		v, err := unix.GetsockoptInt(3, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		if err != nil || v != 1 {
			return 1
		}
		return 0
	}
}

// portNonblocking reports whether the port's own descriptor is in
// non-blocking mode.
func portNonblocking(tb testing.TB, p *Port) bool {
	tb.Helper()
	rc, err := p.ln.(syscall.Conn).SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil {
		tb.Fatal(err)
	}
	if ferr != nil {
		tb.Fatalf("F_GETFL: %v", ferr)
	}
	return flags&unix.O_NONBLOCK != 0
}

func TestPortFile(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			p := listen(t, nil, tt.network, tt.address, newEchoFactory())
			f, err := p.File()
			if err != nil {
				t.Fatalf("File: %v", err)
			}
			defer f.Close()

			// Handing the file to a child process must not make the port's
			// socket blocking: its accept goroutine would then hang in the
			// kernel, out of Close's reach.
			ctx, cancel := contextWithTimeout(testTimeout)
			defer cancel()
			cmd := childCommand(ctx, "listening-fd3")
			cmd.ExtraFiles = []*os.File{f}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if !portNonblocking(t, p) {
				// Make it non-blocking again, and end an accept(2) that may
				// be blocked in the kernel, or the port's Close at cleanup
				// would hang.
				rc, _ := p.ln.(syscall.Conn).SyscallConn()
				rc.Control(func(fd uintptr) { unix.SetNonblock(int(fd), true) })
				if c, err := net.DialTimeout(p.Addr().Network(), p.Addr().String(), testTimeout); err == nil {
					c.Close()
				}
				t.Fatalf("port's socket is blocking after File was passed to a child; want non-blocking")
			}

			// The duplicate accepts on the same socket. With the port paused,
			// it gets one of two clients: the port holds at most one, taken
			// by an Accept that was under way when it paused.
			ln, err := net.FileListener(f)
			if err != nil {
				t.Fatalf("FileListener: %v", err)
			}
			defer ln.Close()
			p.PauseProducing()
			accepted := make(chan net.Conn, 1)
			go func() {
				nc, err := ln.Accept()
				if err != nil {
					close(accepted)
					return
				}
				accepted <- nc
			}()
			// Each client names itself with its first byte.
			var clients []net.Conn
			for i := range 2 {
				c := dial(t, p)
				if _, err := c.Write([]byte{'0' + byte(i)}); err != nil {
					t.Fatal(err)
				}
				clients = append(clients, c)
			}
			nc := recv(t, accepted)
			if nc == nil {
				t.Fatalf("Accept on the duplicate failed")
			}
			nc.SetDeadline(time.Now().Add(testTimeout))
			id := make([]byte, 1)
			_, err = nc.Read(id)
			nc.Close()
			if err != nil || id[0] != '0' && id[0] != '1' {
				t.Fatalf("read from the duplicate's client: got %q, %v; want its name", id, err)
			}
			other := clients['1'-id[0]]
			p.ResumeProducing()
			name := '0' + '1' - id[0]
			if _, err := other.Read(id); err != nil || id[0] != name {
				t.Fatalf("echo of the other client's name: got %q, %v; want %q", id, err, name)
			}
			roundTrip(t, other, []byte("the port still serves"))

			if err := p.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if g, err := p.File(); !errors.Is(err, net.ErrClosed) {
				if g != nil {
					g.Close()
				}
				t.Fatalf("File after Close: got %v; want net.ErrClosed", err)
			}
		})
	}
}
