module github.com/netport/netport

go 1.25

require (
	github.com/pires/go-proxyproto v0.8.1
	go.uber.org/goleak v1.3.0
	golang.org/x/net v0.50.0
	golang.org/x/sys v0.41.0
)

require github.com/google/go-cmp v0.7.0
