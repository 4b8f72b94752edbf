package netport

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// upperLines is a small line protocol: every line it receives, up to and
// including its '\n', is answered upper-cased (ASCII only); a last line
// without '\n' gets no answer.
type upperLines struct {
	t       Transport
	pending []byte // the start of a line whose '\n' has not come yet
}

func (u *upperLines) ConnectionMade(t Transport) { u.t = t }

func (u *upperLines) DataReceived(b []byte) {
	u.pending = append(u.pending, b...)
	for {
		i := bytes.IndexByte(u.pending, '\n')
		if i < 0 {
			return
		}
		u.t.Write(upperASCII(u.pending[:i+1]))
		u.pending = u.pending[i+1:]
	}
}

func (u *upperLines) ConnectionLost(error) {}

var upperLinesFactory = FactoryFunc(func(net.Addr) Protocol { return new(upperLines) })

// upperASCII returns a copy of b with ASCII letters upper-cased.
func upperASCII(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	return out
}

// upperLinesReference is what upperLines answers to the whole stream.
func upperLinesReference(data []byte) []byte {
	end := bytes.LastIndexByte(data, '\n')
	return upperASCII(data[:end+1])
}

// maxFuzzStream keeps a stream and its answer well inside a memory
// connection's buffers, so that writing it all before reading cannot
// block.
const maxFuzzStream = 4096

// exchange sends chunks on a fresh connection to l, half-closes it and
// returns everything read until the server closes.
func exchange(tb testing.TB, l *MemoryListener, chunks ...[]byte) []byte {
	tb.Helper()
	c, err := l.Dial()
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(testTimeout))
	for _, chunk := range chunks {
		if _, err := c.Write(chunk); err != nil {
			tb.Fatalf("write: %v", err)
		}
	}
	closeWrite(tb, c)
	got, err := io.ReadAll(c)
	if err != nil {
		tb.Fatalf("read until EOF: %v", err)
	}
	return got
}

// cuts returns where to split a stream of n bytes in two: everywhere for
// a short stream, at about 256 evenly spread points for a longer one.
func cuts(n int) []int {
	step := max(1, n/256)
	var at []int
	for i := 0; i < n; i += step {
		at = append(at, i)
	}
	return append(at, n)
}

// chunksOf splits data into chunks of 1 to 7 bytes, the sizes taken from
// the data itself.
func chunksOf(data []byte) [][]byte {
	var chunks [][]byte
	for len(data) > 0 {
		n := min(len(data), int(data[0])%7+1)
		chunks = append(chunks, data[:n])
		data = data[n:]
	}
	return chunks
}

// FuzzLineProtocol serves upperLines over a MemoryListener and feeds it
// the fuzz input split at every byte boundary, and in small chunks: the
// answer never depends on how the stream was cut. Each input makes a few
// hundred connections, so minimizing a new input takes a while: pass
// -fuzzminimizetime=1s to keep the fuzzer exploring.
func FuzzLineProtocol(f *testing.F) {
	for _, seed := range []string{
		"", "\n", "hello\n", "a\nb\nc", "MiXeD cAsE\n\n\nlast",
		"no newline at all", "\x00\xff\xc3\xa9\n\r\n", "zz\nZZ\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzStream {
			data = data[:maxFuzzStream]
		}
		l := NewMemoryListener()
		p, err := Serve(l, upperLinesFactory)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { shutdown(t, p) })
		want := upperLinesReference(data)
		for _, i := range cuts(len(data)) {
			if got := exchange(t, l, data[:i], data[i:]); !bytes.Equal(got, want) {
				t.Fatalf("stream %q cut at %d: got %q; want %q", data, i, got, want)
			}
		}
		if got := exchange(t, l, chunksOf(data)...); !bytes.Equal(got, want) {
			t.Fatalf("stream %q in chunks: got %q; want %q", data, got, want)
		}
	})
}
