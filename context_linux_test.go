//go:build linux

package netport

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

func TestBaseContextPanic(t *testing.T) {
	before := countFDs(t)
	cfg := &Config{BaseContext: func(*Port) context.Context { panic("no base") }}
	p, err := cfg.Listen("tcp", "127.0.0.1:0", newEchoFactory())
	if err == nil {
		p.Close()
		t.Fatal("Listen succeeded; want the panic as an error")
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "no base") {
		t.Errorf("got %v; want a *net.OpError naming the panic", err)
	}
	if after := countFDs(t); after != before {
		t.Errorf("got %d open descriptors; want %d", after, before)
	}
}

// TestBaseContextAdoptedConnection: a connection with no port gets
// BaseContext(nil).
func TestBaseContextAdoptedConnection(t *testing.T) {
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	mine := os.NewFile(uintptr(pair[0]), "server")
	peer := os.NewFile(uintptr(pair[1]), "client")
	defer peer.Close()
	ports := make(chan *Port, 1)
	cfg := &Config{BaseContext: func(p *Port) context.Context {
		ports <- p
		return context.WithValue(context.Background(), ctxKey{}, "adopted")
	}}
	values := make(chan any, 1)
	f := FactoryFunc(func(net.Addr) Protocol {
		return newHookProto(func(t Transport) { values <- t.Context().Value(ctxKey{}) }, nil)
	})
	c, err := cfg.AdoptStreamConnection(int(mine.Fd()), syscall.AF_UNIX, f)
	mine.Close()
	if err != nil {
		t.Fatal(err)
	}
	if v := recv(t, values); v != "adopted" {
		t.Errorf("got value %v; want adopted", v)
	}
	if p := recv(t, ports); p != nil {
		t.Errorf("BaseContext got %v; want a nil *Port", p)
	}
	c.AbortConnection()
	waitClosed(t, c.Done(), "the adopted connection to end")
	if err := c.Context().Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Context after the end: got %v; want context.Canceled", err)
	}
}
