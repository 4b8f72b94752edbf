//go:build unix

package netport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// init takes the variables a Restart passed, if they are this process's,
// before main can start a process that would inherit them: the readiness
// pipe becomes close-on-exec and both variables are unset. Checking the
// parent now, rather than when Inherited is called, means that the parent
// is still there (it waits for Ready), not replaced by init.
func init() {
	ppid, ok := os.LookupEnv(RestartParentEnv)
	if !ok {
		return
	}
	forUs, fd := parseRestartEnv(ppid, os.Getenv(RestartReadyEnv), os.Getppid())
	if !forUs {
		return // meant for another process: left alone
	}
	if fd >= 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			fd = -1 // not open: Ready reports it
		}
	}
	restarted.forUs, restarted.readyFD = true, fd
	os.Unsetenv(RestartParentEnv)
	os.Unsetenv(RestartReadyEnv)
}

// ready writes one byte to the readiness pipe and closes it.
func ready(fd int) error {
	if fd < 0 {
		return fmt.Errorf("netport: Ready: %s does not name an open descriptor", RestartReadyEnv)
	}
	f := os.NewFile(uintptr(fd), "netport-ready")
	_, err := f.Write([]byte{'R'})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("netport: Ready: %w", err)
	}
	return nil
}

// restartVars are the variables Restart sets, and removes from what it
// passes on.
var restartVars = []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", RestartParentEnv, RestartReadyEnv}

func (c *Config) restart(ctx context.Context, cmd *exec.Cmd, sockets []NamedSocket) (*os.Process, error) {
	switch {
	case cmd == nil || cmd.Path == "":
		return nil, errors.New("netport: Restart: no command")
	case cmd.Process != nil:
		return nil, errors.New("netport: Restart: the command was already started")
	case len(cmd.ExtraFiles) > 0:
		return nil, errors.New("netport: Restart: the command has ExtraFiles; the inherited descriptors are Restart's to number")
	case ctx.Err() != nil:
		return nil, fmt.Errorf("netport: Restart: %w", ctx.Err())
	}
	names := make([]string, len(sockets))
	named := false
	for i, s := range sockets {
		if strings.Contains(s.Name, ":") {
			return nil, fmt.Errorf("netport: Restart: socket name %q holds a colon, which LISTEN_FDNAMES cannot carry", s.Name)
		}
		names[i], named = s.Name, named || s.Name != ""
	}

	files := make([]*os.File, 0, len(sockets)+1)
	defer func() {
		// The new process has its own copies once it has started.
		for _, f := range files {
			f.Close()
		}
	}()
	for i, s := range sockets {
		if s.Socket == nil {
			return nil, fmt.Errorf("netport: Restart: socket %d (%q) is nil", i, s.Name)
		}
		f, err := socketFileOf(s)
		if err != nil {
			return nil, fmt.Errorf("netport: Restart: socket %d (%q): %w", i, s.Name, err)
		}
		files = append(files, f)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("netport: Restart: %w", err)
	}
	defer r.Close()
	files = append(files, w)

	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(restartVars, k)
	})
	env = append(env, "LISTEN_FDS="+strconv.Itoa(len(sockets)),
		RestartParentEnv+"="+strconv.Itoa(os.Getpid()),
		RestartReadyEnv+"="+strconv.Itoa(3+len(sockets)))
	if named {
		env = append(env, "LISTEN_FDNAMES="+strings.Join(names, ":"))
	}
	cmd.Env = env
	cmd.ExtraFiles = files
	err = cmd.Start()
	cmd.ExtraFiles = nil
	if err != nil {
		return nil, fmt.Errorf("netport: Restart: %w", err)
	}
	// Close this process's end of the pipe now, so that the read below
	// ends when the new process has exited.
	w.Close()
	files = files[:len(files)-1]

	answer := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := io.ReadFull(r, b[:])
		answer <- err
	}()
	select {
	case err := <-answer:
		if err == nil {
			for _, s := range sockets {
				if k, ok := s.Socket.(interface{ keepSocketFile() }); ok {
					k.keepSocketFile()
				}
			}
			return cmd.Process, nil
		}
		// EOF: the new process exited, or closed the pipe, without Ready.
		cmd.Process.Kill()
		werr := cmd.Wait()
		if werr == nil {
			werr = errors.New("exit status 0")
		}
		return nil, fmt.Errorf("netport: Restart: new process %d ended before Ready: %w", cmd.Process.Pid, werr)
	case <-ctx.Done():
		cmd.Process.Kill()
		cmd.Wait()
		r.Close() // ends the read, should a process of the new one's still hold the pipe
		<-answer
		return nil, fmt.Errorf("netport: Restart: new process %d not ready: %w", cmd.Process.Pid, ctx.Err())
	}
}

// socketFileOf returns a duplicate of s's socket for the new process. A
// socket with a descriptor of its own (a *net.TCPListener, say) is
// duplicated directly: net's File marks its file so that exec, through
// Fd, clears O_NONBLOCK on the open file description that the old
// process's listener shares, which would leave that listener blocking.
func socketFileOf(s NamedSocket) (*os.File, error) {
	if sc, ok := s.Socket.(syscall.Conn); ok {
		return dupFile(sc, s.Name)
	}
	return s.Socket.File()
}
