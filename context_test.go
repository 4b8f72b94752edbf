package netport

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"testing"
)

type ctxKey struct{}

// TestTransportContext checks that the context carries BaseContext's
// values, that it is made only when asked for, and that it is cancelled
// before ConnectionLost, also when first asked for from ConnectionLost.
func TestTransportContext(t *testing.T) {
	var basePort *Port
	cfg := &Config{BaseContext: func(p *Port) context.Context {
		basePort = p
		return context.WithValue(context.Background(), ctxKey{}, "base")
	}}
	t.Run("asked in ConnectionMade", func(t *testing.T) {
		type seen struct {
			value   any
			errMade error
			errLost error
		}
		got := make(chan seen, 1)
		var s seen
		var ctx context.Context
		f := FactoryFunc(func(net.Addr) Protocol {
			h := newHookProto(func(tr Transport) {
				ctx = tr.Context()
				s.value, s.errMade = ctx.Value(ctxKey{}), ctx.Err()
			}, echoData)
			h.onLost = func(error) {
				s.errLost = ctx.Err()
				got <- s
			}
			return h
		})
		p := listen(t, cfg, "tcp", "127.0.0.1:0", f)
		if basePort != p {
			t.Errorf("BaseContext got port %v; want %v", basePort, p)
		}
		c := dial(t, p)
		roundTrip(t, c, []byte("hi"))
		c.Close()
		r := recv(t, got)
		if r.value != "base" || r.errMade != nil || !errors.Is(r.errLost, context.Canceled) {
			t.Errorf("got value %v, error %v in ConnectionMade and %v in ConnectionLost; want base, nil, context.Canceled",
				r.value, r.errMade, r.errLost)
		}
	})
	t.Run("first asked in ConnectionLost", func(t *testing.T) {
		made := make(chan *Conn, 1)
		got := make(chan error, 1)
		f := FactoryFunc(func(net.Addr) Protocol {
			var tr Transport
			h := newHookProto(func(t Transport) { tr = t; made <- t.(*Conn) }, nil)
			h.onLost = func(error) {
				ctx := tr.Context()
				if ctx.Value(ctxKey{}) != "base" {
					got <- errors.New("no base value")
					return
				}
				got <- ctx.Err()
			}
			return h
		})
		p := listen(t, cfg, "tcp", "127.0.0.1:0", f)
		c := dial(t, p)
		conn := recv(t, made)
		if cc := conn.ctxs.Load(); cc != nil {
			t.Errorf("an open connection nobody asked holds context state %p; want none", cc)
		}
		c.Close()
		if err := recv(t, got); !errors.Is(err, context.Canceled) {
			t.Errorf("Context in ConnectionLost: got %v; want context.Canceled", err)
		}
	})
}

// TestHandlerContext checks that a HandlerContext handler can tell
// Shutdown from a client's EOF: ctx is cancelled before the read side is
// closed, so the handler's read ends and it can still say goodbye.
func TestHandlerContext(t *testing.T) {
	ctxs := make(chan context.Context, 2)
	f := HandlerContext(func(ctx context.Context, c net.Conn) {
		ctxs <- ctx
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err == io.EOF {
				if ctx.Err() != nil {
					io.WriteString(c, "goodbye\n")
				} else {
					io.WriteString(c, "bye, client\n")
				}
				return
			}
			if err != nil {
				return
			}
			io.WriteString(c, "ok "+line)
		}
	})
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)

	// A client that half-closes: its EOF is not a shutdown.
	c1 := dial(t, p)
	ctx1 := recv(t, ctxs)
	io.WriteString(c1, "one\n")
	closeWrite(t, c1)
	if got := string(readAll(t, c1)); got != "ok one\nbye, client\n" {
		t.Errorf("client EOF: got %q; want %q", got, "ok one\nbye, client\n")
	}

	// A client still connected when the port shuts down.
	c2 := dial(t, p)
	ctx2 := recv(t, ctxs)
	roundTripLine(t, c2, "two\n", "ok two\n")
	if ctx2.Err() != nil {
		t.Fatalf("ctx before Shutdown: %v", ctx2.Err())
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := contextWithTimeout(testTimeout)
		defer cancel()
		shut <- p.Shutdown(ctx)
	}()
	if got := string(readAll(t, c2)); got != "goodbye\n" {
		t.Errorf("Shutdown: got %q; want %q", got, "goodbye\n")
	}
	if err := recv(t, shut); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if ctx1.Err() == nil {
		t.Errorf("ctx of an ended connection: not cancelled")
	}
}

// roundTripLine writes msg to c and expects want back.
func roundTripLine(tb testing.TB, c net.Conn, msg, want string) {
	tb.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		tb.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		tb.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

func TestStringTransportContext(t *testing.T) {
	var st StringTransport
	if st.Context() != context.Background() {
		t.Errorf("zero StringTransport: got %v; want context.Background()", st.Context())
	}
	ctx, cancel := context.WithCancel(context.Background())
	st.Ctx = ctx
	cancel()
	if err := st.Context().Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("with Ctx cancelled: got %v; want context.Canceled", err)
	}
}

// TestHandlerContextShutdownBeforeStart: Shutdown comes while the factory
// is still building the handler; the handler starts with ctx cancelled and
// can still say goodbye.
func TestHandlerContextShutdownBeforeStart(t *testing.T) {
	release := make(chan struct{})
	handler := HandlerContext(func(ctx context.Context, c net.Conn) {
		if ctx.Err() != nil {
			io.WriteString(c, "goodbye\n")
		}
	})
	f := FactoryFunc(func(remote net.Addr) Protocol {
		<-release
		return handler.BuildProtocol(remote)
	})
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	c := dial(t, p)
	conn := onlyConn(t, p)
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := contextWithTimeout(testTimeout)
		defer cancel()
		shut <- p.Shutdown(ctx)
	}()
	waitFor(t, "Shutdown's request", func() bool {
		conn.mu.Lock()
		defer conn.mu.Unlock()
		return conn.drainReq
	})
	close(release)
	if got := string(readAll(t, c)); got != "goodbye\n" {
		t.Errorf("got %q; want %q", got, "goodbye\n")
	}
	if err := recv(t, shut); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}
