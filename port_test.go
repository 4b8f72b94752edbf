package netport

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func streamNetworks(t *testing.T) []struct{ network, address string } {
	nets := []struct{ network, address string }{
		{"tcp", "127.0.0.1:0"},
		{"tcp4", "127.0.0.1:0"},
		{"unix", filepath.Join(t.TempDir(), "sock")},
	}
	if hasIPv6() {
		nets = append(nets, struct{ network, address string }{"tcp6", "[::1]:0"})
	}
	return nets
}

func TestEchoOverEveryNetwork(t *testing.T) {
	for _, tt := range streamNetworks(t) {
		t.Run(tt.network, func(t *testing.T) {
			f := newEchoFactory()
			p := listen(t, nil, tt.network, tt.address, f)
			c := dial(t, p)
			roundTrip(t, c, []byte("hello, netport"))
			proto := recv(t, f.built)
			c.Close()
			reason := recv(t, proto.lost)
			if !errors.Is(reason, ErrConnectionDone) {
				t.Fatalf("ConnectionLost(%v); want ErrConnectionDone", reason)
			}
			proto.mu.Lock()
			ev := proto.events
			proto.mu.Unlock()
			if ev[0] != "made" || ev[len(ev)-1] != "lost" {
				t.Fatalf("events %v; want made first and lost last", ev)
			}
		})
	}
}
