// Command netport-echo is netport's example server: it echoes every byte
// it receives (and every datagram) back to the sender.
//
// With no flags and no inherited sockets it listens on tcp 127.0.0.1:7007.
// For every port it serves it prints one line to standard output,
// "listening NETWORK ADDRESS", so that a script can learn a port 0
// address; logs go to standard error. SIGINT or SIGTERM shuts every port
// down gracefully (at most 5 s) and exits 0. Bad flags, or a socket it
// cannot use, print a one-line error and exit with status 2; after a bad
// flag the usage follows. -h prints the usage to standard output and
// exits 0.
//
// SIGHUP restarts it without refusing a client: it starts its own binary
// again with the same arguments, handing the new process every port (as
// netport.Restart does, on systemd's socket-activation convention), and
// once the new process serves them it shuts its own ports down gracefully
// and exits 0. A new process that fails to start leaves it serving. A
// process that inherits sockets serves those and listens on nothing else,
// so that the new process does not bind its -listen addresses again.
// With -inetd or -fd, SIGHUP is refused and logged.
//
// Usage:
//
//	netport-echo [-listen NETWORK:ADDRESS]... [-inetd] [-fd N]...
//
// -listen is repeatable: tcp:127.0.0.1:0, tcp6:[::1]:7007, unix:/path/sock,
// udp:127.0.0.1:7007, unixgram:/path/sock, and udp-multicast:GROUP:PORT
// (udp-multicast:239.255.0.7:7007 or udp-multicast:[ff15::7]:7007), which
// joins the multicast group GROUP and echoes each datagram sent to it back
// to its sender.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/netport/netport"
)

// defaultListen is served when nothing else is asked for.
const defaultListen = "tcp:127.0.0.1:7007"

// shutdownLimit bounds the graceful shutdown on SIGINT and SIGTERM.
const shutdownLimit = 5 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// listenFlag collects repeated -listen values.
type listenFlag []endpoint

type endpoint struct{ network, address string }

func (l *listenFlag) String() string {
	s := make([]string, len(*l))
	for i, e := range *l {
		s[i] = e.network + ":" + e.address
	}
	return strings.Join(s, ",")
}

func (l *listenFlag) Set(v string) error {
	e, err := parseEndpoint(v)
	if err != nil {
		return err
	}
	*l = append(*l, e)
	return nil
}

// parseEndpoint splits NETWORK:ADDRESS at the first colon and checks both.
func parseEndpoint(v string) (endpoint, error) {
	network, address, ok := strings.Cut(v, ":")
	if !ok || network == "" || address == "" {
		return endpoint{}, fmt.Errorf("%q is not NETWORK:ADDRESS", v)
	}
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
		if _, _, err := net.SplitHostPort(address); err != nil {
			return endpoint{}, fmt.Errorf("%q: %w", v, err)
		}
	case "unix", "unixgram":
	case multicastNetwork:
		if _, err := parseGroup(address); err != nil {
			return endpoint{}, fmt.Errorf("%q: %w", v, err)
		}
	default:
		return endpoint{}, fmt.Errorf("%q: unknown network %q", v, network)
	}
	return endpoint{network, address}, nil
}

// server is what runs: the ports and connections being served.
type server struct {
	out     io.Writer
	errOut  io.Writer // standard error, handed on by a restart
	ports   []*netport.Port
	dgrams  []*netport.DatagramPort
	conns   []*netport.Conn
	cfg     *netport.Config
	factory netport.Factory
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("netport-echo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var listens listenFlag
	var fds fdFlag
	fs.Var(&listens, "listen", "listen on `NETWORK:ADDRESS` (repeatable)")
	inetd := fs.Bool("inetd", false, "serve the connected socket on standard input, then exit")
	fs.Var(&fds, "fd", "adopt descriptor `N`, whatever it is (repeatable)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(fs, stdout)
			return 0
		}
		fmt.Fprintf(stderr, "netport-echo: %v\n", err)
		usage(fs, stderr)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "netport-echo: unexpected argument %q\n", fs.Arg(0))
		usage(fs, stderr)
		return 2
	}

	logger := slog.New(slog.NewTextHandler(stderr, nil))
	s := &server{
		out:     stdout,
		errOut:  stderr,
		cfg:     &netport.Config{Logger: logger},
		factory: netport.FactoryFunc(func(net.Addr) netport.Protocol { return &echo{log: logger} }),
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Before anything listens: a SIGHUP's default action is to exit.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	if err := s.start(listens, fds, *inetd); err != nil {
		s.shutdown()
		fmt.Fprintf(stderr, "netport-echo: %v\n", err)
		return 2
	}
	s.serve(ctx, hup, args, !*inetd && len(fds) == 0)
	s.shutdown()
	return 0
}

// usage prints how to run the command and its flags to w.
func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintln(w, "Usage: netport-echo [-listen NETWORK:ADDRESS]... [-inetd] [-fd N]...")
	fmt.Fprintln(w, "Echoes every byte and datagram back; with no flags and no inherited sockets")
	fmt.Fprintln(w, "it listens on tcp 127.0.0.1:7007.")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// wait returns on a signal, or once everything served has ended.
func (s *server) wait(ctx context.Context) {
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for _, p := range s.ports {
			<-p.Done()
		}
		for _, d := range s.dgrams {
			<-d.Done()
		}
		for _, c := range s.conns {
			<-c.Done()
		}
	}()
	select {
	case <-ctx.Done():
	case <-ended:
	}
}

// shutdown ends every port gracefully within shutdownLimit.
func (s *server) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownLimit)
	defer cancel()
	for _, p := range s.ports {
		p.Shutdown(ctx)
	}
	for _, d := range s.dgrams {
		d.Close()
	}
	for _, c := range s.conns {
		c.LoseConnection()
		select {
		case <-c.Done():
		case <-ctx.Done():
			c.AbortConnection()
			<-c.Done()
		}
	}
}

func (s *server) listen(e endpoint) error {
	switch e.network {
	case multicastNetwork:
		return s.listenMulticast(e.address)
	case "udp", "udp4", "udp6", "unixgram":
		d, err := s.cfg.ListenPacket(e.network, e.address, &datagramEcho{}, 0)
		if err != nil {
			return err
		}
		s.servingPacket(d)
	default:
		p, err := s.cfg.Listen(e.network, e.address, s.factory)
		if err != nil {
			return err
		}
		s.serving(p)
	}
	return nil
}

func (s *server) serving(p *netport.Port) {
	s.ports = append(s.ports, p)
	fmt.Fprintf(s.out, "listening %s %s\n", p.Addr().Network(), p.Addr())
}

func (s *server) servingPacket(d *netport.DatagramPort) {
	s.dgrams = append(s.dgrams, d)
	fmt.Fprintf(s.out, "listening %s %s\n", d.Addr().Network(), d.Addr())
}

// echo writes back every byte it receives.
type echo struct {
	t   netport.Transport
	log *slog.Logger
}

func (e *echo) ConnectionMade(t netport.Transport) { e.t = t }
func (e *echo) DataReceived(b []byte)              { e.t.Write(b) }
func (e *echo) ConnectionLost(reason error) {
	if !errors.Is(reason, netport.ErrConnectionDone) {
		e.log.Info("connection lost", "remote", e.t.RemoteAddr().String(), "err", reason)
	}
}

// datagramEcho sends every datagram back to where it came from.
type datagramEcho struct{ port *netport.DatagramPort }

func (d *datagramEcho) StartProtocol(p *netport.DatagramPort) { d.port = p }
func (d *datagramEcho) DatagramReceived(b []byte, from net.Addr) {
	if from != nil {
		d.port.WriteTo(b, from)
	}
}
