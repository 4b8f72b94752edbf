package netport

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

func TestMaxConns(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newHookFactory(nil, echoData)
			p := listen(t, &Config{MaxConns: 2}, tt.network, tt.address, f)
			c1 := dial(t, p)
			roundTrip(t, c1, []byte("one"))
			h1 := recv(t, f.built)
			c2 := dial(t, p)
			roundTrip(t, c2, []byte("two"))
			recv(t, f.built)

			// The third client waits in the backlog.
			c3 := dial(t, p)
			if _, err := c3.Write([]byte("three")); err != nil {
				t.Fatal(err)
			}
			quiet(t, f.built, "BuildProtocol for a third client with MaxConns 2")

			c1.Close()
			recv(t, h1.lost)
			recv(t, f.built)
			got := make([]byte, len("three"))
			if _, err := readFull(c3, got); err != nil || string(got) != "three" {
				t.Fatalf("third client's echo: got %q, %v; want \"three\"", got, err)
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newHookFactory(nil, echoData)
			p := listen(t, &Config{IdleTimeout: quietPeriod}, tt.network, tt.address, f)
			c := dial(t, p)
			roundTrip(t, c, []byte("then silence"))
			h := recv(t, f.built)
			reason := recv(t, h.lost)
			if !errors.Is(reason, ErrConnectionLost) || !errors.Is(reason, os.ErrDeadlineExceeded) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionLost wrapping os.ErrDeadlineExceeded", reason)
			}
			_, err := c.Read(make([]byte, 1))
			var ne net.Error
			if err == nil || errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("client read: got %v; want the server to close (EOF or a reset)", err)
			}
		})
	}
}

func TestWriteTimeout(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			werr := make(chan error, 1)
			chunk := make([]byte, 64<<10)
			f := newHookFactory(func(tr Transport) {
				// The client never reads: the buffers fill, and a Write
				// must then fail within WriteTimeout.
				for {
					if _, err := tr.Write(chunk); err != nil {
						werr <- err
						return
					}
				}
			}, nil)
			p := listen(t, &Config{WriteTimeout: quietPeriod}, tt.network, tt.address, f)
			dial(t, p)
			h := recv(t, f.built)
			start := time.Now()
			err := recv(t, werr)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Write to a client that never reads: got %v; want os.ErrDeadlineExceeded", err)
			}
			if d := time.Since(start); d > testTimeout/2 {
				t.Fatalf("Write failed after %v; want about WriteTimeout (%v)", d, quietPeriod)
			}
			if reason := recv(t, h.lost); !errors.Is(reason, ErrConnectionLost) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionLost", reason)
			}
		})
	}
}
