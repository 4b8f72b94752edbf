package netport

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// childEnv names the child routine a re-executed test binary runs instead
// of the tests.
const childEnv = "NETPORT_TEST_CHILD"

// children holds the routines a child process can run; test files register
// theirs from init. Each returns the process exit status.
var children = map[string]func() int{}

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		run, ok := children[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown test child %q\n", name)
			os.Exit(3)
		}
		os.Exit(run())
	}
	goleak.VerifyTestMain(m)
}
