package netport

import (
	"bytes"
	"testing"
	"time"
)

// waitTicks waits until p's parking sweeper has ticked n more times, so
// that a connection it could park has had the chance to.
func waitTicks(tb testing.TB, p *Port, n uint32) {
	tb.Helper()
	from := p.sweep.epoch.Load()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(testTimeout)
	for p.sweep.epoch.Load()-from < n {
		select {
		case <-tick.C:
		case <-deadline:
			tb.Fatalf("the sweeper ticked %d times in %v; want %d", p.sweep.epoch.Load()-from, testTimeout, n)
		}
	}
}

// TestQueueAndParking: a connection with bytes queued does not park; once
// the queue has drained it parks as before, holding no queue.
func TestQueueAndParking(t *testing.T) {
	const total = 8 << 20
	want := pattern(total)
	queued := make(chan struct{})
	f := newHookFactory(nil, func(tr Transport, b []byte) {
		if string(b) == "send" {
			tr.Write(want)
			close(queued)
			return
		}
		tr.Write(b)
	})
	p := listen(t, &Config{WriteBuffer: 64 << 10, MaxWriteBuffer: total}, "tcp", "127.0.0.1:0", f)
	client, c, _ := servedConn(t, p, f)
	waitParked(t, c)
	client.Write([]byte("send"))
	waitClosed(t, queued, "the queued write")
	waitTicks(t, p, 4)
	if !c.sending() {
		t.Fatal("the queue drained with the client not reading; want it queued")
	}
	if c.pstate.Load()&parkedBit != 0 {
		t.Fatal("a connection with a queue parked; want it to keep its goroutine")
	}
	if got := readN(t, client, total); !bytes.Equal(got, want) {
		t.Fatal("client read other bytes than those queued")
	}
	waitParked(t, c)
	s := c.snd.Load()
	s.mu.Lock()
	held := cap(s.q.buf)
	s.mu.Unlock()
	if held != 0 {
		t.Fatalf("a parked connection holds a %d-byte queue buffer; want none", held)
	}
	roundTrip(t, client, []byte("after the queue"))
}

// TestQueuedWriteAllocates: a Write that the socket takes whole allocates
// nothing, with a WriteBuffer as without.
func TestQueuedWriteAllocates(t *testing.T) {
	for _, wb := range []int{0, 64 << 10} {
		f := newHookFactory(nil, nil)
		p := listen(t, &Config{WriteBuffer: wb}, "tcp", "127.0.0.1:0", f)
		c := dial(t, p)
		tr := recv(t, recv(t, f.built).made)
		msg, got := pattern(64), make([]byte, 64)
		tr.Write(msg) // the first makes the connection's send state
		readFull(c, got)
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := tr.Write(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := readFull(c, got); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("WriteBuffer %d: %v allocations per Write; want 0", wb, allocs)
		}
	}
}
