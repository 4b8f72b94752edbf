//go:build linux

package main

import (
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// activator returns the path of systemd-socket-activate, skipping the test
// where it is missing (the CI script installs it).
func activator(tb testing.TB) string {
	tb.Helper()
	path, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		tb.Skip("systemd-socket-activate is not installed (Debian package systemd)")
	}
	return path
}

// freePort returns a loopback TCP address that was free a moment ago:
// systemd-socket-activate cannot bind port 0 and tell which port it got.
func freePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// activate starts the server under systemd-socket-activate with the
// activator options in extra, and waits until the activator listens.
func activate(tb testing.TB, extra ...string) *proc {
	tb.Helper()
	argv := append([]string{activator(tb), "-E", runEnv + "=1"}, extra...)
	s := start(tb, nil, argv...)
	// Connect only once the activator has its sockets.
	for _, a := range extra {
		if a == "SELF" {
			break
		}
		if strings.Contains(a, "/") || strings.Contains(a, ":") {
			if !strings.HasPrefix(a, "--fdname") {
				s.stderr.waitFor(tb, "Listening on "+a)
			}
		}
	}
	return s
}

func TestSocketActivationListeningStream(t *testing.T) {
	for _, tt := range []struct{ network, address string }{
		{"unix", filepath.Join(t.TempDir(), "echo.sock")},
		{"tcp", freePort(t)},
	} {
		t.Run(tt.network, func(t *testing.T) {
			s := activate(t, "-l", tt.address, "SELF")
			// The activator starts the server on the first connection.
			echoes(t, tt.network, tt.address)
			network, address := listening(t, s.line(t))
			if address != tt.address {
				t.Fatalf("listening %s %s; want the activator's %s", network, address, tt.address)
			}
			echoes(t, tt.network, tt.address)
		})
	}
}

func TestSocketActivationAccept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "echo.sock")
	activate(t, "--accept", "-l", path, "SELF")
	// One server process per connection, each serving its connection.
	for i := 0; i < 3; i++ {
		echoes(t, "unix", path)
	}
}

func TestSocketActivationInetd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "echo.sock")
	activate(t, "--inetd", "--accept", "-l", path, "SELF", "-inetd")
	for i := 0; i < 2; i++ {
		echoes(t, "unix", path)
	}
}

func TestSocketActivationDatagram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "echo.dgram")
	s := activate(t, "--datagram", "-l", path, "SELF")
	// A datagram socket does not start the server on its own: send until
	// it answers.
	deadline := time.Now().Add(testTimeout)
	client, err := net.ListenPacket("unixgram", filepath.Join(t.TempDir(), "client"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	to := &net.UnixAddr{Name: path, Net: "unixgram"}
	buf := make([]byte, 64)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("no echo within %v", testTimeout)
		}
		if _, err := client.WriteTo([]byte("ping"), to); err != nil {
			t.Fatalf("send: %v", err)
		}
		client.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := client.ReadFrom(buf)
		if err == nil {
			if string(buf[:n]) != "ping" {
				t.Fatalf("echo %q; want ping", buf[:n])
			}
			break
		}
	}
	network, address := listening(t, s.line(t))
	if network != "unixgram" || address != path {
		t.Fatalf("listening %s %s; want unixgram %s", network, address, path)
	}
	echoesDatagram(t, "unixgram", path)
}

func TestSocketActivationNamedDescriptors(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.sock"), filepath.Join(dir, "b.sock")
	s := activate(t, "-l", a, "-l", b, "--fdname=first:second", "SELF")
	echoes(t, "unix", a)
	got := map[string]bool{}
	for i := 0; i < 2; i++ {
		_, address := listening(t, s.line(t))
		got[address] = true
	}
	if !got[a] || !got[b] {
		t.Fatalf("listening on %v; want both %s and %s", got, a, b)
	}
	echoes(t, "unix", b)
}
