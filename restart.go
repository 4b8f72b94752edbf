package netport

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
)

// The variables Restart passes besides systemd's LISTEN_FDS and
// LISTEN_FDNAMES. systemd's LISTEN_PID names the process the sockets are
// for, which a parent can only know after the child has started, too late
// to put it in the child's environment; so Restart leaves LISTEN_PID out
// and names itself instead, and the new process checks that name against
// its parent's id. A grandchild's parent is the new process, never the
// one that called Restart, so the sockets are never a grandchild's, even
// when it inherits the variables.
const (
	// RestartParentEnv names the variable holding the process id of the
	// process that called Restart; the sockets are for the process whose
	// parent that is.
	RestartParentEnv = "NETPORT_LISTEN_PPID"

	// RestartReadyEnv names the variable holding the descriptor on which
	// Ready tells the old process that the new one serves.
	RestartReadyEnv = "NETPORT_READY_FD"
)

// A NamedSocket is a socket Restart hands to the new process, and the name
// it gets there in LISTEN_FDNAMES (and SocketInfo.Name): a *Port or a
// *DatagramPort, or anything else with a File method returning a
// duplicate of a socket, such as a *net.TCPListener.
type NamedSocket struct {
	Name   string // no colon; "" for none
	Socket interface{ File() (*os.File, error) }
}

// restarted is what this process learnt at start-up from the variables a
// Restart passed it; the fields are written once by init, before any
// goroutine of the package runs, except those guarded by mu.
var restarted struct {
	forUs   bool // a Restart started this process: the sockets are ours
	readyFD int  // the readiness descriptor; -1 when none

	mu      sync.Mutex
	readied bool  // guarded by mu: Ready has been called
	err     error // guarded by mu: the first Ready's answer
}

// parseRestartEnv reads the variables Restart passes (ppid and readyFD as
// found, "" when unset) in the process whose parent is parent. forUs
// reports whether they are meant for this process: ppid parses and names
// parent. fd is the readiness descriptor, -1 when readyFD does not name
// one above standard error.
func parseRestartEnv(ppid, readyFD string, parent int) (forUs bool, fd int) {
	if p, err := strconv.Atoi(ppid); err != nil || p != parent || p <= 1 {
		return false, -1
	}
	if fd, err := strconv.Atoi(readyFD); err == nil && fd > 2 {
		return true, fd
	}
	return true, -1
}

// listenPID returns the value that stands for LISTEN_PID: LISTEN_PID
// itself, or this process's id when a Restart started it (Restart passes
// no LISTEN_PID).
func listenPID() string {
	pid, ok := os.LookupEnv("LISTEN_PID")
	if !ok && restarted.forUs {
		return strconv.Itoa(os.Getpid())
	}
	return pid
}

// Ready tells the process that started this one with Restart that this one
// now serves the sockets it passed (found with Inherited and adopted), so
// that Restart returns there and the old process can shut its ports down.
// Call it once everything is listening. When this process was not started
// by Restart (systemd started it, or a shell), Ready does nothing and
// returns nil. Only the first call acts; later ones return its answer.
//
// An error says that the old process could not be told: it wraps the
// write's error (the old process may have given up already, when its
// Restart's ctx ended, and killed this one).
func Ready() error {
	restarted.mu.Lock()
	defer restarted.mu.Unlock()
	if !restarted.forUs || restarted.readied {
		return restarted.err
	}
	restarted.readied = true
	restarted.err = ready(restarted.readyFD)
	return restarted.err
}

// Restart starts cmd, a new process (typically a new version of this
// program: os.Executable with os.Args), handing it sockets so that it
// serves them alongside this one; once it has called Ready, Restart
// returns, and the caller then shuts its own ports down (Port.Shutdown,
// DatagramPort.Close). No client is refused meanwhile: both processes hold
// the same sockets, and clients queued on a listening socket are accepted
// by whichever process accepts first.
//
// The new process gets the sockets as systemd passes them, so that the
// Inherited it calls under systemd finds them: descriptors from 3 up, in
// the order of sockets, LISTEN_FDS their count, LISTEN_FDNAMES their names
// (left out when every name is ""). Instead of LISTEN_PID, which a parent
// cannot know before the child exists, it gets RestartParentEnv, naming
// this process; Inherited takes the sockets when that is its parent's id,
// so a process the new one starts never takes them as its own. Descriptor
// 3+len(sockets) is the pipe Ready writes to, named by RestartReadyEnv.
// netport reads and unsets both variables, and makes the pipe
// close-on-exec, when the new process starts (from an init function,
// before main). cmd.Env, or this process's environment when it is nil, is
// passed on without the LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES,
// RestartParentEnv and RestartReadyEnv it held. cmd must not
// have been started and must have no ExtraFiles: the descriptors are
// Restart's to number.
//
// When the new process exits, or closes the pipe, before it is ready,
// Restart returns an error at once (with its exit status); when ctx ends
// first, it kills the new process, waits for it, and returns an error
// wrapping ctx.Err(). In both cases nothing changed here: the ports keep
// serving. On success it returns the new process, which the caller may
// leave running when it exits, or wait for with cmd.Wait. From then on a
// *Port or *DatagramPort passed in no longer removes its unix socket file
// when it closes: the file now belongs to the new process.
//
// An error is also returned, before anything starts, when a socket's File
// fails (a closed port: an error wrapping net.ErrClosed), when a name holds
// a colon, and on systems without Unix descriptors (ErrNotSupported).
func (c *Config) Restart(ctx context.Context, cmd *exec.Cmd, sockets ...NamedSocket) (*os.Process, error) {
	return c.restart(ctx, cmd, sockets)
}

// Restart calls Config.Restart with a zero Config.
func Restart(ctx context.Context, cmd *exec.Cmd, sockets ...NamedSocket) (*os.Process, error) {
	return (*Config)(nil).Restart(ctx, cmd, sockets...)
}

// keepSocketFile makes the port leave its unix socket file in place when
// it closes: another process serves the socket now.
func (p *Port) keepSocketFile() { p.file.keep() }

// keepSocketFile is Port.keepSocketFile for a datagram port.
func (d *DatagramPort) keepSocketFile() { d.file.keep() }

// File returns a duplicate of the port's socket, close-on-exec, to hand to
// another process (Restart, or exec.Cmd.ExtraFiles); the caller closes it.
// As with Port.File, the port's own socket stays non-blocking. It returns
// an error wrapping net.ErrClosed once the port is closed, and
// ErrNotSupported for a PacketConn with no descriptor (or on a system
// without Unix descriptors).
func (d *DatagramPort) File() (*os.File, error) {
	if d.closed.Load() {
		return nil, &net.OpError{Op: "file", Net: d.addr.Network(), Addr: d.addr, Err: net.ErrClosed}
	}
	sc, ok := d.pc.(syscall.Conn)
	if !ok {
		return nil, &net.OpError{Op: "file", Net: d.addr.Network(), Addr: d.addr, Err: ErrNotSupported}
	}
	f, err := dupFile(sc, d.addr.String())
	if err != nil {
		return nil, &net.OpError{Op: "file", Net: d.addr.Network(), Addr: d.addr, Err: err}
	}
	return f, nil
}
