package netport

import (
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var errBoom = errors.New("boom")

func TestPanicsAreRecovered(t *testing.T) {
	tests := []struct {
		where string
		lost  bool // the panic reaches ConnectionLost
	}{
		{"BuildProtocol", false},
		{"ConnectionMade", true},
		{"DataReceived", true},
		{"ConnectionLost", false},
		{"Handler", false},
	}
	for _, tt := range tests {
		t.Run(tt.where, func(t *testing.T) {
			logger, logs := testLogger()
			var n atomic.Int32
			built := make(chan *hookProto, 2)
			// A panic in ConnectionMade resets the connection; held until
			// the client's dial has returned, it cannot make the dial fail.
			dialed := make(chan struct{})
			var f Factory = FactoryFunc(func(net.Addr) Protocol {
				first := n.Add(1) == 1
				if first && tt.where == "BuildProtocol" {
					panic(errBoom)
				}
				h := newHookProto(nil, echoData)
				if first {
					switch tt.where {
					case "ConnectionMade":
						h.onMade = func(Transport) {
							select {
							case <-dialed:
							case <-time.After(testTimeout):
							}
							panic(errBoom)
						}
					case "DataReceived":
						h.onData = func(Transport, []byte) { panic(errBoom) }
					case "ConnectionLost":
						h.onLost = func(error) { panic(errBoom) }
					}
				}
				built <- h
				return h
			})
			if tt.where == "Handler" {
				f = Handler(func(c net.Conn) {
					if n.Add(1) == 1 {
						panic(errBoom)
					}
					buf := make([]byte, 64)
					for {
						k, err := c.Read(buf)
						if err != nil {
							return
						}
						c.Write(buf[:k])
					}
				})
			}
			p := listen(t, &Config{Logger: logger}, "tcp", "127.0.0.1:0", f)

			c := dial(t, p)
			close(dialed)
			if tt.where == "ConnectionLost" {
				// The panic comes once the connection ends.
				roundTrip(t, c, []byte("y"))
				c.Close()
				h := recv(t, built)
				recv(t, h.lost)
				waitClosed(t, h.t.(*Conn).Done(), "the connection's end")
			} else {
				c.Write([]byte("x"))
				// The connection is closed: EOF or a reset, not a timeout.
				_, err := c.Read(make([]byte, 1))
				var ne net.Error
				if err == nil || errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("client read after the panic: got %v; want EOF or a reset", err)
				}
			}
			if tt.lost {
				h := recv(t, built)
				reason := recv(t, h.lost)
				if !errors.Is(reason, ErrConnectionLost) || !errors.Is(reason, errBoom) {
					t.Errorf("ConnectionLost(%v); want ErrConnectionLost wrapping the panic value", reason)
				}
			}

			log := logs.String()
			for _, want := range []string{"panic", tt.where, c.LocalAddr().String(), "goroutine"} {
				if !strings.Contains(log, want) {
					t.Errorf("log %q does not contain %q", log, want)
				}
			}

			// The port keeps serving.
			roundTrip(t, dial(t, p), []byte("still serving"))
		})
	}
}
