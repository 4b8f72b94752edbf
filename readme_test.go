//go:build linux

package netport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func init() {
	children["readme-adoption"] = childReadmeAdoption
}

// readmeAdoption is the README's socket-activation pattern, word for word
// but for the error handling.
func readmeAdoption(factory Factory) ([]*Port, error) {
	socks, err := Inherited()
	if err != nil {
		return nil, err
	}
	var ports []*Port
	for _, s := range socks {
		if s.Type != syscall.SOCK_STREAM || !s.Listening {
			continue // AdoptStreamConnection, AdoptDatagramPort: the same pattern
		}
		p, err := AdoptStreamPort(s.FD, s.Family, factory)
		// The port serves a duplicate: close the inherited descriptor, error
		// or not, or the socket stays open after p.Close and clients hang.
		syscall.Close(s.FD)
		if err != nil {
			return nil, err
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// childReadmeAdoption adopts its inherited sockets as the README says,
// serves a client on each, closes the ports and checks that the sockets
// are gone: a client is refused, not left hanging.
func childReadmeAdoption() int {
	childSetup()
	ports, err := readmeAdoption(newEchoFactory())
	if err != nil || len(ports) != 1 {
		fmt.Fprintf(os.Stderr, "adoption: got %d ports, %v; want 1, nil\n", len(ports), err)
		return 1
	}
	for _, p := range ports {
		addr := p.Addr().String()
		c, err := net.DialTimeout("tcp", addr, testTimeout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial while served:", err)
			return 1
		}
		c.SetDeadline(time.Now().Add(testTimeout))
		buf := make([]byte, 2)
		if _, err := c.Write([]byte("hi")); err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			return 1
		}
		if _, err := readFull(c, buf); err != nil || string(buf) != "hi" {
			fmt.Fprintf(os.Stderr, "echo: got %q, %v; want \"hi\"\n", buf, err)
			return 1
		}
		c.Close()
		if err := p.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "Close:", err)
			return 1
		}
		if c, err := net.DialTimeout("tcp", addr, testTimeout); !errors.Is(err, syscall.ECONNREFUSED) {
			if c != nil {
				c.Close()
			}
			fmt.Fprintf(os.Stderr, "dial after Close: got %v; want ECONNREFUSED (the socket closed)\n", err)
			return 1
		}
	}
	return 0
}

// TestReadmeAdoption runs the README's adoption snippet under socket
// activation, in a child process.
func TestReadmeAdoption(t *testing.T) {
	f, _ := netFile(t, "tcp4", "127.0.0.1:0")
	ctx, cancel := contextWithTimeout(testTimeout)
	defer cancel()
	cmd := childCommand(ctx, "readme-adoption", setListenPIDEnv+"=1", "LISTEN_FDS=1")
	cmd.ExtraFiles = []*os.File{f}
	if out, err := func() ([]byte, error) {
		var out lockedBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		// The child's descriptor must be the socket's last one.
		f.Close()
		err := cmd.Wait()
		return []byte(out.String()), err
	}(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
