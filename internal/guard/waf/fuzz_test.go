package waf

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzHandler sends arbitrary requests, as parsed by net/http, through the
// handler in detect mode with a small body limit: whatever the request,
// the upstream must get exactly the body net/http parsed, and onVerdict
// must run at most once with bounded match fields.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /search?id=1%27%20OR%20%271%27%3D%271 HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /c HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 37\r\n\r\nc=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
		"POST /j HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n",
		"POST /m HTTP/1.1\r\nHost: a\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: 70\r\n\r\n--x\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a\"\r\n\r\nhi\r\n--x--\r\n",
		"GET /static/app.js?v=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: ${jndi:ldap://x/a}\r\n\r\n",
		"GET /a HTTP/1.0\r\nHost:\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	w, err := newWAF(Config{Mode: ModeDetect, BodyLimit: 64}, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, err := parsedBody(raw)
		if err != nil {
			return // net/http refuses it: the guard never sees it
		}
		r, _ := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		r.RemoteAddr = "192.0.2.1:1234"
		var got []byte
		var readErr error
		verdicts := 0
		h := w.Handler(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			got, readErr = io.ReadAll(r.Body)
		}), func(_ *http.Request, v Verdict) {
			verdicts++
			if v.Blocked {
				t.Error("blocked in detect mode")
			}
			for _, m := range v.Matches {
				if len(m.Data) > 256 || len(m.Message) > 256 {
					t.Errorf("rule %d: data %d bytes, message %d bytes", m.RuleID, len(m.Data), len(m.Message))
				}
			}
		})
		h.ServeHTTP(httptest.NewRecorder(), r)
		if verdicts > 1 {
			t.Errorf("onVerdict ran %d times", verdicts)
		}
		if readErr == nil && !bytes.Equal(got, want) {
			t.Errorf("upstream got %q, net/http parsed %q", got, want)
		}
	})
}

// parsedBody is the body net/http reads from raw, or an error if it
// refuses the request or its body.
func parsedBody(raw []byte) ([]byte, error) {
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r.Body)
}

// FuzzPathRules checks the path decisions made on attacker-chosen paths:
// a skipped request has only plain characters and no dot segments, and an
// exclusion prefix only covers paths that clean to below it.
func FuzzPathRules(f *testing.F) {
	for _, s := range []string{"/static/app.js?v=1", "/a/../b.png", "/api/..%2fadmin", `/api\..\x`, "//x.css", "/x.CSS?a=b&c=d", "/api"} {
		f.Add(s, "/api")
	}
	w := &WAF{skip: map[string]struct{}{".js": {}, ".css": {}, ".png": {}}}
	f.Fuzz(func(t *testing.T, target, prefix string) {
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n")))
		if err == nil && w.skips(r) {
			p, q, _ := strings.Cut(r.RequestURI, "?")
			if !plainPath(p) || !plainQuery(q) || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
				t.Errorf("skipped %q", r.RequestURI)
			}
		}
		c := cleanPath(target)
		if !strings.HasPrefix(c, "/") || cleanPath(c) != c || strings.Contains(c, `\`) {
			t.Errorf("cleanPath(%q) = %q: not clean", target, c)
		}
		p := strings.TrimSuffix(cleanPath(prefix), "/")
		if under(c, p) && !(c == p || strings.HasPrefix(c, p+"/")) {
			t.Errorf("under(%q, %q) but not below it", c, p)
		}
	})
}
