package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// The report step reads what the script and the other subcommands left
// in the run directory and writes the markdown tables and the raw JSON:
//
//	wrk.jsonl          one line per wrk run: {"row", "mode", "run", "wrk": {...}}
//	                   or {"row", "mode", "run", "error": "..."}
//	rss.jsonl          {"row", "hwm_kib", "procs"}: peak memory of each server
//	client-quiet-N.json  ClientResult, alone (run N = 1, 2, ...)
//	client-attack-N.json ClientResult, under attack, right after
//	attack-N.json        AttackResult of that run
//	sources.json       SourcesResult
//	NAME.error         why NAME.json is missing
//	profile-*.txt      optional pprof summaries, quoted as they are
//
// A measurement that failed (a wrk run with errors or non-2xx answers, a
// scenario that did not run) shows as failed in the tables and makes the
// command exit with status 3 after writing everything; a target missed is
// a result, not a failure.

// wrkStats is what the wrk scripts' done() prints (times in µs).
type wrkStats struct {
	Requests      int64   `json:"requests"`
	DurationUs    float64 `json:"duration_us"`
	Bytes         int64   `json:"bytes"`
	ConnectErrors int64   `json:"connect_errors"`
	ReadErrors    int64   `json:"read_errors"`
	WriteErrors   int64   `json:"write_errors"`
	StatusErrors  int64   `json:"status_errors"` // answers other than 2xx and 3xx
	Timeouts      int64   `json:"timeouts"`
	P50Us         float64 `json:"p50_us"`
	P90Us         float64 `json:"p90_us"`
	P99Us         float64 `json:"p99_us"`
	MaxUs         float64 `json:"max_us"`
	MeanUs        float64 `json:"mean_us"`
}

type wrkLine struct {
	Row   string    `json:"row"`
	Mode  string    `json:"mode"`
	Run   int       `json:"run"`
	Wrk   *wrkStats `json:"wrk,omitempty"`
	Error string    `json:"error,omitempty"`
}

// runResult is one wrk run, checked.
type runResult struct {
	Run      int     `json:"run"`
	ReqPerS  float64 `json:"req_per_s"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	Requests int64   `json:"requests"`
	Non2xx   int64   `json:"non_2xx"`
	SockErrs int64   `json:"socket_errors"`
	Failed   string  `json:"failed,omitempty"`
}

// series is one server under one request mix, over the runs.
type series struct {
	Row      string      `json:"row"`
	Label    string      `json:"label"`
	Mode     string      `json:"mode"`
	Runs     []runResult `json:"runs"`
	ReqPerS  float64     `json:"median_req_per_s"`
	P50Ms    float64     `json:"median_p50_ms"`
	P99Ms    float64     `json:"median_p99_ms"`
	MinReqS  float64     `json:"min_req_per_s"`
	MaxReqS  float64     `json:"max_req_per_s"`
	Failed   string      `json:"failed,omitempty"`
	complete bool
}

// rows are the servers measured, in table order.
var rows = []struct{ id, label string }{
	{"nginx-static", "nginx serving the file"},
	{"nginx-proxy", "nginx reverse proxy (limit_req, upstream keepalive 64, forwarding fields)"},
	{"go-proxy", "Go httputil.ReverseProxy (default transport)"},
	{"coraza-naive", "Go proxy + Coraza txhttp + CRS PL1 (naive)"},
	{"guard", "bulwark guard: limits + lists"},
	{"guard-crs", "bulwark guard: limits + lists + CRS PL1 block"},
}

var modes = []struct{ id, label string }{
	{"get", "GET of the file"},
	{"mix", "GET with a query + small form POST, alternating"},
	{"page", "page-load mix (2 dynamic GETs, 4 static assets, 2 small POSTs)"},
}

func rowLabel(id string) string {
	for _, r := range rows {
		if r.id == id {
			return r.label
		}
	}
	return id
}

// Target is one of the targets and how the run fared.
type Target struct {
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Goal     string  `json:"goal"`
	Met      bool    `json:"met"`
	Measured bool    `json:"measured"`
}

// AttackRun is one pair of the attack scenario: the well-behaved client
// alone, then under attack.
type AttackRun struct {
	Quiet    *ClientResult `json:"quiet"`
	Attacked *ClientResult `json:"attacked"`
	Attack   *AttackResult `json:"attack"`
	P99Ratio float64       `json:"p99_ratio"` // attacked p99 / quiet p99
}

// AttackSummary holds the runs of the attack scenario. A ratio of two
// tail latencies of 600 requests each is at the mercy of one stall of the
// machine (a run on a loaded host measured a quiet p99 of 215 ms, another
// 1.6 ms), so the scenario runs as interleaved pairs and the target is
// judged on the median of the pairs' ratios, each against the quiet run
// just before it; success on the worst run.
type AttackSummary struct {
	Runs          []*AttackRun `json:"runs"`
	P99Ratio      float64      `json:"p99_ratio"` // median over runs
	MinSuccessPct float64      `json:"min_success_pct"`
}

// Report is the JSON written by the report step.
type Report struct {
	Date       string            `json:"date"`
	Facts      map[string]string `json:"facts"`
	Throughput []*series         `json:"throughput"`
	PeakRSSKiB map[string]int64  `json:"peak_rss_kib"`
	Targets    []Target          `json:"targets"`
	Attack     *AttackSummary    `json:"attack,omitempty"`
	Memory     *struct {
		*SourcesResult
		OverIdleKiB     int64   `json:"over_idle_kib"`
		BytesPerSource  float64 `json:"bytes_per_source"`
		BytesPerEntry   float64 `json:"bytes_per_peak_rate_entry"`
		HeapPerEntry    float64 `json:"heap_bytes_per_peak_rate_entry"`
		PeakRateEntries float64 `json:"peak_rate_entries"`
	} `json:"memory,omitempty"`
	Failures []string `json:"failures,omitempty"`
}

type measurementsFailedError struct{ n int }

func (e measurementsFailedError) Error() string {
	return fmt.Sprintf("%d measurement(s) failed; see the tables", e.n)
}

type factFlags map[string]string

func (f factFlags) String() string { return fmt.Sprint(map[string]string(f)) }
func (f factFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("-fact %q: want key=value", s)
	}
	f[k] = v
	return nil
}

func cmdReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	dir := fs.String("dir", "", "run `directory` with the results")
	mdOut := fs.String("md", "-", "markdown output `file` (-: stdout)")
	jsonOut := fs.String("json", "", "JSON output `file`")
	facts := factFlags{}
	fs.Var(facts, "fact", "a fact about the run, `key=value` (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("-dir is required")
	}
	rep, err := buildReport(*dir, facts)
	if err != nil {
		return err
	}
	var md bytes.Buffer
	writeMarkdown(&md, rep, *dir)
	if *mdOut == "-" || *mdOut == "" {
		os.Stdout.Write(md.Bytes())
	} else if err := os.WriteFile(*mdOut, md.Bytes(), 0o644); err != nil {
		return err
	}
	if *jsonOut != "" {
		if err := writeJSON(*jsonOut, rep); err != nil {
			return err
		}
	}
	if len(rep.Failures) > 0 {
		return measurementsFailedError{len(rep.Failures)}
	}
	return nil
}

func buildReport(dir string, facts map[string]string) (*Report, error) {
	rep := &Report{Date: time.Now().UTC().Format(time.RFC3339), Facts: facts, PeakRSSKiB: map[string]int64{}}
	lines, err := readJSONL[wrkLine](filepath.Join(dir, "wrk.jsonl"))
	if err != nil {
		return nil, err
	}
	rep.Throughput = collectSeries(lines)
	for _, s := range rep.Throughput {
		if s.Failed != "" {
			rep.Failures = append(rep.Failures, fmt.Sprintf("%s, %s: %s", s.Label, s.Mode, s.Failed))
		}
	}
	type rssLine struct {
		Row    string `json:"row"`
		HWMKiB int64  `json:"hwm_kib"`
	}
	rss, err := readJSONL[rssLine](filepath.Join(dir, "rss.jsonl"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, r := range rss {
		rep.PeakRSSKiB[r.Row] = r.HWMKiB
	}

	if a, err := readAttack(dir); err != nil {
		rep.Failures = append(rep.Failures, "under attack: "+oneLine(err))
	} else {
		rep.Attack = a
		for i, r := range a.Runs {
			if r.Quiet.SuccessPct < 99.9 {
				rep.Failures = append(rep.Failures, fmt.Sprintf("under attack, run %d: the quiet baseline itself had %.2f%% success (statuses %v, errors %v): the set-up is broken",
					i+1, r.Quiet.SuccessPct, r.Quiet.Statuses, r.Quiet.Errors))
			}
		}
	}
	var src SourcesResult
	if err := readResult(dir, "sources", &src); err != nil {
		rep.Failures = append(rep.Failures, "memory with many sources: "+oneLine(err))
	} else {
		m := &struct {
			*SourcesResult
			OverIdleKiB     int64   `json:"over_idle_kib"`
			BytesPerSource  float64 `json:"bytes_per_source"`
			BytesPerEntry   float64 `json:"bytes_per_peak_rate_entry"`
			HeapPerEntry    float64 `json:"heap_bytes_per_peak_rate_entry"`
			PeakRateEntries float64 `json:"peak_rate_entries"`
		}{SourcesResult: &src}
		m.OverIdleKiB = max(src.HWMKiB, src.MaxRSSKiB) - src.IdleRSSKiB
		m.PeakRateEntries = src.MaxEntries["rate"]
		if src.Sources > 0 {
			m.BytesPerSource = float64(m.OverIdleKiB*1024) / float64(src.Sources)
		}
		if m.PeakRateEntries > 0 {
			m.BytesPerEntry = float64(m.OverIdleKiB*1024) / m.PeakRateEntries
			m.HeapPerEntry = float64(src.MaxHeapBytes-src.IdleHeapBytes) / m.PeakRateEntries
		}
		rep.Memory = m
	}
	rep.Targets = targets(rep)
	return rep, nil
}

// readResult reads dir/NAME.json into v; a NAME.error file says why the
// scenario failed.
// readAttack reads the attack scenario's runs, 1 up to the first number
// with no file at all; a run with some files missing is a failure.
func readAttack(dir string) (*AttackSummary, error) {
	a := &AttackSummary{MinSuccessPct: 100}
	var ratios []float64
	for n := 1; ; n++ {
		names := []string{fmt.Sprintf("client-quiet-%d", n), fmt.Sprintf("client-attack-%d", n), fmt.Sprintf("attack-%d", n)}
		if !anyResult(dir, names...) {
			break
		}
		r := &AttackRun{Quiet: &ClientResult{}, Attacked: &ClientResult{}, Attack: &AttackResult{}}
		if err := errors.Join(readResult(dir, names[0], r.Quiet), readResult(dir, names[1], r.Attacked), readResult(dir, names[2], r.Attack)); err != nil {
			return nil, err
		}
		if r.Quiet.P99Ms > 0 {
			r.P99Ratio = r.Attacked.P99Ms / r.Quiet.P99Ms
			ratios = append(ratios, r.P99Ratio)
		}
		a.MinSuccessPct = min(a.MinSuccessPct, r.Attacked.SuccessPct)
		a.Runs = append(a.Runs, r)
	}
	if len(a.Runs) == 0 {
		return nil, errors.New("no result (client-quiet-1.json missing)")
	}
	a.P99Ratio = median(ratios)
	return a, nil
}

// anyResult reports whether any of the results left a file, result or error.
func anyResult(dir string, names ...string) bool {
	for _, n := range names {
		for _, ext := range []string{".json", ".error"} {
			if _, err := os.Stat(filepath.Join(dir, n+ext)); err == nil {
				return true
			}
		}
	}
	return false
}

func readResult(dir, name string, v any) error {
	if b, err := os.ReadFile(filepath.Join(dir, name+".error")); err == nil {
		return fmt.Errorf("%s: %s", name, strings.TrimSpace(string(b)))
	}
	b, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		return fmt.Errorf("%s: no result (%w)", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s.json: %w", name, err)
	}
	return nil
}

func readJSONL[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

// checkRun turns a wrk line into a run result, failing runs with socket
// errors or non-2xx answers above 1% of the requests, or no requests.
func checkRun(l wrkLine) runResult {
	r := runResult{Run: l.Run}
	if l.Error != "" {
		r.Failed = l.Error
		return r
	}
	w := l.Wrk
	if w == nil {
		r.Failed = "no wrk summary"
		return r
	}
	r.Requests, r.Non2xx = w.Requests, w.StatusErrors
	r.SockErrs = w.ConnectErrors + w.ReadErrors + w.WriteErrors + w.Timeouts
	if w.DurationUs > 0 {
		r.ReqPerS = float64(w.Requests) / (w.DurationUs / 1e6)
	}
	r.P50Ms, r.P99Ms = w.P50Us/1000, w.P99Us/1000
	switch {
	case w.Requests == 0:
		r.Failed = "no request completed"
	case float64(r.Non2xx) > 0.01*float64(w.Requests):
		r.Failed = fmt.Sprintf("%d of %d answers were not 2xx/3xx", r.Non2xx, w.Requests)
	case float64(r.SockErrs) > 0.01*float64(w.Requests):
		r.Failed = fmt.Sprintf("%d socket errors (connect %d, read %d, write %d, timeout %d) in %d requests",
			r.SockErrs, w.ConnectErrors, w.ReadErrors, w.WriteErrors, w.Timeouts, w.Requests)
	}
	return r
}

func collectSeries(lines []wrkLine) []*series {
	by := map[string]*series{}
	var out []*series
	for _, l := range lines {
		k := l.Row + "\x00" + l.Mode
		s := by[k]
		if s == nil {
			s = &series{Row: l.Row, Label: rowLabel(l.Row), Mode: l.Mode}
			by[k] = s
			out = append(out, s)
		}
		s.Runs = append(s.Runs, checkRun(l))
	}
	for _, s := range out {
		var rps, p50, p99 []float64
		for _, r := range s.Runs {
			if r.Failed != "" {
				if s.Failed == "" {
					s.Failed = fmt.Sprintf("run %d: %s", r.Run, r.Failed)
				}
				continue
			}
			rps, p50, p99 = append(rps, r.ReqPerS), append(p50, r.P50Ms), append(p99, r.P99Ms)
		}
		if s.Failed != "" {
			continue
		}
		s.complete = true
		s.ReqPerS, s.P50Ms, s.P99Ms = median(rps), median(p50), median(p99)
		s.MinReqS, s.MaxReqS = slices.Min(rps), slices.Max(rps)
	}
	// Table order: rows, then modes.
	order := func(s *series) (int, int) {
		ri := slices.IndexFunc(rows, func(r struct{ id, label string }) bool { return r.id == s.Row })
		mi := slices.IndexFunc(modes, func(m struct{ id, label string }) bool { return m.id == s.Mode })
		return ri, mi
	}
	sort.SliceStable(out, func(i, j int) bool {
		a1, a2 := order(out[i])
		b1, b2 := order(out[j])
		if a2 != b2 {
			return a2 < b2
		}
		return a1 < b1
	})
	return out
}

func find(rep *Report, row, mode string) *series {
	for _, s := range rep.Throughput {
		if s.Row == row && s.Mode == mode {
			return s
		}
	}
	return nil
}

// ratio of two series' median throughputs; ok false when either is
// missing or failed.
func ratio(rep *Report, row, base, mode string) (float64, bool) {
	a, b := find(rep, row, mode), find(rep, base, mode)
	if a == nil || b == nil || !a.complete || !b.complete || b.ReqPerS == 0 {
		return 0, false
	}
	return a.ReqPerS / b.ReqPerS, true
}

func targets(rep *Report) []Target {
	var ts []Target
	add := func(name, goal string, v float64, measured, met bool) {
		ts = append(ts, Target{Name: name, Value: v, Goal: goal, Met: measured && met, Measured: measured})
	}
	v, ok := ratio(rep, "guard", "nginx-proxy", "get")
	add("guard (limits + lists) / nginx reverse proxy, req/s on GET", ">= 0.70", v, ok, v >= 0.70)
	v, ok = ratio(rep, "guard-crs", "coraza-naive", "mix")
	add("guard with CRS / naive Coraza wrapper, req/s on GET + POST", ">= 2.0", v, ok, v >= 2.0)
	if a := rep.Attack; a != nil {
		add("under attack: the well-behaved source's success (worst run)", ">= 99%", a.MinSuccessPct, true, a.MinSuccessPct >= 99)
		add("under attack: its p99 latency / quiet p99 (median of runs)", "<= 5x", a.P99Ratio, a.P99Ratio > 0, a.P99Ratio <= 5)
	} else {
		add("under attack: the well-behaved source's success (worst run)", ">= 99%", 0, false, false)
		add("under attack: its p99 latency / quiet p99 (median of runs)", "<= 5x", 0, false, false)
	}
	return ts
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

func mib(k int64) string { return fmt.Sprintf("%.0f", float64(k)/1024) }

// cellRate is "median" or, with several runs, "median (min-max)".
func cellRate(s *series) string {
	if s == nil {
		return "-"
	}
	if !s.complete {
		return "failed: " + strings.ReplaceAll(s.Failed, "|", "\\|")
	}
	if len(s.Runs) > 1 {
		return fmt.Sprintf("%s (%s-%s)", thousands(s.ReqPerS), thousands(s.MinReqS), thousands(s.MaxReqS))
	}
	return thousands(s.ReqPerS)
}

func cellMs(s *series, v float64) string {
	if s == nil || !s.complete {
		return "-"
	}
	return fmtMs(v)
}

func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// thousands formats a rate with a thousands separator: 12,345.
func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func writeMarkdown(w io.Writer, rep *Report, dir string) {
	f := rep.Facts
	get := func(k, def string) string {
		if v, ok := f[k]; ok && v != "" {
			return v
		}
		return def
	}
	fmt.Fprintf(w, "Machine: %s cores, %s, %s, Linux %s; load average %s before, %s after (other work on the machine lowers every figure).\n",
		get("cores", "?"), get("cpu", "unknown CPU"), get("memory", "? RAM"), get("kernel", "?"), get("load_before", "?"), get("load_after", "?"))
	fmt.Fprintf(w, "Versions: %s; %s; %s; Coraza %s with coraza-coreruleset %s.\n",
		get("bulwark", "bulwark ?"), get("nginx", "nginx ?"), get("wrk", "wrk ?"), get("coraza", "?"), get("crs", "?"))
	runs := "one run per row"
	if n := get("runs", "1"); n != "1" {
		runs = n + " runs per row, interleaved; the tables show medians (min-max in brackets)"
	}
	fmt.Fprintf(w, "Load: `wrk -t%s -c%s -d%ss` on loopback, %s. "+
		"Every proxy forwards to the same upstream, an nginx (%s workers) serving a %s-byte index.html and answering any POST with 200 \"ok\" "+
		"(the file itself is the first row). Requests carry browser-like headers (User-Agent, Accept, Accept-Language, Cookie, Referer) and Host: bench.example. "+
		"Access logs are off everywhere. Limits: nginx limit_req per $binary_remote_addr at 1,000,000 r/s (never triggers); "+
		"the guard's rate and burst 1,000,000 per source, at most %s connections per source, and %s allow and %s deny list entries (IPv4 and IPv6 CIDRs, none matching the client). "+
		"Peak RSS is VmHWM at the end (nginx: master and workers added up).\n\n",
		get("threads", "2"), get("conns", "50"), get("seconds", "10"), runs,
		get("upstream_workers", "auto"), get("file_bytes", "612"), get("guard_conns", "?"), get("allow", "?"), get("deny", "?"))

	fmt.Fprintln(w, "| server | GET req/s | p50 ms | p99 ms | peak RSS MiB |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, r := range rows {
		s := find(rep, r.id, "get")
		if s == nil {
			continue
		}
		rss := "-"
		if k, ok := rep.PeakRSSKiB[r.id]; ok {
			rss = mib(k)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", r.label, cellRate(s), cellMs(s, s.P50Ms), cellMs(s, s.P99Ms), rss)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "With the OWASP CRS at paranoia 1 in blocking mode, on request mixes that the rules inspect "+
		"(\"GET + POST\": GET /index.html?q=summer+dress&page=2 and a 38-byte form POST, alternating; "+
		"\"page load\": the mix of internal/guard/waf's in-process benchmark, 2 dynamic GETs, 4 static assets (.css, .js, .png, .woff2: the guard skips their inspection, the naive wrapper does not) and 2 small POSTs, form and JSON):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| server | GET + POST req/s | p50 ms | p99 ms | page load req/s | p50 ms | p99 ms |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, r := range rows {
		m, p := find(rep, r.id, "mix"), find(rep, r.id, "page")
		if m == nil && p == nil {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", r.label,
			cellRate(m), cellMs(m, m.p50()), cellMs(m, m.p99()), cellRate(p), cellMs(p, p.p50()), cellMs(p, p.p99()))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target (the issue's) | measured | goal | |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, t := range rep.Targets {
		val, verdict := "not measured", "-"
		if t.Measured {
			switch {
			case strings.Contains(t.Goal, "%"):
				val = fmt.Sprintf("%.2f%%", t.Value)
			case strings.HasSuffix(t.Goal, "x"):
				val = fmt.Sprintf("%.1fx", t.Value)
			default:
				val = fmt.Sprintf("%.2f", t.Value)
			}
			verdict = map[bool]string{true: "met", false: "missed"}[t.Met]
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.Name, val, t.Goal, verdict)
	}
	if v, ok := ratio(rep, "guard-crs", "coraza-naive", "page"); ok {
		fmt.Fprintf(w, "| (for comparison) guard with CRS / naive Coraza wrapper on the page-load mix | %.2f | | |\n", v)
	}
	if v, ok := ratio(rep, "guard", "go-proxy", "get"); ok {
		fmt.Fprintf(w, "| (for comparison) guard (limits + lists) / plain Go proxy on GET | %.2f | | |\n", v)
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### Under attack")
	fmt.Fprintln(w)
	if a := rep.Attack; a != nil {
		x, q := a.Runs[0].Attack, a.Runs[0].Quiet
		fmt.Fprintf(w, "A guard with per-source limits (rate %s/s, burst %s, %s requests in progress per source; at most %s connections per source at accept, %s in all; "+
			"headers within %s) in front of the same upstream. A well-behaved client from %s sends GET /index.html at %.0f requests a second (open loop, keep-alive) for %.0f s, "+
			"once alone and once while, from %s, a flooder asks for %s requests a second (%.0fx its rate limit) over %d keep-alive connections and, from %s, a slowloris "+
			"holds %d connections open, each with an unfinished request that gains a header line every %s and reconnects when cut. "+
			"The attack driver runs at nice %s (on one machine the attacker's own CPU would count against the guard; a remote attacker's does not). "+
			"Each run starts a fresh guard; %d runs, each the quiet measurement and then the attacked one, and the target takes the median of the runs' p99 ratios "+
			"(a tail latency of 600 requests moves with any stall of the machine). "+
			"Latency is from sending to the last byte, over the successful requests.\n\n",
			get("attack_rate", "?"), get("attack_burst", "?"), get("attack_inflight", "?"), get("attack_conns", "?"), get("attack_max_conns", "?"), get("attack_header", "?"),
			q.Source, q.Rate, q.Seconds, x.Flood.Source, thousands(x.Flood.TargetRate), x.Flood.TargetRate/atofOr(get("attack_rate", "0"), 1), x.Flood.Conns,
			x.Slow.Source, x.Slow.Conns, get("attack_trickle", "2s"), get("attack_nice", "0"), len(a.Runs))
		fmt.Fprintln(w, "| well-behaved client | requests | success | p50 ms | p90 ms | p99 ms | max ms | other answers | p99 / alone |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
		for i, r := range a.Runs {
			for _, c := range []struct {
				name  string
				r     *ClientResult
				ratio string
			}{{"alone", r.Quiet, ""}, {"under attack", r.Attacked, fmt.Sprintf("%.1fx", r.P99Ratio)}} {
				fmt.Fprintf(w, "| run %d: %s | %d | %.2f%% | %s | %s | %s | %s | %s | %s |\n", i+1, c.name, c.r.Sent, c.r.SuccessPct,
					fmtMs(c.r.P50Ms), fmtMs(c.r.P90Ms), fmtMs(c.r.P99Ms), fmtMs(c.r.MaxMs), others(c.r.Statuses, c.r.Errors), c.ratio)
			}
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "p99 under attack / alone, median of %d runs: %.1fx.", len(a.Runs), a.P99Ratio)
		for i, r := range a.Runs {
			x := r.Attack
			fmt.Fprintf(w, " Run %d: the flooder sent %s requests at %s/s (answers: %s); "+
				"the slowloris connected %d times, held at most %d connections at once; the guard cut %d of them (median after %.1f s), answered %d and refused %d at accept; "+
				"the guard's open connections peaked at %.0f, its RSS at %s MiB; guard refusals by reason: %s.",
				i+1, thousands(float64(x.Flood.Sent)), thousands(x.Flood.Rate), others(x.Flood.Statuses, x.Flood.Errors),
				x.Slow.Opened, x.Slow.MaxOpen, x.Slow.Cut, x.Slow.CutAfterS, x.Slow.Answered, x.Slow.Refused,
				x.Guard.MaxOpenConnections, mib(max(x.Guard.MaxRSSKiB, x.Guard.HWMKiB)), blocks(x.Guard.Blocks))
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, "Failed: see the failures below.")
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### Memory with many sources")
	fmt.Fprintln(w)
	if m := rep.Memory; m != nil {
		fmt.Fprintf(w, "A fresh guard trusting 127.0.0.1 as a proxy, per-source rate %s/s and burst %s (the slowest refill the configuration allows, so each source's bucket is remembered longest), "+
			"the same lists; %s GETs, each naming a new client address in X-Forwarded-For (%s onwards), %d in flight. "+
			"Idle is after a warm-up of 256 requests; peak is VmHWM.\n\n",
			get("mem_rate", "?"), get("mem_burst", "?"), thousands(float64(m.Sources)), m.First, m.Concurrency)
		fmt.Fprintln(w, "| sources | req/s | idle RSS MiB | peak RSS MiB | over idle per source | rate-table entries at peak (at the end) | over idle per entry at peak | Go heap in use, idle → peak MiB |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
		fmt.Fprintf(w, "| %s | %s | %s | %s | %.0f B | %s (%s) | %.0f B | %.1f → %.1f |\n",
			thousands(float64(m.Sources)), thousands(m.Rate), mib(m.IdleRSSKiB), mib(max(m.HWMKiB, m.MaxRSSKiB)), m.BytesPerSource,
			thousands(m.PeakRateEntries), thousands(m.FinalEntries["rate"]), m.BytesPerEntry,
			float64(m.IdleHeapBytes)/(1<<20), float64(m.MaxHeapBytes)/(1<<20))
		fmt.Fprintln(w)
		fmt.Fprintf(w, "A bucket that has refilled is forgotten (internal/guard/limit), and at %s request(s) a second per source a bucket refills one second after its request, "+
			"so the table holds the sources of the last second or two, not all %s: what a guard keeps for a stream of distinct addresses is bounded by its request rate "+
			"(and by limits.max_sources, %s per table), not by how many addresses an attacker cycles through. The per-entry figure is an upper bound: "+
			"it charges the entries with all the memory the sweep took (connections, buffers, garbage not yet collected).\n",
			get("mem_rate", "?"), thousands(float64(m.Sources)), get("max_sources", "200,000"))
	} else {
		fmt.Fprintln(w, "Failed: see the failures below.")
	}
	if profs, _ := filepath.Glob(filepath.Join(dir, "profile-*.txt")); len(profs) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "### Where the guard's CPU goes (BENCH_PROFILE=1)")
		for _, p := range profs {
			b, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "profile-"), ".txt")
			fmt.Fprintf(w, "\n%s, the whole run (go tool pprof -top, by flat time):\n\n```\n%s```\n", rowLabel(name), b)
		}
	}
	if len(rep.Failures) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Failures:")
		for _, f := range rep.Failures {
			fmt.Fprintf(w, "- %s\n", f)
		}
	}
}

func (s *series) p50() float64 {
	if s == nil {
		return 0
	}
	return s.P50Ms
}

func (s *series) p99() float64 {
	if s == nil {
		return 0
	}
	return s.P99Ms
}

func atofOr(s string, def float64) float64 {
	var v float64
	if _, err := fmt.Sscan(s, &v); err != nil || v == 0 {
		return def
	}
	return v
}

// others formats status and error counts: "429: 12, timeout: 1", or "none".
func others(statuses, errs map[string]int) string {
	var parts []string
	for _, m := range []map[string]int{statuses, errs} {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s: %s", k, thousands(float64(m[k]))))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func blocks(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", k, thousands(m[k])))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
