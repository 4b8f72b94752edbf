package netport

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func tcpNetworks(t *testing.T) []struct{ network, address string } {
	var nets []struct{ network, address string }
	for _, n := range streamNetworks(t) {
		if strings.HasPrefix(n.network, "tcp") {
			nets = append(nets, n)
		}
	}
	return nets
}

func TestConcurrentWrites(t *testing.T) {
	const writers, writes, block = 8, 32, 4096
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newHookFactory(func(tr Transport) {
				var wg sync.WaitGroup
				for i := range writers {
					wg.Go(func() {
						b := bytes.Repeat([]byte{byte('a' + i)}, block)
						for range writes {
							if _, err := tr.Write(b); err != nil {
								return
							}
						}
					})
				}
				go func() {
					wg.Wait()
					tr.LoseConnection()
				}()
			}, nil)
			p := listen(t, nil, tt.network, tt.address, f)
			got := readAll(t, dial(t, p))
			if len(got) != writers*writes*block {
				t.Fatalf("read %d bytes; want %d", len(got), writers*writes*block)
			}
			counts := make(map[byte]int)
			for off := 0; off < len(got); off += block {
				b := got[off : off+block]
				if n := bytes.Count(b, b[:1]); n != block {
					t.Fatalf("block at %d mixes writes: got %d of %q; want %d", off, n, b[0], block)
				}
				counts[b[0]]++
			}
			for i := range writers {
				if n := counts[byte('a'+i)]; n != writes {
					t.Errorf("writer %c: got %d blocks; want %d", 'a'+i, n, writes)
				}
			}
		})
	}
}

func TestWriteSequence(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 16<<10)
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			bufs := [][]byte{[]byte("one "), []byte("two "), big, []byte("three "), {}, []byte("end")}
			orig := make([][]byte, len(bufs))
			for i, b := range bufs {
				orig[i] = bytes.Clone(b)
			}
			errc := make(chan error, 1)
			f := newHookFactory(func(tr Transport) {
				errc <- tr.WriteSequence(bufs)
				tr.LoseConnection()
			}, nil)
			p := listen(t, nil, tt.network, tt.address, f)
			got := readAll(t, dial(t, p))
			if err := recv(t, errc); err != nil {
				t.Fatalf("WriteSequence: %v", err)
			}
			if want := bytes.Join(orig, nil); !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes; want the %d bytes of every buffer in order", len(got), len(want))
			}
			if !slices.EqualFunc(bufs, orig, bytes.Equal) {
				t.Fatalf("WriteSequence changed the caller's buffers")
			}
		})
	}
}

func TestLoseConnectionFlushesWrites(t *testing.T) {
	payload := bytes.Repeat([]byte("netport "), 1<<17) // 1 MiB
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			errc := make(chan error, 2)
			gotGo, proceed := make(chan struct{}), make(chan struct{})
			f := newHookFactory(nil, func(tr Transport, b []byte) {
				if string(b) != "go" {
					return
				}
				// Holding DataReceived keeps what the client sends next
				// unread until the reply is written and the connection lost.
				close(gotGo)
				select {
				case <-proceed:
				case <-time.After(testTimeout):
				}
				_, err := tr.Write(payload)
				errc <- err
				errc <- tr.LoseConnection()
			})
			p := listen(t, nil, tt.network, tt.address, f)
			c := dial(t, p)
			if _, err := c.Write([]byte("go")); err != nil {
				t.Fatal(err)
			}
			waitClosed(t, gotGo, `DataReceived("go")`)
			// Data the server has not read when it closes must not turn the
			// close into a reset that drops the end of the reply.
			if _, err := c.Write(bytes.Repeat([]byte("x"), 4096)); err != nil {
				t.Fatal(err)
			}
			close(proceed)
			got := readAll(t, c)
			if !bytes.Equal(got, payload) {
				t.Fatalf("read %d bytes before EOF; want %d", len(got), len(payload))
			}
			c.Close()
			if err := recv(t, errc); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if err := recv(t, errc); err != nil {
				t.Fatalf("LoseConnection: %v", err)
			}
			h := recv(t, f.built)
			if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionDone) || errors.Is(reason, ErrConnectionLost) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
			}
		})
	}
}

func TestAbortConnection(t *testing.T) {
	for _, tt := range tcpNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newHookFactory(nil, func(tr Transport, b []byte) { tr.AbortConnection() })
			p := listen(t, nil, tt.network, tt.address, f)
			c := dial(t, p)
			if _, err := c.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("client read: got %v; want ECONNRESET", err)
			}
			h := recv(t, f.built)
			reason := recv(t, h.lost)
			if !errors.Is(reason, ErrConnectionLost) || errors.Is(reason, ErrConnectionDone) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionLost", reason)
			}
			tr := recv(t, h.made)
			if _, err := tr.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Write after abort: got %v; want net.ErrClosed", err)
			}
		})
	}
}

func TestLoseWriteConnection(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newHookFactory(func(tr Transport) {
				tr.Write([]byte("hello"))
				if err := tr.LoseWriteConnection(); err != nil {
					tr.Write([]byte(err.Error()))
				}
			}, nil)
			p := listen(t, nil, tt.network, tt.address, f)
			c := dial(t, p)
			if got := string(readAll(t, c)); got != "hello" {
				t.Fatalf("client read until EOF: got %q; want \"hello\"", got)
			}
			h := recv(t, f.built)
			tr := recv(t, h.made)
			if _, err := tr.Write([]byte("after FIN")); err == nil {
				t.Fatalf("Write after LoseWriteConnection: got nil error; want one")
			}

			// The other direction still works.
			if _, err := c.Write([]byte("still talking")); err != nil {
				t.Fatal(err)
			}
			if got := string(recv(t, h.data)); got != "still talking" {
				t.Fatalf("DataReceived(%q); want \"still talking\"", got)
			}
			c.Close()
			if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionDone) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
			}
		})
	}
}

func TestConnPauseProducing(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newHookFactory(func(tr Transport) { tr.PauseProducing() }, echoData)
			p := listen(t, nil, tt.network, tt.address, f)
			c := dial(t, p)
			h := recv(t, f.built)
			tr := recv(t, h.made)
			if _, err := c.Write([]byte("abc")); err != nil {
				t.Fatal(err)
			}
			quiet(t, h.data, "DataReceived while paused")
			tr.ResumeProducing()
			if got := string(recv(t, h.data)); got != "abc" {
				t.Fatalf("DataReceived(%q) after resume; want \"abc\"", got)
			}
			got := make([]byte, 3)
			if _, err := io.ReadFull(c, got); err != nil || string(got) != "abc" {
				t.Fatalf("echo after resume: got %q, %v; want \"abc\"", got, err)
			}
		})
	}
}

func TestConnAddresses(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newHookFactory(nil, echoData)
			p := listen(t, nil, tt.network, tt.address, f)
			c := dial(t, p)
			h := recv(t, f.built)
			tr := recv(t, h.made)
			for _, a := range []struct {
				name      string
				got, want net.Addr
			}{
				{"LocalAddr", tr.LocalAddr(), c.RemoteAddr()},
				{"RemoteAddr", tr.RemoteAddr(), c.LocalAddr()},
				{"Conn().LocalAddr", tr.Conn().LocalAddr(), c.RemoteAddr()},
				{"Conn().RemoteAddr", tr.Conn().RemoteAddr(), c.LocalAddr()},
			} {
				if a.got.Network() != a.want.Network() || a.got.String() != a.want.String() {
					t.Errorf("%s: got %v; want %v", a.name, a.got, a.want)
				}
			}
			conn, ok := tr.(*Conn)
			if !ok {
				t.Fatalf("transport is %T; want *Conn", tr)
			}
			if conn.Protocol() != Protocol(h) {
				t.Errorf("Protocol(): got %v; want the built protocol", conn.Protocol())
			}
			// Conn is the served connection itself: a write on it reaches the client.
			if _, err := tr.Conn().Write([]byte("direct")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 6)
			if _, err := io.ReadFull(c, got); err != nil || string(got) != "direct" {
				t.Fatalf("client read: got %q, %v; want \"direct\"", got, err)
			}
			c.Close()
			recv(t, h.lost)
			waitClosed(t, conn.Done(), "Conn.Done")
		})
	}
}
