//go:build linux

package netport

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// mcFamily is one IP version the multicast tests run over, on the
// network netnsSetup builds.
type mcFamily struct {
	network string
	group   net.IP
	v1Addr  net.IP // v1's address: the source of what leaves by v1
}

var mcFamilies = []mcFamily{
	{"udp4", net.ParseIP("239.255.0.7"), net.ParseIP("10.99.0.2")},
	{"udp6", net.ParseIP("ff15::7"), net.ParseIP("fd00:99::2")},
}

// mcListen opens a multicast port for tb.
func mcListen(tb testing.TB, c *Config, network, address string, p DatagramProtocol) *DatagramPort {
	tb.Helper()
	d, err := c.ListenMulticast(network, address, p, 0)
	if err != nil {
		tb.Fatalf("ListenMulticast(%q, %q): %v", network, address, err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

func mcInterface(tb testing.TB, name string) *net.Interface {
	tb.Helper()
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		tb.Fatal(err)
	}
	return ifi
}

// mcRecv waits for one datagram on r and checks its payload.
func mcRecv(tb testing.TB, r *dgRecorder, who, want string) dgMessage {
	tb.Helper()
	m := recvWithin(tb, r.got, datagramWait, who+": a datagram")
	if string(m.data) != want {
		tb.Fatalf("%s got %q from %v; want %q", who, m.data, m.from, want)
	}
	return m
}

// TestMulticast runs in a network namespace of its own: two ports on one
// group port (ReusePort, as Twisted's listenMultiple) both receive what is
// sent to the group once joined, and nothing once left; loopback off stops
// the sender's own copy; the interface and the TTL take effect on the
// wire, and read back through x/net.
func TestMulticast(t *testing.T) {
	if !inNetns(t) {
		return
	}
	for _, fam := range mcFamilies {
		t.Run(fam.network, func(t *testing.T) {
			v0, v1 := mcInterface(t, "v0"), mcInterface(t, "v1")
			cfg := &Config{ReusePort: true}
			r1, r2 := newDgRecorder(), newDgRecorder()
			d1 := mcListen(t, cfg, fam.network, net.JoinHostPort(fam.group.String(), "0"), r1)
			port := d1.Addr().(*net.UDPAddr).Port
			d2 := mcListen(t, cfg, fam.network, net.JoinHostPort(fam.group.String(), strconv.Itoa(port)), r2)
			if p2 := d2.Addr().(*net.UDPAddr).Port; p2 != port {
				t.Fatalf("second port bound %d; want %d", p2, port)
			}
			if ip := d1.Addr().(*net.UDPAddr).IP; !ip.IsUnspecified() {
				t.Errorf("ListenMulticast on the group bound %v; want the wildcard address", ip)
			}
			group := &net.UDPAddr{IP: fam.group, Port: port}
			// An adopted socket on the same port takes the same calls.
			r3 := newDgRecorder()
			d3 := mcAdopt(t, fam.network, port, r3)

			// Joined (nil: the system picks v0 by its route), every port
			// receives what d1 sends, d1 its own copy as well.
			for _, d := range []*DatagramPort{d1, d2, d3} {
				if err := d.JoinGroup(nil, fam.group); err != nil {
					t.Fatalf("JoinGroup(nil, %v): %v", fam.group, err)
				}
			}
			if err := d1.JoinGroup(v0, fam.group); !errors.Is(err, syscall.EADDRINUSE) {
				t.Errorf("JoinGroup a second time: %v; want EADDRINUSE", err)
			}
			if _, err := d1.WriteTo([]byte("to the group"), group); err != nil {
				t.Fatalf("WriteTo %v: %v", group, err)
			}
			mcRecv(t, r1, "d1 (the sender, loopback on)", "to the group")
			mcRecv(t, r2, "d2", "to the group")
			mcRecv(t, r3, "d3 (adopted)", "to the group")
			if err := d3.LeaveGroup(nil, fam.group); err != nil {
				t.Fatalf("LeaveGroup on the adopted port: %v", err)
			}
			d3.Close()

			// Loopback off: no local member gets a copy, the sender
			// included, and v1 (where the datagram arrives) joined
			// nothing.
			if err := d1.SetMulticastLoopback(false); err != nil {
				t.Fatalf("SetMulticastLoopback(false): %v", err)
			}
			if on, err := mcLoopback(d1); err != nil || on {
				t.Fatalf("loopback read back through x/net: %v, %v; want false", on, err)
			}
			if _, err := d1.WriteTo([]byte("loopback off"), group); err != nil {
				t.Fatal(err)
			}
			quiet(t, r1.got, "d1 with loopback off")
			quiet(t, r2.got, "d2 with loopback off")

			// The interface: sent by v1, the datagram crosses the veth
			// pair to v0, where both ports are members; its source is
			// v1's address.
			if err := d1.SetMulticastInterface(v1); err != nil {
				t.Fatalf("SetMulticastInterface(v1): %v", err)
			}
			// Linux answers IP_MULTICAST_IF with the address set, not
			// the interface (0.0.0.0 when set by index, as x/net does),
			// so only IPv6 reads it back; the source address below
			// shows it for both.
			if !mcIPv4(d1) {
				if ifi, err := mcIf(d1); err != nil || ifi == nil || ifi.Name != "v1" {
					t.Fatalf("interface read back through x/net: %v, %v; want v1", ifi, err)
				}
			}
			if _, err := d1.WriteTo([]byte("by v1"), group); err != nil {
				t.Fatal(err)
			}
			for _, r := range []*dgRecorder{r1, r2} {
				m := mcRecv(t, r, "a member on v0", "by v1")
				if ip := m.from.(*net.UDPAddr).IP; !ip.Equal(fam.v1Addr) {
					t.Errorf("datagram sent by v1 came from %v; want v1's %v", ip, fam.v1Addr)
				}
			}

			// The TTL (hop limit) a receiver sees.
			if err := d1.SetMulticastTTL(7); err != nil {
				t.Fatalf("SetMulticastTTL(7): %v", err)
			}
			if ttl, err := mcTTL(d1); err != nil || ttl != 7 {
				t.Fatalf("TTL read back through x/net: %d, %v; want 7", ttl, err)
			}
			if got := mcReceivedTTL(t, fam, port, v0, func() {
				if _, err := d1.WriteTo([]byte("ttl"), group); err != nil {
					t.Fatal(err)
				}
			}); got != 7 {
				t.Errorf("received TTL %d; want 7", got)
			}
			mcRecv(t, r1, "d1", "ttl")
			mcRecv(t, r2, "d2", "ttl")

			// Left, neither port receives.
			for _, d := range []*DatagramPort{d1, d2} {
				if err := d.LeaveGroup(nil, fam.group); err != nil {
					t.Fatalf("LeaveGroup(nil, %v): %v", fam.group, err)
				}
			}
			if _, err := d1.WriteTo([]byte("after leaving"), group); err != nil {
				t.Fatal(err)
			}
			quiet(t, r1.got, "d1 after LeaveGroup")
			quiet(t, r2.got, "d2 after LeaveGroup")
			if err := d1.LeaveGroup(nil, fam.group); err == nil {
				t.Error("LeaveGroup of a group not joined: nil error")
			}
		})
	}
}

// mcAdopt adopts a UDP socket of network's family bound to the wildcard
// address on port with SO_REUSEPORT, made by net.
func mcAdopt(tb testing.TB, network string, port int, p DatagramProtocol) *DatagramPort {
	tb.Helper()
	lc := net.ListenConfig{Control: setReusePort}
	pc, err := lc.ListenPacket(context.Background(), network, ":"+strconv.Itoa(port))
	if err != nil {
		tb.Fatal(err)
	}
	defer pc.Close()
	f, err := pc.(*net.UDPConn).File()
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	family := syscall.AF_INET
	if network == "udp6" {
		family = syscall.AF_INET6
	}
	d, err := AdoptDatagramPort(int(f.Fd()), family, p, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// mcReceivedTTL joins the group on ifi with a plain socket of its own on
// the group port, runs send, and returns the TTL (hop limit) of the
// datagram that arrives.
func mcReceivedTTL(tb testing.TB, fam mcFamily, port int, ifi *net.Interface, send func()) int {
	tb.Helper()
	lc := net.ListenConfig{Control: setReusePort}
	pc, err := lc.ListenPacket(context.Background(), fam.network, net.JoinHostPort(fam.group.String(), strconv.Itoa(port)))
	if err != nil {
		tb.Fatal(err)
	}
	defer pc.Close()
	pc.SetReadDeadline(time.Now().Add(datagramWait))
	buf := make([]byte, 64)
	group := &net.UDPAddr{IP: fam.group}
	if fam.group.To4() != nil {
		c := ipv4.NewPacketConn(pc)
		if err := c.JoinGroup(ifi, group); err != nil {
			tb.Fatal(err)
		}
		if err := c.SetControlMessage(ipv4.FlagTTL, true); err != nil {
			tb.Fatal(err)
		}
		send()
		_, cm, _, err := c.ReadFrom(buf)
		if err != nil || cm == nil {
			tb.Fatalf("read with the TTL: %v, %v", cm, err)
		}
		return cm.TTL
	}
	c := ipv6.NewPacketConn(pc)
	if err := c.JoinGroup(ifi, group); err != nil {
		tb.Fatal(err)
	}
	if err := c.SetControlMessage(ipv6.FlagHopLimit, true); err != nil {
		tb.Fatal(err)
	}
	send()
	_, cm, _, err := c.ReadFrom(buf)
	if err != nil || cm == nil {
		tb.Fatalf("read with the hop limit: %v, %v", cm, err)
	}
	return cm.HopLimit
}

func mcIPv4(d *DatagramPort) bool { return d.Addr().(*net.UDPAddr).IP.To4() != nil }

func mcLoopback(d *DatagramPort) (bool, error) {
	if mcIPv4(d) {
		return ipv4.NewPacketConn(d.PacketConn()).MulticastLoopback()
	}
	return ipv6.NewPacketConn(d.PacketConn()).MulticastLoopback()
}

func mcIf(d *DatagramPort) (*net.Interface, error) {
	if mcIPv4(d) {
		return ipv4.NewPacketConn(d.PacketConn()).MulticastInterface()
	}
	return ipv6.NewPacketConn(d.PacketConn()).MulticastInterface()
}

func mcTTL(d *DatagramPort) (int, error) {
	if mcIPv4(d) {
		return ipv4.NewPacketConn(d.PacketConn()).MulticastTTL()
	}
	return ipv6.NewPacketConn(d.PacketConn()).MulticastHopLimit()
}

// The multicast calls check their arguments and the port before the
// system does; these need no namespace.
func TestMulticastErrors(t *testing.T) {
	if _, err := ListenMulticast("udp", "239.1.2.3:0", newDgRecorder(), 0); !errors.As(err, new(net.UnknownNetworkError)) {
		t.Errorf("ListenMulticast(udp): %v; want net.UnknownNetworkError", err)
	}
	d := dgListen(t, nil, "udp", "127.0.0.1:0", newDgRecorder(), 0)
	for _, g := range []net.IP{nil, net.IPv4(127, 0, 0, 1), net.ParseIP("::1")} {
		err := d.JoinGroup(nil, g)
		var oe *net.OpError
		if !errors.Is(err, syscall.EINVAL) || !errors.As(err, &oe) || oe.Op != "join" {
			t.Errorf("JoinGroup(nil, %v): %v; want a *net.OpError join wrapping EINVAL", g, err)
		}
	}
	u := dgListen(t, nil, "unixgram", t.TempDir()+"/s", newDgRecorder(), 0)
	if err := u.JoinGroup(nil, net.IPv4(239, 1, 2, 3)); !errors.Is(err, ErrNotSupported) {
		t.Errorf("JoinGroup on unixgram: %v; want ErrNotSupported", err)
	}
	if err := u.SetMulticastTTL(2); !errors.Is(err, ErrNotSupported) {
		t.Errorf("SetMulticastTTL on unixgram: %v; want ErrNotSupported", err)
	}
	d.Close()
	if err := d.SetMulticastTTL(2); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SetMulticastTTL after Close: %v; want net.ErrClosed", err)
	}
	if err := d.JoinGroup(nil, net.IPv4(239, 1, 2, 3)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("JoinGroup after Close: %v; want net.ErrClosed", err)
	}
}
