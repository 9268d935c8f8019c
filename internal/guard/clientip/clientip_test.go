package clientip

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testResolver trusts a private IPv4 network, one IPv6 /48, one single
// IPv4 address and loopback. 203.0.113.0/24, 198.51.100.0/24 and 2001:db8:1::/48 are
// untrusted clients; 6.6.6.6 is what attackers write.
var testResolver = Resolver{Trusted: []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("2001:db8:ffff::/48"),
	netip.MustParsePrefix("192.0.2.10/32"),
	netip.MustParsePrefix("127.0.0.0/8"),
}}

// header builds a header with one line per value for each of
// X-Forwarded-For and Forwarded; nil leaves a header out.
func header(xff, fwd []string) http.Header {
	h := http.Header{}
	for _, v := range xff {
		h.Add("X-Forwarded-For", v)
	}
	for _, v := range fwd {
		h.Add("Forwarded", v)
	}
	return h
}

func TestClient(t *testing.T) {
	const (
		proxy  = "10.0.0.1"
		client = "203.0.113.7"
	)
	// trustedHops returns n distinct trusted addresses, left-most first.
	trustedHops := func(n int) []string {
		var out []string
		for i := n; i >= 1; i-- {
			out = append(out, fmt.Sprintf("10.0.%d.%d", i/250, i%250+1))
		}
		return out
	}
	spaces := strings.Repeat(" ", MaxHeaderBytes)
	tests := []struct {
		name string
		peer string
		xff  []string
		fwd  []string
		want string
	}{
		// The peer alone decides when it is not trusted.
		{"untrusted peer, spoofed XFF ignored", client, []string{"6.6.6.6, 10.0.0.5"}, nil, client},
		{"untrusted peer, spoofed Forwarded ignored", client, nil, []string{"for=6.6.6.6"}, client},
		{"untrusted IPv6 peer", "2001:db8:1::7", []string{"6.6.6.6"}, nil, "2001:db8:1::7"},
		{"untrusted mapped peer is unmapped", "::ffff:203.0.113.7", []string{"6.6.6.6"}, nil, client},
		{"invalid peer", "", []string{"6.6.6.6"}, nil, ""},
		{"trusted peer, no headers", proxy, nil, nil, proxy},

		// Right-to-left walk over X-Forwarded-For.
		{"one trusted hop", proxy, []string{client}, nil, client},
		{"client-written prefix ignored", proxy, []string{"6.6.6.6, " + client}, nil, client},
		{"two trusted hops", proxy, []string{"6.6.6.6, " + client + ", 10.0.0.2"}, nil, client},
		{"trusted single address", proxy, []string{"6.6.6.6, " + client + ", 192.0.2.10"}, nil, client},
		{"host next to trusted single address is not trusted", proxy, []string{"6.6.6.6, 192.0.2.11, 192.0.2.10"}, nil, "192.0.2.11"},
		{"trusted IPv6 hop", "2001:db8:ffff::1", []string{client + ", 2001:db8:ffff::2"}, nil, client},
		{"all trusted gives left-most", proxy, []string{"10.0.0.3, 10.0.0.2"}, nil, "10.0.0.3"},

		// Malformed or hidden entries stop the walk at the nearest
		// parsed address to their right.
		{"malformed in the middle", proxy, []string{"6.6.6.6, junk, 10.0.0.2"}, nil, "10.0.0.2"},
		{"malformed right-most", proxy, []string{"6.6.6.6, junk"}, nil, proxy},
		{"attacker address behind trusted-looking junk", proxy, []string{"6.6.6.6, 10.0.0.9 10.0.0.8, 10.0.0.2"}, nil, "10.0.0.2"},
		{"unknown", proxy, []string{"6.6.6.6, unknown, 10.0.0.2"}, nil, "10.0.0.2"},
		{"empty element", proxy, []string{"6.6.6.6, , 10.0.0.2"}, nil, "10.0.0.2"},
		{"trailing comma", proxy, []string{"6.6.6.6,"}, nil, proxy},
		{"quoted address", proxy, []string{`6.6.6.6, "203.0.113.7"`}, nil, proxy},
		{"IPv4 in brackets", proxy, []string{"6.6.6.6, [203.0.113.7]"}, nil, proxy},
		{"IPv4 with zone", proxy, []string{"6.6.6.6, 203.0.113.7%eth0"}, nil, proxy},
		{"bad zone characters", proxy, []string{"6.6.6.6, fe80::1%a/b"}, nil, proxy},
		{"blank header is an empty chain", proxy, []string{" "}, nil, proxy},

		// Address forms.
		{"IPv4 with port", proxy, []string{"203.0.113.7:5678, 10.0.0.2:443"}, nil, client},
		{"IPv6 with port", proxy, []string{"[2001:db8:1::7]:443"}, nil, "2001:db8:1::7"},
		{"IPv6 in brackets", proxy, []string{"[2001:db8:1::7]"}, nil, "2001:db8:1::7"},
		{"bare IPv6", proxy, []string{"2001:db8:1::7, 2001:db8:ffff::2"}, nil, "2001:db8:1::7"},
		{"IPv6 zone stripped", proxy, []string{"fe80::1%eth0"}, nil, "fe80::1"},
		{"IPv6 zone and port", proxy, []string{"[fe80::1%eth0]:80"}, nil, "fe80::1"},
		{"tabs and spaces", proxy, []string{"\t203.0.113.7 ,\t10.0.0.2\t"}, nil, client},
		{"IPv4-mapped client unmapped", proxy, []string{"::ffff:203.0.113.7"}, nil, client},
		{"IPv4-mapped trusted hop skipped", proxy, []string{client + ", ::ffff:10.0.0.2"}, nil, client},
		{"IPv4-mapped peer trusted", "::ffff:10.0.0.1", []string{client}, nil, client},
		{"zoned peer trusted", "2001:db8:ffff::1%eth0", []string{client}, nil, client},

		// Several header lines are one list.
		{"multiple XFF lines", proxy, []string{"6.6.6.6, " + client, "10.0.0.2"}, nil, client},
		{"multiple XFF lines, all trusted", proxy, []string{"10.0.0.4", "10.0.0.3, 10.0.0.2"}, nil, "10.0.0.4"},
		{"empty XFF line in the middle", proxy, []string{"6.6.6.6", "", "10.0.0.2"}, nil, "10.0.0.2"},

		// Forwarded, read only when X-Forwarded-For is absent.
		{"XFF preferred over Forwarded", proxy, []string{client}, []string{"for=198.51.100.9"}, client},
		{"empty XFF still preferred", proxy, []string{""}, []string{"for=198.51.100.9"}, proxy},
		{"Forwarded one hop", proxy, nil, []string{"for=203.0.113.7;proto=https"}, client},
		{"Forwarded two hops", proxy, nil, []string{"for=6.6.6.6, for=203.0.113.7;proto=https, for=10.0.0.2"}, client},
		{"Forwarded quoted IPv6, mixed-case parameters", proxy, nil, []string{`For="[2001:db8:1::7]:4711";PROTO=https, FOR=10.0.0.2;By=_gw`}, "2001:db8:1::7"},
		{"Forwarded quoted IPv4 with port", proxy, nil, []string{`for="203.0.113.7:80"`}, client},
		{"Forwarded escapes", proxy, nil, []string{`for="\[2001:db8:1::7\]"`}, "2001:db8:1::7"},
		{"Forwarded mapped IPv6", proxy, nil, []string{`for="[::ffff:203.0.113.7]"`}, client},
		{"Forwarded zone", proxy, nil, []string{`for="[fe80::1%eth0]:80"`}, "fe80::1"},
		{"Forwarded unknown", proxy, nil, []string{"for=6.6.6.6, for=unknown, for=10.0.0.2"}, "10.0.0.2"},
		{"Forwarded obfuscated", proxy, nil, []string{"for=6.6.6.6, for=_hidden, for=10.0.0.2"}, "10.0.0.2"},
		{"Forwarded element without for", proxy, nil, []string{"for=6.6.6.6, proto=https, for=10.0.0.2"}, "10.0.0.2"},
		{"Forwarded unquoted IPv6 is malformed", proxy, nil, []string{"for=6.6.6.6, for=2001:db8:1::7, for=10.0.0.2"}, "10.0.0.2"},
		{"Forwarded unbracketed IPv6 is malformed", proxy, nil, []string{`for=6.6.6.6, for="2001:db8:1::7"`}, proxy},
		{"Forwarded duplicate for is malformed", proxy, nil, []string{"for=6.6.6.6;for=203.0.113.7"}, proxy},
		{"Forwarded comma inside quotes", proxy, nil, []string{`for=203.0.113.7, for=10.0.0.2;ext="a, for=6.6.6.6"`}, client},
		{"Forwarded escaped quote and comma inside quotes", proxy, nil, []string{`for=203.0.113.7, for=10.0.0.2;ext="a\",b"`}, client},
		{"Forwarded escaped backslash before closing quote", proxy, nil, []string{`for=6.6.6.6, for=203.0.113.7;ext="a\\", for=10.0.0.2`}, client},
		{"Forwarded multiple lines", proxy, nil, []string{"for=6.6.6.6, for=203.0.113.7", "for=10.0.0.2"}, client},
		// A client cannot swallow the element a trusted proxy appended
		// with an unterminated quote or a dangling backslash.
		{"Forwarded unterminated quote from client", proxy, nil, []string{`for="6.6.6.6`, "for=203.0.113.7"}, client},
		{"Forwarded dangling backslash from client", proxy, nil, []string{`for="6.6.6.6\`, "for=203.0.113.7"}, client},
		{"Forwarded escaped quote from client, same line", proxy, nil, []string{`for="6.6.6.6\", for=203.0.113.7`}, client},

		// Limits.
		{"64 elements are read", proxy, []string{strings.Join(append([]string{client}, trustedHops(63)...), ", ")}, nil, client},
		{"the 65th element is past the limit", proxy, []string{strings.Join(append([]string{client}, trustedHops(64)...), ", ")}, nil, trustedHops(64)[0]},
		{"65 elements over several lines", proxy, append([]string{client}, trustedHops(64)...), nil, trustedHops(64)[0]},
		{"Forwarded 65th element", proxy, nil, []string{"for=" + client + ", for=" + strings.Join(trustedHops(64), ", for=")}, trustedHops(64)[0]},
		{"client within the last 8 KiB", proxy, []string{"6.6.6.6" + spaces + ", 203.0.113.7, 10.0.0.2"}, nil, client},
		{"element cut by the byte limit", proxy, []string{"10.0.0.9, " + spaces + "10.0.0.4, 10.0.0.3, 10.0.0.2"}, nil, "10.0.0.3"},
		{"byte limit across lines", proxy, []string{"10.0.0.9", spaces, "10.0.0.3, 10.0.0.2"}, nil, "10.0.0.3"},
		{"right-most element cut", proxy, []string{"6.6.6.6, " + spaces + "10.0.0.2"}, nil, proxy},
		{"exactly 8 KiB is read", proxy, []string{strings.Repeat(" ", MaxHeaderBytes-len(client)) + client}, nil, client},
		{"8 KiB and one byte", proxy, []string{strings.Repeat(" ", MaxHeaderBytes-len(client)+1) + client}, nil, proxy},
		{"Forwarded client within the last 8 KiB", proxy, nil, []string{`for="` + spaces, "for=203.0.113.7"}, client},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var peer netip.Addr
			if tt.peer != "" {
				peer = netip.MustParseAddr(tt.peer)
			}
			var want netip.Addr
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			if got := testResolver.Client(peer, header(tt.xff, tt.fwd)); got != want {
				t.Errorf("Client(%v, xff %q, forwarded %q) = %v, want %v", peer, tt.xff, tt.fwd, got, want)
			}
		})
	}
}

func TestIsTrusted(t *testing.T) {
	r := Resolver{Trusted: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8:ffff::/48"),
		netip.MustParsePrefix("::ffff:172.16.0.0/108"), // 172.16.0.0/12, written mapped
		netip.MustParsePrefix("192.0.2.10/32"),
	}}
	tests := []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true},
		{"::ffff:10.1.2.3", true},
		{"11.0.0.1", false},
		{"2001:db8:ffff:1::1", true},
		{"2001:db8:ffff:1::1%eth0", true},
		{"2001:db8:fffe::1", false},
		{"172.31.255.255", true},
		{"172.32.0.0", false},
		{"192.0.2.10", true},
		{"192.0.2.11", false},
		{"::a00:1", false}, // IPv4-compatible, not mapped: IPv6
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			var a netip.Addr
			if tt.addr != "" {
				a = netip.MustParseAddr(tt.addr)
			}
			if got := r.IsTrusted(a); got != tt.want {
				t.Errorf("IsTrusted(%v) = %v, want %v", a, got, tt.want)
			}
		})
	}
	if (Resolver{}).IsTrusted(netip.MustParseAddr("10.0.0.1")) {
		t.Errorf("a Resolver without Trusted trusts 10.0.0.1")
	}
}

func TestParseForwardedFor(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   []string
		wantOK bool
	}{
		{"no header", nil, nil, true},
		{"blank", []string{" \t"}, nil, true},
		{"IPv4", []string{"for=192.0.2.1"}, []string{"192.0.2.1"}, true},
		{"quoted IPv6", []string{`for="[2001:db8::1]"`}, []string{"2001:db8::1"}, true},
		{"IPv6 with port", []string{`for="[2001:db8::1]:4711"`}, []string{"2001:db8::1"}, true},
		{"IPv6 as written", []string{`for="[2001:DB8:0::1]"`}, []string{"2001:DB8:0::1"}, true},
		{"IPv6 zone", []string{`for="[fe80::1%eth0]"`}, []string{"fe80::1%eth0"}, true},
		{"quoted IPv4 with port", []string{`for="192.0.2.1:80"`}, []string{"192.0.2.1"}, true},
		{"parameters in any order and case", []string{`proto=https;By=_gw;For="[2001:db8::1]";HOST="example.com:8443"`}, []string{"2001:db8::1"}, true},
		{"upper-case FOR", []string{"FOR=192.0.2.1"}, []string{"192.0.2.1"}, true},
		{"several elements", []string{"for=192.0.2.1, for=198.51.100.17;by=203.0.113.60;proto=http;host=example.com"}, []string{"192.0.2.1", "198.51.100.17"}, true},
		{"several lines", []string{"for=192.0.2.1", "for=198.51.100.17"}, []string{"192.0.2.1", "198.51.100.17"}, true},
		{"whitespace around , and ;", []string{" for=192.0.2.1 ;\tproto=http , for=198.51.100.17\t"}, []string{"192.0.2.1", "198.51.100.17"}, true},
		{"unknown", []string{"for=unknown, for=UnKnown, for=\"unknown:_p\""}, []string{"unknown", "unknown", "unknown"}, true},
		{"obfuscated", []string{`for=_hidden, for="_SEVKISEK:_p.1", for="192.0.2.1:_x"`}, []string{"_hidden", "_SEVKISEK", "192.0.2.1"}, true},
		{"escapes", []string{`for="\[2001:db8::1\]";ext="a\"b\\c"`}, []string{"2001:db8::1"}, true},
		{"comma and semicolon inside quotes", []string{`ext="a,b;c";for=192.0.2.1`}, []string{"192.0.2.1"}, true},
		{"no for parameter", []string{"proto=https, for=192.0.2.1"}, []string{"unknown", "192.0.2.1"}, true},
		{"empty element", []string{"for=192.0.2.1,,for=198.51.100.17"}, []string{"192.0.2.1", "unknown", "198.51.100.17"}, true},
		{"empty lines", []string{"", ""}, []string{"unknown", "unknown"}, true},
		{"empty pairs", []string{";;for=192.0.2.1;"}, []string{"192.0.2.1"}, true},
		{"large port", []string{`for="192.0.2.1:99999"`}, []string{"192.0.2.1"}, true},
		{"16 parameters", []string{"a=1;b=1;c=1;d=1;e=1;f=1;g=1;h=1;i=1;j=1;k=1;l=1;m=1;n=1;o=1;for=192.0.2.1"}, []string{"192.0.2.1"}, true},

		{"bad node after good", []string{"for=192.0.2.1, for=junk"}, []string{"192.0.2.1"}, false},
		{"unquoted IPv6", []string{"for=2001:db8::1"}, nil, false},
		{"unbracketed IPv6", []string{`for="2001:db8::1"`}, nil, false},
		{"IPv4 in brackets", []string{`for="[192.0.2.1]"`}, nil, false},
		{"unquoted port", []string{"for=192.0.2.1:80"}, nil, false},
		{"port too long", []string{`for="192.0.2.1:123456"`}, nil, false},
		{"port not digits", []string{`for="192.0.2.1:8o"`}, nil, false},
		{"empty port", []string{`for="[2001:db8::1]:"`}, nil, false},
		{"junk after bracket", []string{`for="[2001:db8::1]x"`}, nil, false},
		{"unclosed bracket", []string{`for="[2001:db8::1"`}, nil, false},
		{"bad zone", []string{`for="[fe80::1%e th]"`}, nil, false},
		{"leading zero IPv4", []string{"for=192.0.2.01"}, nil, false},
		{"empty value", []string{`for=""`}, nil, false},
		{"missing value", []string{"for="}, nil, false},
		{"missing =", []string{"for"}, nil, false},
		{"missing name", []string{"=192.0.2.1"}, nil, false},
		{"space around =", []string{"for = 192.0.2.1"}, nil, false},
		{"missing ;", []string{"for=192.0.2.1 proto=http"}, nil, false},
		{"duplicate for", []string{"for=192.0.2.1;for=198.51.100.17"}, nil, false},
		{"duplicate in other case", []string{"for=192.0.2.1;FOR=192.0.2.1"}, nil, false},
		{"duplicate other parameter", []string{"proto=http;for=192.0.2.1;Proto=https"}, nil, false},
		{"unterminated quote", []string{`for="192.0.2.1`}, nil, false},
		{"unterminated quote across lines", []string{`for="192.0.2.1`, "for=198.51.100.17"}, nil, false},
		{"dangling backslash", []string{`for="192.0.2.1\`}, nil, false},
		{"control character in quotes", []string{"ext=\"a\x01b\";for=192.0.2.1"}, nil, false},
		{"backslash outside quotes", []string{`for=192.0.2.1\`}, nil, false},
		{"obfuscated needs a character", []string{"for=_"}, nil, false},
		{"17 parameters", []string{"a=1;b=1;c=1;d=1;e=1;f=1;g=1;h=1;i=1;j=1;k=1;l=1;m=1;n=1;o=1;p=1;for=192.0.2.1"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseForwardedFor(tt.values)
			if ok != tt.wantOK {
				t.Errorf("ParseForwardedFor(%q) ok = %v, want %v", tt.values, ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseForwardedFor(%q) nodes (-want +got):\n%s", tt.values, diff)
			}
		})
	}
}

func TestOutbound(t *testing.T) {
	const host = "example.com"
	sixtyThree := strings.TrimSuffix(strings.Repeat("10.0.0.2, ", 63), ", ")
	spaces := strings.Repeat(" ", MaxHeaderBytes)
	// Two elements whose ext parameters fit in the 8 KiB Client reads but
	// not, with the guard's element appended, in the 8 KiB it writes.
	ext := `"` + strings.Repeat("x ", 2030) + `"`
	bigParams := "for=203.0.113.7;ext=" + ext + ", for=10.0.0.2;ext=" + ext
	ownFits := strings.Repeat("h", MaxHeaderBytes-len("for=203.0.113.7;proto=https;host="))
	tests := []struct {
		name        string
		peer        string
		xff, fwd    []string
		proto, host string
		wantXFF     string
		wantFwd     string
	}{
		// An untrusted peer is the whole chain.
		{
			name: "untrusted peer replaces both chains",
			peer: "203.0.113.7", xff: []string{"6.6.6.6, 10.0.0.2"}, fwd: []string{"for=6.6.6.6"},
			proto: "https", host: host,
			wantXFF: "203.0.113.7",
			wantFwd: "for=203.0.113.7;proto=https;host=example.com",
		},
		{
			name: "untrusted IPv6 peer",
			peer: "2001:db8:1::7", xff: []string{"6.6.6.6"},
			proto: "http", host: "example.com:8080",
			wantXFF: "2001:db8:1::7",
			wantFwd: `for="[2001:db8:1::7]";proto=http;host="example.com:8080"`,
		},
		{
			name: "untrusted mapped peer is unmapped",
			peer: "::ffff:203.0.113.7", proto: "https", host: host,
			wantXFF: "203.0.113.7",
			wantFwd: "for=203.0.113.7;proto=https;host=example.com",
		},

		// A trusted peer: one chain, from the header Client reads, in
		// both headers.
		{
			name: "trusted peer, X-Forwarded-For in both",
			peer: "127.0.0.5", xff: []string{"203.0.113.9"},
			proto: "http", host: "shop.example",
			wantXFF: "203.0.113.9, 127.0.0.5",
			wantFwd: "for=203.0.113.9, for=127.0.0.5;proto=http;host=shop.example",
		},
		{
			name: "X-Forwarded-For read, Forwarded ignored",
			peer: "10.0.0.1", xff: []string{"203.0.113.7"}, fwd: []string{"for=198.51.100.9;proto=https"},
			proto: "https", host: host,
			wantXFF: "203.0.113.7, 10.0.0.1",
			wantFwd: "for=203.0.113.7, for=10.0.0.1;proto=https;host=example.com",
		},
		{
			name:  "Forwarded read without X-Forwarded-For, parameters kept",
			peer:  "10.0.0.1",
			fwd:   []string{`for=6.6.6.6, For="[2001:db8:1::7]:4711" ; proto=https;By=_gw;ext="a, \"b\"\;"`, " for=10.0.0.2 "},
			proto: "https", host: host,
			wantXFF: "6.6.6.6, 2001:db8:1::7, 10.0.0.2, 10.0.0.1",
			wantFwd: `for=6.6.6.6, for="[2001:db8:1::7]";proto=https;By=_gw;ext="a, \"b\";", for=10.0.0.2, for=10.0.0.1;proto=https;host=example.com`,
		},
		{
			name: "Forwarded values re-serialised",
			peer: "10.0.0.1", fwd: []string{`proto="https";;for="203.0.113.7";ext="";host="x y"`},
			proto: "https", host: host,
			wantXFF: "203.0.113.7, 10.0.0.1",
			wantFwd: `for=203.0.113.7;proto=https;ext="";host="x y", for=10.0.0.1;proto=https;host=example.com`,
		},
		{
			name: "trusted peer without incoming chains",
			peer: "10.0.0.1", proto: "https", host: host,
			wantXFF: "10.0.0.1",
			wantFwd: "for=10.0.0.1;proto=https;host=example.com",
		},
		{
			name: "blank incoming chains",
			peer: "10.0.0.1", xff: []string{""}, fwd: []string{"for=203.0.113.7"},
			proto: "http", host: host,
			wantXFF: "10.0.0.1",
			wantFwd: "for=10.0.0.1;proto=http;host=example.com",
		},
		{
			name:  "trusted IPv6 peer, addresses in canonical form",
			peer:  "2001:db8:ffff::1",
			xff:   []string{" 6.6.6.6 ,203.0.113.7:5678", "\t[2001:db8:ffff::2]:443", "::ffff:10.0.0.3, [fe80::1%eth0]:80"},
			proto: "https", host: "[2001:db8::80]:8443",
			wantXFF: "6.6.6.6, 203.0.113.7, 2001:db8:ffff::2, 10.0.0.3, fe80::1, 2001:db8:ffff::1",
			wantFwd: `for=6.6.6.6, for=203.0.113.7, for="[2001:db8:ffff::2]", for=10.0.0.3, for="[fe80::1]", for="[2001:db8:ffff::1]";proto=https;host="[2001:db8::80]:8443"`,
		},

		// Malformed and hidden elements, and all left of them, are not
		// copied.
		{
			name: "malformed X-Forwarded-For element",
			peer: "10.0.0.1", xff: []string{"6.6.6.6, junk, 203.0.113.7, 10.0.0.2"}, fwd: []string{"for=198.51.100.9"},
			proto: "http", host: host,
			wantXFF: "203.0.113.7, 10.0.0.2, 10.0.0.1",
			wantFwd: "for=203.0.113.7, for=10.0.0.2, for=10.0.0.1;proto=http;host=example.com",
		},
		{
			name: "malformed right-most X-Forwarded-For element",
			peer: "10.0.0.1", xff: []string{"6.6.6.6, junk"}, fwd: []string{"for=203.0.113.7"},
			proto: "http", host: host,
			wantXFF: "10.0.0.1",
			wantFwd: "for=10.0.0.1;proto=http;host=example.com",
		},
		{
			name: "unknown Forwarded node",
			peer: "10.0.0.1", fwd: []string{"for=6.6.6.6, for=unknown;proto=http, for=10.0.0.2;proto=https"},
			proto: "http", host: host,
			wantXFF: "10.0.0.2, 10.0.0.1",
			wantFwd: "for=10.0.0.2;proto=https, for=10.0.0.1;proto=http;host=example.com",
		},
		{
			name: "obfuscated Forwarded node",
			peer: "10.0.0.1", fwd: []string{`for=6.6.6.6, for="_hidden:_p", for=203.0.113.7`},
			proto: "http", host: host,
			wantXFF: "203.0.113.7, 10.0.0.1",
			wantFwd: "for=203.0.113.7, for=10.0.0.1;proto=http;host=example.com",
		},
		{
			name: "Forwarded element without for",
			peer: "10.0.0.1", fwd: []string{"for=6.6.6.6, proto=https, for=203.0.113.7"},
			proto: "http", host: host,
			wantXFF: "203.0.113.7, 10.0.0.1",
			wantFwd: "for=203.0.113.7, for=10.0.0.1;proto=http;host=example.com",
		},
		{
			name: "unterminated quote from the client",
			peer: "10.0.0.1", fwd: []string{`for="6.6.6.6`, "for=203.0.113.7"},
			proto: "http", host: host,
			wantXFF: "203.0.113.7, 10.0.0.1",
			wantFwd: "for=203.0.113.7, for=10.0.0.1;proto=http;host=example.com",
		},

		// Limits.
		{
			name: "63 incoming elements kept",
			peer: "10.0.0.1", xff: []string{sixtyThree},
			proto: "http", host: host,
			wantXFF: sixtyThree + ", 10.0.0.1",
			wantFwd: "for=" + strings.ReplaceAll(sixtyThree, ", ", ", for=") + ", for=10.0.0.1;proto=http;host=example.com",
		},
		{
			name: "the 64th incoming element dropped",
			peer: "10.0.0.1", xff: []string{"203.0.113.7, " + sixtyThree},
			proto: "http", host: host,
			wantXFF: sixtyThree + ", 10.0.0.1",
			wantFwd: "for=" + strings.ReplaceAll(sixtyThree, ", ", ", for=") + ", for=10.0.0.1;proto=http;host=example.com",
		},
		{
			name: "element cut by the byte limit dropped",
			peer: "10.0.0.1", xff: []string{"6.6.6.6" + spaces + ", 203.0.113.7"},
			proto: "http", host: host,
			wantXFF: "203.0.113.7, 10.0.0.1",
			wantFwd: "for=203.0.113.7, for=10.0.0.1;proto=http;host=example.com",
		},
		{
			name: "parameters that do not fit dropped from the left",
			peer: "10.0.0.1", fwd: []string{bigParams},
			proto: "http", host: host,
			wantXFF: "203.0.113.7, 10.0.0.2, 10.0.0.1",
			wantFwd: "for=203.0.113.7, for=10.0.0.2;ext=" + ext + ", for=10.0.0.1;proto=http;host=example.com",
		},
		{
			name: "host that fits exactly",
			peer: "203.0.113.7", proto: "https", host: ownFits,
			wantXFF: "203.0.113.7",
			wantFwd: "for=203.0.113.7;proto=https;host=" + ownFits,
		},
		{
			name: "host that does not fit left out",
			peer: "203.0.113.7", proto: "https", host: ownFits + "h",
			wantXFF: "203.0.113.7",
			wantFwd: "for=203.0.113.7;proto=https",
		},

		// proto and host.
		{
			name: "host quoting and escapes",
			peer: "203.0.113.7", proto: "https", host: `a"b\c`,
			wantXFF: "203.0.113.7",
			wantFwd: `for=203.0.113.7;proto=https;host="a\"b\\c"`,
		},
		{
			name: "host with control characters left out",
			peer: "203.0.113.7", proto: "https", host: "example.com\r\nX-Evil: 1",
			wantXFF: "203.0.113.7",
			wantFwd: "for=203.0.113.7;proto=https",
		},
		{
			name:    "empty proto and host left out",
			peer:    "203.0.113.7",
			wantXFF: "203.0.113.7",
			wantFwd: "for=203.0.113.7",
		},
		{
			name: "invalid peer",
			peer: "", xff: []string{"6.6.6.6"}, proto: "https", host: host,
			wantXFF: "unknown",
			wantFwd: "for=unknown;proto=https;host=example.com",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var peer netip.Addr
			if tt.peer != "" {
				peer = netip.MustParseAddr(tt.peer)
			}
			xff, fwd := testResolver.Outbound(peer, header(tt.xff, tt.fwd), tt.proto, tt.host)
			if xff != tt.wantXFF {
				t.Errorf("X-Forwarded-For = %q, want %q", xff, tt.wantXFF)
			}
			if fwd != tt.wantFwd {
				t.Errorf("Forwarded = %q, want %q", fwd, tt.wantFwd)
			}
			if _, ok := ParseForwardedFor([]string{fwd}); !ok {
				t.Errorf("Forwarded %q does not parse", fwd)
			}
			if len(xff) > MaxHeaderBytes || len(fwd) > MaxHeaderBytes {
				t.Errorf("X-Forwarded-For has %d bytes and Forwarded %d, want at most %d", len(xff), len(fwd), MaxHeaderBytes)
			}
		})
	}
}

// TestOutboundUpstreamAgrees checks that an upstream which trusts the guard
// and the same proxies, reading either header Outbound built, finds the
// same client as the guard did, except where the package comment says it
// cannot.
func TestOutboundUpstreamAgrees(t *testing.T) {
	guard := netip.MustParseAddr("10.9.9.9")
	upstream := Resolver{Trusted: append([]netip.Prefix{netip.PrefixFrom(guard, 32)}, testResolver.Trusted...)}
	// hops returns n distinct trusted addresses.
	hops := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("10.1.%d.%d", i/250, i%250+1))
		}
		return out
	}
	tests := []struct {
		name string
		peer string
		xff  []string
		fwd  []string
		want string // what the upstream reads, if not what the guard read
	}{
		{"untrusted peer with spoofed chains", "203.0.113.7", []string{"6.6.6.6"}, []string{"for=6.6.6.6"}, ""},
		{"trusted peer, one hop in both", "10.0.0.1", []string{"203.0.113.7"}, []string{"for=203.0.113.7"}, ""},
		{"trusted peer, no chain", "10.0.0.1", nil, nil, ""},
		{"trusted peer, two hops", "10.0.0.1", []string{"6.6.6.6, 203.0.113.7, 10.0.0.2"}, nil, ""},
		{"trusted peer, all trusted", "10.0.0.1", []string{"10.0.0.3, 10.0.0.2"}, nil, ""},
		{"trusted peer, Forwarded only", "10.0.0.1", nil, []string{`for=6.6.6.6, for="[2001:db8:1::7]"`}, ""},
		{"trusted peer, Forwarded ignored for X-Forwarded-For", "10.0.0.1", []string{"203.0.113.7"}, []string{"for=198.51.100.9"}, ""},
		{"trusted IPv6 peer", "2001:db8:ffff::1", []string{"[2001:db8:1::7]:443"}, nil, ""},
		{"malformed element behind trusted hops", "10.0.0.1", []string{"6.6.6.6, junk, 10.0.0.3, 10.0.0.2"}, nil, ""},
		{"malformed right-most element", "10.0.0.1", []string{"6.6.6.6, junk"}, nil, ""},
		{"unknown Forwarded node behind a trusted hop", "10.0.0.1", nil, []string{"for=6.6.6.6, for=unknown, for=10.0.0.2"}, ""},
		{"cut element behind a trusted hop", "10.0.0.1", []string{"6.6.6.6" + strings.Repeat(" ", MaxHeaderBytes) + ", 10.0.0.2"}, nil, ""},
		{"client behind 62 trusted hops", "10.0.0.1", []string{strings.Join(append([]string{"6.6.6.6", "203.0.113.7"}, hops(62)...), ", ")}, nil, ""},
		{"all 64 read elements trusted", "10.0.0.1", []string{strings.Join(append([]string{"6.6.6.6"}, hops(64)...), ", ")}, nil, hops(64)[1]},
		{"client behind 63 trusted hops", "10.0.0.1", []string{strings.Join(append([]string{"203.0.113.7"}, hops(63)...), ", ")}, nil, hops(63)[0]},
		{"invalid peer", "", []string{"6.6.6.6"}, nil, guard.String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var peer netip.Addr
			if tt.peer != "" {
				peer = netip.MustParseAddr(tt.peer)
			}
			in := header(tt.xff, tt.fwd)
			want := testResolver.Client(peer, in)
			if tt.want != "" {
				want = netip.MustParseAddr(tt.want)
			}
			xff, fwd := testResolver.Outbound(peer, in, "https", "example.com")
			if got := upstream.Client(guard, http.Header{"X-Forwarded-For": {xff}}); got != want {
				t.Errorf("upstream reads %v from X-Forwarded-For %q, want %v", got, xff, want)
			}
			if got := upstream.Client(guard, http.Header{"Forwarded": {fwd}}); got != want {
				t.Errorf("upstream reads %v from Forwarded %q, want %v", got, fwd, want)
			}
		})
	}
}

func TestPrefix(t *testing.T) {
	tests := []struct {
		addr         string
		v4bits, v6bs int
		want         string
	}{
		{"203.0.113.7", DefaultV4Bits, DefaultV6Bits, "203.0.113.7/32"},
		{"203.0.113.7", 24, DefaultV6Bits, "203.0.113.0/24"},
		{"2001:db8:1:2:3:4:5:6", DefaultV4Bits, DefaultV6Bits, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:3:4:5:6", DefaultV4Bits, 48, "2001:db8:1::/48"},
		{"::ffff:203.0.113.7", DefaultV4Bits, DefaultV6Bits, "203.0.113.7/32"},
		{"::ffff:203.0.113.7", 16, DefaultV6Bits, "203.0.0.0/16"},
		{"fe80::1:2:3:4%eth0", DefaultV4Bits, DefaultV6Bits, "fe80::/64"},
		{"203.0.113.7", 40, DefaultV6Bits, "203.0.113.7/32"},
		{"203.0.113.7", -1, DefaultV6Bits, "0.0.0.0/0"},
		{"2001:db8::1", DefaultV4Bits, 200, "2001:db8::1/128"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d/%d", tt.addr, tt.v4bits, tt.v6bs), func(t *testing.T) {
			want := netip.MustParsePrefix(tt.want)
			if got := Prefix(netip.MustParseAddr(tt.addr), tt.v4bits, tt.v6bs); got != want {
				t.Errorf("Prefix(%s, %d, %d) = %v, want %v", tt.addr, tt.v4bits, tt.v6bs, got, want)
			}
		})
	}
	if got := Prefix(netip.Addr{}, DefaultV4Bits, DefaultV6Bits); got != (netip.Prefix{}) {
		t.Errorf("Prefix of the zero Addr = %v, want the zero Prefix", got)
	}
}

func TestJoinTail(t *testing.T) {
	tests := []struct {
		vals    []string
		limit   int
		want    string
		wantCut bool
	}{
		{nil, 5, "", false},
		{[]string{"abc"}, 5, "abc", false},
		{[]string{"abcdefg"}, 5, "cdefg", true},
		{[]string{"ab", "cd"}, 5, "ab,cd", false},
		{[]string{"ab", "cd"}, 4, "b,cd", true},
		{[]string{"ab", "cd"}, 3, ",cd", true},
		{[]string{"ab", "cd"}, 2, "cd", true},
		{[]string{"a", "bcdefgh", "i"}, 4, "gh,i", true},
		{[]string{"", "", ""}, 2, ",,", false},
		{[]string{"", "", ""}, 1, ",", true},
		{[]string{"ab", "", "cd"}, 4, ",,cd", true},
		{[]string{"ab", "", "cd"}, 6, "ab,,cd", false},
	}
	for _, tt := range tests {
		got, cut := joinTail(tt.vals, tt.limit)
		if got != tt.want || cut != tt.wantCut {
			t.Errorf("joinTail(%q, %d) = %q, %v, want %q, %v", tt.vals, tt.limit, got, cut, tt.want, tt.wantCut)
		}
	}
}

// TestClientHeaderChoice: told which header its proxies write, the
// resolver reads that one only, so a client's copy of the other, passed
// through by a proxy that does not manage it, names nobody.
func TestClientHeaderChoice(t *testing.T) {
	const proxy, client = "10.0.0.1", "203.0.113.7"
	tests := []struct {
		name, header string
		xff, fwd     []string
		want         string
	}{
		{"auto: XFF wins", "", []string{client}, []string{"for=6.6.6.6"}, client},
		{"auto: Forwarded when XFF is absent", "", nil, []string{"for=" + client}, client},
		{"forwarded: a client's XFF is ignored", HeaderForwarded, []string{"6.6.6.6"}, []string{"for=" + client}, client},
		{"forwarded: without Forwarded, the proxy", HeaderForwarded, []string{"6.6.6.6"}, nil, proxy},
		{"x-forwarded-for: a client's Forwarded is ignored", HeaderXFF, []string{client}, []string{"for=6.6.6.6"}, client},
		{"x-forwarded-for: without XFF, the proxy", HeaderXFF, nil, []string{"for=6.6.6.6"}, proxy},
	}
	for _, tc := range tests {
		r := Resolver{Trusted: testResolver.Trusted, Header: tc.header}
		h := header(tc.xff, tc.fwd)
		if got := r.Client(netip.MustParseAddr(proxy), h); got.String() != tc.want {
			t.Errorf("%s: client %s, want %s", tc.name, got, tc.want)
		}
		// What goes upstream names the same client first.
		xff, _ := r.Outbound(netip.MustParseAddr(proxy), h, "http", "shop.example")
		if first, _, _ := strings.Cut(xff, ","); first != tc.want {
			t.Errorf("%s: X-Forwarded-For sent upstream %q, want it to start with %s", tc.name, xff, tc.want)
		}
	}
}
