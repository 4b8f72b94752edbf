package netport

import (
	"slices"
	"testing"
)

// TestConnSet: keys freed by remove are reused, and all yields exactly the
// connections in the set.
func TestConnSet(t *testing.T) {
	var s connSet
	cs := make([]*Conn, 5)
	for i := range cs {
		cs[i] = new(Conn)
		s.add(cs[i])
	}
	s.remove(cs[1])
	s.remove(cs[3])
	if got := s.len(); got != 3 {
		t.Fatalf("len after 5 adds and 2 removes: %d; want 3", got)
	}
	extra := new(Conn)
	s.add(extra)
	if extra.slot != cs[3].slot {
		t.Errorf("a new connection got key %d; want the last freed, %d", extra.slot, cs[3].slot)
	}
	if len(s.conns) != 5 {
		t.Errorf("the set grew to %d slots with a free key at hand; want 5", len(s.conns))
	}
	got := slices.Collect(s.all())
	want := []*Conn{cs[0], cs[2], extra, cs[4]}
	if len(got) != len(want) {
		t.Fatalf("all yielded %d connections; want %d", len(got), len(want))
	}
	for _, c := range want {
		if !slices.Contains(got, c) {
			t.Errorf("all did not yield a connection in the set")
		}
	}
	for range s.all() {
		break // stopping early must not panic
	}
}
