package host

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// nodeExporterCollectors are the node_exporter collectors whose families
// this package reproduces. processes is disabled by default in
// node_exporter, but this package uses its names.
var nodeExporterCollectors = []string{"cpu", "loadavg", "meminfo", "filesystem", "diskstats", "netdev", "timex", "time", "stat", "uname", "processes"}

// notCovered are node_exporter families of those collectors this package
// deliberately leaves out, with the reason.
var notCovered = map[string]string{
	"node_processes_threads_state": "needs every thread's /proc/PID/task/TID/stat: too costly for a 15 s interval",
}

// volatileSeries are gauge families whose series come and go from one
// reading to the next (a process state nobody is in has no series): a
// series missing on one side counts as 0 there.
var volatileSeries = map[string]bool{"node_processes_state": true}

// exporterSelf reports node_exporter's metrics about itself.
func exporterSelf(name string) bool {
	for _, p := range []string{"go_", "process_", "promhttp_", "node_scrape_collector_", "node_exporter_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// TestMatchesNodeExporter runs Debian's node_exporter on loopback with the
// collectors this package reproduces, scrapes it before and after gathering
// this collector, and checks every family node_exporter emits: present
// here, same type, help and label sets, and values between the two scrapes
// (counters) or within a tolerance suited to each gauge.
func TestMatchesNodeExporter(t *testing.T) {
	bin := findNodeExporter(t)
	url := startNodeExporter(t, bin)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(New(Options{}))

	before := scrape(t, url)
	ours, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	after := scrape(t, url)

	diffs := compareWithExporter(before, after, ours)
	if len(diffs) > 0 {
		t.Errorf("%d differences from node_exporter (%s):\n%s", len(diffs), bin, strings.Join(diffs, "\n"))
	}
	var compared int
	for name := range before {
		if !exporterSelf(name) {
			compared++
		}
	}
	t.Logf("compared %d node_exporter families", compared)
	if compared < 50 {
		t.Errorf("node_exporter emitted only %d families; its collectors did not run as expected", compared)
	}
}

func findNodeExporter(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"prometheus-node-exporter", "node_exporter"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("node_exporter is not installed (looked for prometheus-node-exporter and node_exporter in PATH): " +
		"`make test` installs it (scripts/test-deps.sh; by hand: apt-get install prometheus-node-exporter)")
	return ""
}

// startNodeExporter starts node_exporter on a free loopback port and
// waits, in a bounded loop, until it answers. It is stopped at cleanup.
func startNodeExporter(t *testing.T, bin string) string {
	t.Helper()
	args := []string{"--collector.disable-defaults", "--web.disable-exporter-metrics", "--log.level=warn"}
	for _, c := range nodeExporterCollectors {
		args = append(args, "--collector."+c)
	}
	var lastErr string
	for attempt := 0; attempt < 3; attempt++ {
		addr := freeLoopbackAddr(t)
		cmd := exec.Command(bin, append(args, "--web.listen-address="+addr)...)
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan struct{})
		var waitErr error
		go func() {
			waitErr = cmd.Wait()
			close(exited)
		}()
		t.Cleanup(func() {
			select {
			case <-exited:
			default:
				if err := cmd.Process.Kill(); err != nil {
					t.Errorf("stop node_exporter: %v", err)
				}
				<-exited
			}
		})
		url := "http://" + addr + "/metrics"
		client := &http.Client{Timeout: 2 * time.Second}
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				// Most likely the port was taken meanwhile: try another.
				lastErr = fmt.Sprintf("node_exporter exited (%v): %s", waitErr, out.String())
				goto retry
			default:
			}
			if resp, err := client.Get(url); err == nil {
				if cerr := resp.Body.Close(); cerr != nil {
					t.Fatalf("close response: %v", cerr)
				}
				if resp.StatusCode == http.StatusOK {
					return url
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("node_exporter did not answer on %s within 20s; output:\n%s", addr, out.String())
	retry:
	}
	t.Fatalf("node_exporter could not be started: %s", lastErr)
	return ""
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("close listener: %v", err)
	}
	return addr
}

// syncBuffer collects a child's output written from another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("scrape node_exporter: %v", err)
	}
	defer func() {
		if err := resp.Body.Close(); err != nil {
			t.Errorf("close scrape body: %v", err)
		}
	}()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape node_exporter: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse node_exporter's exposition: %v", err)
	}
	return fams
}

// seriesKey is a series' label set, rendered in label-name order.
func seriesKey(m *dto.Metric) string {
	pairs := make([]string, 0, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		pairs = append(pairs, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(pairs)
	return "{" + strings.Join(pairs, ",") + "}"
}

func metricValue(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return math.NaN()
}

func bySeries(f *dto.MetricFamily) map[string]float64 {
	out := make(map[string]float64)
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		out[seriesKey(m)] = metricValue(m)
	}
	return out
}

const mib = 1 << 20

// gaugeTolerance is how far a gauge of ours may lie outside the range of
// node_exporter's two readings, per family: some gauges move between the
// three readings (processes, memory, free space), others must be exact.
func gaugeTolerance(name string, v float64) float64 {
	switch {
	case strings.HasPrefix(name, "node_load"):
		return 0.01
	case strings.HasPrefix(name, "node_memory_") && strings.HasSuffix(name, "_bytes"):
		return 4 * mib
	case strings.HasPrefix(name, "node_filesystem_") && strings.HasSuffix(name, "_bytes"):
		return math.Max(mib, 1e-4*math.Abs(v))
	case name == "node_filesystem_files_free" || name == "node_filesystem_files":
		return math.Max(100, 1e-4*math.Abs(v))
	case name == "node_time_seconds":
		return 1
	case name == "node_timex_offset_seconds":
		return 1e-3
	case name == "node_timex_maxerror_seconds", name == "node_timex_estimated_error_seconds":
		return 0.01
	case name == "node_timex_frequency_adjustment_ratio":
		return 1e-6
	case name == "node_procs_running", name == "node_procs_blocked", name == "node_disk_io_now":
		return 8
	case name == "node_processes_pids", name == "node_processes_state":
		return 16
	case name == "node_processes_threads":
		return 64
	}
	return 1e-9 * math.Abs(v)
}

// compareWithExporter lists the differences between node_exporter's two
// scrapes and our gathering in between.
func compareWithExporter(before, after map[string]*dto.MetricFamily, oursList []*dto.MetricFamily) []string {
	ours := make(map[string]*dto.MetricFamily, len(oursList))
	for _, f := range oursList {
		ours[f.GetName()] = f
	}
	names := make([]string, 0, len(before))
	for name := range before {
		names = append(names, name)
	}
	for name := range after {
		if _, ok := before[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var diffs []string
	add := func(format string, args ...any) { diffs = append(diffs, "  "+fmt.Sprintf(format, args...)) }
	for _, name := range names {
		if exporterSelf(name) {
			continue
		}
		ref := before[name]
		if ref == nil {
			ref = after[name]
		}
		our := ours[name]
		if our == nil {
			if _, ok := notCovered[name]; ok {
				continue
			}
			add("%s: missing (node_exporter has %d series)", name, len(ref.GetMetric()))
			continue
		}
		if ref.GetType() != our.GetType() {
			add("%s: type %v, node_exporter's is %v", name, our.GetType(), ref.GetType())
		}
		if ref.GetHelp() != our.GetHelp() {
			add("%s: help %q, node_exporter's is %q", name, our.GetHelp(), ref.GetHelp())
		}
		b, a, o := bySeries(before[name]), bySeries(after[name]), bySeries(our)
		keys := make([]string, 0, len(b)+len(o))
		seen := map[string]bool{}
		for _, m := range []map[string]float64{b, a, o} {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					keys = append(keys, k)
				}
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			bv, inB := b[k]
			av, inA := a[k]
			ov, inO := o[k]
			if volatileSeries[name] {
				inB, inA, inO = true, true, true
			}
			switch {
			case !inO && inB && inA:
				add("%s%s: missing series (node_exporter: %g)", name, k, bv)
				continue
			case inO && !inB && !inA:
				add("%s%s: series node_exporter does not have (ours: %g)", name, k, ov)
				continue
			case !inO:
				continue // came or went between node_exporter's scrapes
			}
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, v := range []struct {
				v  float64
				in bool
			}{{bv, inB}, {av, inA}} {
				if v.in {
					lo, hi = math.Min(lo, v.v), math.Max(hi, v.v)
				}
			}
			var tol float64
			if our.GetType() == dto.MetricType_COUNTER {
				// Counters only grow: ours, read in between, must lie
				// between the two scrapes (slack for float rounding).
				tol = 1e-9*math.Abs(hi) + 1e-6
			} else {
				tol = gaugeTolerance(name, hi)
			}
			if ov < lo-tol || ov > hi+tol {
				add("%s%s: ours %g, node_exporter's %g then %g (tolerance %g)", name, k, ov, bv, av, tol)
			}
		}
	}
	return diffs
}

func parseExposition(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// TestCompareWithExporterFindsDifferences shows the comparison fails on
// each kind of difference, so TestMatchesNodeExporter can fail.
func TestCompareWithExporterFindsDifferences(t *testing.T) {
	exporter := func(a, load float64) string {
		return fmt.Sprintf(`# HELP node_a A.
# TYPE node_a counter
node_a{x="1"} %g
# HELP node_gone Missing here.
# TYPE node_gone gauge
node_gone 1
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 %g
# HELP node_processes_threads_state Number of threads in each state.
# TYPE node_processes_threads_state gauge
node_processes_threads_state{thread_state="S"} 3
# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 7
`, a, load)
	}
	before := parseExposition(t, exporter(10, 0.5))
	after := parseExposition(t, exporter(12, 0.6))
	tests := []struct {
		name, ours string
		want       []string
	}{
		{
			name: "agreeing",
			ours: "# HELP node_a A.\n# TYPE node_a counter\nnode_a{x=\"1\"} 11\n# HELP node_gone Missing here.\n# TYPE node_gone gauge\nnode_gone 1\n" +
				"# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1 0.55\n",
		},
		{
			name: "every kind of difference",
			ours: "# HELP node_a A.\n# TYPE node_a counter\nnode_a{x=\"1\"} 13\nnode_a{x=\"2\"} 1\n" +
				"# HELP node_load1 Load.\n# TYPE node_load1 counter\nnode_load1 0.55\n",
			want: []string{
				`node_a{x="1"}: ours 13, node_exporter's 10 then 12`,
				`node_a{x="2"}: series node_exporter does not have`,
				`node_gone: missing (node_exporter has 1 series)`,
				`node_load1: type COUNTER, node_exporter's is GAUGE`,
				`node_load1: help "Load.", node_exporter's is "1m load average."`,
			},
		},
		{
			name: "gauge out of tolerance, series missing",
			ours: "# HELP node_a A.\n# TYPE node_a counter\nnode_a{x=\"9\"} 11\n# HELP node_gone Missing here.\n# TYPE node_gone gauge\nnode_gone 1\n" +
				"# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1 0.7\n",
			want: []string{
				`node_a{x="1"}: missing series`,
				`node_a{x="9"}: series node_exporter does not have`,
				`node_load1{}: ours 0.7, node_exporter's 0.5 then 0.6`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ours []*dto.MetricFamily
			for _, f := range parseExposition(t, tt.ours) {
				ours = append(ours, f)
			}
			diffs := compareWithExporter(before, after, ours)
			if len(diffs) != len(tt.want) {
				t.Errorf("got %d differences, want %d:\n%s", len(diffs), len(tt.want), strings.Join(diffs, "\n"))
			}
			for _, w := range tt.want {
				found := false
				for _, d := range diffs {
					found = found || strings.Contains(d, w)
				}
				if !found {
					t.Errorf("no difference mentions %q in:\n%s", w, strings.Join(diffs, "\n"))
				}
			}
		})
	}
}
