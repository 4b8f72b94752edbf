//go:build linux

package netport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	children["stats-shed"] = childStatsShed
}

// TestPortStatsParked counts idle connections that gave up their
// goroutine.
func TestPortStatsParked(t *testing.T) {
	f := newHookFactory(nil, echoData)
	p := listen(t, nil, "tcp", "127.0.0.1:0", f)
	var clients []net.Conn
	for range 3 {
		client, c, _ := servedConn(t, p, f)
		clients = append(clients, client)
		waitParked(t, c)
	}
	if got := p.Stats(); got.Parked != 3 || got.Active != 3 {
		t.Errorf("three parked connections: got %+v; want Parked 3, Active 3", got)
	}
	for _, c := range clients {
		c.Close()
	}
	shutdown(t, p)
	if got := p.Stats(); got.Parked != 0 || got.Active != 0 {
		t.Errorf("after Shutdown: got %+v; want Parked 0, Active 0", got)
	}
}

// childStatsShed serves a port in a process out of descriptors. It prints
// "addr ADDRESS" and, once its table is full, "full"; each "stats" on
// standard input prints "stats SHED ACCEPTERRORS".
func childStatsShed() int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		return 1
	}
	if err := limitDescriptors(); err != nil {
		return fail("%v", err)
	}
	p, err := Listen("tcp", "127.0.0.1:0", plainEchoFactory)
	if err != nil {
		return fail("listen: %v", err)
	}
	fmt.Printf("addr %s\n", p.Addr())
	fillers, err := fillDescriptors()
	if err != nil {
		return fail("%v", err)
	}
	fmt.Println("full")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		s := p.Stats()
		fmt.Printf("stats %d %d\n", s.Shed, s.AcceptErrors)
	}
	for _, fd := range fillers {
		unix.Close(fd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		return fail("shutdown: %v", err)
	}
	return 0
}

// TestPortStatsShed counts a client closed at once because the process
// was out of descriptors.
func TestPortStatsShed(t *testing.T) {
	child := startChildProcess(t, "stats-shed")
	addr := child.expect("addr ")
	child.expect("full")
	c, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	if n, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("client of a process out of descriptors: got %d, %v; want it closed at once", n, err)
	}
	io.WriteString(child.stdin, "stats\n")
	var shed, acceptErrors int
	if _, err := fmt.Sscan(child.expect("stats "), &shed, &acceptErrors); err != nil {
		t.Fatal(err)
	}
	if shed != 1 || acceptErrors < 1 {
		t.Errorf("got Shed %d, AcceptErrors %d; want 1 and at least 1", shed, acceptErrors)
	}
}
