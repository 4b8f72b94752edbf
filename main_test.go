package netport

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// childEnv names the child routine a re-executed test binary runs instead
// of the tests.
const childEnv = "NETPORT_TEST_CHILD"

// children holds the routines a child process can run; test files register
// theirs from init. Each returns the process exit status.
var children = map[string]func() int{}

// TestMain runs a child routine when asked to, and otherwise the tests,
// failing a successful run that leaves goroutines or descriptors behind.
func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		run, ok := children[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown test child %q\n", name)
			os.Exit(3)
		}
		os.Exit(run())
	}
	// Ports log a line when they start and stop: keep the default
	// logger, which tests with a nil Config use, to warnings and errors.
	slog.SetLogLoggerLevel(slog.LevelWarn)
	// The runtime opens some descriptors only on first use (the network
	// poller's): open them now so that they are not counted as a leak.
	warmUpDescriptors()
	before, fdErr := openDescriptors()
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: Errors on successful test run: %v\n", err)
			code = 1
		}
	}
	if code == 0 && fdErr == nil {
		if leaked := leakedDescriptors(before); len(leaked) > 0 {
			fmt.Fprintf(os.Stderr, "descriptors left open by the tests: %d more than before (%v)\n",
				len(leaked), leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// childCommand returns a command that runs the test binary as the child
// routine name, killed when ctx ends. The child gets this process's
// environment without its socket-activation and child variables, with
// GORACE=atexit_sleep_ms=0 (a race-enabled binary otherwise waits a second
// before exiting 0; races are still reported), and then env.
func childCommand(ctx context.Context, name string, env ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "LISTEN_") || strings.HasPrefix(k, "NETPORT_TEST_") || k == "GORACE" {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, childEnv+"="+name,
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	cmd.Env = append(cmd.Env, env...)
	return cmd
}
