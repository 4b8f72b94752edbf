//go:build !linux

package netport

import "time"

// canPark says whether a readiness-read connection may park (park.go):
// only Linux has the idle watcher.
const canPark = false

// idleWatcher exists only on Linux.
type idleWatcher struct{}

func (c *Conn) parkLocked(time.Time) int { return parkFailed }
func (c *Conn) leaveWatcher()            {}
func (c *Conn) unwatch()                 {}
func (c *Conn) unwatchLocked()           {}
