package netport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/net/nettest"
)

// waitLimit bounds every wait in these tests; inside a synctest bubble it is
// fake time, so a deadlock fails the test instead of hanging it.
const waitLimit = 5 * time.Second

// memoryPair returns a fresh listener (closed at cleanup), a dialed
// connection and the peer its Accept returned.
func memoryPair(t testing.TB) (l *MemoryListener, client, server net.Conn) {
	t.Helper()
	l = NewMemoryListener()
	t.Cleanup(func() { l.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err := l.Dial()
	if err != nil {
		t.Fatalf("Dial: got %v; want nil", err)
	}
	server = recvWithin(t, accepted, waitLimit, "Accept")
	if server == nil {
		t.Fatal("Accept: got no connection after a successful Dial")
	}
	return l, client, server
}

// async runs f on a goroutine and returns a channel that receives its error.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

// notYet fails the test when ch already has a value: the call behind it
// should still be blocked. Only meaningful after synctest.Wait.
func notYet(t testing.TB, ch <-chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s: returned %v; want it still blocked", what, err)
	default:
	}
}

func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got %v; want an error matching %v", what, err, target)
	}
	if target == io.EOF {
		return
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Fatalf("%s: got %T; want a *net.OpError", what, err)
	}
	if target == os.ErrDeadlineExceeded && !opErr.Timeout() {
		t.Fatalf("%s: got Timeout() false; want true", what)
	}
}

func TestMemoryAddr(t *testing.T) {
	l1, client, server := memoryPair(t)
	l2 := NewMemoryListener()
	defer l2.Close()
	for _, a := range []net.Addr{l1.Addr(), l2.Addr(), client.LocalAddr()} {
		if a.Network() != "memory" || !strings.HasPrefix(a.String(), "memory:") {
			t.Errorf("address %q: got network %q; want memory", a, a.Network())
		}
	}
	if l1.Addr().String() == l2.Addr().String() || client.LocalAddr().String() == l1.Addr().String() {
		t.Errorf("got addresses %v, %v, %v; want them distinct", l1.Addr(), l2.Addr(), client.LocalAddr())
	}
	if client.RemoteAddr() != l1.Addr() || server.LocalAddr() != l1.Addr() || server.RemoteAddr() != client.LocalAddr() {
		t.Errorf("got client %v->%v, server %v->%v; want client X->L, server L->X",
			client.LocalAddr(), client.RemoteAddr(), server.LocalAddr(), server.RemoteAddr())
	}
}

func TestMemoryConnBuffersWithoutReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, client, server := memoryPair(t)
		want := bytes.Repeat([]byte("0123456789"), memoryBufferSize/10)
		// Nobody reads yet: every Write must return at once.
		for chunk := range slices.Chunk(want, 1000) {
			if n, err := client.Write(chunk); n != len(chunk) || err != nil {
				t.Fatalf("Write: got %d, %v; want %d, nil", n, err, len(chunk))
			}
		}
		got := make([]byte, len(want))
		if _, err := io.ReadFull(server, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ReadFull: got %d bytes, %v; want the %d written", len(got), err, len(want))
		}
	})
}

func TestMemoryConnFullBufferBlocksWriter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, client, server := memoryPair(t)
		want := bytes.Repeat([]byte{'x'}, memoryBufferSize+100)
		wrote := async(func() error { _, err := client.Write(want); return err })
		synctest.Wait()
		notYet(t, wrote, "Write beyond the buffer")
		if n := client.(*memoryConn).wr.buffered(); n != memoryBufferSize {
			t.Fatalf("buffered: got %d; want %d", n, memoryBufferSize)
		}
		got := make([]byte, len(want))
		if _, err := io.ReadFull(server, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ReadFull: got %v; want the %d bytes written", err, len(want))
		}
		if err := recvWithin(t, wrote, waitLimit, "Write"); err != nil {
			t.Fatalf("Write: got %v; want nil", err)
		}
	})
}

// buffered is for tests: the bytes waiting in the pipe.
func (p *pipe) buffered() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.Len()
}

func TestMemoryConnEOF(t *testing.T) {
	for _, tc := range []struct {
		name  string
		close func(net.Conn) error
	}{
		{"Close", net.Conn.Close},
		{"CloseWrite", func(c net.Conn) error { return c.(interface{ CloseWrite() error }).CloseWrite() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, client, server := memoryPair(t)
				if _, err := client.Write([]byte("hello")); err != nil {
					t.Fatalf("Write: got %v; want nil", err)
				}
				if err := tc.close(client); err != nil {
					t.Fatalf("%s: got %v; want nil", tc.name, err)
				}
				// Data written before the close is delivered, then EOF.
				if got, err := io.ReadAll(server); string(got) != "hello" || err != nil {
					t.Fatalf("ReadAll: got %q, %v; want \"hello\", nil", got, err)
				}
				_, err := server.Read(make([]byte, 1))
				wantErr(t, "Read after EOF", err, io.EOF)
				_, err = client.Write([]byte("more"))
				if err == nil {
					t.Fatalf("Write after %s: got nil; want an error", tc.name)
				}
				if tc.name == "Close" {
					return
				}
				wantErr(t, "Write after CloseWrite", err, syscall.EPIPE)
				// Half-closed: the other direction still works.
				if _, err := server.Write([]byte("back")); err != nil {
					t.Fatalf("peer Write: got %v; want nil", err)
				}
				got := make([]byte, 4)
				if _, err := io.ReadFull(client, got); string(got) != "back" || err != nil {
					t.Fatalf("Read after CloseWrite: got %q, %v; want \"back\", nil", got, err)
				}
			})
		})
	}
}

func TestMemoryConnClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, client, server := memoryPair(t)
		reading := async(func() error { _, err := client.Read(make([]byte, 1)); return err })
		synctest.Wait()
		notYet(t, reading, "Read")
		if err := client.Close(); err != nil {
			t.Fatalf("Close: got %v; want nil", err)
		}
		wantErr(t, "pending Read", recvWithin(t, reading, waitLimit, "Read"), net.ErrClosed)
		_, err := client.Read(make([]byte, 1))
		wantErr(t, "Read", err, net.ErrClosed)
		_, err = client.Write([]byte("x"))
		wantErr(t, "Write", err, net.ErrClosed)
		wantErr(t, "SetDeadline", client.SetDeadline(time.Now()), net.ErrClosed)
		wantErr(t, "CloseWrite", client.(interface{ CloseWrite() error }).CloseWrite(), net.ErrClosed)
		wantErr(t, "second Close", client.Close(), net.ErrClosed)
		_, err = server.Read(make([]byte, 1))
		wantErr(t, "peer Read", err, io.EOF)
		_, err = server.Write([]byte("x"))
		wantErr(t, "peer Write", err, syscall.EPIPE)
	})
}

func TestMemoryConnDeadlines(t *testing.T) {
	fill := func(c net.Conn) (int, error) { return c.Write(make([]byte, memoryBufferSize+1)) }
	read := func(c net.Conn) (int, error) { return c.Read(make([]byte, 8)) }
	for _, tc := range []struct {
		name string
		set  func(net.Conn, time.Time) error
		op   func(net.Conn) (int, error)
		n    int // bytes the op gets through before the deadline
	}{
		{"SetReadDeadline", net.Conn.SetReadDeadline, read, 0},
		{"SetDeadline/read", net.Conn.SetDeadline, read, 0},
		{"SetWriteDeadline", net.Conn.SetWriteDeadline, fill, memoryBufferSize},
		{"SetDeadline/write", net.Conn.SetDeadline, fill, memoryBufferSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Run("future", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					_, client, _ := memoryPair(t)
					start := time.Now()
					tc.set(client, start.Add(time.Second))
					n, err := tc.op(client)
					wantErr(t, "op", err, os.ErrDeadlineExceeded)
					if n != tc.n || time.Since(start) != time.Second {
						t.Fatalf("got %d bytes after %v; want %d after 1s", n, time.Since(start), tc.n)
					}
				})
			})
			t.Run("past while pending", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					_, client, _ := memoryPair(t)
					done := async(func() error { _, err := tc.op(client); return err })
					synctest.Wait()
					notYet(t, done, "op")
					tc.set(client, time.Now().Add(-time.Second))
					wantErr(t, "pending op", recvWithin(t, done, waitLimit, "op"), os.ErrDeadlineExceeded)
				})
			})
			t.Run("past then cleared", func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					_, client, server := memoryPair(t)
					server.Write([]byte("data"))
					tc.set(client, time.Now().Add(-time.Second))
					// A passed deadline fails even when the op could proceed.
					if n, err := tc.op(client); n != 0 {
						t.Fatalf("op: got %d bytes; want 0", n)
					} else {
						wantErr(t, "op", err, os.ErrDeadlineExceeded)
					}
					for _, d := range []time.Time{time.Now().Add(time.Hour), {}} {
						tc.set(client, d)
						if _, err := client.Read(make([]byte, 1)); err != nil {
							t.Fatalf("Read after moving the deadline to %v: got %v; want nil", d, err)
						}
						if _, err := client.Write([]byte("x")); err != nil {
							t.Fatalf("Write after moving the deadline to %v: got %v; want nil", d, err)
						}
					}
				})
			})
		})
	}
}

func TestMemoryDialContext(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func(context.Context) (context.Context, context.CancelFunc)
		want error
	}{
		{"canceled before", func(ctx context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			return ctx, cancel
		}, context.Canceled},
		{"timeout while waiting", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, time.Second)
		}, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := NewMemoryListener()
				defer l.Close()
				ctx, cancel := tc.ctx(t.Context())
				defer cancel()
				c, err := l.DialContext(ctx)
				if c != nil {
					t.Fatalf("DialContext: got a connection; want nil")
				}
				var opErr *net.OpError
				if !errors.Is(err, tc.want) || !errors.As(err, &opErr) || opErr.Op != "dial" {
					t.Fatalf("DialContext: got %v; want a dial *net.OpError matching %v", err, tc.want)
				}
			})
		})
	}
}

func TestMemoryListenerClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, client, server := memoryPair(t)
		accepting := async(func() error { _, err := l.Accept(); return err })
		other := NewMemoryListener()
		dialing := async(func() error { _, err := other.Dial(); return err })
		synctest.Wait()
		notYet(t, accepting, "Accept")
		notYet(t, dialing, "Dial")

		if err := l.Close(); err != nil {
			t.Fatalf("Close: got %v; want nil", err)
		}
		if err := other.Close(); err != nil {
			t.Fatalf("Close: got %v; want nil", err)
		}
		wantErr(t, "pending Accept", recvWithin(t, accepting, waitLimit, "Accept"), net.ErrClosed)
		wantErr(t, "pending Dial", recvWithin(t, dialing, waitLimit, "Dial"), syscall.ECONNREFUSED)
		_, err := l.Accept()
		wantErr(t, "Accept", err, net.ErrClosed)
		_, err = l.Dial()
		wantErr(t, "Dial", err, syscall.ECONNREFUSED)
		wantErr(t, "second Close", l.Close(), net.ErrClosed)
		for _, c := range []net.Conn{client, server} {
			_, err := c.Read(make([]byte, 1))
			wantErr(t, "Read on a handed-out conn", err, net.ErrClosed)
		}
	})
}

func TestMemoryListenerStopAccepting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l, client, server := memoryPair(t)
		accepting := async(func() error { _, err := l.Accept(); return err })
		synctest.Wait()
		if err := l.stopAccepting(); err != nil {
			t.Fatalf("stopAccepting: got %v; want nil", err)
		}
		wantErr(t, "pending Accept", recvWithin(t, accepting, waitLimit, "Accept"), net.ErrClosed)
		_, err := l.Dial()
		wantErr(t, "Dial", err, syscall.ECONNREFUSED)

		if _, err := client.Write([]byte("still open")); err != nil {
			t.Fatalf("Write: got %v; want nil", err)
		}
		got := make([]byte, len("still open"))
		if _, err := io.ReadFull(server, got); err != nil {
			t.Fatalf("Read: got %v; want nil", err)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("Close after stopAccepting: got %v; want nil", err)
		}
		for _, c := range []net.Conn{client, server} {
			_, err := c.Write([]byte("x"))
			wantErr(t, "Write after Close", err, net.ErrClosed)
		}
	})
}

func TestMemoryListenerForgetsClosedConns(t *testing.T) {
	l, client, server := memoryPair(t)
	client.Close()
	server.Close()
	l.mu.Lock()
	n := len(l.conns)
	l.mu.Unlock()
	if n != 0 {
		t.Fatalf("tracked conns after both ends closed: got %d; want 0", n)
	}
}

func TestMemoryConnNettest(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		l := NewMemoryListener()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := l.Accept()
			accepted <- c
		}()
		c1, err = l.Dial()
		if err != nil {
			l.Close()
			return nil, nil, nil, err
		}
		c2 = recvWithin(t, accepted, waitLimit, "Accept")
		return c1, c2, func() { c1.Close(); c2.Close(); l.Close() }, nil
	})
}

// TestMemoryConnFakeTime shows that a test can watch a long deadline expire
// in a synctest bubble without waiting for it.
func TestMemoryConnFakeTime(t *testing.T) {
	realStart := time.Now()
	synctest.Test(t, func(t *testing.T) {
		_, client, _ := memoryPair(t)
		start := time.Now()
		client.SetReadDeadline(start.Add(time.Hour))
		_, err := client.Read(make([]byte, 1))
		wantErr(t, "Read", err, os.ErrDeadlineExceeded)
		if got := time.Since(start); got != time.Hour {
			t.Fatalf("fake time elapsed: got %v; want 1h", got)
		}
	})
	if got := time.Since(realStart); got > waitLimit {
		t.Fatalf("real time elapsed: got %v; want well under a second", got)
	}
}

func TestMemoryPacketPipe(t *testing.T) {
	readFrom := func(t testing.TB, c net.PacketConn, size int) (string, net.Addr) {
		t.Helper()
		b := make([]byte, size)
		n, from, err := c.ReadFrom(b)
		if err != nil {
			t.Fatalf("ReadFrom: got %v; want nil", err)
		}
		return string(b[:n]), from
	}
	t.Run("datagrams", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := NewMemoryPacketPipe()
			defer a.Close()
			defer b.Close()
			if a.LocalAddr().Network() != "memory" || a.LocalAddr().String() == b.LocalAddr().String() {
				t.Fatalf("addresses: got %v and %v; want two distinct memory addresses", a.LocalAddr(), b.LocalAddr())
			}
			msg := []byte("first")
			for _, m := range [][]byte{msg, []byte("second"), []byte("truncated datagram")} {
				if n, err := a.WriteTo(m, b.LocalAddr()); n != len(m) || err != nil {
					t.Fatalf("WriteTo: got %d, %v; want %d, nil", n, err, len(m))
				}
			}
			copy(msg, "-----") // the datagram sent is a copy
			for _, want := range []string{"first", "second", "trunca"} {
				got, from := readFrom(t, b, 6)
				if got != want || from.String() != a.LocalAddr().String() {
					t.Fatalf("ReadFrom: got %q from %v; want %q from %v", got, from, want, a.LocalAddr())
				}
			}
		})
	})
	t.Run("wrong address", func(t *testing.T) {
		a, b := NewMemoryPacketPipe()
		defer a.Close()
		defer b.Close()
		for _, addr := range []net.Addr{a.LocalAddr(), nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}} {
			_, err := a.WriteTo([]byte("x"), addr)
			wantErr(t, "WriteTo", err, syscall.EHOSTUNREACH)
		}
	})
	t.Run("full queue blocks", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := NewMemoryPacketPipe()
			defer a.Close()
			defer b.Close()
			for i := range memoryPacketQueue {
				if _, err := a.WriteTo([]byte{byte(i)}, b.LocalAddr()); err != nil {
					t.Fatalf("WriteTo %d: got %v; want nil", i, err)
				}
			}
			wrote := async(func() error { _, err := a.WriteTo([]byte("last"), b.LocalAddr()); return err })
			synctest.Wait()
			notYet(t, wrote, "WriteTo on a full queue")
			readFrom(t, b, 1)
			if err := recvWithin(t, wrote, waitLimit, "WriteTo"); err != nil {
				t.Fatalf("WriteTo: got %v; want nil", err)
			}
		})
	})
	t.Run("close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := NewMemoryPacketPipe()
			defer b.Close()
			a.WriteTo([]byte("queued"), b.LocalAddr())
			reading := async(func() error { _, _, err := a.ReadFrom(make([]byte, 1)); return err })
			synctest.Wait()
			if err := a.Close(); err != nil {
				t.Fatalf("Close: got %v; want nil", err)
			}
			wantErr(t, "pending ReadFrom", recvWithin(t, reading, waitLimit, "ReadFrom"), net.ErrClosed)
			_, _, err := a.ReadFrom(make([]byte, 1))
			wantErr(t, "ReadFrom", err, net.ErrClosed)
			_, err = a.WriteTo([]byte("x"), b.LocalAddr())
			wantErr(t, "WriteTo", err, net.ErrClosed)
			wantErr(t, "second Close", a.Close(), net.ErrClosed)
			// The peer reads what was queued, then waits: datagrams have no EOF.
			if got, _ := readFrom(t, b, 10); got != "queued" {
				t.Fatalf("peer ReadFrom: got %q; want \"queued\"", got)
			}
			if _, err := b.WriteTo([]byte("dropped"), a.LocalAddr()); err != nil {
				t.Fatalf("peer WriteTo: got %v; want nil (dropped)", err)
			}
			b.SetReadDeadline(time.Now().Add(time.Second))
			_, _, err = b.ReadFrom(make([]byte, 10))
			wantErr(t, "peer ReadFrom", err, os.ErrDeadlineExceeded)
		})
	})
	t.Run("deadlines", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a, b := NewMemoryPacketPipe()
			defer a.Close()
			defer b.Close()
			a.SetDeadline(time.Now().Add(time.Second))
			_, _, err := a.ReadFrom(make([]byte, 1))
			wantErr(t, "ReadFrom", err, os.ErrDeadlineExceeded)
			synctest.Wait() // the write deadline's timer fired at the same instant
			_, err = a.WriteTo([]byte("x"), b.LocalAddr())
			wantErr(t, "WriteTo after the deadline", err, os.ErrDeadlineExceeded)
			a.SetWriteDeadline(time.Time{})
			for range memoryPacketQueue {
				a.WriteTo([]byte("x"), b.LocalAddr())
			}
			a.SetWriteDeadline(time.Now().Add(time.Second))
			_, err = a.WriteTo([]byte("x"), b.LocalAddr())
			wantErr(t, "WriteTo on a full queue", err, os.ErrDeadlineExceeded)
			a.SetReadDeadline(time.Time{})
			b.WriteTo([]byte("ok"), a.LocalAddr())
			if got, _ := readFrom(t, a, 2); got != "ok" {
				t.Fatalf("ReadFrom after clearing the deadline: got %q; want \"ok\"", got)
			}
		})
	})
}
