//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// netnsEnv marks a test binary started in a network namespace of its own:
// "setup" while it still has to build the namespace's network, "ready"
// once it has.
const netnsEnv = "NETPORT_ECHO_NETNS"

// netnsSetup gives the namespace a veth pair v0-v1 that carries multicast:
// loopback's transmit hands every packet back with no usable source
// address, and Linux sends no IPv6 multicast over it.
var netnsSetup = [][]string{
	{"link", "set", "lo", "up"},
	{"link", "add", "v0", "type", "veth", "peer", "name", "v1"},
	{"addr", "add", "10.99.0.1/24", "dev", "v0"},
	{"-6", "addr", "add", "fd00:99::1/64", "dev", "v0", "nodad"},
	{"link", "set", "v0", "up"},
	{"link", "set", "v1", "up"},
	{"route", "add", "224.0.0.0/4", "dev", "v0"},
	// Each interface gets an IPv6 multicast route of the same metric;
	// v1's would win.
	{"-6", "route", "del", "multicast", "ff00::/8", "dev", "v1", "table", "local"},
}

// init builds the namespace's network, in the child inNetns starts, before
// TestMain runs, and then runs the test binary again, inside.
func init() {
	if os.Getenv(netnsEnv) != "setup" {
		return
	}
	for _, args := range netnsSetup {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "ip %s: %v: %s\n", strings.Join(args, " "), err, out)
			os.Exit(1)
		}
	}
	self, err := os.Executable()
	if err == nil {
		os.Setenv(netnsEnv, "ready")
		err = syscall.Exec(self, os.Args, os.Environ())
	}
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// inNetns reports whether t runs inside its network namespace; when not,
// it runs t in a child process inside a new one and reports that child's
// result, or skips t where no namespace can be made.
func inNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) == "ready" {
		return true
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("needs ip(8) from iproute2 to set up a network namespace: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsEnv+"=setup",
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS) {
			t.Skipf("cannot make a network namespace here (needs root or CAP_SYS_ADMIN): %v", err)
		}
		t.Fatalf("start the child: %v", err)
	}
	if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "--- PASS: "+t.Name()) {
		t.Fatalf("%s in its network namespace: %v\n%s", t.Name(), err, out.String())
	}
	return false
}

// -listen udp-multicast:GROUP:PORT joins the group and echoes what is sent
// to it back to the sender, for IPv4 and IPv6 groups.
func TestListenMulticast(t *testing.T) {
	if !inNetns(t) {
		return
	}
	groups := []string{"239.255.0.9", "ff15::9"}
	s := start(t, nil, "SELF",
		"-listen", "udp-multicast:"+groups[0]+":0",
		"-listen", "udp-multicast:["+groups[1]+"]:0")
	var addresses []string
	for _, g := range groups {
		network, address := listening(t, s.line(t))
		host, _, err := net.SplitHostPort(address)
		if network != "udp-multicast" || err != nil || host != g {
			t.Fatalf("got listening %s %s; want udp-multicast %s:PORT", network, address, g)
		}
		addresses = append(addresses, address)
	}
	// A second server shares both group ports (SO_REUSEPORT): each
	// datagram sent to a group is echoed twice, once by each.
	args := []string{"SELF"}
	for _, a := range addresses {
		args = append(args, "-listen", "udp-multicast:"+a)
	}
	s2 := start(t, nil, args...)
	for range addresses {
		listening(t, s2.line(t))
	}
	for i, g := range groups {
		address := addresses[i]
		to, err := net.ResolveUDPAddr("udp", address)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.ListenPacket("udp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(testTimeout))
		msg := "to the group " + g
		if _, err := c.WriteTo([]byte(msg), to); err != nil {
			t.Fatalf("send to %v: %v", to, err)
		}
		for range 2 {
			buf := make([]byte, 100)
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				t.Fatalf("read an echo from group %s: %v; stderr:\n%s\n%s", g, err, s.stderr, s2.stderr)
			}
			if string(buf[:n]) != msg {
				t.Fatalf("echo from %v: %q; want %q", from, buf[:n], msg)
			}
		}
	}
	for _, p := range []*proc{s, s2} {
		p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit status after SIGTERM: %d; want 0", code)
		}
	}
}

func TestParseMulticastEndpoint(t *testing.T) {
	for v, ok := range map[string]bool{
		"udp-multicast:239.1.2.3:7007": true,
		"udp-multicast:[ff15::7]:0":    true,
		"udp-multicast:127.0.0.1:7007": false, // not a group
		"udp-multicast:239.1.2.3":      false, // no port
		"udp-multicast:example.com:7":  false,
		"udp-multicast:[fe80::1]:7007": false,
	} {
		e, err := parseEndpoint(v)
		if ok && (err != nil || e.network != "udp-multicast") {
			t.Errorf("parseEndpoint(%q): %+v, %v; want udp-multicast", v, e, err)
		}
		if !ok && err == nil {
			t.Errorf("parseEndpoint(%q): %+v; want an error", v, e)
		}
	}
}
