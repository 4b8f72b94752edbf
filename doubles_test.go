package netport

import (
	"errors"
	"reflect"
	"runtime"
	"syscall"
	"testing"
)

// TestMemoryReactorRefusesUnknownFamily: the in-memory adoptions fail where
// the real ones fail, with the same sentinel, and record nothing.
func TestMemoryReactorRefusesUnknownFamily(t *testing.T) {
	const family = 99999
	f := newHookFactory(nil, nil)
	r := NewMemoryReactor()
	for _, tt := range []struct {
		name string
		call func(Reactor) (any, error)
	}{
		{"AdoptStreamPort", func(r Reactor) (any, error) { return r.AdoptStreamPort(3, family, f) }},
		{"AdoptStreamConnection", func(r Reactor) (any, error) { return r.AdoptStreamConnection(0, family, f) }},
		{"AdoptDatagramPort", func(r Reactor) (any, error) { return r.AdoptDatagramPort(3, family, &reactorDgEcho{}, 0) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.call(r)
			wantOpError(t, "MemoryReactor."+tt.name, err, ErrUnsupportedAddressFamily)
			if !reflect.ValueOf(v).IsNil() {
				t.Fatalf("got %v; want a nil result", v)
			}
			if runtime.GOOS == "linux" { // elsewhere adoption is ErrNotSupported
				// The real call, with a descriptor it never reaches.
				_, realErr := tt.call((*Config)(nil))
				wantOpError(t, "Config."+tt.name, realErr, ErrUnsupportedAddressFamily)
			}
		})
	}
	if n := len(r.AdoptStreamPortCalls()) + len(r.AdoptStreamConnectionCalls()) + len(r.DatagramCalls()); n != 0 {
		t.Fatalf("recorded %d failed calls; want none", n)
	}
	select {
	case h := <-f.built:
		t.Fatalf("BuildProtocol was called (%v); want no call", h)
	default:
	}
}

// TestZeroRaisingReactorFails: a RaisingReactor{} with no Err still fails
// every call, with ErrReactorRaised.
func TestZeroRaisingReactorFails(t *testing.T) {
	var r Reactor = RaisingReactor{}
	f := newHookFactory(nil, nil)
	p := &reactorDgEcho{}
	for _, tt := range []struct {
		name string
		call func() (any, error)
	}{
		{"Listen", func() (any, error) { return r.Listen("tcp", "127.0.0.1:0", f) }},
		{"Serve", func() (any, error) { return r.Serve(NewMemoryListener(), f) }},
		{"AdoptStreamPort", func() (any, error) { return r.AdoptStreamPort(3, syscall.AF_INET, f) }},
		{"AdoptStreamConnection", func() (any, error) { return r.AdoptStreamConnection(0, syscall.AF_UNIX, f) }},
		{"AdoptDatagramPort", func() (any, error) { return r.AdoptDatagramPort(3, syscall.AF_INET, p, 0) }},
		{"ListenPacket", func() (any, error) { return r.ListenPacket("udp", "127.0.0.1:0", p, 0) }},
	} {
		v, err := tt.call()
		if !errors.Is(err, ErrReactorRaised) {
			t.Errorf("RaisingReactor{}.%s: got %v; want ErrReactorRaised", tt.name, err)
		}
		if !reflect.ValueOf(v).IsNil() {
			t.Errorf("RaisingReactor{}.%s: got %v; want a nil result", tt.name, v)
		}
	}
}
