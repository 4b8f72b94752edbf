package netport

import (
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// TestLoseConnectionThenPeerSends: data that reaches the server after
// LoseConnection must not make it reset the connection, which would cut
// the reply short. A small client receive buffer, set before the
// connection is made, keeps most of the reply queued at the server when
// that data arrives.
func TestLoseConnectionThenPeerSends(t *testing.T) {
	payload := bytes.Repeat([]byte("netport "), 1<<17) // 1 MiB
	for _, tt := range tcpNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			closed := make(chan error, 1)
			f := newHookFactory(nil, func(tr Transport, b []byte) {
				if string(b) != "go" {
					return
				}
				tr.Write(payload)
				closed <- tr.LoseConnection()
			})
			p := listen(t, nil, tt.network, tt.address, f)
			d := net.Dialer{Timeout: testTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				})
				if err != nil {
					return err
				}
				return serr
			}}
			c, err := d.Dial(p.Addr().Network(), p.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(testTimeout))
			if _, err := c.Write([]byte("go")); err != nil {
				t.Fatal(err)
			}
			if err := recv(t, closed); err != nil {
				t.Fatalf("LoseConnection: %v", err)
			}
			if _, err := c.Write([]byte("a pipelined request")); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, payload) {
				t.Fatalf("client read %d bytes, then %v; want %d bytes, then EOF", len(got), err, len(payload))
			}
		})
	}
}
