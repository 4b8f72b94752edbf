package netport

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestPortsLogStartAndStop: one Info line when a port starts listening and
// one when it stops, naming network, address and kind, for every kind.
func TestPortsLogStartAndStop(t *testing.T) {
	server, _ := testTLS(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		kind string
		open func(cfg *Config) (addr string, closeFn func() error, err error)
	}{
		{"TCP", func(cfg *Config) (string, func() error, error) {
			p, err := cfg.Listen("tcp", "127.0.0.1:0", newEchoFactory())
			if err != nil {
				return "", nil, err
			}
			return p.Addr().String(), p.Close, nil
		}},
		{"TLS", func(cfg *Config) (string, func() error, error) {
			cfg.TLS = server
			p, err := cfg.Listen("tcp", "127.0.0.1:0", newEchoFactory())
			if err != nil {
				return "", nil, err
			}
			return p.Addr().String(), p.Close, nil
		}},
		{"UNIX", func(cfg *Config) (string, func() error, error) {
			p, err := cfg.Listen("unix", filepath.Join(dir, "s"), newEchoFactory())
			if err != nil {
				return "", nil, err
			}
			return p.Addr().String(), p.Close, nil
		}},
		{"UDP", func(cfg *Config) (string, func() error, error) {
			d, err := cfg.ListenPacket("udp", "127.0.0.1:0", &reactorDgEcho{}, 0)
			if err != nil {
				return "", nil, err
			}
			return d.Addr().String(), d.Close, nil
		}},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			logger, logs := testLogger()
			addr, closeFn, err := tt.open(&Config{Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			want := "addr=" + addr + " kind=" + tt.kind
			if n := logs.count("level=INFO msg=\"netport: listening\""); n != 1 || logs.count(want) != 1 {
				t.Errorf("after opening: log %q; want one Info \"listening\" line with %s", logs.String(), want)
			}
			if err := closeFn(); err != nil {
				t.Fatal(err)
			}
			if n := logs.count("level=INFO msg=\"netport: stopped listening\""); n != 1 || logs.count(want) != 2 {
				t.Errorf("after closing: log %q; want one Info \"stopped listening\" line with %s", logs.String(), want)
			}
		})
	}
}

// TestMemoryListenerClosedUnderPortIsAStop: closing the listener a port
// serves stops the port, logged at Info as a normal stop, not as an
// accept failure.
func TestMemoryListenerClosedUnderPortIsAStop(t *testing.T) {
	logger, logs := testLogger()
	ln := NewMemoryListener()
	p, err := (&Config{Logger: logger}).Serve(ln, newEchoFactory())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, p) })
	ln.Close()
	waitClosed(t, p.Done(), "Port.Done after the listener closed")
	if out := logs.String(); strings.Contains(out, "level=ERROR") || strings.Contains(out, "accept failed") ||
		logs.count("level=INFO msg=\"netport: stopped listening\"") != 1 {
		t.Fatalf("log: %q; want one Info \"stopped listening\" line and no error", out)
	}
}
