// Package clientip decides which address a request to the guard really came
// from, and builds the X-Forwarded-For and Forwarded headers the guard sends
// upstream. It is security code: the address it returns keys rate limits,
// bans and audit records, so a client must not be able to choose it.
//
// # Who the client is
//
// The TCP peer is the only address nobody can forge. When the peer is not
// one of the configured trusted proxies (Resolver.Trusted) it is the
// client, and whatever forwarding headers it sent are ignored: anyone can
// write anything in a header.
//
// When the peer is a trusted proxy, its forwarding chain is read. Every
// proxy appends the address it received the request from to the right end
// of the chain, so the chain is, left to right, whatever the client wrote
// followed by one entry per proxy. Only the entries appended by proxies we
// trust are facts. The walk therefore starts at the right end: the
// right-most entry was written by the peer (trusted) and names the host the
// peer received the request from. If that host is trusted too, the entry to
// its left, which that host wrote, is believable, and so on. The first
// entry naming an untrusted host is the client: a trusted proxy wrote it
// about its own TCP peer. Everything further left was written by that
// client, or by machines we know nothing about; reading from the left, as
// many frameworks once did, lets any client pick its address by sending
// "X-Forwarded-For: 1.2.3.4". If every entry names a trusted host, the
// left-most one is the client (a probe inside the trusted network, say).
//
// # Why a malformed entry stops the walk
//
// An entry that does not parse, or that a proxy deliberately hid
// ("unknown", an obfuscated "_name", a Forwarded element without for=),
// breaks the chain of trust: we cannot tell whether the host behind it is
// trusted, so we cannot tell whether the entry to its left was written by a
// trusted proxy or by an attacker. Skipping it would let an attacker who
// sends "X-Forwarded-For: 6.6.6.6, junk" (or who sits behind a proxy that
// hides its clients) have 6.6.6.6 taken for the next hop. So the walk stops
// and returns the nearest address to the right of the bad entry that did
// parse, which is the trusted proxy that received the request from the
// unidentifiable host, or the peer itself when the right-most entry is bad.
// Errors err towards blaming a proxy, never towards an address a client
// chose.
//
// The chain is also parsed from the right, one element at a time, so text a
// client controls (the left part) cannot change how the entries appended
// after it are read: an unterminated quoted-string or a stray backslash in
// a client's Forwarded header does not swallow the element a trusted proxy
// appended to it.
//
// # Which header
//
// By default (Header ""), X-Forwarded-For is read when the request has it
// (one line or more, even empty ones); only when it is absent is the RFC
// 7239 Forwarded header's for= parameter read. X-Forwarded-For wins because
// it is what nearly all proxies and load balancers write. The trusted
// proxies must therefore write (append to) X-Forwarded-For, or remove any a
// client sent: a proxy that only writes Forwarded and passes a client's
// X-Forwarded-For through lets that client choose its address. Header
// names one header instead (HeaderXFF, HeaderForwarded), and the other is
// then never read: the choice for proxies that manage only one of them.
//
// # Syntax
//
// Header lines are joined with "," in order, as RFC 9110 combines list
// fields. X-Forwarded-For elements are IP addresses, optionally with a port
// ("192.0.2.1:5678", "[2001:db8::1]:443") or in brackets ("[2001:db8::1]"),
// with spaces and tabs around them ignored. Forwarded is parsed per RFC 7239:
// parameters in any order and case, values as tokens or quoted-strings with
// backslash escapes, whitespace allowed around "," and ";", each parameter
// at most once per element, IPv6 only in brackets (so only quoted), ports
// and obfuscated identifiers as in the RFC. Ports and IPv6 zones (made of
// letters, digits and "._~-") are accepted and stripped, and IPv4-mapped
// IPv6 addresses (::ffff:192.0.2.1) are unmapped, both in the chain and for
// the peer, so every address returned is in one canonical form. An empty
// element counts as malformed, unless the whole header is blank, which is an
// empty chain.
//
// # Limits
//
// Only the right-most MaxHeaderBytes bytes of the joined header and the
// right-most MaxElements elements are read; anything further left is
// treated like a malformed element, so the work per request is bounded
// however large the header is.
//
// # Outbound headers
//
// Outbound writes one chain twice, as X-Forwarded-For and as Forwarded, so
// that an upstream that applies these rules, trusting the guard, finds the
// client Client found whichever header it reads. From an untrusted peer the
// chain is the peer alone: nothing the client wrote is passed on. From a
// trusted peer it is the part of the incoming chain that Client can walk,
// followed by the peer, as a well-behaved proxy appends: the elements of
// the header Client reads (X-Forwarded-For when present, else Forwarded)
// from the right up to, not including, the first malformed, hidden or
// over-limit one. That element and everything left of it are dropped, not
// copied: re-sent, the elements left of it would become readable past a gap
// the walk must not cross. An upstream walking the kept chain meets the same
// addresses in the same order, so it stops at the same untrusted address,
// or, when all are trusted, at the same left-most one.
//
// Elements are re-serialised, never copied as text: addresses in one
// canonical form (unmapped, without zone or port), bare in X-Forwarded-For
// and as for= nodes in Forwarded. The guard's own element, the last, also
// carries proto= and host=. Elements that came from Forwarded keep their
// other parameters, in order and with their names as received, values
// written as tokens or quoted-strings; elements from X-Forwarded-For carry
// only for=, their hops' proto and host being unknown.
//
// Both headers stay within the limits an upstream reads: at most
// MaxElements elements (the right-most MaxElements-1 kept and the peer),
// and at most MaxHeaderBytes bytes. The addresses always fit, in about
// 3 KiB; when the parameters do not, the guard's proto and host are left
// out if they do not fit with the addresses, and then the other parameters
// of incoming elements are dropped from the left. The element limit forces
// one exception to the agreement: when Client's answer is the 64th element,
// behind 63 trusted proxies, an upstream can read only 63 incoming elements
// after the peer and names the 63rd, a trusted proxy; this errs towards
// blaming a proxy, as above. An invalid peer, written "unknown", is another:
// the upstream names the guard.
package clientip

import (
	"iter"
	"net/http"
	"net/netip"
	"strings"
)

// Limits on the forwarding chain, and the default per-source prefix
// lengths.
const (
	// MaxElements is the most elements of a forwarding chain that are read,
	// counted from the right.
	MaxElements = 64
	// MaxHeaderBytes is the most bytes of a comma-joined forwarding header
	// that are read, counted from the right.
	MaxHeaderBytes = 8 << 10
	// DefaultV4Bits is the prefix length that groups IPv4 sources: one
	// address.
	DefaultV4Bits = 32
	// DefaultV6Bits is the prefix length that groups IPv6 sources: one
	// /64, the smallest network normally assigned to a site or host.
	DefaultV6Bits = 64
)

// maxPairs bounds the parameters of one Forwarded element (RFC 7239 defines
// four), which bounds the duplicate check.
const maxPairs = 16

// The headers a Resolver may be told to read alone.
const (
	HeaderXFF       = "x-forwarded-for"
	HeaderForwarded = "forwarded"
)

// Resolver decides client addresses. Trusted are the networks of reverse
// proxies in front of the guard whose forwarding headers are believed;
// Header is which header they write: "" (X-Forwarded-For when present,
// else Forwarded), HeaderXFF or HeaderForwarded.
type Resolver struct {
	Trusted []netip.Prefix
	Header  string
}

// IsTrusted reports whether a is in Trusted. IPv4-mapped IPv6 addresses
// and prefixes are compared as IPv4, and zones are ignored.
func (r Resolver) IsTrusted(a netip.Addr) bool {
	a = normalize(a)
	if !a.IsValid() {
		return false
	}
	for _, p := range r.Trusted {
		if pa := p.Addr(); pa.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(pa.Unmap(), p.Bits()-96)
		}
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Client returns the address of the client that sent request headers h
// over a connection from peer, following the rules in the package comment:
// peer itself unless peer is trusted; otherwise the first untrusted address
// from the right of X-Forwarded-For (or, when that header is absent, of the
// Forwarded for= nodes), the left-most address if all are trusted, and the
// nearest parsed address to the right of a malformed, hidden or over-limit
// element. The result is always unmapped and without zone.
func (r Resolver) Client(peer netip.Addr, h http.Header) netip.Addr {
	peer = normalize(peer)
	if !r.IsTrusted(peer) {
		return peer
	}
	client := peer
	for hp, ok := range chainFromRight(h, r.Header) {
		if !ok {
			return client
		}
		if !r.IsTrusted(hp.addr) {
			return hp.addr
		}
		client = hp.addr
	}
	return client
}

// hop is one well-formed element of a forwarding chain.
type hop struct {
	addr netip.Addr // normalized
	elem string     // the Forwarded element as received; "" for X-Forwarded-For
}

// chainFromRight yields the hops of the forwarding chain in h from the
// right, each with ok=true, and then (hop{}, false) if it met an element
// that is malformed, hidden or past the limits, after which it stops.
// which is the Resolver's Header.
func chainFromRight(h http.Header, which string) iter.Seq2[hop, bool] {
	return func(yield func(hop, bool) bool) {
		if vals := h.Values("X-Forwarded-For"); which == HeaderXFF || which == "" && len(vals) > 0 {
			s, cut := joinTail(vals, MaxHeaderBytes)
			for e, ok := range elementsFromRight(s, cut, false) {
				var hp hop
				if ok {
					hp.addr, ok = parseXFFElement(e)
				}
				if !yield(hp, ok) || !ok {
					return
				}
			}
			return
		}
		s, cut := joinTail(h.Values("Forwarded"), MaxHeaderBytes)
		for e, ok := range elementsFromRight(s, cut, true) {
			var hp hop
			if ok {
				var node string
				if node, ok = parseElement(e, nil); ok {
					// "unknown" and obfuscated nodes do not parse: they
					// stop the walk like a malformed element.
					a, err := netip.ParseAddr(node)
					ok = err == nil
					hp = hop{addr: normalize(a), elem: e}
				}
			}
			if !yield(hp, ok) || !ok {
				return
			}
		}
	}
}

// Outbound returns the X-Forwarded-For and Forwarded values to send
// upstream for a request received from peer with headers h, where proto is
// the scheme the client used ("http" or "https") and host the Host it asked
// for. Both describe one chain, as the package comment explains: peer alone
// if peer is untrusted; otherwise the incoming elements Client can walk
// (from the header Client reads, right of the first malformed, hidden or
// over-limit element), then peer. X-Forwarded-For lists the addresses,
// joined with ", " ("203.0.113.9, 10.0.0.1"); Forwarded has one for=
// element per address, IPv6 written for="[2001:db8::1]", and the last
// element, peer's, also carries proto and host
// ("for=203.0.113.9, for=10.0.0.1;proto=http;host=shop.example"). proto
// and host are written as tokens when they are tokens, as quoted-strings
// otherwise, and left out when empty, when they hold control characters,
// or when they would not fit in MaxHeaderBytes. Elements that came from
// Forwarded keep their other parameters, as far as they fit. An invalid
// peer is written "unknown" in both headers.
func (r Resolver) Outbound(peer netip.Addr, h http.Header, proto, host string) (xff, forwarded string) {
	peer = normalize(peer)
	// The kept hops, right to left.
	var hops []hop
	if r.IsTrusted(peer) {
		for hp, ok := range chainFromRight(h, r.Header) {
			if !ok || len(hops) == MaxElements-1 {
				break
			}
			hops = append(hops, hp)
		}
	}

	// The addresses, which always fit: size is what they take in
	// Forwarded, separators included.
	own, ownXFF := "for=unknown", "unknown"
	if peer.IsValid() {
		own, ownXFF = "for="+forwardedNode(peer), peer.String()
	}
	size := len(own)
	for _, hp := range hops {
		size += len("for=") + len(forwardedNode(hp.addr)) + len(", ")
	}
	// Then the guard's proto and host, then the incoming elements' other
	// parameters from the right, as long as they fit.
	for _, p := range []string{param("proto", proto), param("host", host)} {
		if size+len(p) <= MaxHeaderBytes {
			own += p
			size += len(p)
		}
	}
	params := make([]string, len(hops))
	for i, hp := range hops {
		if hp.elem == "" {
			continue
		}
		p := otherParams(hp.elem)
		if size+len(p) > MaxHeaderBytes {
			break
		}
		params[i] = p
		size += len(p)
	}

	var x, f strings.Builder
	f.Grow(size)
	for i := len(hops) - 1; i >= 0; i-- {
		a := hops[i].addr
		x.WriteString(a.String())
		x.WriteString(", ")
		f.WriteString("for=")
		f.WriteString(forwardedNode(a))
		f.WriteString(params[i])
		f.WriteString(", ")
	}
	x.WriteString(ownXFF)
	f.WriteString(own)
	return x.String(), f.String()
}

// otherParams re-serialises the parameters of a well-formed Forwarded
// element other than for=, in order, as ";name=value" each.
func otherParams(e string) string {
	var b strings.Builder
	parseElement(e, func(name, value string) {
		if !strings.EqualFold(name, "for") {
			b.WriteString(pair(name, value))
		}
	})
	return b.String()
}

// ParseForwardedFor returns the for= node of each element of RFC 7239
// Forwarded header values, in order, as strings ("192.0.2.1",
// "2001:db8::1", "fe80::1%eth0", "unknown", "_hidden"): IP addresses as
// written but without brackets and port, "unknown" in lower case, and
// obfuscated identifiers as written. An element without a for= parameter,
// including an empty one, yields "unknown": its hop is unidentified, and a
// caller walking the chain must not skip it. A blank header is an empty
// list. ok is false when the syntax is malformed, and then the nodes of the
// elements before the bad one are returned. ParseForwardedFor applies no
// length limits; Client and Outbound do.
func ParseForwardedFor(values []string) (nodes []string, ok bool) {
	s := strings.Join(values, ",")
	if trimOWS(s) == "" {
		return nil, true
	}
	for e := range elementsFromLeft(s, true) {
		node, ok := parseElement(e, nil)
		if !ok {
			return nodes, false
		}
		nodes = append(nodes, node)
	}
	return nodes, true
}

// Prefix returns the prefix of a that is used as a per-source key: a
// unmapped and without zone, masked to v4bits if it is IPv4 and to v6bits
// otherwise (DefaultV4Bits and DefaultV6Bits are the usual choices). Bit
// counts are clamped to the address size; the zero Addr gives the zero
// Prefix.
func Prefix(a netip.Addr, v4bits, v6bits int) netip.Prefix {
	a = normalize(a)
	bits := v6bits
	if a.Is4() {
		bits = v4bits
	}
	p, _ := a.Prefix(min(max(bits, 0), a.BitLen()))
	return p
}

// normalize returns a unmapped and without zone, the one form in which
// addresses are compared and returned.
func normalize(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

// joinTail returns the last limit bytes of vals joined with ",", and
// whether that is less than the whole, copying no more than it returns.
func joinTail(vals []string, limit int) (tail string, cut bool) {
	if len(vals) == 1 {
		if v := vals[0]; len(v) > limit {
			return v[len(v)-limit:], true
		}
		return vals[0], false
	}
	n, i := 0, len(vals)
	for i > 0 && n <= limit {
		i--
		n += len(vals[i])
		if i < len(vals)-1 {
			n++ // the comma after vals[i]
		}
	}
	skip := max(n-limit, 0)
	var b strings.Builder
	b.Grow(n - skip)
	for k := i; k < len(vals); k++ {
		if k > i {
			if skip > 0 {
				skip--
			} else {
				b.WriteByte(',')
			}
		}
		v := vals[k]
		if skip >= len(v) {
			skip -= len(v)
			continue
		}
		b.WriteString(v[skip:])
		skip = 0
	}
	return b.String(), n > limit
}

// elementsFromRight yields the comma-separated elements of s from right to
// left with ok=true, at most MaxElements of them. If there are more, or if
// cut says s is the tail of a longer header so its left-most element may be
// partial, it then yields ("", false) instead of the next one. A blank s
// that is not cut has no elements.
//
// With quotes set (Forwarded), commas inside quoted-strings do not
// separate. Scanning leftwards, a '"' preceded by an odd number of
// backslashes is escaped, by an even number it opens or closes a string:
// this matches a left-to-right reading for any element that is well formed,
// and whatever it makes of a malformed one, each element is validated on
// its own afterwards.
func elementsFromRight(s string, cut, quotes bool) iter.Seq2[string, bool] {
	return func(yield func(string, bool) bool) {
		if !cut && trimOWS(s) == "" {
			return
		}
		end, inQ, n := len(s), false, 0
		for j := len(s) - 1; j >= -1; j-- {
			if j >= 0 {
				c := s[j]
				if quotes && c == '"' && backslashesBefore(s, j)%2 == 0 {
					inQ = !inQ
				}
				if c != ',' || inQ {
					continue
				}
			} else if cut {
				yield("", false)
				return
			}
			if n == MaxElements {
				yield("", false)
				return
			}
			n++
			if !yield(s[j+1:end], true) {
				return
			}
			end = j
		}
	}
}

// backslashesBefore counts the backslashes immediately left of s[j].
func backslashesBefore(s string, j int) int {
	k := 0
	for j-1-k >= 0 && s[j-1-k] == '\\' {
		k++
	}
	return k
}

// elementsFromLeft yields the comma-separated elements of s from left to
// right; with quotes set, commas inside quoted-strings do not separate.
func elementsFromLeft(s string, quotes bool) iter.Seq[string] {
	return func(yield func(string) bool) {
		start, inQ := 0, false
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case quotes && inQ && c == '\\':
				i++
			case quotes && c == '"':
				inQ = !inQ
			case c == ',' && !inQ:
				if !yield(s[start:i]) {
					return
				}
				start = i + 1
			}
		}
		yield(s[start:])
	}
}

// parseXFFElement parses one X-Forwarded-For element: an IP address,
// optionally with port or in brackets (IPv6 only), surrounded by optional
// whitespace. The address is returned normalized.
func parseXFFElement(e string) (netip.Addr, bool) {
	e = trimOWS(e)
	a, err := netip.ParseAddr(e)
	if err != nil {
		ap, err := netip.ParseAddrPort(e)
		switch {
		case err == nil:
			a = ap.Addr()
		case len(e) > 2 && e[0] == '[' && e[len(e)-1] == ']':
			if a, err = netip.ParseAddr(e[1 : len(e)-1]); err != nil || !a.Is6() {
				return netip.Addr{}, false
			}
		default:
			return netip.Addr{}, false
		}
	}
	if !validZone(a.Zone()) {
		return netip.Addr{}, false
	}
	return normalize(a), true
}

// parseElement parses one RFC 7239 forwarded-element, the text between two
// list commas:
//
//	forwarded-element = [ forwarded-pair ] *( OWS ";" OWS [ forwarded-pair ] )
//	forwarded-pair    = token "=" ( token / quoted-string )
//
// (with OWS allowed around ";" and at both ends), and returns its for= node
// as ParseForwardedFor describes it. If each is not nil, it is called
// with the name and the value (quoted-pairs resolved) of each pair, in
// order, as they are read; an element found malformed after some calls
// returns ok=false.
func parseElement(e string, each func(name, value string)) (node string, ok bool) {
	s := trimOWS(e)
	var names [maxPairs]string
	pairs := 0
	node = "unknown"
	for {
		s = trimOWS(s)
		if s == "" {
			return node, true
		}
		if s[0] == ';' {
			s = s[1:]
			continue
		}
		i := tokenLen(s)
		if i == 0 || i == len(s) || s[i] != '=' {
			return "", false
		}
		name := s[:i]
		s = s[i+1:]
		for _, seen := range names[:pairs] {
			if strings.EqualFold(seen, name) {
				return "", false // each parameter at most once (RFC 7239 section 4)
			}
		}
		if pairs == maxPairs {
			return "", false
		}
		names[pairs] = name
		pairs++
		var val string
		if s != "" && s[0] == '"' {
			if val, s, ok = unquote(s); !ok {
				return "", false
			}
		} else {
			j := tokenLen(s)
			if j == 0 {
				return "", false
			}
			val, s = s[:j], s[j:]
		}
		if strings.EqualFold(name, "for") {
			if node, ok = parseNode(val); !ok {
				return "", false
			}
		}
		if each != nil {
			each(name, val)
		}
		s = trimOWS(s)
		if s != "" && s[0] != ';' {
			return "", false
		}
	}
}

// unquote reads the quoted-string at the start of s and returns its value,
// with quoted-pairs resolved, and the rest of s.
func unquote(s string) (val, rest string, ok bool) {
	var b []byte // only allocated once an escape is seen
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			if b != nil {
				return string(b), s[i+1:], true
			}
			return s[1:i], s[i+1:], true
		case c == '\\':
			if i+1 == len(s) || !isQuotable(s[i+1]) {
				return "", "", false
			}
			if b == nil {
				b = append(make([]byte, 0, len(s)), s[1:i]...)
			}
			i++
			b = append(b, s[i])
		case isQuotable(c):
			if b != nil {
				b = append(b, c)
			}
		default:
			return "", "", false
		}
	}
	return "", "", false // unterminated
}

// parseNode checks an RFC 7239 node (section 6):
//
//	node     = nodename [ ":" node-port ]
//	nodename = IPv4address / "[" IPv6address "]" / "unknown" / obfnode
//
// and returns the nodename without brackets ("unknown" in lower case).
func parseNode(v string) (string, bool) {
	host, port, hasPort := v, "", false
	if strings.HasPrefix(v, "[") {
		k := strings.IndexByte(v, ']')
		if k < 0 {
			return "", false
		}
		host = v[1:k]
		if rest := v[k+1:]; rest != "" {
			if rest[0] != ':' {
				return "", false
			}
			port, hasPort = rest[1:], true
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || !validZone(a.Zone()) {
			return "", false
		}
	} else {
		if k := strings.IndexByte(v, ':'); k >= 0 {
			host, port, hasPort = v[:k], v[k+1:], true
		}
		switch {
		case strings.EqualFold(host, "unknown"):
			host = "unknown"
		case isObfuscated(host):
		default:
			if a, err := netip.ParseAddr(host); err != nil || !a.Is4() {
				return "", false
			}
		}
	}
	if hasPort && !validPort(port) {
		return "", false
	}
	return host, true
}

// validPort reports whether p is an RFC 7239 node-port: 1 to 5 digits or an
// obfuscated identifier.
func validPort(p string) bool {
	if isObfuscated(p) {
		return true
	}
	if len(p) == 0 || len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// isObfuscated reports whether s is "_" 1*( ALPHA / DIGIT / "." / "_" / "-" ).
func isObfuscated(s string) bool {
	if len(s) < 2 || s[0] != '_' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// validZone reports whether an IPv6 zone is empty or made only of
// letters, digits and "._~-" (the characters of interface names and of
// RFC 6874 zone identifiers, less percent-encoding).
func validZone(z string) bool {
	for i := 0; i < len(z); i++ {
		if c := z[i]; !isAlnum(c) && c != '.' && c != '_' && c != '~' && c != '-' {
			return false
		}
	}
	return true
}

// forwardedNode formats a (valid, normalized) address as a Forwarded node
// value: bare IPv4, bracketed and quoted IPv6.
func forwardedNode(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	return `"[` + a.String() + `]"`
}

// param formats ";name=value" for a Forwarded element as pair does; it
// returns "" for an empty value or one that a quoted-string cannot carry
// (control characters).
func param(name, value string) string {
	if value == "" {
		return ""
	}
	return pair(name, value)
}

// pair formats ";name=value" for a Forwarded element, value as a token if
// it is one and as a quoted-string otherwise, or "" if value holds a
// character that a quoted-string cannot carry.
func pair(name, value string) string {
	if value != "" && tokenLen(value) == len(value) {
		return ";" + name + "=" + value
	}
	var b strings.Builder
	b.Grow(len(name) + len(value) + 4)
	b.WriteString(";" + name + `="`)
	for i := 0; i < len(value); i++ {
		c := value[i]
		if !isQuotable(c) {
			return ""
		}
		if c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	return b.String()
}

// trimOWS removes spaces and tabs at both ends of s.
func trimOWS(s string) string { return strings.Trim(s, " \t") }

// tokenLen returns the length of the RFC 9110 token at the start of s.
func tokenLen(s string) int {
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return i
		}
	}
	return len(s)
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// isTchar reports whether c may appear in an RFC 9110 token.
func isTchar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// isQuotable reports whether c may appear in a quoted-string, plainly or
// after a backslash: HTAB, SP, VCHAR and obs-text, that is anything but
// the other control characters.
func isQuotable(c byte) bool { return c == '\t' || c >= 0x20 && c != 0x7f }
