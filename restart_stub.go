//go:build !unix

package netport

import (
	"context"
	"fmt"
	"os"
	"os/exec"
)

// Without Unix descriptors there is nothing to pass: Restart answers
// ErrNotSupported, and no process is ever started by one, so Ready does
// nothing.

func ready(int) error { return nil }

func (c *Config) restart(context.Context, *exec.Cmd, []NamedSocket) (*os.Process, error) {
	return nil, fmt.Errorf("netport: Restart: %w", ErrNotSupported)
}
