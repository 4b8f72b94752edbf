package netport

import (
	"errors"
	"net"
	"testing"
)

func TestStringTransportProducer(t *testing.T) {
	var tr StringTransport
	push := newCountingProducer()
	if err := tr.RegisterProducer(push, true); err != nil {
		t.Fatal(err)
	}
	if p, streaming := tr.Producer(); p != push || !streaming {
		t.Fatalf("Producer() = %v, %v; want the registered one, streaming", p, streaming)
	}
	if err := tr.RegisterProducer(newCountingProducer(), false); !errors.Is(err, ErrProducerRegistered) {
		t.Fatalf("second RegisterProducer: %v; want ErrProducerRegistered", err)
	}
	tr.SetBufferFull(true)
	expectEvent(t, push, "pause")
	tr.SetBufferFull(true) // already full: no second pause
	tr.SetBufferFull(false)
	expectEvent(t, push, "resume")
	tr.UnregisterProducer()
	if p, _ := tr.Producer(); p != nil {
		t.Fatalf("Producer() after UnregisterProducer = %v; want nil", p)
	}

	pull := newCountingProducer()
	tr.RegisterProducer(pull, false)
	expectEvent(t, pull, "resume") // at once, as Twisted
	tr.SetBufferFull(false)
	expectEvent(t, pull, "resume") // the buffer drained: more
	tr.UnregisterProducer()

	full := newCountingProducer()
	tr.SetBufferFull(true)
	tr.RegisterProducer(full, true)
	expectEvent(t, full, "pause") // registered while full
	tr.AbortConnection()
	expectEvent(t, full, "stop")
	late := newCountingProducer()
	if err := tr.RegisterProducer(late, true); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("RegisterProducer after AbortConnection: %v; want net.ErrClosed", err)
	}
	expectEvent(t, late, "stop")
}
