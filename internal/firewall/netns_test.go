//go:build linux

package firewall

import (
	"errors"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/firewall/netnstest"
)

// Every nftables call of these tests goes to a namespace they created
// (internal/firewall/netnstest).

// newNetNS creates a namespace and skips the test when nftables cannot be
// used in it.
func newNetNS(t testing.TB) *netnstest.NS {
	t.Helper()
	n := netnstest.New(t)
	if err := availableIn(n.Fd()); err != nil {
		if errors.Is(err, ErrUnavailable) {
			t.Skipf("skipping: %v", err)
		}
		t.Fatalf("availableIn(%s): %v", n.Name, err)
	}
	return n
}

// openFW opens a Firewall in n, closed at cleanup.
func openFW(t testing.TB, n *netnstest.NS, opt Options) *Firewall {
	t.Helper()
	opt.NetNS = n.Fd()
	f, err := Open(opt)
	if err != nil {
		t.Fatalf("Open in %s: %v", n.Name, err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}
