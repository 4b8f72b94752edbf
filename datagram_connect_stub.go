//go:build !unix

package netport

import (
	"bytes"
	"net"
)

// Outside Unix a socket port cannot be connected or have SO_BROADCAST
// set by netport; memory ports connect all the same (see Connect).

func (d *DatagramPort) sysConnect(addr net.Addr) error { return ErrNotSupported }

func (d *DatagramPort) sysSetBroadcast(on bool) error { return ErrNotSupported }

// sendmsg joins the pieces and sends them with one WriteTo, or one Write
// to a connected peer.
func (d *DatagramPort) sendmsg(bufs [][]byte, addr net.Addr) error {
	b := bytes.Join(bufs, nil)
	var err error
	if addr == nil {
		_, err = d.Write(b)
	} else {
		_, err = d.pc.WriteTo(b, addr)
	}
	return err
}
