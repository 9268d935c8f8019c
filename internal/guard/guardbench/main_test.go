package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentileAndMedian(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 50, 0},
		{"one", []float64{7}, 99, 7},
		{"p50 of 1..100", hundred, 50, 50},
		{"p99 of 1..100", hundred, 99, 99},
		{"p100 of 1..100", hundred, 100, 100},
		{"p1 of 1..100", hundred, 1, 1},
		{"p99 of 3", []float64{1, 2, 3}, 99, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
	medians := []struct {
		in   []float64
		want float64
	}{
		{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, m := range medians {
		in := append([]float64(nil), m.in...)
		if got := median(m.in); got != m.want {
			t.Errorf("median(%v) = %v, want %v", m.in, got, m.want)
		}
		if diff := cmp.Diff(in, m.in); diff != "" {
			t.Errorf("median modified its input (-before +after):\n%s", diff)
		}
	}
}

func TestParseProm(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []promSample
		wantErr bool
	}{
		{
			name: "guard metrics",
			in: `# HELP bulwark_guard_open_connections Connections open.
# TYPE bulwark_guard_open_connections gauge
bulwark_guard_open_connections 1018
bulwark_guard_limit_table_entries{site="bench.example",table="rate"} 13222
bulwark_guard_blocks_total{reason="rate"} 4.4454e+04

go_memstats_heap_inuse_bytes 4.6e+06 1700000000000
`,
			want: []promSample{
				{Name: "bulwark_guard_open_connections", Value: 1018},
				{Name: "bulwark_guard_limit_table_entries", Labels: map[string]string{"site": "bench.example", "table": "rate"}, Value: 13222},
				{Name: "bulwark_guard_blocks_total", Labels: map[string]string{"reason": "rate"}, Value: 44454},
				{Name: "go_memstats_heap_inuse_bytes", Value: 4.6e6},
			},
		},
		{
			name: "escaped label values and a trailing comma",
			in:   `x{a="1,2}",b="say \"hi\"\\n",} +Inf`,
			want: []promSample{{Name: "x", Labels: map[string]string{"a": "1,2}", "b": `say "hi"\n`}, Value: posInf}},
		},
		{name: "no value", in: "x\n", wantErr: true},
		{name: "unterminated labels", in: `x{a="1" 3`, wantErr: true},
		{name: "unterminated value", in: `x{a="1} 3`, wantErr: true},
		{name: "bad number", in: "x one", wantErr: true},
		{name: "too many fields", in: "x 1 2 3", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProm(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseProm: error %v, want error: %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); !tt.wantErr && diff != "" {
				t.Errorf("parseProm (-want +got):\n%s", diff)
			}
		})
	}
	s, _ := parseProm(strings.NewReader("t{table=\"rate\",site=\"a\"} 2\nt{table=\"rate\",site=\"b\"} 3\nt{table=\"conns\"} 5\n"))
	if v, ok := promValue(s, "t", map[string]string{"table": "rate"}); !ok || v != 5 {
		t.Errorf("promValue(table=rate) = %v, %v, want 5, true", v, ok)
	}
	if _, ok := promValue(s, "missing", nil); ok {
		t.Error("promValue(missing) found something")
	}
}

var posInf = math.Inf(1)

func FuzzParseProm(f *testing.F) {
	f.Add("bulwark_guard_open_connections 1018\n")
	f.Add(`bulwark_guard_limit_table_entries{site="bench.example",table="rate"} 13222` + "\n")
	f.Add(`x{a="1,2}",b="say \"hi\"\\n",} +Inf 17`)
	f.Add("# HELP x\n\nx{} NaN\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parseProm(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, s := range got {
			if s.Name == "" || strings.ContainsAny(s.Name, "{ \t") {
				t.Errorf("sample name %q from %q", s.Name, in)
			}
		}
	})
}

func TestParseProcStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procMem
		wantErr bool
	}{
		{"real", "Name:\tbulwark\nVmPeak:\t 1 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t9\n", procMem{RSSKiB: 40960, HWMKiB: 51200}, false},
		{"kernel thread", "Name:\tkworker\nThreads:\t1\n", procMem{}, true},
		{"bad unit", "VmHWM:\t1 MB\nVmRSS:\t1 kB\n", procMem{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStatus(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error: %v", err, tt.wantErr)
			}
			if !tt.wantErr && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	// And this very process.
	m, err := readProcMem(os.Getpid())
	if err != nil || m.RSSKiB <= 0 || m.HWMKiB < m.RSSKiB {
		t.Errorf("readProcMem(self) = %+v, %v", m, err)
	}
	if !alive(os.Getpid()) {
		t.Error("alive(self) = false")
	}
}

func TestNthAddr(t *testing.T) {
	base := netip.MustParseAddr("198.18.0.0")
	tests := []struct {
		i    uint32
		want string
	}{{0, "198.18.0.0"}, {255, "198.18.0.255"}, {256, "198.18.1.0"}, {99999, "198.19.134.159"}}
	for _, tt := range tests {
		if got := nthAddr(base, tt.i).String(); got != tt.want {
			t.Errorf("nthAddr(%v, %d) = %s, want %s", base, tt.i, got, tt.want)
		}
	}
}

func TestCheckRun(t *testing.T) {
	ok := &wrkStats{Requests: 10000, DurationUs: 2e6, P50Us: 1500, P99Us: 9000}
	tests := []struct {
		name       string
		line       wrkLine
		wantFailed string // substring; "" for a good run
		wantRate   float64
	}{
		{"good", wrkLine{Run: 1, Wrk: ok}, "", 5000},
		{"a few non-2xx are tolerated", wrkLine{Wrk: &wrkStats{Requests: 10000, DurationUs: 1e6, StatusErrors: 100}}, "", 10000},
		{"too many non-2xx", wrkLine{Wrk: &wrkStats{Requests: 10000, DurationUs: 1e6, StatusErrors: 101}}, "not 2xx", 10000},
		{"socket errors", wrkLine{Wrk: &wrkStats{Requests: 1000, DurationUs: 1e6, ReadErrors: 20}}, "socket errors", 1000},
		{"nothing", wrkLine{Wrk: &wrkStats{DurationUs: 1e6}}, "no request", 0},
		{"wrk failed", wrkLine{Error: "wrk exit status 1: unable to connect"}, "unable to connect", 0},
		{"no summary", wrkLine{}, "no wrk summary", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkRun(tt.line)
			if tt.wantFailed == "" && got.Failed != "" || !strings.Contains(got.Failed, tt.wantFailed) {
				t.Errorf("Failed = %q, want %q", got.Failed, tt.wantFailed)
			}
			if got.ReqPerS != tt.wantRate {
				t.Errorf("ReqPerS = %v, want %v", got.ReqPerS, tt.wantRate)
			}
		})
	}
}

func TestCollectSeries(t *testing.T) {
	w := func(row, mode string, run int, rps float64) wrkLine {
		return wrkLine{Row: row, Mode: mode, Run: run, Wrk: &wrkStats{Requests: int64(rps), DurationUs: 1e6, P50Us: 1000 * float64(run), P99Us: 5000}}
	}
	lines := []wrkLine{
		w("guard-crs", "mix", 1, 900), w("guard", "get", 1, 9000), w("nginx-proxy", "get", 1, 20000),
		w("guard", "get", 2, 11000), w("nginx-proxy", "get", 2, 30000), w("guard-crs", "mix", 2, 1000),
		w("guard", "get", 3, 10000), w("nginx-proxy", "get", 3, 10000),
		{Row: "guard-crs", Mode: "mix", Run: 3, Error: "wrk exit status 1"},
	}
	got := collectSeries(lines)
	var order []string
	for _, s := range got {
		order = append(order, s.Row+":"+s.Mode)
	}
	if diff := cmp.Diff([]string{"nginx-proxy:get", "guard:get", "guard-crs:mix"}, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	rep := &Report{Throughput: got}
	g := find(rep, "guard", "get")
	if g.ReqPerS != 10000 || g.MinReqS != 9000 || g.MaxReqS != 11000 || g.P50Ms != 2 || !g.complete {
		t.Errorf("guard get = %+v, want median 10000 (9000-11000), p50 2 ms", g)
	}
	if r, ok := ratio(rep, "guard", "nginx-proxy", "get"); !ok || r != 0.5 {
		t.Errorf("ratio(guard, nginx-proxy) = %v, %v, want 0.5, true", r, ok)
	}
	if c := find(rep, "guard-crs", "mix"); c.complete || !strings.Contains(c.Failed, "run 3") {
		t.Errorf("guard-crs mix with a failed run = %+v, want failed naming run 3", c)
	}
	if _, ok := ratio(rep, "guard-crs", "coraza-naive", "mix"); ok {
		t.Error("ratio with a failed and a missing series is ok")
	}
}

func TestThousands(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 44998: "44,998", 1234567.6: "1,234,568"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

// TestReport writes a run directory as the script leaves it and checks
// the tables, the targets and the exit status.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	var wrk strings.Builder
	for _, r := range []struct {
		row, mode string
		rps       int
	}{
		{"nginx-static", "get", 40000}, {"nginx-proxy", "get", 30000}, {"go-proxy", "get", 14000},
		{"coraza-naive", "get", 600}, {"guard", "get", 24000}, {"guard-crs", "get", 700},
		{"coraza-naive", "mix", 200}, {"guard-crs", "mix", 500}, {"coraza-naive", "page", 450}, {"guard-crs", "page", 1400},
	} {
		fmt.Fprintf(&wrk, `{"row":%q,"mode":%q,"run":1,"wrk":{"requests":%d,"duration_us":1000000,"p50_us":1000,"p99_us":5000}}`+"\n", r.row, r.mode, r.rps)
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("wrk.jsonl", wrk.String())
	write("rss.jsonl", `{"row":"guard","hwm_kib":51200,"procs":1}`+"\n")
	// Three runs: ratios 6.0, 1.5 and 12.0 (median 6.0); success 99.5% at worst.
	for i, r := range []struct {
		quietP99, attackP99 float64
		ok                  int
	}{{2, 12, 597}, {8, 12, 600}, {1, 12, 599}} {
		n := i + 1
		write(fmt.Sprintf("client-quiet-%d.json", n), fmt.Sprintf(`{"source":"127.0.0.4","rate":40,"seconds":15,"sent":600,"ok":600,"success_pct":100,"p99_ms":%g}`, r.quietP99))
		write(fmt.Sprintf("client-attack-%d.json", n), fmt.Sprintf(`{"source":"127.0.0.4","rate":40,"seconds":15,"sent":600,"ok":%d,"success_pct":%g,"statuses":{"429":%d},"p99_ms":%g}`,
			r.ok, float64(r.ok)/6, 600-r.ok, r.attackP99))
		write(fmt.Sprintf("attack-%d.json", n), `{"seconds":19,"flood":{"source":"127.0.0.2","target_rate":5000,"sent":90000},"slow":{"conns":1000,"cut":1000},"guard":{"blocks":{"rate":89000}}}`)
	}
	write("sources.error", "the guard refused the warm-up")

	rep, err := buildReport(dir, map[string]string{"attack_rate": "50"})
	if err != nil {
		t.Fatal(err)
	}
	var md strings.Builder
	writeMarkdown(&md, rep, dir)
	out := md.String()
	for _, want := range []string{
		"| bulwark guard: limits + lists | 24,000 | 1.00 | 5.00 | 50 |",
		"| guard (limits + lists) / nginx reverse proxy, req/s on GET | 0.80 | >= 0.70 | met |",
		"| guard with CRS / naive Coraza wrapper, req/s on GET + POST | 2.50 | >= 2.0 | met |",
		"| under attack: the well-behaved source's success (worst run) | 99.50% | >= 99% | met |",
		"| under attack: its p99 latency / quiet p99 (median of runs) | 6.0x | <= 5x | missed |",
		"| run 1: under attack | 600 | 99.50% |",
		"| run 2: alone | 600 | 100.00% | 0.00 | 0.00 | 8.00 |",
		"| 1.5x |",
		"| run 3: under attack | 600 | 99.83% |",
		"median of 3 runs: 6.0x",
		"429: 3",
		"(100x its rate limit)",
		"- memory with many sources: sources: the guard refused the warm-up",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if len(rep.Failures) != 1 {
		t.Errorf("failures = %q, want the memory scenario only", rep.Failures)
	}
	// The command writes both outputs and exits with the failure.
	jsonOut := filepath.Join(dir, "out.json")
	err = cmdReport([]string{"-dir", dir, "-md", filepath.Join(dir, "out.md"), "-json", jsonOut})
	var mf measurementsFailedError
	if !errors.As(err, &mf) {
		t.Errorf("cmdReport error = %v, want measurementsFailedError", err)
	}
	var back Report
	if b, err := os.ReadFile(jsonOut); err != nil || json.Unmarshal(b, &back) != nil || len(back.Targets) != 4 {
		t.Errorf("JSON output: %v, %d targets", err, len(back.Targets))
	}
}

// TestClient runs the well-behaved client against a real server on
// loopback, from its own source address, and checks what it counted.
func TestClient(t *testing.T) {
	body := strings.Repeat("x", 612)
	var mu sync.Mutex
	peers := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		peers[host]++
		n := peers[host]
		mu.Unlock()
		if r.Host != "bench.example" {
			http.Error(w, "wrong host", http.StatusNotFound)
			return
		}
		if n%10 == 0 {
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		io.WriteString(w, body)
	}))
	defer srv.Close()
	out := filepath.Join(t.TempDir(), "client.json")
	err := cmdClient([]string{"-url", srv.URL + "/index.html", "-host", "bench.example", "-source", "127.0.0.9",
		"-rate", "100", "-duration", "500ms", "-size", "612", "-out", out})
	if err != nil {
		t.Fatal(err)
	}
	var r ClientResult
	b, _ := os.ReadFile(out)
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	t.Logf("client: %+v", r)
	if r.Sent != 50 || r.OK != 45 || r.Statuses["429"] != 5 || r.SuccessPct != 90 {
		t.Errorf("sent %d, ok %d, statuses %v, success %.1f%%; want 50, 45, 429: 5, 90%%", r.Sent, r.OK, r.Statuses, r.SuccessPct)
	}
	if r.P50Ms <= 0 || r.P99Ms < r.P50Ms || r.MaxMs < r.P99Ms {
		t.Errorf("latencies p50 %v, p99 %v, max %v: want 0 < p50 <= p99 <= max", r.P50Ms, r.P99Ms, r.MaxMs)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(map[string]int{"127.0.0.9": 50}, peers); diff != "" {
		t.Errorf("requests by source address (-want +got):\n%s", diff)
	}
}

// TestSlowloris holds slow connections against a server with a short
// header deadline: every connection is an unfinished request, and the
// server cuts them.
func TestSlowloris(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var peers []string
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Errorf("a slow request completed: %v", r.Header) }),
		ReadHeaderTimeout: 300 * time.Millisecond,
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				mu.Lock()
				peers = append(peers, c.RemoteAddr().(*net.TCPAddr).IP.String())
				mu.Unlock()
			}
		},
	}
	go srv.Serve(ln)
	defer srv.Close()
	s := &slowloris{addr: ln.Addr().String(), host: "bench.example", trickle: 50 * time.Millisecond}
	if err := s.run("127.0.0.8", 5, time.Now().Add(2500*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	t.Logf("opened %d, max open %d, cut %d, answered %d, refused %d, dial errors %d, lifetimes %v",
		s.opened.Load(), s.maxOpen.Load(), s.cut.Load(), s.answered.Load(), s.refused.Load(), s.dialErrs.Load(), s.cutAfter)
	if s.maxOpen.Load() != 5 {
		t.Errorf("max open = %d, want 5", s.maxOpen.Load())
	}
	// The server's header deadline is 300 ms; the connections last until
	// it, so each was cut (or answered 408) at least once in 2.5 s, and
	// every cut counts as a reconnect.
	if got := s.cut.Load() + s.answered.Load(); got < 5 || s.opened.Load() < got {
		t.Errorf("cut or answered by the server %d times, opened %d: want at least 5, each followed by a reconnect or the end", got, s.opened.Load())
	}
	if s.refused.Load() != 0 {
		t.Errorf("refused = %d, want 0: the server accepts every connection", s.refused.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range peers {
		if p != "127.0.0.8" {
			t.Errorf("connection from %s, want 127.0.0.8", p)
		}
	}
}

// TestSlowlorisRequestIsIncomplete checks what the slowloris sends: a
// request line and headers that never end.
func TestSlowlorisRequestIsIncomplete(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		br := bufio.NewReader(c)
		var lines []string
		for len(lines) < 5 {
			l, err := br.ReadString('\n')
			if err != nil {
				break
			}
			lines = append(lines, l)
		}
		got <- strings.Join(lines, "")
	}()
	s := &slowloris{addr: ln.Addr().String(), host: "bench.example", trickle: 20 * time.Millisecond}
	go s.one(&net.Dialer{}, time.Now().Add(2*time.Second))
	want := "GET /index.html HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: slowloris\r\nX-Slow-0: 0\r\nX-Slow-1: 1\r\n"
	if g := <-got; g != want {
		t.Errorf("the slowloris sent %q, want %q", g, want)
	}
}

// TestSlowlorisRefused: a server that resets every connection at accept,
// as the guard does over its connection caps, shows as refusals.
func TestSlowlorisRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	s := &slowloris{addr: ln.Addr().String(), host: "bench.example", trickle: 500 * time.Millisecond}
	if err := s.run("127.0.0.8", 3, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	t.Logf("opened %d, refused %d, cut %d", s.opened.Load(), s.refused.Load(), s.cut.Load())
	if s.refused.Load() < 3 || s.cut.Load() != 0 || s.answered.Load() != 0 {
		t.Errorf("refused %d, cut %d, answered %d: want at least 3 refused and nothing else", s.refused.Load(), s.cut.Load(), s.answered.Load())
	}
}

// TestReportAttackIncomplete: a run with a result missing or failed fails
// the scenario instead of being skipped.
func TestReportAttackIncomplete(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"none":           {},
		"attack missing": {"client-quiet-1.json": `{"p99_ms":1,"success_pct":100}`, "client-attack-1.json": `{"p99_ms":2,"success_pct":100}`},
		"client failed": {"client-quiet-1.json": `{"p99_ms":1,"success_pct":100}`, "client-attack-1.error": "connection refused",
			"attack-1.json": `{"seconds":19}`},
	} {
		dir := t.TempDir()
		for f, c := range files {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(c), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		a, err := readAttack(dir)
		if err == nil {
			t.Errorf("%s: no error, %d runs", name, len(a.Runs))
		}
	}
}
