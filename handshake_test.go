package netport

import (
	"context"
	"io"
	"testing"
	"time"
)

// TestHandshakeTimeout: a TLS client that never sends its ClientHello is
// disconnected after HandshakeTimeout (DefaultHandshakeTimeout when it is
// zero), also with no IdleTimeout, and frees its MaxConns slot. Fake time.
func TestHandshakeTimeout(t *testing.T) {
	server, _ := testTLS(t)
	for _, tt := range []struct {
		name string
		set  time.Duration
		want time.Duration
	}{
		{"default", 0, DefaultHandshakeTimeout},
		{"configured", time.Minute, time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inRealTime(t, func(t *testing.T) {
				ln := NewMemoryListener()
				cfg := &Config{TLS: server, HandshakeTimeout: tt.set, MaxConns: 1}
				p, err := cfg.Serve(ln, newHookFactory(nil, echoData))
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				defer func() {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					if err := p.Shutdown(ctx); err != nil {
						t.Errorf("Shutdown: %v", err)
					}
				}()
				c, err := ln.Dial()
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				start := time.Now()
				// The silent client is dropped: its read sees EOF.
				if _, err := io.ReadAll(c); err != nil {
					t.Fatalf("silent client's read: %v; want EOF", err)
				}
				if got := time.Since(start); got != tt.want {
					t.Fatalf("silent client dropped after %v; want %v", got, tt.want)
				}
				// Its MaxConns slot is free again: the next client is accepted.
				c2, err := ln.Dial()
				if err != nil {
					t.Fatal(err)
				}
				defer c2.Close()
				if _, err := io.ReadAll(c2); err != nil {
					t.Fatalf("second client's read: %v; want EOF", err)
				}
			})
		})
	}
}
