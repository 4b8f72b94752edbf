package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"time"

	"github.com/netport/netport"
)

// restartLimit bounds how long a restart waits for the new process to be
// ready.
const restartLimit = 10 * time.Second

// serve calls netport.Ready, then waits as wait does, and on a signal from hup (SIGHUP) restarts: it starts its own
// binary again with the same arguments, handing it every port, and once
// the new process is ready it returns, so that the caller shuts its own
// ports down. A restart that fails is logged and changes nothing. With
// -inetd or -fd (restartable false) SIGHUP is refused: those descriptors
// are numbered for this process only.
func (s *server) serve(ctx context.Context, hup <-chan os.Signal, args []string, restartable bool) {
	// Everything listens: tell the process that restarted this one, if
	// one did, that it may stop.
	if err := netport.Ready(); err != nil {
		s.cfg.Logger.Error("telling the old process that this one serves", "err", err)
	}
	for {
		wctx, cancel := context.WithCancel(ctx)
		hupped := make(chan struct{})
		go func() {
			select {
			case <-hup:
				close(hupped)
				cancel()
			case <-wctx.Done():
			}
		}()
		s.wait(wctx)
		cancel()
		select {
		case <-hupped:
		default:
			return // a signal to stop, or nothing left to serve
		}
		if !restartable {
			s.cfg.Logger.Error("SIGHUP: cannot restart with -inetd or -fd; still serving")
			continue
		}
		if err := s.restart(ctx, args); err != nil {
			s.cfg.Logger.Error("SIGHUP: restart failed; still serving", "err", err)
			continue
		}
		return
	}
}

// restart hands every port to a new process running this binary with
// args, and returns once it is ready.
func (s *server) restart(ctx context.Context, args []string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var sockets []netport.NamedSocket
	for _, p := range s.ports {
		sockets = append(sockets, netport.NamedSocket{Socket: p})
	}
	for _, d := range s.dgrams {
		sockets = append(sockets, netport.NamedSocket{Socket: d})
	}
	if len(sockets) == 0 {
		return errors.New("no port to hand over")
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = s.out, s.errOut
	ctx, cancel := context.WithTimeout(ctx, restartLimit)
	defer cancel()
	proc, err := s.cfg.Restart(ctx, cmd, sockets...)
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("restarted: the new process serves", "pid", proc.Pid)
	// The new process outlives this one, which exits without waiting.
	proc.Release()
	return nil
}
