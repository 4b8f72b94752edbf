package netport

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
)

func TestStringTransportRecordsWrites(t *testing.T) {
	var tr StringTransport // the zero value is ready
	if n, err := tr.Write([]byte("hello, ")); n != 7 || err != nil {
		t.Fatalf("Write: got %d, %v; want 7, nil", n, err)
	}
	if err := tr.WriteSequence([][]byte{[]byte("wor"), nil, []byte("ld")}); err != nil {
		t.Fatalf("WriteSequence: got %v; want nil", err)
	}
	if got := tr.String(); got != "hello, world" {
		t.Fatalf("String() = %q; want \"hello, world\"", got)
	}
	v := tr.Value()
	if !bytes.Equal(v, []byte("hello, world")) {
		t.Fatalf("Value() = %q; want \"hello, world\"", v)
	}
	v[0] = 'J' // Value is a copy
	if got := tr.String(); got != "hello, world" {
		t.Fatalf("String() after changing Value's result = %q; want it unchanged", got)
	}
	tr.Clear()
	if got := tr.Value(); len(got) != 0 {
		t.Fatalf("Value() after Clear = %q; want empty", got)
	}
	tr.Write([]byte("again"))
	if got := tr.String(); got != "again" {
		t.Fatalf("String() after Clear and Write = %q; want \"again\"", got)
	}
	if tr.Disconnecting() || tr.Aborted() || tr.WriteLost() || tr.Paused() || tr.Pauses() != 0 {
		t.Fatalf("flags after writes only: got disconnecting %v, aborted %v, write lost %v, paused %v, pauses %d; want all unset",
			tr.Disconnecting(), tr.Aborted(), tr.WriteLost(), tr.Paused(), tr.Pauses())
	}
	if tr.Conn() != nil {
		t.Fatalf("Conn() = %v; want nil", tr.Conn())
	}
}

// stFlags is what a StringTransport reports about the calls made on it.
type stFlags struct {
	disconnecting, aborted, writeLost, paused bool
	pauses                                    int
}

func flagsOf(tr *StringTransport) stFlags {
	return stFlags{tr.Disconnecting(), tr.Aborted(), tr.WriteLost(), tr.Paused(), tr.Pauses()}
}

func TestStringTransportFlags(t *testing.T) {
	for _, tt := range []struct {
		name     string
		do       func(*StringTransport)
		want     stFlags
		writeErr error // what a Write afterwards returns; nil: it works
	}{
		{"LoseConnection", func(tr *StringTransport) { tr.LoseConnection() }, stFlags{disconnecting: true}, net.ErrClosed},
		{"StopProducing", func(tr *StringTransport) { tr.StopProducing() }, stFlags{disconnecting: true}, net.ErrClosed},
		{"AbortConnection", func(tr *StringTransport) { tr.AbortConnection() }, stFlags{aborted: true}, net.ErrClosed},
		{"LoseWriteConnection", func(tr *StringTransport) { tr.LoseWriteConnection() }, stFlags{writeLost: true}, syscall.EPIPE},
		{"PauseProducing", func(tr *StringTransport) { tr.PauseProducing() }, stFlags{paused: true, pauses: 1}, nil},
		{"PauseProducing twice", func(tr *StringTransport) {
			tr.PauseProducing()
			tr.PauseProducing()
		}, stFlags{paused: true, pauses: 2}, nil},
		{"ResumeProducing", func(tr *StringTransport) {
			tr.PauseProducing()
			tr.ResumeProducing()
		}, stFlags{pauses: 1}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr := new(StringTransport)
			tr.Write([]byte("before"))
			tt.do(tr)
			if got := flagsOf(tr); got != tt.want {
				t.Fatalf("flags: got %+v; want %+v", got, tt.want)
			}
			n, err := tr.Write([]byte(" after"))
			werr := tr.WriteSequence([][]byte{[]byte(" after")})
			if tt.writeErr == nil {
				if err != nil || werr != nil || n != len(" after") {
					t.Fatalf("Write, WriteSequence: got %d, %v and %v; want them to work", n, err, werr)
				}
				if got := tr.String(); got != "before after after" {
					t.Fatalf("String() = %q; want \"before after after\"", got)
				}
				return
			}
			for _, e := range []error{err, werr} {
				wantOpError(t, "write after "+tt.name, e, tt.writeErr)
			}
			if n != 0 {
				t.Fatalf("Write after %s: got %d bytes; want 0", tt.name, n)
			}
			if got := tr.String(); got != "before" {
				t.Fatalf("String() = %q; want only what was written before: \"before\"", got)
			}
		})
	}
}

func TestStringTransportAddrs(t *testing.T) {
	var tr StringTransport
	if l, r := tr.LocalAddr(), tr.RemoteAddr(); l.Network() != "memory" || r.Network() != "memory" || l.String() == r.String() {
		t.Fatalf("addresses of a zero StringTransport: got %v and %v; want two distinct memory addresses", l, r)
	}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7007}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
	tr = StringTransport{Local: local, Remote: remote}
	if tr.LocalAddr() != net.Addr(local) || tr.RemoteAddr() != net.Addr(remote) {
		t.Fatalf("LocalAddr, RemoteAddr: got %v, %v; want %v, %v", tr.LocalAddr(), tr.RemoteAddr(), local, remote)
	}
}

// lineUpper is a small protocol to drive by hand: it answers each line in
// upper case and hangs up on "quit".
type lineUpper struct {
	t   Transport
	buf []byte
}

func (p *lineUpper) ConnectionMade(t Transport) { p.t = t; t.Write([]byte("ready\n")) }
func (p *lineUpper) ConnectionLost(error)       {}
func (p *lineUpper) DataReceived(b []byte) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return
		}
		line := string(p.buf[:i])
		p.buf = p.buf[i+1:]
		if line == "quit" {
			p.t.LoseConnection()
			return
		}
		p.t.Write([]byte(strings.ToUpper(line) + "\n"))
	}
}

// TestStringTransportDrivesProtocol is how a protocol is unit-tested with a
// StringTransport: call its methods directly and look at what it did.
func TestStringTransportDrivesProtocol(t *testing.T) {
	tr := new(StringTransport)
	p := new(lineUpper)
	p.ConnectionMade(tr)
	if got := tr.String(); got != "ready\n" {
		t.Fatalf("after ConnectionMade: got %q; want \"ready\\n\"", got)
	}
	tr.Clear()
	for _, chunk := range []string{"he", "llo\nwor", "ld\n"} { // lines split anyhow
		p.DataReceived([]byte(chunk))
	}
	if got := tr.String(); got != "HELLO\nWORLD\n" {
		t.Fatalf("replies: got %q; want \"HELLO\\nWORLD\\n\"", got)
	}
	if tr.Disconnecting() {
		t.Fatalf("Disconnecting() = true before quit; want false")
	}
	p.DataReceived([]byte("quit\nignored\n"))
	if !tr.Disconnecting() {
		t.Fatalf("Disconnecting() = false after quit; want true")
	}
	p.ConnectionLost(ErrConnectionDone)
}

// TestStringTransportConcurrent uses one StringTransport from many
// goroutines; run it with -race. Each Write is kept whole.
func TestStringTransportConcurrent(t *testing.T) {
	const writers, writes = 8, 100
	tr := new(StringTransport)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			rec := []byte{'<', byte('a' + i), '>'}
			for range writes {
				if i%2 == 0 {
					tr.Write(rec)
				} else {
					tr.WriteSequence([][]byte{rec[:1], rec[1:]})
				}
				tr.PauseProducing()
				tr.ResumeProducing()
				tr.Value()
				tr.Paused()
			}
		})
	}
	wg.Go(func() {
		for range writes {
			tr.Disconnecting()
			tr.Aborted()
			tr.WriteLost()
			tr.Pauses()
			_ = tr.String()
		}
	})
	wg.Wait()
	got := tr.String()
	if want := writers * writes * 3; len(got) != want {
		t.Fatalf("bytes recorded: got %d; want %d", len(got), want)
	}
	for i := 0; i < len(got); i += 3 {
		if got[i] != '<' || got[i+2] != '>' {
			t.Fatalf("record at %d: got %q; want each write whole, as <x>", i, got[i:i+3])
		}
	}
	if n := tr.Pauses(); n != writers*writes {
		t.Fatalf("Pauses() = %d; want %d", n, writers*writes)
	}
	tr.LoseConnection()
	var errs sync.WaitGroup
	for range writers {
		errs.Go(func() {
			if _, err := tr.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Write after LoseConnection: got %v; want net.ErrClosed", err)
			}
		})
	}
	errs.Wait()
}
