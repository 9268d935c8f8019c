// Scenarios: leaky buckets over a stream of signals, each overflow a ban.
//
// A signal is one observation about a client address: a request the guard
// answered (its status, a WAF block, a limit it hit) or a line of a tailed
// log file that a parser understood (a failed SSH password, a SASL
// failure, an nginx access line). A scenario is a filter over signals, a
// grouping key (the source network, or the source and the account tried),
// and a leaky bucket per key: each matching signal pours one unit in, one
// unit leaks out every Leak, and the signal that finds the bucket holding
// Capacity units overflows it. An overflow bans the source network for the
// scenario's Ban, doubled for every earlier ban of that network within the
// repeat window, up to BanMax.
//
// The bucket is the guard's GCRA table (internal/guard/limit) with rate
// 1/Leak and burst Capacity: GCRA is exactly a leaky bucket used as a
// meter, a refused request being an overflow, and its table is bounded
// (MaxBuckets per scenario, idle keys forgotten first), so an attacker
// cycling addresses or account names cannot grow it without limit. A
// bucket that has drained is indistinguishable from a missing one and is
// swept away.
//
// Signals arrive on a bounded queue that never blocks the guard: when the
// engine falls behind, signals are dropped and counted (metric
// bulwark_detect_signals_dropped_total), never the request. One goroutine
// consumes the queue, so the tables see signals in arrival order and a ban
// is stored once per overflow. Exempt sources (the guard's allow list and
// trusted proxies) are never banned, and a source already banned is not
// banned again by the overflows its remaining traffic causes.
package detect

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/guard/clientip"
	"github.com/bulwarkhq/bulwark/internal/guard/limit"
)

// Signal is one observation a scenario may count.
type Signal struct {
	Time time.Time
	// Source is the client address.
	Source netip.Addr
	// From is "guard" or the name of the parser that read the log line.
	From string
	// Kind is what happened: auth_failure, invalid_user, probe, http,
	// http_error, waf, limit, login_limit, ...
	Kind string
	// Status is the HTTP status, when there is one.
	Status int
	// Site is the guard site (its first host name).
	Site string
	// Path is the request path, when there is one.
	Path string
	// User is the account tried, when known.
	User string
}

// FromGuard is the From of the guard's own signals.
const FromGuard = "guard"

// maxUserKey caps the account name kept in a bucket key.
const maxUserKey = 128

// queueSize is the signal queue's capacity.
const queueSize = 8192

// EngineOptions configure an Engine.
type EngineOptions struct {
	Logger *slog.Logger
	// Exempt reports addresses that must never be banned.
	Exempt func(netip.Addr) bool
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Engine runs the scenarios. Make one with NewEngine, feed it with
// Observe, and run it with Run.
type Engine struct {
	bans   *Bans
	log    *slog.Logger
	exempt func(netip.Addr) bool
	now    func() time.Time
	scen   []*scenario
	v4, v6 int
	repeat time.Duration
	in     chan Signal

	dropped   atomic.Uint64
	signals   *prometheus.CounterVec
	overflows *prometheus.CounterVec
}

type scenario struct {
	cfg     config.DetectScenario
	from    map[string]bool // nil: any
	kinds   map[string]bool // nil: any
	banMax  time.Duration
	buckets *limit.Rate[bucketKey]
}

type bucketKey struct {
	src  netip.Prefix
	user string
}

// NewEngine builds the scenarios of cfg (the built-in ones, less those
// disabled, plus the configured ones) over bans.
func NewEngine(cfg config.Detect, bans *Bans, opt EngineOptions) (*Engine, error) {
	if err := validateSection(cfg); err != nil {
		return nil, err
	}
	e := &Engine{
		bans: bans, log: opt.Logger, exempt: opt.Exempt, now: opt.Now,
		v4: cfg.BanIPv4Prefix, v6: cfg.BanIPv6Prefix, repeat: cfg.RepeatWindow.D(),
		in: make(chan Signal, queueSize),
		signals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_detect_signals_total",
			Help: "Signals the scenarios examined, by origin (guard or a parser).",
		}, []string{"from"}),
		overflows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_detect_overflows_total",
			Help: "Scenario buckets that overflowed, by scenario (each is a ban unless the source was exempt or already banned).",
		}, []string{"scenario"}),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.exempt == nil {
		e.exempt = func(netip.Addr) bool { return false }
	}
	for _, sc := range Scenarios(cfg) {
		e.scen = append(e.scen, newScenario(sc, cfg.MaxBuckets, e.now))
	}
	return e, nil
}

// validateSection checks a detect section built in code.
func validateSection(cfg config.Detect) error {
	c := config.Default()
	c.Detect = cfg
	if err := c.Validate(); err != nil {
		return err
	}
	known := set(BuiltinScenarioNames())
	for i, n := range cfg.Disable {
		if !known[n] {
			return fmt.Errorf("detect.disable[%d]: %q is not a built-in scenario (%s)", i, n, strings.Join(BuiltinScenarioNames(), ", "))
		}
	}
	return nil
}

func newScenario(sc config.DetectScenario, maxBuckets int, now func() time.Time) *scenario {
	s := &scenario{cfg: sc, banMax: sc.BanMax.D()}
	if len(sc.From) > 0 {
		s.from = set(sc.From)
	}
	if len(sc.Kinds) > 0 {
		s.kinds = set(sc.Kinds)
	}
	if s.banMax == 0 {
		s.banMax = max(7*24*time.Hour, sc.Ban.D())
	}
	leak := sc.Leak.D()
	s.buckets = limit.NewRate[bucketKey](float64(time.Second)/float64(leak), sc.Capacity,
		limit.Options{MaxKeys: maxBuckets, IdleAfter: min(max(leak*time.Duration(sc.Capacity), time.Minute), time.Hour), Now: now})
	return s
}

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, v := range list {
		m[v] = true
	}
	return m
}

// matches reports whether the scenario counts sig.
func (s *scenario) matches(sig *Signal) bool {
	if s.from != nil && !s.from[sig.From] || s.kinds != nil && !s.kinds[sig.Kind] {
		return false
	}
	if len(s.cfg.Status) > 0 && !slices.ContainsFunc(s.cfg.Status, func(f string) bool { return config.StatusMatches(f, sig.Status) }) {
		return false
	}
	if len(s.cfg.Sites) > 0 && !slices.Contains(s.cfg.Sites, sig.Site) {
		return false
	}
	if len(s.cfg.Paths) > 0 && !slices.ContainsFunc(s.cfg.Paths, func(p string) bool { return underPath(sig.Path, p) }) {
		return false
	}
	return true
}

// underPath reports whether path is prefix or below it ("/api" covers
// /api and /api/x, not /apix).
func underPath(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || strings.HasSuffix(prefix, "/") || path[len(prefix)] == '/'
}

// Observe queues a signal without blocking; it reports false when the
// queue was full and the signal dropped.
func (e *Engine) Observe(sig Signal) bool {
	select {
	case e.in <- sig:
		return true
	default:
		e.dropped.Add(1)
		return false
	}
}

// ObserveWait queues a signal, waiting for room: for sources that can
// wait (a log file), so that a burst of lines is not dropped.
func (e *Engine) ObserveWait(ctx context.Context, sig Signal) error {
	select {
	case e.in <- sig:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run consumes signals until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case sig := <-e.in:
			e.Process(ctx, sig)
		}
	}
}

// Process runs one signal through every scenario at once (Run does this
// for queued signals; tests and replays call it directly). It returns the
// bans it stored.
func (e *Engine) Process(ctx context.Context, sig Signal) []Ban {
	if !sig.Source.IsValid() {
		return nil
	}
	sig.Source = sig.Source.Unmap()
	if sig.Time.IsZero() {
		sig.Time = e.now()
	}
	e.signals.WithLabelValues(sig.From).Inc()
	src := clientip.Prefix(sig.Source, e.v4, e.v6)
	// The buckets run on the engine's clock (now), not the signal's
	// time: log lines replayed after a restart must not count as a
	// burst, and a line's own clock cannot be trusted to be monotonic.
	now := e.now()
	var out []Ban
	for _, s := range e.scen {
		if !s.matches(&sig) {
			continue
		}
		key := bucketKey{src: src}
		if s.cfg.GroupBy == "source_user" {
			key.user = sig.User
			if len(key.user) > maxUserKey {
				key.user = key.user[:maxUserKey]
			}
		}
		if ok, _ := s.buckets.Allow(key, now); ok {
			continue
		}
		e.overflows.WithLabelValues(s.cfg.Name).Inc()
		if ban, ok := e.ban(ctx, s, sig, src); ok {
			out = append(out, ban)
		}
	}
	return out
}

// ban stores the ban an overflow calls for, unless the source is exempt
// or already banned.
func (e *Engine) ban(ctx context.Context, s *scenario, sig Signal, src netip.Prefix) (Ban, bool) {
	if e.exempt(sig.Source) {
		e.log.Info("detect: scenario overflowed for an exempt source; not banned", "scenario", s.cfg.Name, "source", sig.Source)
		return Ban{}, false
	}
	if _, banned := e.bans.Match(sig.Source); banned {
		return Ban{}, false
	}
	d := s.cfg.Ban.D()
	n, err := e.bans.Offences(ctx, src, e.now().Add(-e.repeat))
	if err != nil {
		e.log.Warn("detect: count earlier bans", "net", src, "err", err)
	}
	for range n {
		if d >= s.banMax {
			break
		}
		d *= 2
	}
	d = min(d, s.banMax)
	reason := fmt.Sprintf("%s: more than %d %s events, leaking one per %s", s.cfg.Name, s.cfg.Capacity, describe(s.cfg), s.cfg.Leak)
	if n > 0 {
		reason += fmt.Sprintf("; repeat offender (%d earlier bans)", n)
	}
	if sig.User != "" {
		reason += fmt.Sprintf("; last account tried %q", clipUser(sig.User))
	}
	ban, err := e.bans.Add(ctx, Ban{Net: src, Reason: reason, Origin: "scenario:" + s.cfg.Name, Scenario: s.cfg.Name}, d)
	if err != nil {
		e.log.Error("detect: store ban", "scenario", s.cfg.Name, "net", src, "err", err)
		return Ban{}, false
	}
	e.log.Warn("detect: banned", "scenario", s.cfg.Name, "net", src, "for", d)
	return ban, true
}

func clipUser(u string) string {
	if len(u) > 64 {
		return u[:64] + "…"
	}
	return u
}

// describe names what a scenario counts, for ban reasons.
func describe(sc config.DetectScenario) string {
	var parts []string
	if len(sc.Kinds) > 0 {
		parts = append(parts, strings.Join(sc.Kinds, "/"))
	}
	if len(sc.Status) > 0 {
		parts = append(parts, "status "+strings.Join(sc.Status, "/"))
	}
	if len(parts) == 0 {
		return "matching"
	}
	return strings.Join(parts, " ")
}

// Dropped is how many signals were dropped because the queue was full.
func (e *Engine) Dropped() uint64 { return e.dropped.Load() }

var (
	bucketsDesc = prometheus.NewDesc("bulwark_detect_buckets",
		"Buckets held by a scenario (bounded by detect.max_buckets).", []string{"scenario"}, nil)
	droppedDesc = prometheus.NewDesc("bulwark_detect_signals_dropped_total",
		"Signals dropped because the scenarios fell behind.", nil, nil)
)

// Describe implements prometheus.Collector.
func (e *Engine) Describe(ch chan<- *prometheus.Desc) {
	e.signals.Describe(ch)
	e.overflows.Describe(ch)
	ch <- bucketsDesc
	ch <- droppedDesc
}

// Collect implements prometheus.Collector.
func (e *Engine) Collect(ch chan<- prometheus.Metric) {
	e.signals.Collect(ch)
	e.overflows.Collect(ch)
	for _, s := range e.scen {
		ch <- prometheus.MustNewConstMetric(bucketsDesc, prometheus.GaugeValue, float64(s.buckets.Len()), s.cfg.Name)
	}
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(e.dropped.Load()))
}
