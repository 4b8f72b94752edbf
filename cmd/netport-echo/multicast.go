package main

import (
	"fmt"
	"net"
	"strconv"

	"github.com/netport/netport"
)

// multicastNetwork is the -listen network that joins a multicast group.
const multicastNetwork = "udp-multicast"

// parseGroup checks the address of a udp-multicast endpoint, GROUP:PORT,
// and returns the group.
func parseGroup(address string) (net.IP, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	group := net.ParseIP(host)
	if !group.IsMulticast() {
		return nil, fmt.Errorf("%q is not a multicast group", host)
	}
	return group, nil
}

// listenMulticast serves GROUP:PORT: a port on PORT (any address, with
// SO_REUSEPORT, so that several servers can share the group port) that
// joins GROUP on the interface the system routes it by, and echoes each
// datagram to its sender. It prints "listening udp-multicast GROUP:PORT".
func (s *server) listenMulticast(address string) error {
	group, err := parseGroup(address)
	if err != nil {
		return err
	}
	network := "udp6"
	if group.To4() != nil {
		network = "udp4"
	}
	cfg := &netport.Config{Logger: s.cfg.Logger, ReusePort: true}
	d, err := cfg.ListenMulticast(network, address, &datagramEcho{}, 0)
	if err != nil {
		return err
	}
	if err := d.JoinGroup(nil, group); err != nil {
		d.Close()
		return err
	}
	s.dgrams = append(s.dgrams, d)
	port := strconv.Itoa(d.Addr().(*net.UDPAddr).Port)
	fmt.Fprintf(s.out, "listening %s %s\n", multicastNetwork, net.JoinHostPort(group.String(), port))
	return nil
}
