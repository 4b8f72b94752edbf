//go:build !unix

package netport

// useRawRead keeps the plain buffered read where there is no readiness
// read.
func (c *Conn) useRawRead() {}

// rawRead is never called: rc stays nil.
func (c *Conn) rawRead() (int32, error) { return 0, nil }
