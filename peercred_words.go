//go:build linux || netbsd || openbsd

package netport

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Built on Linux too, where SO_PEERCRED is read this way in the tests.

// getsockoptWords reads a socket option whose value is a struct of 32-bit
// fields, at most eight, that x/sys has no getter for (OpenBSD's struct
// sockpeercred, NetBSD's struct unpcbid). It borrows the getter of an
// option of that shape, ICMPv6Filter, eight uint32 on every system (its
// one field is Data on Linux and Filt elsewhere): getsockopt(2) copies as
// many bytes as the option has and leaves the rest zero.
func getsockoptWords(fd, level, opt int) ([8]uint32, error) {
	f, err := unix.GetsockoptICMPv6Filter(fd, level, opt)
	if err != nil {
		return [8]uint32{}, err
	}
	return *(*[8]uint32)(unsafe.Pointer(f)), nil
}
