package guard

import (
	"bufio"
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestParseRequestHead(t *testing.T) {
	const host = "Host: shop.example\r\n"
	for _, tc := range []struct {
		name           string
		head           string
		mine, complete bool
		target, query  string
		contentLength  int64
		close          bool
		fields         int
	}{
		{"simple", "GET /a/b?x=1&y=%41 HTTP/1.1\r\n" + host + "\r\n", true, true, "/a/b?x=1&y=%41", "x=1&y=%41", -1, false, 1},
		{"post", "POST /login HTTP/1.1\r\n" + host + "Content-Length: 12\r\nConnection: keep-alive, close\r\n\r\n", true, true, "/login", "", 12, true, 3},
		{"ows", "GET / HTTP/1.1\r\nHost:\t shop.example \r\nX-A:\r\n\r\n", true, true, "/", "", -1, false, 2},
		{"sub-delims", "GET /a(b)*!$'@:=,+;&/ HTTP/1.1\r\n" + host + "\r\n", true, true, "/a(b)*!$'@:=,+;&/", "", -1, false, 1},
		{"partial", "GET / HTTP/1.1\r\nHost: sh", true, false, "", "", 0, false, 0},
		{"partial CR", "GET / HTTP/1.1\r", true, false, "", "", 0, false, 0},
		{"empty", "", true, false, "", "", 0, false, 0},

		// Everything else is net/http's.
		{"HTTP/1.0", "GET / HTTP/1.0\r\n" + host + "\r\n", false, true, "", "", 0, false, 0},
		{"bare LF", "GET / HTTP/1.1\n" + host + "\r\n", false, true, "", "", 0, false, 0},
		{"bare LF in fields", "GET / HTTP/1.1\r\n" + host + "X: y\n\r\n", false, true, "", "", 0, false, 0},
		{"bare CR", "GET / HTTP/1.1\r\nX: a\rb\r\n" + host + "\r\n", false, true, "", "", 0, false, 0},
		{"bare CR partial", "GET / HTTP/1.1\r\nX: a\rb", false, true, "", "", 0, false, 0},
		{"no host", "GET / HTTP/1.1\r\n\r\n", false, true, "", "", 0, false, 0},
		{"two hosts", "GET / HTTP/1.1\r\n" + host + host + "\r\n", false, true, "", "", 0, false, 0},
		{"empty host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", false, true, "", "", 0, false, 0},
		{"two lengths", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 1\r\n\r\n", false, true, "", "", 0, false, 0},
		{"signed length", "POST / HTTP/1.1\r\n" + host + "Content-Length: +1\r\n\r\n", false, true, "", "", 0, false, 0},
		{"chunked", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n", false, true, "", "", 0, false, 0},
		{"TE and CL", "POST / HTTP/1.1\r\n" + host + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", false, true, "", "", 0, false, 0},
		{"expect", "POST / HTTP/1.1\r\n" + host + "Expect: 100-continue\r\n\r\n", false, true, "", "", 0, false, 0},
		{"upgrade", "GET / HTTP/1.1\r\n" + host + "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n", false, true, "", "", 0, false, 0},
		{"connection names a field", "GET / HTTP/1.1\r\n" + host + "Connection: X-Secret\r\n\r\n", false, true, "", "", 0, false, 0},
		{"te", "GET / HTTP/1.1\r\n" + host + "TE: trailers\r\n\r\n", false, true, "", "", 0, false, 0},
		{"obs-fold", "GET / HTTP/1.1\r\n" + host + "X: a\r\n b\r\n\r\n", false, true, "", "", 0, false, 0},
		{"space before colon", "GET / HTTP/1.1\r\n" + host + "X : a\r\n\r\n", false, true, "", "", 0, false, 0},
		{"control in value", "GET / HTTP/1.1\r\n" + host + "X: a\x00b\r\n\r\n", false, true, "", "", 0, false, 0},
		{"percent path", "GET /a%2Fb HTTP/1.1\r\n" + host + "\r\n", false, true, "", "", 0, false, 0},
		{"dot segment stays", "GET /a/../b HTTP/1.1\r\n" + host + "\r\n", true, true, "/a/../b", "", -1, false, 1},
		{"absolute form", "GET http://shop.example/ HTTP/1.1\r\n" + host + "\r\n", false, true, "", "", 0, false, 0},
		{"asterisk", "OPTIONS * HTTP/1.1\r\n" + host + "\r\n", false, true, "", "", 0, false, 0},
		{"semicolon query", "GET /?a=1;b=2 HTTP/1.1\r\n" + host + "\r\n", false, true, "", "", 0, false, 0},
		{"bad escape in query", "GET /?a=%G1 HTTP/1.1\r\n" + host + "\r\n", false, true, "", "", 0, false, 0},
		{"fragment", "GET /#x HTTP/1.1\r\n" + host + "\r\n", false, true, "", "", 0, false, 0},
		{"non-ASCII path", "GET /\xc3\xa9 HTTP/1.1\r\n" + host + "\r\n", false, true, "", "", 0, false, 0},
		{"bad method", "G(T / HTTP/1.1\r\n" + host + "\r\n", false, true, "", "", 0, false, 0},
		{"two spaces", "GET  / HTTP/1.1\r\n" + host + "\r\n", false, true, "", "", 0, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h reqHead
			mine, complete := parseRequestHead([]byte(tc.head), &h)
			if mine != tc.mine || complete != tc.complete {
				t.Fatalf("mine, complete = %v, %v; want %v, %v", mine, complete, tc.mine, tc.complete)
			}
			if !mine || !complete {
				return
			}
			if string(h.target) != tc.target || string(h.query) != tc.query || h.contentLength != tc.contentLength ||
				h.close != tc.close || len(h.fields) != tc.fields || h.size != len(tc.head) || string(h.host) != "shop.example" {
				t.Errorf("got target %q query %q length %d close %v fields %d size %d host %q", h.target, h.query,
					h.contentLength, h.close, len(h.fields), h.size, h.host)
			}
		})
	}
}

func TestParseResponseHead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		head    string
		err     error
		status  int
		length  int64
		chunked bool
		close   bool
		fields  []string
	}{
		{"simple", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\nDate: x\r\n\r\n", nil, 200, 5, false, false, []string{"Content-Type", "Date"}},
		{"no reason, LF", "HTTP/1.1 404\nX-A: 1\n\n", nil, 404, -1, false, false, []string{"X-A"}},
		{"chunked wins", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", nil, 200, -1, true, false, nil},
		{"hop-by-hop dropped", "HTTP/1.1 200 OK\r\nConnection: close, X-Private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\nUpgrade: h2c\r\nX-Kept: 2\r\n\r\n", nil, 200, -1, false, true, []string{"X-Kept"}},
		{"1.0 closes", "HTTP/1.0 200 OK\r\n\r\n", nil, 200, -1, false, true, nil},
		{"1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", nil, 200, 0, false, false, nil},
		{"same lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", nil, 200, 5, false, false, nil},
		{"conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", errRespFraming, 0, 0, false, false, nil},
		{"gzip coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", errRespFraming, 0, 0, false, false, nil},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", errRespFraming, 0, 0, false, false, nil},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", errRespHead, 0, 0, false, false, nil},
		{"HTTP/2", "HTTP/2 200 OK\r\n\r\n", errRespHead, 0, 0, false, false, nil},
		{"short status", "HTTP/1.1 20 OK\r\n\r\n", errRespHead, 0, 0, false, false, nil},
		{"no blank line", "HTTP/1.1 200 OK\r\nX: 1\r\n", errRespHead, 0, 0, false, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h respHead
			err := parseResponseHead([]byte(tc.head), &h)
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			var names []string
			for _, f := range h.fields {
				names = append(names, string(f.name))
			}
			if h.status != tc.status || h.contentLength != tc.length || h.chunked != tc.chunked || h.close != tc.close || !slices.Equal(names, tc.fields) {
				t.Errorf("got status %d length %d chunked %v close %v fields %q", h.status, h.contentLength, h.chunked, h.close, names)
			}
		})
	}
}

func TestHeadEndAndChunkSize(t *testing.T) {
	for in, want := range map[string]int{"a\r\n\r\nb": 5, "a\n\nb": 3, "a\r\nb\r\n": -1, "a\r\n\r": -1, "a\nb\r\n\r\n": 7} {
		if got := headEnd([]byte(in)); got != want {
			t.Errorf("headEnd(%q) = %d, want %d", in, got, want)
		}
	}
	for in, want := range map[string]int64{"1a": 26, "0": 0, "FF;ext=1": 255, "10 ": 16, "": -1, "x": -1, "-1": -1, "1000000000000000": -1} {
		got, ok := parseChunkSize([]byte(in))
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("parseChunkSize(%q) = %d, want %d", in, got, want)
		}
	}
}

// FuzzRequestHead checks the fast parser against net/http's: whatever the
// fast path takes, net/http takes too and reads the same way: method,
// target, path, query, Host, length, Connection: close and every field.
// (What the fast path declines is net/http's alone, so it needs no check.)
func FuzzRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET /a?b=c HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: x\r\n\r\n",
		"POST /l HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nhOsT: a\r\ncontent-length: 0\r\n\r\n",
		"GET /x HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 1.2.3.4\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h reqHead
		mine, complete := parseRequestHead(b, &h)
		if !mine || !complete {
			return
		}
		if h.size > len(b) || !bytes.HasSuffix(b[:h.size], []byte("\r\n\r\n")) {
			t.Fatalf("head size %d of %q", h.size, b)
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:h.size])))
		if err != nil {
			t.Fatalf("fast path takes %q, net/http refuses it: %v", b[:h.size], err)
		}
		wantLen := max(h.contentLength, 0)
		if r.Method != string(h.method) || r.RequestURI != string(h.target) || r.URL.Path != string(h.path) ||
			r.URL.RawQuery != string(h.query) || r.Host != string(h.host) || r.ContentLength != wantLen || r.Close != h.close {
			t.Fatalf("%q: net/http reads %s %q path %q query %q host %q length %d close %v", b[:h.size],
				r.Method, r.RequestURI, r.URL.Path, r.URL.RawQuery, r.Host, r.ContentLength, r.Close)
		}
		if r.URL.EscapedPath() != string(h.path) {
			t.Fatalf("%q: net/url writes the path %q", h.path, r.URL.EscapedPath())
		}
		for _, fl := range h.fields {
			name := http.CanonicalHeaderKey(string(fl.name))
			if name == "Host" {
				continue
			}
			if !slices.Contains(r.Header.Values(name), string(fl.value)) {
				t.Fatalf("%q: field %s: %q not in net/http's %q", b[:h.size], name, fl.value, r.Header.Values(name))
			}
		}
		if strings.ContainsAny(r.Host, " \t") {
			t.Fatalf("host %q", r.Host)
		}
	})
}

// FuzzResponseHead runs the upstream response parser on anything: it
// never panics, and what it accepts has a status and a sane framing.
func FuzzResponseHead(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close, X\r\nX: 1\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 304\nTransfer-Encoding: chunked\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		end := headEnd(b)
		if end < 0 {
			return
		}
		var h respHead
		if err := parseResponseHead(b[:end], &h); err != nil {
			return
		}
		if h.status < 100 || h.status > 999 || h.chunked && h.contentLength != -1 || h.size != end {
			t.Fatalf("%q: %+v", b[:end], h)
		}
		for _, fl := range h.fields {
			if equalFold(fl.name, "content-length") || equalFold(fl.name, "transfer-encoding") || equalFold(fl.name, "connection") {
				t.Fatalf("%q: framing field %q passed on", b[:end], fl.name)
			}
		}
	})
}
