package clientip

import (
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// forwardedSeeds are Forwarded values, several lines separated by "\n".
var forwardedSeeds = []string{
	"",
	"for=192.0.2.1",
	`for="[2001:db8::1]:4711";proto=https;by=_gw`,
	`For="[2001:db8:cafe::17]:4711";PROTO=https, FOR=10.0.0.2;host="example.com:8443"`,
	"for=192.0.2.1, for=198.51.100.17;by=203.0.113.60;proto=http;host=example.com",
	"for=unknown, for=_hidden, for=\"_x:_p\"",
	`for="\[2001:db8::1\]";ext="a\"b\\c,d;e"`,
	"for=6.6.6.6\nfor=10.0.0.2",
	`for="6.6.6.6` + "\nfor=203.0.113.7",
	`for="6.6.6.6\", for=203.0.113.7`,
	"proto=https,,;;for=192.0.2.1;",
	`for="[fe80::1%eth0]:80"`,
	`for="[::ffff:203.0.113.7]"`,
	"for=2001:db8::1",
	"for = 192.0.2.1",
	"for=192.0.2.1;FOR=192.0.2.2",
	"a=1;b=1;c=1;d=1;e=1;f=1;g=1;h=1;i=1;j=1;k=1;l=1;m=1;n=1;o=1;p=1;for=192.0.2.1",
	"\"\\\"\\\\\"",
	`for=203.0.113.7, for=10.0.0.2;ext="a\",b"`,
	`for=6.6.6.6, for=203.0.113.7;ext="a\\", for=10.0.0.2`,
}

// FuzzParseForwardedFor checks that ParseForwardedFor never panics, that
// every node it returns is non-empty and has one of the documented forms,
// that a list it accepts survives being rebuilt from its nodes and parsed
// again, and that the right-to-left reader Client uses agrees with it on
// every well-formed header.
func FuzzParseForwardedFor(f *testing.F) {
	for _, s := range forwardedSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		values := strings.Split(s, "\n")
		nodes, ok := ParseForwardedFor(values)
		for i, n := range nodes {
			if !validNodeForm(n) {
				t.Fatalf("ParseForwardedFor(%q): node %d is %q, not an address, \"unknown\" or obfuscated", values, i, n)
			}
		}

		// The right-to-left reader Client uses: the nodes it reads, in
		// header order, and whether it reached the left end without a
		// malformed element or the element limit.
		var rev []string
		complete := true
		for e, ok := range elementsFromRight(strings.Join(values, ","), false, true) {
			var n string
			if ok {
				n, ok = parseElement(e, nil)
			}
			if !ok {
				complete = false
				break
			}
			rev = append(rev, n)
		}
		slices.Reverse(rev)

		if !ok {
			if complete {
				t.Fatalf("ParseForwardedFor(%q) fails but the right-to-left reader reads it whole: %q", values, rev)
			}
			return
		}

		// Agreement on well-formed headers, up to MaxElements.
		want := nodes
		if len(nodes) > MaxElements {
			want = nodes[len(nodes)-MaxElements:]
		}
		if complete != (len(nodes) <= MaxElements) {
			t.Fatalf("right-to-left reader of %q complete=%v with %d elements", values, complete, len(nodes))
		}
		if diff := cmp.Diff(want, rev); diff != "" && (len(want) > 0 || len(rev) > 0) {
			t.Fatalf("right-to-left reader of %q disagrees (-left-to-right +right-to-left):\n%s", values, diff)
		}

		// Each element's parameters other than for=, re-serialised as
		// Outbound does, parse back to the same names and values.
		for e := range elementsFromLeft(strings.Join(values, ","), true) {
			want := otherPairs(e)
			rebuilt := otherParams(e)
			if node, ok := parseElement(rebuilt, nil); !ok || node != "unknown" {
				t.Fatalf("parameters of %q re-serialised as %q do not parse", e, rebuilt)
			}
			if diff := cmp.Diff(want, otherPairs(rebuilt)); diff != "" {
				t.Fatalf("parameters of %q re-serialised as %q differ (-received +re-serialised):\n%s", e, rebuilt, diff)
			}
		}

		// Rebuilt with every node quoted and escaped, and with nodes as
		// plain tokens where they are tokens.
		var quoted, plain []string
		for _, n := range nodes {
			v := n
			if strings.Contains(n, ":") {
				v = "[" + n + "]"
			}
			q := `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
			quoted = append(quoted, "FoR="+q)
			if tokenLen(v) != len(v) {
				v = q
			}
			plain = append(plain, "for="+v+";proto=https")
		}
		for _, rebuilt := range []string{strings.Join(quoted, ", "), strings.Join(plain, " ,\t")} {
			again, ok := ParseForwardedFor([]string{rebuilt})
			if !ok {
				t.Fatalf("rebuilt %q from nodes %q of %q does not parse", rebuilt, nodes, values)
			}
			if diff := cmp.Diff(nodes, again); diff != "" && (len(nodes) > 0 || len(again) > 0) {
				t.Fatalf("rebuilt %q from %q parses differently (-first +again):\n%s", rebuilt, values, diff)
			}
		}
	})
}

// otherPairs returns the parameters of a well-formed Forwarded element
// other than for=, as name and value, in order.
func otherPairs(e string) [][2]string {
	var out [][2]string
	parseElement(e, func(name, value string) {
		if !strings.EqualFold(name, "for") {
			out = append(out, [2]string{name, value})
		}
	})
	return out
}

// validNodeForm reports whether n is a node as ParseForwardedFor documents
// them: an IPv4 address, an IPv6 address (maybe with zone), "unknown", or
// an obfuscated identifier.
func validNodeForm(n string) bool {
	if n == "unknown" || isObfuscated(n) {
		return true
	}
	_, err := netip.ParseAddr(n)
	return err == nil
}

// fuzzPeers are the peers FuzzClient picks from: trusted in several forms,
// untrusted, and invalid.
var fuzzPeers = []netip.Addr{
	netip.MustParseAddr("10.0.0.1"),
	netip.MustParseAddr("::ffff:10.0.0.1"),
	netip.MustParseAddr("2001:db8:ffff::1"),
	netip.MustParseAddr("2001:db8:ffff::1%eth0"),
	netip.MustParseAddr("192.0.2.10"),
	netip.MustParseAddr("203.0.113.7"),
	netip.MustParseAddr("2001:db8:1::7"),
	netip.MustParseAddr("::ffff:203.0.113.7"),
	{},
}

// fuzzHeader builds the request header for FuzzClient and FuzzOutbound:
// X-Forwarded-For if flags&1, Forwarded if flags&2, one line per "\n".
func fuzzHeader(flags uint8, xff, fwd string) http.Header {
	h := http.Header{}
	if flags&1 != 0 {
		for _, v := range strings.Split(xff, "\n") {
			h.Add("X-Forwarded-For", v)
		}
	}
	if flags&2 != 0 {
		for _, v := range strings.Split(fwd, "\n") {
			h.Add("Forwarded", v)
		}
	}
	return h
}

func addClientSeeds(f *testing.F) {
	xffs := []string{
		"",
		"6.6.6.6, 203.0.113.7, 10.0.0.2",
		"10.0.0.3, 10.0.0.2",
		"6.6.6.6, junk, 10.0.0.2",
		"6.6.6.6, unknown, ::ffff:10.0.0.2",
		"[2001:db8:1::7]:443\n10.0.0.2:80, 2001:db8:ffff::9",
		"::ffff:102:304, fe80::1%eth0",
		"6.6.6.6," + strings.Repeat(" ", MaxHeaderBytes) + "10.0.0.3, 10.0.0.2",
		strings.Repeat("10.0.0.2,", MaxElements+2),
	}
	for i, x := range xffs {
		for peer := range fuzzPeers {
			f.Add(uint8(peer), uint8(1+2*(i%2)), x, forwardedSeeds[i%len(forwardedSeeds)])
		}
	}
	for i, fwd := range forwardedSeeds {
		f.Add(uint8(i), uint8(2), "", fwd)
	}
	f.Add(uint8(0), uint8(2), "", `for=203.0.113.7, for="[2001:db8:ffff::\9]";ext="x,y"`)
	// 64 distinct trusted hops and a client: the element limit's exception.
	var hops []string
	for i := range MaxElements {
		hops = append(hops, "10.1.0."+strconv.Itoa(i+1))
	}
	f.Add(uint8(0), uint8(1), "203.0.113.7, "+strings.Join(hops, ", "), "")
	f.Add(uint8(0), uint8(1), "203.0.113.7, "+strings.Join(hops[1:], ", "), "")
	// Parameters that fit in what Client reads but not, with proto=https,
	// in what Outbound writes (the first line is also proto).
	ext := `"` + strings.Repeat("x ", 2035) + `"`
	f.Add(uint8(0), uint8(2), "", "https\nfor=203.0.113.7;ext="+ext+", for=10.0.0.2;ext="+ext)
}

// FuzzClient feeds Client arbitrary headers. It must not panic, must
// return the peer when the peer is untrusted, and otherwise return the
// peer or an address written in the headers (possibly with quoted-pair
// escapes, in another notation, mapped or with a zone), never one it made
// up; every result is unmapped and without zone.
func FuzzClient(f *testing.F) {
	addClientSeeds(f)
	f.Fuzz(func(t *testing.T, peerIdx, flags uint8, xff, fwd string) {
		peer := fuzzPeers[int(peerIdx)%len(fuzzPeers)]
		h := fuzzHeader(flags, xff, fwd)
		got := testResolver.Client(peer, h)
		if got != normalize(got) {
			t.Fatalf("Client(%v, %q) = %v, which is mapped or zoned", peer, h, got)
		}
		if got == normalize(peer) {
			return
		}
		if !testResolver.IsTrusted(peer) {
			t.Fatalf("Client(%v, %q) = %v, but the peer is untrusted", peer, h, got)
		}
		var text []string
		for _, vs := range h {
			text = append(text, vs...)
		}
		all := strings.Join(text, "\n")
		if !containsAddr(all, got) && !containsAddr(unescape(all), got) {
			t.Fatalf("Client(%v, %q) = %v, which the headers do not contain", peer, h, got)
		}
	})
}

// fuzzGuard is the guard's address as FuzzOutbound's upstream sees it, and
// fuzzUpstream that upstream: it trusts the guard and what the guard trusts.
var (
	fuzzGuard    = netip.MustParseAddr("10.9.9.9")
	fuzzUpstream = Resolver{Trusted: append([]netip.Prefix{netip.PrefixFrom(fuzzGuard, 32)}, testResolver.Trusted...)}
)

// FuzzOutbound feeds Outbound arbitrary headers, proto and host. It must not
// panic; its results must be valid header values within the limits that
// list the same addresses, the peer last; from an untrusted peer they must
// carry nothing from the incoming headers; and an upstream that trusts the
// guard, reading either of them, must find the client Client found, but for
// the two exceptions the package comment names.
func FuzzOutbound(f *testing.F) {
	addClientSeeds(f)
	f.Fuzz(func(t *testing.T, peerIdx, flags uint8, xff, fwd string) {
		peer := fuzzPeers[int(peerIdx)%len(fuzzPeers)]
		h := fuzzHeader(flags, xff, fwd)
		// Reuse the fuzzed strings as proto and host too.
		proto, host, _ := strings.Cut(fwd, "\n")
		outXFF, outFwd := testResolver.Outbound(peer, h, proto, host)
		for _, v := range []string{outXFF, outFwd} {
			if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
				t.Fatalf("Outbound(%v, %q, %q, %q) = %q, %q: control character", peer, h, proto, host, outXFF, outFwd)
			}
			if len(v) > MaxHeaderBytes {
				t.Fatalf("Outbound(%v, %q, %q, %q) = %q, %q: over %d bytes", peer, h, proto, host, outXFF, outFwd, MaxHeaderBytes)
			}
		}

		// Both headers list the same addresses.
		var addrs []string
		for e := range elementsFromLeft(outXFF, false) {
			a, ok := parseXFFElement(e)
			if !ok {
				if outXFF == "unknown" && !peer.IsValid() {
					addrs = append(addrs, "unknown")
					break
				}
				t.Fatalf("Outbound(%v, %q): X-Forwarded-For %q has malformed element %q", peer, h, outXFF, e)
			}
			addrs = append(addrs, a.String())
		}
		nodes, ok := ParseForwardedFor([]string{outFwd})
		if !ok {
			t.Fatalf("Outbound(%v, %q, %q, %q): Forwarded %q does not parse", peer, h, proto, host, outFwd)
		}
		for i, n := range nodes {
			if a, err := netip.ParseAddr(n); err == nil {
				nodes[i] = a.String()
			}
		}
		if diff := cmp.Diff(addrs, nodes); diff != "" {
			t.Fatalf("Outbound(%v, %q) = %q, %q: the chains differ (-X-Forwarded-For +Forwarded):\n%s", peer, h, outXFF, outFwd, diff)
		}
		if len(addrs) > MaxElements {
			t.Fatalf("Outbound(%v, %q) = %q: %d elements", peer, h, outXFF, len(addrs))
		}
		wantPeer := "unknown"
		if p := normalize(peer); p.IsValid() {
			wantPeer = p.String()
		}
		if last := addrs[len(addrs)-1]; last != wantPeer {
			t.Fatalf("Outbound(%v, %q) = %q: last element %s, want the peer", peer, h, outXFF, last)
		}
		if !testResolver.IsTrusted(peer) && len(addrs) != 1 {
			t.Fatalf("Outbound from untrusted %v = %q, %q; want only the peer", peer, outXFF, outFwd)
		}

		// The upstream finds the same client, except when the guard has no
		// valid peer (the upstream then names the guard) and when Client
		// read 64 elements, the right-most 63 trusted (the upstream then
		// names the 63rd).
		want := testResolver.Client(peer, h)
		if !peer.IsValid() {
			want = fuzzGuard
		} else if testResolver.IsTrusted(peer) {
			var walked []netip.Addr
			for hp, ok := range chainFromRight(h, testResolver.Header) {
				if !ok {
					break
				}
				walked = append(walked, hp.addr)
			}
			if len(walked) == MaxElements && !slices.ContainsFunc(walked[:MaxElements-1], func(a netip.Addr) bool { return !testResolver.IsTrusted(a) }) {
				want = walked[MaxElements-2]
			}
		}
		if got := fuzzUpstream.Client(fuzzGuard, http.Header{"X-Forwarded-For": {outXFF}}); got != want {
			t.Fatalf("Outbound(%v, %q): upstream reads %v from X-Forwarded-For %q, want %v", peer, h, got, outXFF, want)
		}
		if got := fuzzUpstream.Client(fuzzGuard, http.Header{"Forwarded": {outFwd}}); got != want {
			t.Fatalf("Outbound(%v, %q): upstream reads %v from Forwarded %q, want %v", peer, h, got, outFwd, want)
		}
	})
}

// containsAddr reports whether some substring of s made of characters that
// can spell an address (hex digits, '.', ':') parses as an address whose
// normalized form is a.
func containsAddr(s string, a netip.Addr) bool {
	const maxLen = len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")
	isAddrChar := func(c byte) bool {
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':'
	}
	for i := 0; i < len(s); i++ {
		if !isAddrChar(s[i]) {
			continue
		}
		for j := i + 1; j <= len(s) && j-i <= maxLen && isAddrChar(s[j-1]); j++ {
			if b, err := netip.ParseAddr(s[i:j]); err == nil && normalize(b) == a {
				return true
			}
		}
	}
	return false
}

// unescape resolves backslash escapes everywhere in s, as inside a
// quoted-string.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
