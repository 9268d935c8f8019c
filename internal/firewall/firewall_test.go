//go:build linux

package firewall

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/firewall/netnstest"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const port = 8080

// testbed is a server namespace with Bulwark's firewall and a listener,
// and a client namespace with several source addresses, joined by veth.
type testbed struct {
	srv, cli *netnstest.NS
	fw       *Firewall
}

var (
	srv4 = addr("10.201.0.1")
	srv6 = addr("fd00:201::1")
)

func newTestbed(t *testing.T) *testbed {
	srv, cli := newNetNS(t), newNetNS(t)
	netnstest.Link(t, srv, cli, []string{"10.201.0.1/24", "fd00:201::1/64"},
		[]string{"10.201.0.2/24", "10.201.0.3/24", "10.201.0.4/24", "10.201.0.5/24", "fd00:201::2/64", "fd00:201::3/64", "fd00:201::10/64"})
	srv.Listen(t, port)
	return &testbed{srv: srv, cli: cli, fw: openFW(t, srv, Options{})}
}

// probe dials the server from each source at once: those in blocked must
// time out (dropped, not refused), the others must get through.
func (tb *testbed) probe(t *testing.T, blocked []string, open []string) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fails []string
	check := func(src string, wantBlocked bool) {
		defer wg.Done()
		a := addr(src)
		dst := srv4
		if a.Is6() {
			dst = srv6
		}
		timeout := 5 * time.Second
		if wantBlocked {
			timeout = 700 * time.Millisecond
		}
		err := tb.cli.Dial(a, netip.AddrPortFrom(dst, port), timeout)
		var msg string
		switch {
		case wantBlocked && err == nil:
			msg = fmt.Sprintf("%s connected, want it dropped", src)
		case wantBlocked && errors.Is(err, syscall.ECONNREFUSED):
			msg = fmt.Sprintf("%s refused, want it dropped (time out)", src)
		case wantBlocked && !isTimeout(err):
			msg = fmt.Sprintf("%s: %v, want a time out", src, err)
		case !wantBlocked && err != nil:
			msg = fmt.Sprintf("%s: %v, want it to connect", src, err)
		}
		if msg != "" {
			mu.Lock()
			fails = append(fails, msg)
			mu.Unlock()
		}
	}
	for _, s := range blocked {
		wg.Add(1)
		go check(s, true)
	}
	for _, s := range open {
		wg.Add(1)
		go check(s, false)
	}
	wg.Wait()
	slices.Sort(fails)
	for _, f := range fails {
		t.Error(f)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestTraffic(t *testing.T) {
	tb := newTestbed(t)
	all := []string{"10.201.0.2", "10.201.0.3", "10.201.0.4", "10.201.0.5", "fd00:201::2", "fd00:201::3", "fd00:201::10"}
	load := func(t *testing.T, want ...Element) {
		t.Helper()
		if _, err := tb.fw.Sync(want); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	}

	t.Run("no bans", func(t *testing.T) {
		load(t)
		tb.probe(t, nil, all)
	})
	t.Run("single addresses", func(t *testing.T) {
		load(t, Element{Net: pfx("10.201.0.2/32")}, Element{Net: pfx("fd00:201::2/128")})
		tb.probe(t,
			[]string{"10.201.0.2", "fd00:201::2"},
			[]string{"10.201.0.3", "10.201.0.4", "fd00:201::3", "fd00:201::10"})
	})
	t.Run("networks", func(t *testing.T) {
		load(t,
			Element{Net: pfx("10.201.0.2/32")},
			Element{Net: pfx("10.201.0.4/30")},  // .4 to .7
			Element{Net: pfx("fd00:201::/126")}, // ::0 to ::3
		)
		tb.probe(t,
			[]string{"10.201.0.2", "10.201.0.4", "10.201.0.5", "fd00:201::2", "fd00:201::3"},
			[]string{"10.201.0.3", "fd00:201::10"})
	})
	t.Run("IPv4-mapped address bans IPv4", func(t *testing.T) {
		load(t, Element{Net: pfx("::ffff:10.201.0.3/128")})
		tb.probe(t, []string{"10.201.0.3"}, []string{"10.201.0.2", "fd00:201::10"})
	})
	t.Run("expiry restores access", func(t *testing.T) {
		load(t)
		exp := time.Now().Add(2 * time.Second)
		if err := tb.fw.Add(
			Element{Net: pfx("10.201.0.3/32"), Expires: exp},
			Element{Net: pfx("fd00:201::/120"), Expires: exp},
		); err != nil {
			t.Fatalf("Add: %v", err)
		}
		tb.probe(t, []string{"10.201.0.3", "fd00:201::10"}, []string{"10.201.0.2"})
		deadline := time.Now().Add(30 * time.Second)
		for {
			a := tb.cli.Dial(addr("10.201.0.3"), netip.AddrPortFrom(srv4, port), 500*time.Millisecond)
			b := tb.cli.Dial(addr("fd00:201::10"), netip.AddrPortFrom(srv6, port), 500*time.Millisecond)
			if a == nil && b == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("bans still enforced 28s after they expired: %v; %v", a, b)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got := tb.srv.NftSet(t, "bulwark", "ban4"); len(got) != 0 {
			t.Errorf("ban4 after expiry = %v, want empty", got)
		}
	})
	t.Run("counters", func(t *testing.T) {
		pkts, bytes, err := tb.fw.Dropped()
		if err != nil {
			t.Fatal(err)
		}
		if pkts == 0 || bytes == 0 {
			t.Errorf("Dropped() = %d packets, %d bytes after dropping connections, want > 0", pkts, bytes)
		}
	})
}

// kernelElements reads the sets with nft (not with this package) as
// sorted "set element" strings.
func kernelElements(t *testing.T, n *netnstest.NS, table string) []string {
	t.Helper()
	var out []string
	for _, s := range setNames {
		for _, e := range n.NftSet(t, table, s) {
			out = append(out, s+" "+e)
		}
	}
	slices.Sort(out)
	return out
}

func expectElements(t *testing.T, n *netnstest.NS, want ...string) {
	t.Helper()
	slices.Sort(want)
	if diff := cmp.Diff(want, kernelElements(t, n, "bulwark")); diff != "" {
		t.Errorf("kernel sets (-want +got):\n%s", diff)
	}
}

func TestSyncReconciles(t *testing.T) {
	n := newNetNS(t)
	f := openFW(t, n, Options{})
	now := time.Now()
	want := []Element{
		{Net: pfx("192.0.2.1/32"), Expires: now.Add(time.Hour)},
		{Net: pfx("192.0.2.2/32")},
		{Net: pfx("2001:db8::1/128"), Expires: now.Add(time.Hour)},
		{Net: pfx("198.51.100.0/24"), Expires: now.Add(time.Hour)},
		{Net: pfx("2001:db8:1::/48")},
		{Net: pfx("203.0.113.9/32"), Expires: now.Add(-time.Second)}, // expired: not loaded
		{Net: pfx("2001:db8:2::/48"), Expires: now},                  // expired: not loaded
	}
	loaded := []string{
		"ban4 192.0.2.1", "ban4 192.0.2.2", "ban6 2001:db8::1",
		"bannet4 198.51.100.0/24", "bannet6 2001:db8:1::/48",
	}
	st, err := f.Sync(want)
	if err != nil {
		t.Fatal(err)
	}
	if st.Added != 5 || st.Removed != 0 || st.Total != 5 {
		t.Errorf("first Sync = %+v, want 5 added, 0 removed, total 5", st)
	}
	expectElements(t, n, loaded...)

	resync := func(t *testing.T, added, removed, updated int) {
		t.Helper()
		st, err := f.Sync(want)
		if err != nil {
			t.Fatal(err)
		}
		if st.Added != added || st.Removed != removed || st.Updated != updated || st.Total != 5 {
			t.Errorf("Sync = %+v, want %d added, %d removed, %d updated, total 5", st, added, removed, updated)
		}
		expectElements(t, n, loaded...)
	}

	t.Run("nothing to do", func(t *testing.T) { resync(t, 0, 0, 0) })
	t.Run("elements deleted by hand come back", func(t *testing.T) {
		n.Nft(t, "delete", "element", "inet", "bulwark", "ban4", "{ 192.0.2.1 }")
		n.Nft(t, "delete", "element", "inet", "bulwark", "bannet4", "{ 198.51.100.0/24 }")
		n.Nft(t, "delete", "element", "inet", "bulwark", "bannet6", "{ 2001:db8:1::/48 }")
		resync(t, 3, 0, 0)
	})
	t.Run("foreign elements go", func(t *testing.T) {
		n.Nft(t, "add", "element", "inet", "bulwark", "ban4", "{ 10.66.0.1 }")
		n.Nft(t, "add", "element", "inet", "bulwark", "ban6", "{ 2001:db8::66 timeout 1h }")
		n.Nft(t, "add", "element", "inet", "bulwark", "bannet4", "{ 10.77.0.1-10.77.0.9, 10.88.0.0/16 timeout 1h }")
		n.Nft(t, "add", "element", "inet", "bulwark", "bannet6", "{ 2001:db8:77::/64 }")
		resync(t, 0, 5, 0)
	})
	t.Run("changed expiries are corrected", func(t *testing.T) {
		n.Nft(t, "delete", "element", "inet", "bulwark", "ban4", "{ 192.0.2.1 }")
		n.Nft(t, "add", "element", "inet", "bulwark", "ban4", "{ 192.0.2.1 timeout 5m }")
		n.Nft(t, "delete", "element", "inet", "bulwark", "bannet6", "{ 2001:db8:1::/48 }")
		n.Nft(t, "add", "element", "inet", "bulwark", "bannet6", "{ 2001:db8:1::/48 timeout 5m }")
		resync(t, 0, 0, 2)
		got, err := f.Elements()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range got {
			switch e.Net {
			case pfx("192.0.2.1/32"):
				if d := e.Expires.Sub(now.Add(time.Hour)); d < -2*time.Second || d > 2*time.Second {
					t.Errorf("192.0.2.1 expires %v, want %v", e.Expires, now.Add(time.Hour))
				}
			case pfx("2001:db8:1::/48"):
				if !e.Expires.IsZero() {
					t.Errorf("2001:db8:1::/48 expires %v, want never", e.Expires)
				}
			}
		}
	})
	t.Run("rules flushed by hand come back", func(t *testing.T) {
		n.Nft(t, "flush", "chain", "inet", "bulwark", "input")
		st, err := f.Sync(want)
		if err != nil {
			t.Fatal(err)
		}
		if st.Total != 5 {
			t.Errorf("Sync = %+v, want total 5", st)
		}
		if got := strings.Count(n.Nft(t, "list", "chain", "inet", "bulwark", "input"), " drop "); got != 4 {
			t.Errorf("%d drop rules after Sync, want 4", got)
		}
		expectElements(t, n, loaded...)
	})
	t.Run("table deleted by hand comes back", func(t *testing.T) {
		n.Nft(t, "delete", "table", "inet", "bulwark")
		st, err := f.Sync(want)
		if err != nil {
			t.Fatal(err)
		}
		if st.Added != 5 || st.Total != 5 {
			t.Errorf("Sync = %+v, want 5 added, total 5", st)
		}
		expectElements(t, n, loaded...)
	})
	t.Run("emptied", func(t *testing.T) {
		st, err := f.Sync(nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Removed != 5 || st.Total != 0 {
			t.Errorf("Sync(nil) = %+v, want 5 removed, total 0", st)
		}
		expectElements(t, n)
	})
}

func TestElementsReadBack(t *testing.T) {
	n := newNetNS(t)
	f := openFW(t, n, Options{})
	now := time.Now().Truncate(time.Second)
	want := []Element{
		{Net: pfx("192.0.2.1/32"), Expires: now.Add(time.Hour)},
		{Net: pfx("10.0.0.0/24"), Expires: now.Add(time.Hour)},
		{Net: pfx("10.0.1.0/24")},                                     // adjacent: shares a key with the end marker above
		{Net: pfx("255.255.255.0/24"), Expires: now.Add(time.Minute)}, // no end marker
		{Net: pfx("2001:db8::1/128")},
		{Net: pfx("2001:db8::/64"), Expires: now.Add(time.Hour)},
		{Net: pfx("ffff::/16")},
	}
	if _, err := f.Sync(want); err != nil {
		t.Fatal(err)
	}
	// A stray end marker as nft leaves it, and a range that is no CIDR.
	n.Nft(t, "add", "element", "inet", "bulwark", "bannet4", "{ 10.9.0.1-10.9.0.5 }")
	got, err := f.Elements()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, func(a, b Element) int { return strings.Compare(a.Net.String(), b.Net.String()) })
	slices.SortFunc(got, func(a, b Element) int { return strings.Compare(a.Net.String(), b.Net.String()) })
	near := cmp.Comparer(func(a, b time.Time) bool {
		if a.IsZero() || b.IsZero() {
			return a.IsZero() == b.IsZero()
		}
		d := a.Sub(b)
		return d > -2*time.Second && d < 2*time.Second
	})
	if diff := cmp.Diff(want, got, near, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("Elements (-want +got):\n%s", diff)
	}
}

func TestMergeAndExpiry(t *testing.T) {
	n := newNetNS(t)
	f := openFW(t, n, Options{})
	now := time.Now()
	want := []Element{
		{Net: pfx("10.50.0.0/16"), Expires: now.Add(2 * time.Second)},
		{Net: pfx("10.50.1.0/24"), Expires: now.Add(time.Hour)}, // held by the /16: waits
		{Net: pfx("10.50.1.128/25")},                            // held by both
		{Net: pfx("2001:db8::/32"), Expires: now.Add(2 * time.Second)},
		{Net: pfx("2001:db8:1::/48"), Expires: now.Add(time.Hour)},
	}
	st, err := f.Sync(want)
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 2 {
		t.Errorf("Sync loaded %d elements, want 2 (the covering networks)", st.Total)
	}
	expectElements(t, n, "bannet4 10.50.0.0/16", "bannet6 2001:db8::/32")

	// The kernel expires the wide networks on its own.
	deadline := time.Now().Add(30 * time.Second)
	for len(kernelElements(t, n, "bulwark")) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("networks still in the kernel 28s after they expired: %v", kernelElements(t, n, "bulwark"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The next reconciliation brings back what they held.
	st, err = f.Sync(want)
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 2 || st.Added != 2 {
		t.Errorf("Sync after expiry = %+v, want 2 added, total 2", st)
	}
	expectElements(t, n, "bannet4 10.50.1.0/24", "bannet6 2001:db8:1::/48")
}

func TestAddRemove(t *testing.T) {
	n := newNetNS(t)
	f := openFW(t, n, Options{BatchSize: MinBatchSize})
	now := time.Now()
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(t, f.Add(
		Element{Net: pfx("192.0.2.1/32"), Expires: now.Add(time.Minute)},
		Element{Net: pfx("2001:db8::1/128")},
		Element{Net: pfx("10.1.1.0/24")},
		Element{Net: pfx("10.1.2.0/24"), Expires: now.Add(time.Minute)},
		Element{Net: pfx("10.2.0.0/16")},
		Element{Net: pfx("192.0.2.9/32"), Expires: now.Add(-time.Minute)}, // expired: skipped
	))
	expectElements(t, n, "ban4 192.0.2.1", "ban6 2001:db8::1", "bannet4 10.1.1.0/24", "bannet4 10.1.2.0/24", "bannet4 10.2.0.0/16")

	t.Run("again with a new expiry", func(t *testing.T) {
		must(t, f.Add(Element{Net: pfx("192.0.2.1/32"), Expires: now.Add(time.Hour)}, Element{Net: pfx("10.1.2.0/24")}))
		got, err := f.Elements()
		must(t, err)
		for _, e := range got {
			switch e.Net {
			case pfx("192.0.2.1/32"):
				if d := e.Expires.Sub(now); d < 59*time.Minute {
					t.Errorf("192.0.2.1 expires in %v, want about 1h", d)
				}
			case pfx("10.1.2.0/24"):
				if !e.Expires.IsZero() {
					t.Errorf("10.1.2.0/24 expires %v, want never", e.Expires)
				}
			}
		}
	})
	t.Run("a wider network replaces narrower ones", func(t *testing.T) {
		must(t, f.Add(Element{Net: pfx("10.1.0.0/16")}))
		expectElements(t, n, "ban4 192.0.2.1", "ban6 2001:db8::1", "bannet4 10.1.0.0/16", "bannet4 10.2.0.0/16")
	})
	t.Run("a narrower network under a wider one is skipped", func(t *testing.T) {
		must(t, f.Add(Element{Net: pfx("10.2.3.0/24"), Expires: now.Add(time.Hour)}))
		expectElements(t, n, "ban4 192.0.2.1", "ban6 2001:db8::1", "bannet4 10.1.0.0/16", "bannet4 10.2.0.0/16")
	})
	t.Run("a foreign range overlapping a new network is deleted", func(t *testing.T) {
		n.Nft(t, "add", "element", "inet", "bulwark", "bannet4", "{ 10.3.0.250-10.3.1.5 }")
		must(t, f.Add(Element{Net: pfx("10.3.1.0/24")}))
		expectElements(t, n, "ban4 192.0.2.1", "ban6 2001:db8::1", "bannet4 10.1.0.0/16", "bannet4 10.2.0.0/16", "bannet4 10.3.1.0/24")
	})
	t.Run("remove", func(t *testing.T) {
		must(t, f.Remove(pfx("192.0.2.1/32"), pfx("10.1.0.0/16"), pfx("::ffff:10.3.1.0/120"),
			pfx("192.0.2.200/32"), pfx("10.9.0.0/16"), pfx("2001:db8::5/128"))) // the last three are not banned
		expectElements(t, n, "ban6 2001:db8::1", "bannet4 10.2.0.0/16")
	})
	t.Run("many networks replaced by one, across transactions", func(t *testing.T) {
		var els []Element
		for i := range 40 {
			els = append(els, Element{Net: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 4, byte(i), 0}), 24)})
		}
		must(t, f.Add(els...))
		must(t, f.Add(Element{Net: pfx("10.4.0.0/16")}))
		expectElements(t, n, "ban6 2001:db8::1", "bannet4 10.2.0.0/16", "bannet4 10.4.0.0/16")
	})
}

func TestOtherTablesUntouched(t *testing.T) {
	n := newNetNS(t)
	n.NftFile(t, `
table inet other {
	set friends { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, 192.0.2.1 }; }
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr @friends tcp dport 9999 counter accept
		tcp dport 9998 drop
	}
}
table ip legacy {
	chain c { ip saddr 192.0.2.7 counter; }
}
`)
	list := func() string {
		return n.Nft(t, "list", "table", "inet", "other") + n.Nft(t, "list", "table", "ip", "legacy")
	}
	before := list()

	f := openFW(t, n, Options{Forward: true})
	if _, err := f.Sync([]Element{{Net: pfx("10.1.0.0/16")}, {Net: pfx("192.0.2.1/32")}}); err != nil {
		t.Fatal(err)
	}
	if err := f.Add(Element{Net: pfx("10.0.0.0/8")}); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(pfx("192.0.2.1/32")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Dropped(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, list()); diff != "" {
		t.Errorf("other tables changed (-before +after):\n%s", diff)
	}
	if err := f.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(); err != nil {
		t.Errorf("second Delete: %v, want nil (already gone)", err)
	}
	if diff := cmp.Diff(before, list()); diff != "" {
		t.Errorf("other tables changed by Delete (-before +after):\n%s", diff)
	}
	if got := n.Nft(t, "list", "tables"); strings.Contains(got, "bulwark") || !strings.Contains(got, "table inet other") {
		t.Errorf("tables after Delete:\n%s\nwant other and legacy only", got)
	}
}

func TestOpenIdempotent(t *testing.T) {
	n := newNetNS(t)
	listing := func() string { return n.Nft(t, "-a", "list", "table", "inet", "bulwark") }
	rules := func() int { return strings.Count(listing(), " drop comment ") }

	f := openFW(t, n, Options{})
	if _, err := f.Sync([]Element{{Net: pfx("192.0.2.1/32")}, {Net: pfx("10.0.0.0/8")}}); err != nil {
		t.Fatal(err)
	}
	first := listing()
	if got := rules(); got != 4 {
		t.Fatalf("%d drop rules after Open, want 4:\n%s", got, first)
	}
	// Same options: nothing is recreated, so handles and elements stay.
	openFW(t, n, Options{})
	if diff := cmp.Diff(first, listing()); diff != "" {
		t.Errorf("second Open changed the table (-first +second):\n%s", diff)
	}

	repaired := func(t *testing.T, opt Options, chains int) {
		t.Helper()
		openFW(t, n, opt)
		if got := rules(); got != 4*chains {
			t.Errorf("%d drop rules after Open, want %d:\n%s", got, 4*chains, listing())
		}
	}
	t.Run("a rule deleted by hand", func(t *testing.T) {
		out := n.Nft(t, "-a", "list", "chain", "inet", "bulwark", "input")
		i := strings.LastIndex(out, "# handle ")
		var h int
		fmt.Sscanf(out[i:], "# handle %d", &h)
		n.Nft(t, "delete", "rule", "inet", "bulwark", "input", "handle", fmt.Sprint(h))
		repaired(t, Options{}, 1)
	})
	t.Run("a rule added by hand", func(t *testing.T) {
		n.Nft(t, "add", "rule", "inet", "bulwark", "input", "tcp", "dport", "22", "accept")
		repaired(t, Options{}, 1)
		if strings.Contains(listing(), "dport 22") {
			t.Errorf("hand-added rule survived Open:\n%s", listing())
		}
	})
	t.Run("forward chain", func(t *testing.T) {
		repaired(t, Options{Forward: true}, 2)
		if !strings.Contains(listing(), "hook forward") {
			t.Errorf("no forward chain:\n%s", listing())
		}
		repaired(t, Options{Forward: true}, 2)
		repaired(t, Options{}, 1)
	})
	t.Run("priority", func(t *testing.T) {
		repaired(t, Options{Priority: -10}, 1)
		if !strings.Contains(listing(), "priority filter - 10") {
			t.Errorf("priority not applied:\n%s", listing())
		}
	})
	t.Run("a set of the wrong type", func(t *testing.T) {
		n.NftFile(t, "delete table inet bulwark\ntable inet bulwark { set ban4 { type ipv6_addr; }; }\n")
		repaired(t, Options{}, 1)
	})
}

func TestSync10k(t *testing.T) {
	n := newNetNS(t)
	f := openFW(t, n, Options{})
	want := tenThousand(time.Now())
	st, err := f.Sync(want)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Sync of %d elements into empty sets: %v (%+v)", len(want), st.Duration, st)
	if st.Added != 10000 || st.Total != 10000 {
		t.Errorf("Sync = %+v, want 10000 added, total 10000", st)
	}
	counts := map[string]int{}
	for _, s := range setNames {
		counts[s] = len(n.NftSet(t, "bulwark", s))
	}
	wantCounts := map[string]int{"ban4": 6000, "ban6": 2000, "bannet4": 1000, "bannet6": 1000}
	if diff := cmp.Diff(wantCounts, counts); diff != "" {
		t.Errorf("elements per set per nft (-want +got):\n%s", diff)
	}

	st, err = f.Sync(want)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Sync of %d elements already loaded: %v", len(want), st.Duration)
	if st.Added != 0 || st.Removed != 0 || st.Updated != 0 {
		t.Errorf("second Sync = %+v, want no change", st)
	}

	st, err = f.Sync(want[:5000])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Sync removing %d elements: %v", st.Removed, st.Duration)
	if st.Removed != 5000 || st.Total != 5000 {
		t.Errorf("Sync of half = %+v, want 5000 removed, total 5000", st)
	}
}

// tenThousand is a mix of 6000 IPv4 and 2000 IPv6 addresses, 1000 IPv4
// /24s and 1000 IPv6 /64s, one in two with an expiry.
func tenThousand(now time.Time) []Element {
	var out []Element
	add := func(p netip.Prefix) {
		e := Element{Net: p}
		if len(out)%2 == 0 {
			e.Expires = now.Add(time.Hour + time.Duration(len(out))*time.Second)
		}
		out = append(out, e)
	}
	for i := range 6000 {
		add(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 100, byte(i >> 8), byte(i)}), 32))
	}
	for i := range 2000 {
		add(netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)}), 128))
	}
	for i := range 1000 {
		add(netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 16 + byte(i>>8), byte(i), 0}), 24))
	}
	for i := range 1000 {
		add(netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb9, 6: byte(i >> 8), 7: byte(i)}), 64))
	}
	return out
}

func BenchmarkSync10k(b *testing.B) {
	n := newNetNS(b)
	f := openFW(b, n, Options{})
	want := tenThousand(time.Now())
	for b.Loop() {
		b.StopTimer()
		if _, err := f.Sync(nil); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := f.Sync(want); err != nil {
			b.Fatal(err)
		}
	}
}

func TestOpenOptions(t *testing.T) {
	tests := []Options{
		{BatchSize: MaxBatchSize + 1},
		{BatchSize: MinBatchSize - 1},
		{BatchSize: -1},
		{Table: strings.Repeat("x", 256)},
		{Table: "a\x00b"},
	}
	for _, opt := range tests {
		if f, err := Open(opt); err == nil {
			f.Close()
			t.Errorf("Open(%+v) succeeded, want an error", opt)
		}
	}
}

func TestClosed(t *testing.T) {
	n := newNetNS(t)
	f := openFW(t, n, Options{})
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Sync(nil); !errors.Is(err, errClosed) {
		t.Errorf("Sync after Close: %v, want %v", err, errClosed)
	}
	if err := f.Add(Element{Net: pfx("192.0.2.1/32")}); !errors.Is(err, errClosed) {
		t.Errorf("Add after Close: %v, want %v", err, errClosed)
	}
	// The table stays after Close.
	if got := n.Nft(t, "list", "tables"); !strings.Contains(got, "table inet bulwark") {
		t.Errorf("tables after Close:\n%s\nwant bulwark", got)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{syscall.EPERM, "CAP_NET_ADMIN"},
		{syscall.EPROTONOSUPPORT, "CONFIG_NETFILTER_NETLINK"},
		{syscall.EOPNOTSUPP, "nf_tables"},
		{fmt.Errorf("receive: %w", syscall.EINVAL), "nf_tables"},
	}
	for _, tt := range tests {
		err := classify("list nftables tables", tt.err)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("classify(%v) = %v, want ErrUnavailable mentioning %q", tt.err, err, tt.want)
		}
	}
	if err := classify("create table", syscall.EEXIST); errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EEXIST) {
		t.Errorf("classify(EEXIST) = %v, want it wrapped and not ErrUnavailable", err)
	}
	if err := classify("create table", syscall.EINVAL); errors.Is(err, ErrUnavailable) {
		t.Errorf("classify(EINVAL) outside a listing = %v, want not ErrUnavailable", err)
	}
}
