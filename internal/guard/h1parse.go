package guard

import (
	"bytes"
	"errors"
	"strconv"

	"golang.org/x/net/http/httpguts"
)

// HTTP/1.1 heads for the fast path (fastpath.go).
//
// The request parser accepts a strict subset of HTTP/1.1 and answers
// "not mine" for everything else, never "bad request": a request outside
// the subset is handed, bytes unchanged, to net/http's server, which
// parses it again and answers it the way the guard always did. So the
// fast path adds no leniency of its own: a request both parsers accept
// means the same to both (FuzzRequestHead checks that against net/http),
// and a request smuggling attempt (two lengths, a transfer coding, an
// obsolete line fold, a bare LF or CR) is never the fast path's to judge.
//
// The subset: "METHOD /path[?query] HTTP/1.1" with CRLF line ends; a
// method of token characters other than CONNECT; a path of unreserved, sub-delim, ':', '@'
// and '/' characters only (no percent-encoding, so the decoded path is the
// path as sent); a query of visible ASCII without '#' or ';', its percent
// signs followed by two hex digits (what httputil.ReverseProxy would
// otherwise re-encode); header names of token characters followed at once
// by ':'; values of visible ASCII, spaces, tabs and bytes above 0x7f;
// exactly one Host, valid by net/http's rules; at most one Content-Length, all digits; no
// Transfer-Encoding, Expect, Upgrade or TE; a Connection of "close" and
// "keep-alive" tokens only. The whole head fits the fast path's buffer.
//
// The response parser reads what an upstream sends back and is the usual
// lenient-on-line-ends, strict-on-framing reader: conflicting lengths,
// transfer codings other than chunked, and folded or malformed lines are
// errors (502), never guesses.

// field is one header line: name and value, the value without the
// surrounding whitespace.
type field struct {
	name, value []byte
}

// reqHead is a parsed request head. Its slices point into the buffer the
// head was parsed from.
type reqHead struct {
	method        []byte
	target        []byte // path and query as sent
	path          []byte
	query         []byte // after '?', nil when there is no '?'
	host          []byte
	contentLength int64 // -1: no Content-Length
	close         bool  // Connection: close
	userAgent     []byte
	referer       []byte
	fields        []field // every header line, in order
	size          int     // bytes of the head, the final CRLF included
}

// parseRequestHead parses the head at the start of b into h. It returns
// ok=false, with h undefined, when the head is outside the fast path's
// subset (above), and complete=false when b holds no complete head yet
// (and nothing seen so far is outside the subset).
func parseRequestHead(b []byte, h *reqHead) (ok, complete bool) {
	*h = reqHead{fields: h.fields[:0], contentLength: -1}
	line, rest, ok, complete := nextLine(b)
	if !ok || !complete {
		return ok, complete
	}
	// Request line.
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || sp > 32 {
		return false, true
	}
	h.method = line[:sp]
	for _, c := range h.method {
		if !isTchar(c) {
			return false, true
		}
	}
	if string(h.method) == "CONNECT" {
		return false, true // a tunnel, net/http's to refuse or serve
	}
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 || string(line[sp+1:]) != "HTTP/1.1" {
		return false, true
	}
	h.target = line[:sp]
	if h.target[0] != '/' {
		return false, true // absolute-form, authority-form, asterisk-form
	}
	h.path = h.target
	if q := bytes.IndexByte(h.target, '?'); q >= 0 {
		h.path, h.query = h.target[:q], h.target[q+1:]
		if !validQuery(h.query) {
			return false, true
		}
	}
	for _, c := range h.path {
		if !isPathChar(c) {
			return false, true
		}
	}
	// Header lines.
	for {
		line, rest, ok, complete = nextLine(rest)
		if !ok || !complete {
			return ok, complete
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := splitField(line)
		if !ok {
			return false, true // an obs-fold, whitespace before the colon, a control byte, ...
		}
		switch {
		case equalFold(name, "host"):
			if h.host != nil || len(value) == 0 || !httpguts.ValidHostHeader(string(value)) {
				return false, true // net/http answers these
			}
			h.host = value
		case equalFold(name, "content-length"):
			if h.contentLength >= 0 {
				return false, true
			}
			n, ok := parseDigits(value)
			if !ok {
				return false, true
			}
			h.contentLength = n
		case equalFold(name, "transfer-encoding"), equalFold(name, "expect"),
			equalFold(name, "upgrade"), equalFold(name, "te"):
			return false, true
		case equalFold(name, "connection"):
			for tok := range bytes.SplitSeq(value, []byte{','}) {
				switch tok = trimOWS(tok); {
				case equalFold(tok, "close"):
					h.close = true
				case equalFold(tok, "keep-alive"), len(tok) == 0:
				default:
					return false, true // names a header to drop, or asks to upgrade
				}
			}
		case equalFold(name, "user-agent"):
			h.userAgent = value
		case equalFold(name, "referer"):
			h.referer = value
		}
		h.fields = append(h.fields, field{name, value})
	}
	if h.host == nil {
		return false, true
	}
	h.size = len(b) - len(rest)
	return true, true
}

// splitField splits a header field line into its name, token characters
// followed at once by ':', and its value without the surrounding
// whitespace; ok=false when the line is no such field or the value holds a
// control byte other than HTAB. A line starting with whitespace (an
// obs-fold) has no name.
func splitField(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, false
	}
	name = line[:colon]
	for _, c := range name {
		if !isTchar(c) {
			return nil, nil, false
		}
	}
	value = trimOWS(line[colon+1:])
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return nil, nil, false
		}
	}
	return name, value, true
}

// nextLine splits the CRLF-terminated line at the start of b from the
// rest. A bare LF or a CR not followed by LF is outside the subset.
func nextLine(b []byte) (line, rest []byte, ok, complete bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if bytes.IndexByte(b, '\r') >= 0 && b[len(b)-1] != '\r' {
			return nil, nil, false, true
		}
		return nil, nil, true, false
	}
	if i == 0 || b[i-1] != '\r' {
		return nil, nil, false, true
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false, true
	}
	return line, b[i+1:], true, true
}

// tchars are RFC 9110's token characters.
var tchars = alnumAnd("!#$%&'*+-.^_`|~")

// alnumAnd is a table of ASCII letters and digits and the bytes of extra.
func alnumAnd(extra string) (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for i := range len(extra) {
		t[extra[i]] = true
	}
	return t
}

func isTchar(c byte) bool { return tchars[c] }

// pathChars: unreserved, sub-delims, ':', '@' and '/'. net/url keeps such
// a path as sent (EscapedPath returns it unchanged), so the upstream gets
// the same bytes on either path.
var pathChars = alnumAnd("-._~!$&'()*+,;=:@/")

func isPathChar(c byte) bool { return pathChars[c] }

// validQuery reports whether q is a query httputil.ReverseProxy forwards
// unchanged: visible ASCII, no ';' (which it re-encodes) or '#', percent
// signs followed by two hex digits.
func validQuery(q []byte) bool {
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c <= ' ' || c >= 0x7f || c == '#' || c == ';':
			return false
		case c == '%':
			if i+2 >= len(q) || !ishex(q[i+1]) || !ishex(q[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFold reports whether b equals the lower-case ASCII s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// parseDigits parses 1 to 18 decimal digits.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// respHead is a parsed response head from an upstream.
type respHead struct {
	status        int
	contentLength int64 // -1: none
	chunked       bool
	close         bool // Connection: close, or HTTP/1.0 without keep-alive
	hasDate       bool
	fields        []field // header lines to pass on (hop-by-hop ones removed)
	size          int
}

var (
	errRespHead     = errors.New("malformed response head from upstream")
	errRespFraming  = errors.New("conflicting or unsupported response framing from upstream")
	errRespTooLarge = errors.New("response head from upstream too large")
)

// parseResponseHead parses the complete response head at the start of b
// (which must hold it whole: the caller found its end) into h. Hop-by-hop
// fields and the fields named in Connection are left out of h.fields, and
// so are Content-Length and Transfer-Encoding, which the writer puts back
// from h's framing.
func parseResponseHead(b []byte, h *respHead) error {
	*h = respHead{fields: h.fields[:0], contentLength: -1}
	line, rest := cutLine(b)
	// "HTTP/1.x 200 OK": version, status, optional reason.
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return errRespHead
	}
	minor := line[7]
	if minor != '0' && minor != '1' {
		return errRespHead
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil || code < 100 || code > 999 {
		return errRespHead
	}
	h.status = code
	keepAlive10 := false
	var connTokens [][]byte
	for {
		if len(rest) == 0 {
			return errRespHead // no blank line
		}
		line, rest = cutLine(rest)
		if len(line) == 0 {
			break
		}
		name, value, ok := splitField(line)
		if !ok {
			return errRespHead
		}
		switch {
		case equalFold(name, "content-length"):
			n, ok := parseDigits(value)
			if !ok || h.contentLength >= 0 && h.contentLength != n {
				return errRespFraming
			}
			h.contentLength = n
			continue
		case equalFold(name, "transfer-encoding"):
			if h.chunked || !equalFold(value, "chunked") {
				return errRespFraming
			}
			h.chunked = true
			continue
		case equalFold(name, "connection"):
			for tok := range bytes.SplitSeq(value, []byte{','}) {
				tok = trimOWS(tok)
				switch {
				case equalFold(tok, "close"):
					h.close = true
				case equalFold(tok, "keep-alive"):
					keepAlive10 = true
				case len(tok) > 0:
					connTokens = append(connTokens, tok)
				}
			}
			continue
		case isHopByHop(name):
			continue
		case equalFold(name, "date"):
			h.hasDate = true
		}
		h.fields = append(h.fields, field{name, value})
	}
	if minor == '0' && !keepAlive10 {
		h.close = true
	}
	if h.chunked {
		h.contentLength = -1 // RFC 9112 6.3: Transfer-Encoding overrides Content-Length
	}
	if len(connTokens) > 0 {
		h.fields = dropNamed(h.fields, connTokens)
	}
	h.size = len(b) - len(rest)
	return nil
}

// cutLine splits off the line at the start of b, ending in LF or CRLF.
func cutLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line, rest
}

// isHopByHop reports whether name is one of the hop-by-hop headers that
// httputil.ReverseProxy removes (Connection and Transfer-Encoding are
// handled by the callers).
func isHopByHop(name []byte) bool {
	for _, h := range [...]string{"keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "upgrade"} {
		if equalFold(name, h) {
			return true
		}
	}
	return false
}

func dropNamed(fs []field, names [][]byte) []field {
	out := fs[:0]
	for _, f := range fs {
		drop := false
		for _, n := range names {
			if bytes.EqualFold(f.name, n) {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, f)
		}
	}
	return out
}

// headEnd returns the length of the head at the start of b (through the
// blank line, LF or CRLF line ends), or -1 when b holds no complete head.
func headEnd(b []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(b) && b[i] == '\n' {
			return i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2
		}
	}
}
