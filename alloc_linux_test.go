//go:build linux && !race

// The race detector allocates on its own account (sync.Pool drops
// buffers on purpose), so these counts hold for ordinary builds only.

package netport

import (
	"net"
	"runtime"
	"testing"
	"time"
)

// bareEcho writes back what it receives and keeps nothing: the
// protocol a benchmark would use.
type bareEcho struct {
	t    Transport
	made chan<- *Conn
}

func (e *bareEcho) ConnectionMade(t Transport) { e.t = t; e.made <- t.(*Conn) }
func (e *bareEcho) DataReceived(b []byte)      { e.t.Write(b) }
func (e *bareEcho) ConnectionLost(error)       {}

// echoServed listens with bareEcho and returns a client, after one
// round trip, and the server's Conn.
func echoServed(t *testing.T) (net.Conn, *Conn) {
	t.Helper()
	made := make(chan *Conn, 1)
	p := listen(t, nil, "tcp", "127.0.0.1:0", FactoryFunc(func(net.Addr) Protocol { return &bareEcho{made: made} }))
	client := dial(t, p)
	roundTrip(t, client, []byte("first"))
	return client, recv(t, made)
}

// echoAllocs counts the allocations of the whole process per round trip
// of client, running between (if not nil) before each.
func echoAllocs(t *testing.T, client net.Conn, runs int, between func()) float64 {
	t.Helper()
	msg, got := pattern(64), make([]byte, 64)
	return testing.AllocsPerRun(runs, func() {
		if between != nil {
			between()
		}
		if _, err := client.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := readFull(client, got); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEchoRequestAllocatesNothing: a request on a busy connection (read,
// DataReceived, Write) allocates nothing, client included.
func TestEchoRequestAllocatesNothing(t *testing.T) {
	client, _ := echoServed(t)
	if got := echoAllocs(t, client, 2000, nil); got != 0 {
		t.Errorf("%v allocations per echoed request; want 0", got)
	}
}

// TestParkAndResumeAllocateOne: parking an idle connection and giving it
// its goroutine back when its peer speaks allocates one object, the error
// with which net's RawConn.Read reports the expired read deadline that
// wakes the goroutine to park. Starting the goroutine that resumes it
// allocates nothing (resumeQueue).
func TestParkAndResumeAllocateOne(t *testing.T) {
	client, c := echoServed(t)
	allocs := echoAllocs(t, client, 10, func() {
		// waitParked's ticker would count; this wait allocates nothing.
		deadline := time.Now().Add(testTimeout)
		for c.pstate.Load()&parkedBit == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("not parked after %v", testTimeout)
			}
			runtime.Gosched()
		}
	})
	if allocs > 1 {
		t.Errorf("%v allocations per park and resume; want at most 1", allocs)
	}
}
