package netport

import "sync"

// byteQueue holds the queued bytes, buf[off:]. Bytes once queued are never
// moved or overwritten in place, so the flusher may write from a slice of
// it without holding the lock; push copies the live part to a new array
// when it needs room, and the flusher's consume counts from the same start.
//
// A queue that empties gives its buffer back to queueBufs, so that a
// queue filling and draining over and over (a producer's) reuses one
// buffer rather than making garbage each time; an idle connection holds
// none.
type byteQueue struct {
	buf []byte
	off int
	box *[]byte // carries buf to and from queueBufs
}

// queueBufs holds emptied queue buffers of at most maxPooledQueue bytes.
var queueBufs sync.Pool

const maxPooledQueue = 1 << 20

func (q *byteQueue) len() int { return len(q.buf) - q.off }

func (q *byteQueue) peek() []byte { return q.buf[q.off:] }

func (q *byteQueue) push(b []byte) {
	if len(b) == 0 {
		return
	}
	if cap(q.buf)-len(q.buf) < len(b) {
		live := q.len()
		need := live + len(b)
		var nb []byte
		if live == 0 {
			if box, _ := queueBufs.Get().(*[]byte); box != nil {
				if cap(*box) >= need {
					nb, q.box = (*box)[:0], box
				}
			}
		}
		if nb == nil {
			// The old array is not given back: the flusher may still be
			// writing from it. A quarter more than needed keeps a growing
			// queue's copying linear, and a short one small.
			nb = make([]byte, live, (need+need/4+4095)&^4095)
			copy(nb, q.buf[q.off:])
			q.box = nil
		}
		q.buf, q.off = nb, 0
	}
	q.buf = append(q.buf, b...)
}

// consume drops n sent bytes; once none is left, the buffer goes back to
// queueBufs (the flusher has finished writing from it).
func (q *byteQueue) consume(n int) {
	q.off += n
	if q.off < len(q.buf) {
		return
	}
	if c := cap(q.buf); c > 0 && c <= maxPooledQueue {
		box := q.box
		if box == nil {
			box = new([]byte)
		}
		*box = q.buf[:0]
		queueBufs.Put(box)
	}
	q.buf, q.off, q.box = nil, 0, nil
}
