package netport_test

import (
	"errors"
	"fmt"
	"log"
	"net"
	"syscall"

	"github.com/netport/netport"
)

// datagramEcho sends every datagram back.
type datagramEcho struct{ port *netport.DatagramPort }

func (d *datagramEcho) StartProtocol(p *netport.DatagramPort)    { d.port = p }
func (d *datagramEcho) DatagramReceived(b []byte, from net.Addr) { d.port.WriteTo(b, from) }

// ListenPacket serves datagrams; each one reaches DatagramReceived.
func ExampleListenPacket() {
	d, err := netport.ListenPacket("udp4", "127.0.0.1:0", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	c, err := net.Dial("udp4", d.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	buf := make([]byte, 16)
	n, _ := c.Read(buf)
	fmt.Println(string(buf[:n]), d.MaxPacketSize())
	// Output: ping 8192
}

// AdoptDatagramPort serves a datagram socket someone else made, such as
// one systemd passes for ListenDatagram=.
func ExampleAdoptDatagramPort() {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer pc.Close() // closing the port leaves this one working
	f, _ := pc.(*net.UDPConn).File()
	d, err := netport.AdoptDatagramPort(int(f.Fd()), syscall.AF_INET, &datagramEcho{}, 512)
	f.Close()
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	fmt.Println(d.Addr().String() == pc.LocalAddr().String(), d.MaxPacketSize())
	// Output: true 512
}

// Connect makes one address the port's only peer: Write sends to it, and
// WriteTo any other address fails with ErrWriteToConnected. Here the
// peer is the other end of a MemoryReactor's packet pipe.
func ExampleDatagramPort_Connect() {
	r := netport.NewMemoryReactor()
	d, err := r.ListenPacket("udp", "127.0.0.1:5353", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	peer := r.DatagramCalls()[0].Peer

	if err := d.Connect(peer.LocalAddr()); err != nil {
		log.Fatal(err)
	}
	d.Write([]byte("hello, peer"))
	buf := make([]byte, 64)
	n, _, _ := peer.ReadFrom(buf)
	fmt.Println(string(buf[:n]))

	other := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 53}
	_, err = d.WriteTo([]byte("x"), other)
	fmt.Println(errors.Is(err, netport.ErrWriteToConnected))
	// Output:
	// hello, peer
	// true
}

// Write needs a peer: on a port that is not connected it fails as
// write(2) does, with EDESTADDRREQ.
func ExampleDatagramPort_Write() {
	r := netport.NewMemoryReactor()
	d, err := r.ListenPacket("udp", "127.0.0.1:5353", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	_, err = d.Write([]byte("to whom?"))
	fmt.Println(errors.Is(err, syscall.EDESTADDRREQ))
	// Output: true
}

// WriteSequence sends its pieces as one datagram, as a header and a
// payload kept in separate buffers.
func ExampleDatagramPort_WriteSequence() {
	r := netport.NewMemoryReactor()
	d, err := r.ListenPacket("udp", "127.0.0.1:5353", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	peer := r.DatagramCalls()[0].Peer

	header, payload := []byte("HDR|"), []byte("payload")
	if err := d.WriteSequence([][]byte{header, payload}, peer.LocalAddr()); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _, _ := peer.ReadFrom(buf)
	fmt.Printf("one datagram: %q\n", buf[:n])
	// Output: one datagram: "HDR|payload"
}

// SetBroadcast allows datagrams to a broadcast address, which the system
// refuses (EACCES) without it; Go's own sockets start with it on, an
// adopted one may not.
func ExampleDatagramPort_SetBroadcast() {
	d, err := netport.ListenPacket("udp4", "127.0.0.1:0", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	fmt.Println(d.SetBroadcast(true))
	// Output: <nil>
}

// ListenMulticast and JoinGroup receive what is sent to a multicast
// group, here mDNS's. With ReusePort, other processes may serve the same
// group port at once. (Not run: it needs a network with multicast.)
func ExampleConfig_ListenMulticast() {
	group := net.IPv4(224, 0, 0, 251)
	cfg := &netport.Config{ReusePort: true}
	d, err := cfg.ListenMulticast("udp4", "224.0.0.251:5353", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	if err := d.JoinGroup(nil, group); err != nil { // nil: the system picks the interface
		log.Fatal(err)
	}
	defer d.LeaveGroup(nil, group)
}

// The sending side of multicast: which interface datagrams leave by, how
// far they travel (TTL) and whether this host's own members get a copy.
// (Not run: it needs a network with multicast.)
func ExampleDatagramPort_SetMulticastTTL() {
	d, err := netport.ListenMulticast("udp4", "0.0.0.0:0", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	eth0, err := net.InterfaceByName("eth0")
	if err != nil {
		log.Fatal(err)
	}
	if err := d.SetMulticastInterface(eth0); err != nil {
		log.Fatal(err)
	}
	if err := d.SetMulticastTTL(4); err != nil { // a few routers away; the default, 1, stays on this network
		log.Fatal(err)
	}
	if err := d.SetMulticastLoopback(false); err != nil { // no copy to members on this host
		log.Fatal(err)
	}
	d.WriteTo([]byte("announce"), &net.UDPAddr{IP: net.IPv4(239, 255, 0, 1), Port: 7007})
}

// A memory port records a ListenMulticast call but has no groups: the
// multicast calls answer ErrNotSupported.
func ExampleMemoryReactor_ListenMulticast() {
	r := netport.NewMemoryReactor()
	d, err := r.ListenMulticast("udp4", "224.0.0.251:5353", &datagramEcho{}, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	call := r.DatagramCalls()[0]
	fmt.Println(call.Network, call.Address)
	err = d.JoinGroup(nil, net.IPv4(224, 0, 0, 251))
	fmt.Println(errors.Is(err, netport.ErrNotSupported))
	// Output:
	// udp4 224.0.0.251:5353
	// true
}
