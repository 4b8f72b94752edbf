//go:build linux

package netport

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseListenEnv checks that parsing the socket-activation variables
// never panics and that its results agree with each other and with the
// input.
func FuzzParseListenEnv(f *testing.F) {
	f.Add("123", "2", "a:b", 123)
	f.Add("123", "0", "", 123)
	f.Add("123", "0", "a", 123)
	f.Add("1", "1", "x", 2)
	f.Add("123", "-1", "", 123)
	f.Add("123", "+2", "a:b", 123)
	f.Add("123", "2", "a", 123)
	f.Add("123", "3", "::", 123)
	f.Add("123", "2147483647", "", 123)
	f.Add("123", "99999999999", "", 123)
	f.Add(" 123", "1", "", 123)
	f.Add("", "", "", 0)
	f.Fuzz(func(t *testing.T, pid, fds, names string, self int) {
		n, fdNames, ok, err := parseListenEnv(pid, fds, names, self)
		p, perr := strconv.Atoi(pid)
		forSelf := perr == nil && p == self
		if ok != forSelf {
			t.Fatalf("parseListenEnv(%q, %q, %q, %d): ok %v; want %v", pid, fds, names, self, ok, forSelf)
		}
		if !ok || err != nil {
			if n != 0 || fdNames != nil || (!ok && err != nil) {
				t.Fatalf("parseListenEnv(%q, %q, %q, %d) = %d, %q, %v, %v; want 0, nil and no error unless ok",
					pid, fds, names, self, n, fdNames, ok, err)
			}
			return
		}
		if count, err := strconv.ParseInt(fds, 10, 32); err != nil || int(count) != n {
			t.Fatalf("parseListenEnv(%q, %q, ...) = %d with no error; want LISTEN_FDS itself", pid, fds, n)
		}
		if n < 0 || n > math.MaxInt32-listenFDsStart {
			t.Fatalf("parseListenEnv(..., %q, ...) = %d with no error; want a usable descriptor count", fds, n)
		}
		switch {
		case n == 0 || names == "":
			if fdNames != nil {
				t.Fatalf("parseListenEnv(..., %q, %q, ...): names %q; want nil", fds, names, fdNames)
			}
		case len(fdNames) != n || strings.Join(fdNames, ":") != names:
			t.Fatalf("parseListenEnv(..., %q, %q, ...): %d names %q; want %d names making up LISTEN_FDNAMES",
				fds, names, len(fdNames), fdNames, n)
		}
	})
}
