package waf

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	txhttp "github.com/corazawaf/coraza/v3/http"
)

// The benchmarks compare this package with the naive setup: Coraza's own
// net/http middleware (txhttp.WrapHandler) around a WAF built the way the
// coraza-coreruleset README and coraza.conf-recommended suggest (engine
// On, response body access on, audit engine RelevantOnly, every CRS file).
// Both run in block mode at paranoia 1 over the same request mixes, in
// parallel, in process (httptest): "mix" is a page load's share of dynamic
// GETs, static assets and small POSTs; "dynamic" leaves the static assets
// out, so what is left is the rules' own cost. Besides ns/op (wall time
// per request across all goroutines) they report cpu-ns/op, the process's
// user+system CPU per request, which is steadier on a busy machine.
//
// Measured on 2 cores (Coraza 3.8.1, CRS 4.25.0, median of 3 runs of 3 s;
// wall time per request, and in brackets CPU time):
//
//	           naive              ours               none
//	mix       988 µs (1945)      277 µs (544)      2.5 µs   (3.6x the requests per second)
//	dynamic  1041 µs (2037)      471 µs (926)      2.5 µs   (2.2x)
//
// Before the @rx answers were cached (rxcache.go), ours took 408 µs (806)
// on the mix and 840 µs (1646) on a dynamic request, in a run where the
// naive setup took 832 µs and 907 µs.
//
// What the naive setup spends a dynamic request on (pprof): phase 2
// rules 65%, phase 1 rules 15%, the response phases 10% (buffering a
// text/html response and running RESPONSE-95x over it), logging and the
// audit log check 2%, the rest garbage collection. Ours drops the
// response phases and logging, and answers most @rx matches from the
// cache; what is left is Coraza's own work per rule (collecting each
// rule's variables 28%, transformations 14%, macros 7%) and the garbage
// it makes (about 250 KB a dynamic request; allocation and collection
// about a quarter of the CPU).

type benchRequest struct {
	method, target, ctype, body string
}

var benchMixes = map[string][]benchRequest{
	"mix": {
		{"GET", "/products/view?id=42&sort=price&q=red+shoes", "", ""},
		{"GET", "/static/css/site.css?v=3.1.4", "", ""},
		{"GET", "/static/js/app.js?v=3.1.4", "", ""},
		{"GET", "/img/logo.png", "", ""},
		{"POST", "/cart/add", "application/x-www-form-urlencoded", "item=42&qty=1&note=gift+wrap+please"},
		{"GET", "/search?q=summer+dress&page=2", "", ""},
		{"GET", "/static/fonts/inter.woff2", "", ""},
		{"POST", "/api/v1/events", "application/json", `{"type":"view","item":42,"ref":"home"}`},
	},
	"dynamic": {
		{"GET", "/products/view?id=42&sort=price&q=red+shoes", "", ""},
		{"POST", "/cart/add", "application/x-www-form-urlencoded", "item=42&qty=1&note=gift+wrap+please"},
		{"GET", "/search?q=summer+dress&page=2", "", ""},
		{"POST", "/api/v1/events", "application/json", `{"type":"view","item":42,"ref":"home"}`},
	},
}

func (br benchRequest) request() *http.Request {
	var body io.Reader
	if br.body != "" {
		body = strings.NewReader(br.body)
	}
	r := httptest.NewRequest(br.method, br.target, body)
	r.RemoteAddr = "192.0.2.10:41234"
	h := r.Header
	h.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36")
	h.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	h.Set("Accept-Language", "en-US,en;q=0.9")
	h.Set("Accept-Encoding", "gzip, deflate, br")
	h.Set("Cookie", "session=4f2a9c0e77b1d3a5; theme=dark; consent=1")
	h.Set("Referer", "https://shop.example/products")
	if br.body != "" {
		h.Set("Content-Type", br.ctype)
		h.Set("Content-Length", strconv.Itoa(len(br.body)))
	}
	return r
}

// benchUpstream answers like a small dynamic page.
var benchUpstream = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, "<!doctype html><html><head><title>Shop</title></head><body><p>Hello, shopper.</p></body></html>")
})

var naiveWAF = sync.OnceValues(func() (coraza.WAF, error) {
	return coraza.NewWAF(coraza.NewWAFConfig().
		WithRootFS(coreruleset.FS).
		WithDirectives("Include @coraza.conf-recommended\nSecRuleEngine On\nInclude @crs-setup.conf.example\nInclude @owasp_crs/*.conf"))
})

var oursWAF = sync.OnceValues(func() (*WAF, error) { return New(Config{Mode: ModeBlock}) })

func BenchmarkWAFNaive(b *testing.B) {
	w, err := naiveWAF()
	if err != nil {
		b.Fatal(err)
	}
	runMixes(b, txhttp.WrapHandler(w, benchUpstream))
}

func BenchmarkWAFOurs(b *testing.B) {
	w, err := oursWAF()
	if err != nil {
		b.Fatal(err)
	}
	runMixes(b, w.Handler(benchUpstream, func(*http.Request, Verdict) {}))
}

// BenchmarkWAFNone is the floor: the same requests with no WAF.
func BenchmarkWAFNone(b *testing.B) { runMixes(b, benchUpstream) }

func runMixes(b *testing.B, h http.Handler) {
	for _, name := range []string{"mix", "dynamic"} {
		b.Run(name, func(b *testing.B) { runMix(b, h, benchMixes[name]) })
	}
}

func runMix(b *testing.B, h http.Handler, mix []benchRequest) {
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, mix[i%len(mix)].request())
			if rec.Code != http.StatusOK {
				b.Errorf("%s %s: status %d", mix[i%len(mix)].method, mix[i%len(mix)].target, rec.Code)
				return
			}
			i++
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
