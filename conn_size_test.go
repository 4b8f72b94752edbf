package netport

import (
	"testing"
	"unsafe"
)

// TestConnSize: every served connection keeps a Conn, idle or not, so its
// size is most of what netport adds to an idle connection's memory. It
// fits the 224-byte size class on 64-bit systems; fields only some
// connections need live behind waits and view.
func TestConnSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("the size is a claim for 64-bit systems")
	}
	if got := unsafe.Sizeof(Conn{}); got > 224 {
		t.Errorf("a Conn takes %d bytes; want at most 224", got)
	}
}
