//go:build linux

package netport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// netnsEnv is set in a test binary that runs inside a network namespace
// of its own, made for the test it was asked to run.
const netnsEnv = "NETPORT_TEST_NETNS"

func init() {
	children["netns"] = childNetns
}

// netnsSetup gives a fresh network namespace a multicast network of its
// own: loopback up, and a veth pair v0-v1, v0 carrying the multicast
// routes. Loopback alone does not do: its transmit hands every packet
// back to the host, so IP_MULTICAST_LOOP cannot be seen on it, and Linux
// sends no IPv6 multicast over it.
var netnsSetup = [][]string{
	{"link", "set", "lo", "up"},
	{"link", "add", "v0", "type", "veth", "peer", "name", "v1"},
	{"addr", "add", "10.99.0.1/24", "dev", "v0"},
	{"addr", "add", "10.99.0.2/24", "dev", "v1"},
	{"-6", "addr", "add", "fd00:99::1/64", "dev", "v0", "nodad"},
	{"-6", "addr", "add", "fd00:99::2/64", "dev", "v1", "nodad"},
	{"link", "set", "v0", "up"},
	{"link", "set", "v1", "up"},
	{"route", "add", "224.0.0.0/4", "dev", "v0"},
	// Linux gives each interface an IPv6 multicast route of the same
	// metric, and v1's would win: v1's goes to the back.
	{"-6", "route", "del", "multicast", "ff00::/8", "dev", "v1", "table", "local"},
	{"-6", "route", "add", "multicast", "ff00::/8", "dev", "v1", "table", "local", "metric", "1024"},
}

// childNetns runs first in a new network namespace: it sets the namespace
// up with ip(8) and then becomes the test binary again, with the same
// arguments, so that the test the parent named runs inside.
func childNetns() int {
	for _, args := range netnsSetup {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "ip %s: %v: %s\n", strings.Join(args, " "), err, out)
			return 1
		}
	}
	// What v1 sends reaches v0 with a source address of this host's own,
	// which Linux drops as martian unless v0 accepts local sources.
	for _, name := range []string{"accept_local", "rp_filter"} {
		v := "1"
		if name == "rp_filter" {
			v = "0"
		}
		for _, dev := range []string{"all", "v0"} {
			if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+dev+"/"+name, []byte(v), 0); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, childEnv+"=") {
			env = append(env, kv)
		}
	}
	err = syscall.Exec(self, os.Args, append(env, netnsEnv+"=1"))
	fmt.Fprintf(os.Stderr, "exec %s: %v\n", self, err)
	return 1
}

// inNetns reports whether t runs inside its network namespace. When it
// does not, inNetns runs t again in a child process inside a new network
// namespace (see netnsSetup), fails t if that child fails, and returns
// false; it skips t, saying why, where no namespace can be made.
func inNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) != "" {
		return true
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("needs ip(8) from iproute2 to set up a network namespace: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*testTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=netns",
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
	err := cmd.Wait()
	if err != nil {
		t.Fatalf("%s in its network namespace: %v\n%s", t.Name(), err, out.String())
	}
	if !strings.Contains(out.String(), "--- PASS: "+t.Name()) {
		t.Fatalf("%s did not pass in its network namespace:\n%s", t.Name(), out.String())
	}
	t.Logf("in its own network namespace:\n%s", out.String())
	return false
}
