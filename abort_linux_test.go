package netport

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// heldPair returns a connected pair: the server end as a descriptor the
// test keeps open (as inetd keeps fds 0 and 1) and the client end.
func heldPair(tb testing.TB, network string) (held *os.File, family int, client net.Conn) {
	tb.Helper()
	switch network {
	case "tcp":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		defer ln.Close()
		client, err = net.Dial("tcp", ln.Addr().String())
		if err != nil {
			tb.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			tb.Fatal(err)
		}
		held, err = s.(*net.TCPConn).File()
		s.Close()
		if err != nil {
			tb.Fatal(err)
		}
		family = syscall.AF_INET
	case "unix":
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			tb.Fatal(os.NewSyscallError("socketpair", err))
		}
		held = os.NewFile(uintptr(fds[0]), "held")
		cf := os.NewFile(uintptr(fds[1]), "client")
		client, err = net.FileConn(cf)
		cf.Close()
		if err != nil {
			tb.Fatal(err)
		}
		family = syscall.AF_UNIX
	}
	client.SetDeadline(time.Now().Add(testTimeout))
	tb.Cleanup(func() { held.Close(); client.Close() })
	return held, family, client
}

// TestAdoptedCloseReachesPeer: an adopted connection's LoseConnection and
// AbortConnection reach the peer while the original descriptor is still
// open: EOF, and a reset where TCP has one.
func TestAdoptedCloseReachesPeer(t *testing.T) {
	checkLeaks(t)
	for _, network := range []string{"tcp", "unix"} {
		for _, abort := range []bool{false, true} {
			name := network + "/LoseConnection"
			if abort {
				name = network + "/AbortConnection"
			}
			t.Run(name, func(t *testing.T) {
				held, family, client := heldPair(t, network)
				f := newHookFactory(func(tr Transport) { endWith(tr, abort) }, nil)
				c, err := AdoptStreamConnection(int(held.Fd()), family, f)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(client)
				switch {
				case abort && network == "tcp":
					if !errors.Is(err, syscall.ECONNRESET) {
						t.Fatalf("client read after abort: %q, %v; want ECONNRESET", got, err)
					}
				case abort:
					if err != nil {
						t.Fatalf("client read after abort: %q, %v; want EOF", got, err)
					}
				default:
					if string(got) != "bye" || err != nil {
						t.Fatalf("client read: %q, %v; want \"bye\" and EOF", got, err)
					}
				}
				waitClosed(t, c.Done(), "ConnectionLost")
				reason := recv(t, recv(t, f.built).lost)
				if abort != errors.Is(reason, ErrConnectionAborted) {
					t.Fatalf("ConnectionLost(%v); ErrConnectionAborted: got %v; want %v", reason, !abort, abort)
				}
			})
		}
	}
}

// TestAbortWhileLingering: AbortConnection after a LoseConnection that is
// still lingering reports an abort, not a clean close.
func TestAbortWhileLingering(t *testing.T) {
	f := newHookFactory(func(tr Transport) { tr.PauseProducing() }, nil)
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	client := dial(t, p)
	h := recv(t, f.built)
	c := recv(t, h.made).(*Conn)
	client.Write([]byte("unread"))
	deadline := time.Now().Add(testTimeout)
	for !unreadData(c.raw) {
		if time.Now().After(deadline) {
			t.Fatalf("client's data not in the server's socket after %v", testTimeout)
		}
		runtime.Gosched()
	}
	c.LoseConnection()
	c.mu.Lock()
	lingering := c.lingering
	c.mu.Unlock()
	if !lingering {
		t.Fatal("LoseConnection with unread data: not lingering; want lingering")
	}
	c.AbortConnection()
	reason := recv(t, h.lost)
	if !errors.Is(reason, ErrConnectionAborted) || !errors.Is(reason, ErrConnectionLost) {
		t.Fatalf("ConnectionLost(%v); want ErrConnectionAborted and ErrConnectionLost", reason)
	}
}

// TestAdoptedHandlerCloseReachesPeer: a Handler serving an adopted
// connection closes it when it returns, and the peer sees EOF although
// the original descriptor is still open.
func TestAdoptedHandlerCloseReachesPeer(t *testing.T) {
	held, family, client := heldPair(t, "tcp")
	c, err := AdoptStreamConnection(int(held.Fd()), family, Handler(func(nc net.Conn) {
		nc.Write([]byte("bye"))
		nc.Close()
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(client); string(got) != "bye" || err != nil {
		t.Fatalf("client read: %q, %v; want \"bye\" and EOF", got, err)
	}
	waitClosed(t, c.Done(), "the handler's end")
}

// endWith aborts the connection, or says "bye" and loses it.
func endWith(tr Transport, abort bool) {
	if abort {
		tr.AbortConnection()
		return
	}
	tr.Write([]byte("bye"))
	tr.LoseConnection()
}

// fileOf duplicates the descriptor of a served connection as user code
// can: through Transport.Conn, or a Handler's conn.
func fileOf(tb testing.TB, nc net.Conn) *os.File {
	tb.Helper()
	if u, ok := nc.(interface{ NetConn() net.Conn }); ok {
		nc = u.NetConn()
	}
	f, err := nc.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// TestFileTakenCloseReachesPeer: a port's connection whose descriptor
// user code duplicated (File through Transport.Conn, or a Handler's conn)
// is shut down when it closes, so the peer sees the end although the
// duplicate stays open. A connection no user code reached is closed
// with close(2) alone, which is enough only while netport holds the one
// descriptor.
func TestFileTakenCloseReachesPeer(t *testing.T) {
	for _, abort := range []bool{false, true} {
		name := "LoseConnection"
		if abort {
			name = "AbortConnection"
		}
		t.Run(name, func(t *testing.T) {
			f := newHookFactory(func(tr Transport) {
				fileOf(t, tr.Conn())
				endWith(tr, abort)
			}, nil)
			p := listen(t, nil, "tcp", "127.0.0.1:0", f)
			client, err := net.DialTimeout("tcp", p.Addr().String(), testTimeout)
			if abort && errors.Is(err, syscall.ECONNRESET) {
				return // the reset came before connect returned
			}
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			client.SetDeadline(time.Now().Add(testTimeout))
			got, err := io.ReadAll(client)
			if abort {
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("client read after abort: %q, %v; want ECONNRESET", got, err)
				}
			} else if string(got) != "bye" || err != nil {
				t.Fatalf("client read: %q, %v; want \"bye\" and EOF", got, err)
			}
		})
	}
	t.Run("Handler", func(t *testing.T) {
		p := listen(t, nil, "tcp", "127.0.0.1:0", Handler(func(c net.Conn) {
			fileOf(t, c)
			c.Write([]byte("bye"))
		}))
		client := dial(t, p)
		if got, err := io.ReadAll(client); string(got) != "bye" || err != nil {
			t.Fatalf("client read: %q, %v; want \"bye\" and EOF", got, err)
		}
	})
}
