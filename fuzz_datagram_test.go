//go:build unix

package netport

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// maxUDPPayload is the largest datagram IPv4 carries.
const maxUDPPayload = 65507

// FuzzDatagramPayload sends one datagram of a fuzzed size and content to a
// fresh datagram port with a fuzzed maxPacketSize, over loopback UDP: the
// protocol must get the first min(size, max) bytes exactly, and Truncated
// must count the datagram when it was longer than max.
func FuzzDatagramPayload(f *testing.F) {
	for _, seed := range []struct {
		size, max int
	}{{0, 0}, {1, 0}, {8192, 0}, {8193, 0}, {maxUDPPayload, 0}, {100, 1}, {65536, 64000}, {512, 511}, {512, 512}} {
		f.Add(uint32(seed.size), uint32(seed.max), byte(seed.size))
	}
	f.Fuzz(func(t *testing.T, size, max uint32, fill byte) {
		n := int(size % (maxUDPPayload + 1))
		m := int(max % (maxUDPPayload + 2))
		payload := bytes.Repeat([]byte{fill, fill ^ 0x5a, 7}, n/3+1)[:n]

		r := make(dgCollector, 1)
		d, err := ListenPacket("udp4", "127.0.0.1:0", r, m)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		c, err := net.Dial("udp4", d.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(payload); err != nil {
			t.Fatalf("send %d bytes: %v", n, err)
		}
		var got []byte
		select {
		case got = <-r:
		case <-time.After(testTimeout):
			t.Fatalf("datagram of %d bytes not delivered within %v", n, testTimeout)
		}
		limit := d.MaxPacketSize()
		want := payload[:min(n, limit)]
		if !bytes.Equal(got, want) {
			t.Fatalf("delivered %d bytes; want the first %d of %d (max %d)", len(got), len(want), n, limit)
		}
		wantCut := uint64(0)
		if n > limit {
			wantCut = 1
		}
		if got := d.Truncated(); got != wantCut {
			t.Fatalf("Truncated() = %d after a %d-byte datagram with max %d; want %d", got, n, limit, wantCut)
		}
	})
}

// dgCollector hands a copy of every datagram to the test.
type dgCollector chan []byte

func (c dgCollector) DatagramReceived(b []byte, _ net.Addr) { c <- bytes.Clone(b) }
