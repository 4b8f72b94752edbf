// Package netport serves network connections the way Twisted's listening
// Port does, in plain Go: one call replaces net.Listen and a hand-written
// accept loop, and the socket may be fresh or adopted from a descriptor
// that systemd, inetd, a parent process or a unix-socket handoff passed.
//
// # The model
//
// A [Port] owns one listening socket and runs one accept goroutine. For
// every accepted connection it starts one goroutine, which calls
// [Factory].BuildProtocol with the peer's address and then serves the
// connection through the [Protocol] it got: ConnectionMade, DataReceived
// any number of times, ConnectionLost, in that order and never overlapping
// for one connection, so a protocol needs no lock for its own state. On
// Linux a port's connection that has been idle for 50 to 100 ms gives its
// goroutine up, and a new one carries on when data arrives, so an idle
// connection costs no goroutine stack; successive callbacks may then run
// on different goroutines, but still one at a time and in order. A
// Factory is shared by all of a port's connections and must be safe for
// concurrent use. The [Transport] a protocol is given ([*Conn]) is safe to
// use from any goroutine. [Handler] serves a connection in the blocking
// style of net/http instead.
//
// Fresh listening ([Config.Listen]), adoption ([Config.AdoptStreamPort]),
// socket activation ([Inherited]), TLS ([Config].TLS) and in-memory
// listeners ([MemoryListener]) all feed the same loop, [Config.Serve].
//
// A panic in a callback is recovered and logged, ends that connection
// only, and reaches ConnectionLost as an error wrapping ErrConnectionLost.
// Temporary accept errors are retried with a back-off; running out of
// descriptors closes queued clients instead of leaving them hanging.
//
// # Descriptors
//
// A Port owns its socket: Close closes it, and removes a unix socket file
// that the port itself created. The Adopt calls duplicate the descriptor
// they are given (close-on-exec, non-blocking; the non-blocking flag is
// shared with the original, as every duplicate shares it): the caller keeps
// the original and may close it as soon as the call returns. Closing what
// an Adopt call returned closes only the duplicate. A port made from an
// adopted socket never calls shutdown(2), never changes or removes a unix
// socket file, so that another holder of the same socket keeps serving.
// Every descriptor netport opens is close-on-exec: a child process gets one
// only when it is handed over, with [Port.File] and exec.Cmd.ExtraFiles,
// or with [Restart].
//
// # Servers with their own loop
//
// [AdoptListener], [AdoptConn], [AdoptPacketConn] and [NetListen] give the
// same checked adoption and socket options as plain net values, for
// http.Server.Serve, a gRPC server or any Serve(net.Listener). [Restart]
// hands a program's sockets to its next version on systemd's convention,
// and [Ready] tells the old process that the new one serves.
//
// # Example
//
//	type echo struct{ t netport.Transport }
//
//	func (e *echo) ConnectionMade(t netport.Transport) { e.t = t }
//	func (e *echo) DataReceived(b []byte)              { e.t.Write(b) }
//	func (e *echo) ConnectionLost(error)               {}
//
//	p, err := netport.Listen("tcp", "127.0.0.1:7007",
//		netport.FactoryFunc(func(net.Addr) netport.Protocol { return &echo{} }))
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer p.Shutdown(context.Background())
package netport
