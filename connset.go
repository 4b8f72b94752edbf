package netport

import "iter"

// A connSet holds a port's connections: a slice, each connection knowing
// its key (Conn.slot), with a list of the keys that are free again. A map
// would cost each idle connection twice the bytes or more. Guarded by the
// port's mu.
type connSet struct {
	conns []*Conn
	free  []int32
	count int
}

// add puts c in the set and records its key in c.slot.
func (s *connSet) add(c *Conn) {
	if n := len(s.free); n > 0 {
		c.slot = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		c.slot = int32(len(s.conns))
		s.conns = append(s.conns, nil)
	}
	s.conns[c.slot] = c
	s.count++
}

// remove takes c out of the set; c must be in it.
func (s *connSet) remove(c *Conn) {
	s.conns[c.slot] = nil
	s.free = append(s.free, c.slot)
	s.count--
}

// len returns how many connections the set holds.
func (s *connSet) len() int { return s.count }

// all yields every connection in the set. The set must not change while
// it runs.
func (s *connSet) all() iter.Seq[*Conn] {
	return func(yield func(*Conn) bool) {
		for _, c := range s.conns {
			if c != nil && !yield(c) {
				return
			}
		}
	}
}
