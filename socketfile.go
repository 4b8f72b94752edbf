package netport

import (
	"os"
	"runtime"
	"sync/atomic"
)

// socketFile is the file of a unix socket that netport bound itself. It is
// removed when its port stops, unless something else has replaced it
// since: a port must never delete a file it did not make.
type socketFile struct {
	path string
	info os.FileInfo
	kept atomic.Bool // another process serves the socket now (Restart): never remove
}

// abstractSockets says whether a unix socket path starting with '@' names
// a socket in Linux's abstract namespace (unix(7)), which has no file.
// Elsewhere such a path is an ordinary file name.
const abstractSockets = runtime.GOOS == "linux" || runtime.GOOS == "android"

// boundSocketFile records the identity of the socket file just bound at
// path and gives it mode, when mode is not zero. It returns nil for an
// abstract or unnamed socket, which has no file. On error the file is
// removed.
func boundSocketFile(path string, mode os.FileMode) (*socketFile, error) {
	if path == "" || abstractSockets && path[0] == '@' {
		return nil, nil
	}
	f := &socketFile{path: path}
	var err error
	if f.info, err = os.Lstat(path); err != nil {
		os.Remove(path)
		return nil, err
	}
	if mode != 0 {
		if err := os.Chmod(path, mode); err != nil {
			f.remove()
			return nil, err
		}
	}
	return f, nil
}

// remove removes the socket file if it is still the one bound. An error is
// ignored, as net.UnixListener ignores its unlink's: the socket is closed
// either way.
func (f *socketFile) remove() {
	if f == nil || f.kept.Load() {
		return
	}
	if info, err := os.Lstat(f.path); err == nil && os.SameFile(info, f.info) {
		os.Remove(f.path)
	}
}

func (c *Config) unixMode() os.FileMode {
	if c == nil {
		return 0
	}
	return c.UnixMode
}

// keep makes remove leave the file in place from now on.
func (f *socketFile) keep() {
	if f != nil {
		f.kept.Store(true)
	}
}
