package netindex

import (
	"net/netip"
	"testing"
)

func TestMatch(t *testing.T) {
	ix := New[string]()
	for _, e := range []struct{ net, v string }{
		{"10.0.0.0/8", "wide"}, {"10.1.0.0/16", "narrow"}, {"10.1.2.3/32", "host"},
		{"::ffff:192.0.2.0/120", "mapped"}, {"2001:db8::/32", "v6"}, {"10.1.2.9/16", "narrow again"},
	} {
		ix.Add(netip.MustParsePrefix(e.net), e.v, nil)
	}
	if ix.Len() != 5 {
		t.Errorf("Len = %d, want 5 (10.1.2.9/16 is 10.1.0.0/16)", ix.Len())
	}
	for _, tc := range []struct{ addr, want string }{
		{"10.1.2.3", "host"}, {"10.1.9.9", "narrow again"}, {"10.200.0.1", "wide"}, {"11.0.0.1", ""},
		{"192.0.2.77", "mapped"}, {"::ffff:10.1.2.3", "host"}, {"2001:db8:5::1", "v6"}, {"2001:db9::1", ""},
	} {
		_, got, ok := ix.Match(netip.MustParseAddr(tc.addr), nil)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("Match(%s) = %q, %v; want %q", tc.addr, got, ok, tc.want)
		}
	}
	// The filter skips a more specific entry for a wider one.
	p, got, ok := ix.Match(netip.MustParseAddr("10.1.2.3"), func(v string) bool { return v == "wide" })
	if !ok || got != "wide" || p != netip.MustParsePrefix("10.0.0.0/8") {
		t.Errorf("filtered Match = %s %q %v", p, got, ok)
	}
}

func TestAddKeep(t *testing.T) {
	ix := New[int]()
	longer := func(old, new int) int { return max(old, new) }
	if !ix.Add(netip.MustParsePrefix("192.0.2.1/32"), 5, longer) || ix.Add(netip.MustParsePrefix("192.0.2.1/32"), 3, longer) {
		t.Fatal("Add's new/duplicate report is wrong")
	}
	if _, v, _ := ix.Match(netip.MustParseAddr("192.0.2.1"), nil); v != 5 {
		t.Errorf("keep chose %d, want 5", v)
	}
	n := 0
	for range ix.All() {
		n++
	}
	if n != 1 {
		t.Errorf("All yielded %d, want 1", n)
	}
}

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"10.1.2.3/8": "10.0.0.0/8", "::ffff:10.1.2.3/128": "10.1.2.3/32", "::ffff:10.1.2.3/104": "10.0.0.0/8",
		"2001:db8::1/64": "2001:db8::/64",
	} {
		if got := Canonical(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("Canonical(%s) = %s, want %s", in, got, want)
		}
	}
}
