// Package monitor is Bulwark's supervision: it samples the host's metrics,
// runs the configured service checks on their intervals, keeps history,
// evaluates the alert rules and hands what they decide to internal/notify.
//
// Service.Run owns four loops:
//
//   - the sampler takes a host sample every monitor.interval, derives the
//     series of series.go (rates against the previous sample), records
//     them in the history and gives them to the metric rules;
//   - one goroutine per check runs it every interval, starting at an
//     offset within the interval drawn from the check's name, so that a
//     thousand checks with the same interval are spread over it rather
//     than fired together;
//   - the collector takes every result: it keeps each check's state,
//     publishes check.failed and check.recovered on changes, feeds the
//     check rules and writes results to the history in batches;
//   - the ticker moves time-based rules (for, repeat, escalation,
//     silences) every 5 s, saves alert state when it changed, marks the
//     monitor alive every minute (gaps on the status page are the time it
//     was not) and prunes history every hour.
//
// The alert engine is not safe for concurrent use: every call to it holds
// Service.mu. Notices are delivered on their own goroutines so that a
// slow mail server never holds up checks.
package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/monitor/alert"
	"github.com/bulwarkhq/bulwark/internal/monitor/check"
	"github.com/bulwarkhq/bulwark/internal/monitor/host"
	"github.com/bulwarkhq/bulwark/internal/notify"
	"github.com/bulwarkhq/bulwark/internal/redact"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Deliverer sends a message to named channels (internal/notify's
// Notifier), recording every attempt.
type Deliverer interface {
	DeliverAll(ctx context.Context, channels []string, msg notify.Message) error
}

// Options configure a Service.
type Options struct {
	Monitor config.Monitor
	Alerts  config.Alerts
	Status  config.StatusPages
	DB      *store.DB
	Events  *events.Bus
	// Notifier delivers notices; nil drops them (with a log line).
	Notifier Deliverer
	Logger   *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Host samples the host; nil makes one with Monitor.Processes.
	Host *host.Collector
	// Getenv and ReadFile resolve the checks' secrets.
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
	// HTTPClient sends the watchdog's pings (default: a 10 s timeout).
	HTTPClient *http.Client
	// GroupWait holds notices to group them (0: DefaultGroupWait;
	// negative: send at once).
	GroupWait time.Duration
}

// DefaultGroupWait is how long notices wait to be grouped: alerts of one
// rule firing within it go out as one message.
const DefaultGroupWait = 10 * time.Second

// maxDeliveries bounds the notices being delivered at once.
const maxDeliveries = 16

// Service is the running monitor.
type Service struct {
	o       Options
	history *History
	checks  []*check.Check
	host    *host.Collector
	started time.Time

	mu       sync.Mutex // guards engine, states, last, prev
	engine   *alert.Engine
	states   map[string]*CheckState
	last     *host.Sample
	points   []alert.Point
	held     []events.Event // published by release
	loadOnce sync.Once
	loadErr  error
	// Deliveries run on dctx, cancelled shortly after Run ends, at most
	// maxDeliveries at a time.
	dctx     context.Context
	dcancel  context.CancelFunc
	dsem     chan struct{}
	changes  chan struct{}
	saveMu   sync.Mutex // guards saved
	saved    []byte     // the alert state last saved
	delivers sync.WaitGroup
}

// New compiles the checks and rules. Errors name the setting.
func New(o Options) (*Service, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	s := &Service{o: o, history: NewHistory(o.DB), host: o.Host, states: map[string]*CheckState{}, started: o.Now(), changes: make(chan struct{}, 1),
		dsem: make(chan struct{}, maxDeliveries)}
	s.dctx, s.dcancel = context.WithCancel(context.Background())
	if s.host == nil {
		s.host = host.New(host.Options{Processes: o.Monitor.Processes, Now: o.Now})
	}
	// One set of HTTP transports for every check: a thousand checks of
	// one server reuse a few idle connections instead of holding one each.
	checks, err := check.Compile(o.Monitor.Checks, check.Options{Getenv: o.Getenv, ReadFile: o.ReadFile, Now: o.Now, Transports: check.NewTransports()})
	if err != nil {
		return nil, fmt.Errorf("monitor.checks: %w", err)
	}
	s.checks = checks
	known := map[string]bool{"*": true}
	for _, c := range o.Monitor.Checks {
		known[c.Name] = true
	}
	for i, r := range o.Alerts.Rules {
		if r.Check != "" && !known[r.Check] {
			return nil, fmt.Errorf("alerts.rules[%d] (%s).check: %q is not a check in monitor.checks", i, r.Name, r.Check)
		}
	}
	gw := o.GroupWait
	switch {
	case gw == 0:
		gw = DefaultGroupWait
	case gw < 0:
		gw = 0
	}
	if s.engine, err = alert.New(o.Alerts.Rules, alert.Options{Now: o.Now, Sink: sink{s}, GroupWait: gw}); err != nil {
		return nil, err
	}
	return s, nil
}

// History returns the service's history store.
func (s *Service) History() *History { return s.history }

// Host returns the host collector (a Prometheus collector too).
func (s *Service) Host() *host.Collector { return s.host }

// Checks returns the compiled checks.
func (s *Service) Checks() []*check.Check { return s.checks }

// Run runs the monitor until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if err := s.Load(ctx); err != nil {
		s.o.Logger.Warn("monitor: restore state", "err", err)
	}
	results := make(chan check.Result, 256)
	var wg sync.WaitGroup
	for _, c := range s.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.schedule(ctx, c, results)
		}()
	}
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		s.collect(ctx, results)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.sampleLoop(ctx)
	}()
	if s.o.Alerts.Watchdog.Interval != 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.watchdog(ctx)
		}()
	}
	s.tickLoop(ctx)
	wg.Wait()
	close(results)
	<-collected
	// Deliveries under way get 15 s more, then are cancelled (their
	// attempts are recorded as failed), so a dead mail server cannot hold
	// up shutdown past a service manager's stop timeout.
	stop := time.AfterFunc(15*time.Second, s.dcancel)
	s.delivers.Wait()
	stop.Stop()
	// The final alert state and alive mark, past the cancellation.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	s.saveAlerts(fctx)
	if err := s.history.Alive(fctx, s.started, s.o.Now()); err != nil {
		s.o.Logger.Warn("monitor: mark alive", "err", err)
	}
	return nil
}

// Load restores the last check results and the alert state from the
// store, once: Run does it first (app calls it before starting the status
// publisher), and a process that only reads (bulwark status export) calls
// it to show what the running monitor recorded.
func (s *Service) Load(ctx context.Context) error {
	s.loadOnce.Do(func() { s.loadErr = s.load(ctx) })
	return s.loadErr
}

func (s *Service) load(ctx context.Context) error {
	last, err := s.history.LastResults(ctx)
	if err != nil {
		return err
	}
	alerts, silences, err := s.history.LoadAlerts(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.checks {
		if st, ok := last[c.Name()]; ok {
			st := st
			s.states[c.Name()] = &st
		}
	}
	// Alerts of checks no longer configured would never resolve.
	alerts = slices.DeleteFunc(alerts, func(a alert.Alert) bool { return a.Check != "" && !s.HasCheck(a.Check) })
	s.engine.Restore(alerts, silences)
	return nil
}

// Offset is where within its interval a check first runs: a fixed point
// drawn from its name, so runs are spread and stay put across restarts.
func Offset(name string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(name))
	return time.Duration(h.Sum64() % uint64(max(interval, time.Millisecond)))
}

func (s *Service) schedule(ctx context.Context, c *check.Check, out chan<- check.Result) {
	every := c.Config().Interval.D()
	next := time.Now().Add(Offset(c.Name(), every))
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r := c.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case out <- r:
		case <-ctx.Done():
			return
		}
		// Keep the cadence: the next run is an interval after this one
		// was due, not after it ended; runs missed by a slow one are
		// skipped, not bunched.
		next = next.Add(every)
		if now := time.Now(); next.Before(now) {
			next = next.Add((now.Sub(next)/every + 1) * every)
		}
		t.Reset(time.Until(next))
	}
}

// collect takes check results until results is closed.
func (s *Service) collect(ctx context.Context, results <-chan check.Result) {
	flush := time.NewTicker(5 * time.Second)
	defer flush.Stop()
	var batch []check.Result
	write := func(ctx context.Context) {
		if err := s.history.RecordChecks(ctx, batch); err != nil {
			s.o.Logger.Warn("monitor: record check results", "err", err)
		}
		batch = batch[:0]
	}
	for {
		select {
		case r, ok := <-results:
			if !ok {
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				write(fctx)
				cancel()
				return
			}
			s.observe(context.WithoutCancel(ctx), r)
			batch = append(batch, r)
			if len(batch) >= 500 {
				write(ctx)
			}
		case <-flush.C:
			write(ctx)
		}
	}
}

// Observe takes one check result: state, events and rules. (Run calls it
// for every run; tests call it directly.)
func (s *Service) observe(ctx context.Context, r check.Result) {
	s.mu.Lock()
	prev := s.states[r.Name]
	st := &CheckState{Result: r, Since: r.Time}
	if prev != nil && prev.Result.OK == r.OK {
		st.Since = prev.Since
	}
	s.states[r.Name] = st
	s.engine.ObserveCheck(ctx, alert.CheckResult{Check: r.Name, OK: r.OK, Message: r.Message})
	var first []events.Event
	switch {
	case !r.OK && (prev == nil || prev.Result.OK):
		first = append(first, events.Event{Type: events.TypeCheckFailed, Severity: events.SeverityError, Resource: "check/" + r.Name,
			Message: fmt.Sprintf("check %s failed: %s", r.Name, r.Message), Data: resultData(r)})
	case r.OK && prev != nil && !prev.Result.OK:
		first = append(first, events.Event{Type: events.TypeCheckRecovered, Severity: events.SeverityInfo, Resource: "check/" + r.Name,
			Message: fmt.Sprintf("check %s recovered after %s: %s", r.Name, r.Time.Sub(prev.Since).Round(time.Second), r.Message), Data: resultData(r)})
	}
	s.release(ctx, first...)
	if prev == nil || prev.Result.OK != r.OK {
		s.pagesChanged()
	}
}

// release unlocks s.mu, then publishes first and the events the alert
// engine produced while it was held: the bus writes to the store, which
// must not hold up everyone waiting for the lock.
func (s *Service) release(ctx context.Context, first ...events.Event) {
	held := s.held
	s.held = nil
	s.mu.Unlock()
	for _, e := range append(first, held...) {
		s.publish(ctx, e)
	}
}

func resultData(r check.Result) map[string]any {
	d := map[string]any{"check": r.Name, "kind": r.Kind, "status": string(r.Status), "attempts": r.Attempts, "duration_seconds": r.DurationSeconds}
	if len(r.Values) > 0 {
		d["values"] = r.Values
	}
	return d
}

func (s *Service) publish(ctx context.Context, e events.Event) {
	if s.o.Events == nil {
		return
	}
	e.Module, e.Actor = events.ModuleMonitoring, events.SystemActor("monitor")
	if _, err := s.o.Events.Publish(ctx, e); err != nil {
		s.o.Logger.Warn("monitor: publish event", "type", e.Type, "err", err)
	}
}

// Sample takes one host sample and feeds it to history and rules.
func (s *Service) Sample(ctx context.Context) (*host.Sample, error) {
	smp, err := s.host.Sample(ctx)
	if smp == nil {
		return nil, err
	}
	if err != nil {
		s.o.Logger.Debug("monitor: host sample incomplete", "err", err)
	}
	s.mu.Lock()
	pts := Derive(smp, s.last)
	s.last, s.points = smp, pts
	s.engine.ObserveMetrics(ctx, pts)
	s.release(ctx)
	if err := s.history.Record(ctx, smp.Time, pts); err != nil && ctx.Err() == nil {
		s.o.Logger.Warn("monitor: record metrics", "err", err)
	}
	return smp, nil
}

func (s *Service) sampleLoop(ctx context.Context) {
	t := time.NewTicker(s.o.Monitor.Interval.D())
	defer t.Stop()
	for {
		if _, err := s.Sample(ctx); err != nil && ctx.Err() == nil {
			s.o.Logger.Warn("monitor: host sample", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) tickLoop(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	var lastAlive, lastPrune time.Time
	for {
		now := s.o.Now()
		s.Tick(ctx)
		if now.Sub(lastAlive) >= time.Minute {
			if err := s.history.Alive(ctx, s.started, now); err != nil && ctx.Err() == nil {
				s.o.Logger.Warn("monitor: mark alive", "err", err)
			}
			lastAlive = now
		}
		if now.Sub(lastPrune) >= time.Hour {
			h := s.o.Monitor.History
			if err := s.history.Prune(ctx, now, Retention{Raw: h.Raw.D(), Minute: h.Minute.D(), Hour: h.Hour.D()}); err != nil && ctx.Err() == nil {
				s.o.Logger.Warn("monitor: prune history", "err", err)
			}
			lastPrune = now
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tick moves the time-based rules and saves alert state when it changed.
func (s *Service) Tick(ctx context.Context) {
	s.mu.Lock()
	s.engine.Tick(ctx)
	s.release(ctx)
	s.saveAlerts(ctx)
}

func (s *Service) saveAlerts(ctx context.Context) {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	alerts := s.engine.Alerts()
	s.mu.Unlock()
	js, err := json.Marshal(alerts)
	if err != nil || string(js) == string(s.saved) {
		return
	}
	if err := s.history.SaveAlerts(ctx, alerts); err != nil {
		if ctx.Err() == nil {
			s.o.Logger.Warn("monitor: save alerts", "err", err)
		}
		return
	}
	s.saved = js
}

// sink carries the engine's decisions out: notices to the notifier (on
// their own goroutine), events to the bus.
type sink struct{ s *Service }

// Publish holds the event until the engine's caller releases s.mu (the
// engine calls its sink only with s.mu held).
func (k sink) Publish(_ context.Context, e events.Event) { k.s.held = append(k.s.held, e) }

func (k sink) Notify(ctx context.Context, n alert.Notice) {
	s := k.s
	if s.o.Notifier == nil {
		s.o.Logger.Warn("monitor: no notifier; notice dropped", "rule", n.Rule, "state", n.State)
		return
	}
	msg := NoticeMessage(n)
	s.delivers.Add(1)
	go func() {
		defer s.delivers.Done()
		select {
		case s.dsem <- struct{}{}:
		case <-s.dctx.Done():
			return
		}
		defer func() { <-s.dsem }()
		dctx, cancel := context.WithTimeout(s.dctx, 10*time.Minute)
		defer cancel()
		if err := s.o.Notifier.DeliverAll(dctx, n.Channels, msg); err != nil {
			s.o.Logger.Warn("monitor: deliver notice", "rule", n.Rule, "state", n.State, "err", err)
		}
	}()
}

// NoticeMessage turns an alert notice into a notification message.
func NoticeMessage(n alert.Notice) notify.Message {
	m := notify.Message{Title: n.Title(), Text: n.Text(), Rule: n.Rule, Time: n.Time, Severity: alert.Severity(n.Severity)}
	switch n.State {
	case "resolved":
		m.State, m.Severity = notify.StateResolved, events.SeverityInfo
	case "acknowledged":
		m.State = notify.StateAcknowledged
	default:
		m.State = notify.StateFiring
	}
	if len(n.Alerts) == 1 {
		a := n.Alerts[0]
		m.Alert, m.Check, m.Labels = a.Key, a.Check, maps.Clone(a.Labels)
	}
	return m
}

// watchdog sends a heartbeat every interval: a GET to the URL and a
// message to the channels, so that someone notices when they stop.
func (s *Service) watchdog(ctx context.Context) {
	w := s.o.Alerts.Watchdog
	t := time.NewTicker(w.Interval.D())
	defer t.Stop()
	for {
		s.Heartbeat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Heartbeat sends one watchdog heartbeat.
func (s *Service) Heartbeat(ctx context.Context) {
	w := s.o.Alerts.Watchdog
	if w.URL != "" {
		if err := s.ping(ctx, w.URL); err != nil && ctx.Err() == nil {
			s.publish(ctx, events.Event{Type: events.TypeNotificationFailed, Severity: events.SeverityError, Resource: "watchdog",
				Message: "watchdog heartbeat failed: " + err.Error(), Data: map[string]any{"channel": "watchdog.url"}})
		}
	}
	if len(w.Channels) > 0 && s.o.Notifier != nil {
		msg := notify.Message{Title: "Bulwark heartbeat", Text: fmt.Sprintf("Bulwark's monitor is running (up since %s).", s.started.UTC().Format(time.RFC3339)),
			State: notify.StateHeartbeat, Severity: events.SeverityInfo, Time: s.o.Now()}
		if err := s.o.Notifier.DeliverAll(ctx, w.Channels, msg); err != nil && ctx.Err() == nil {
			s.o.Logger.Warn("monitor: watchdog heartbeat", "err", err)
		}
	}
}

func (s *Service) ping(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "bulwark-watchdog")
	resp, err := s.o.HTTPClient.Do(req)
	if err != nil {
		// The URL's path is often its secret: keep it out of events.
		return errors.New(strings.ReplaceAll(err.Error(), url, redact.String(url, true)))
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %d", redact.String(url, true), resp.StatusCode)
	}
	return nil
}

// Status is the monitor's state for the API and the status page.
type Status struct {
	Checks []CheckStatus `json:"checks"`
	Alerts []alert.Alert `json:"alerts"`
	// LastSample is when the host was last sampled.
	LastSample time.Time `json:"last_sample,omitzero"`
	Started    time.Time `json:"started"`
}

// CheckStatus is one check's configuration summary and state.
type CheckStatus struct {
	Name     string  `json:"name"`
	Kind     string  `json:"kind"`
	Interval float64 `json:"interval_seconds"`
	// State is up, down or pending (not run yet).
	State  string        `json:"state"`
	Since  time.Time     `json:"since,omitzero"`
	Result *check.Result `json:"last_result,omitempty"`
}

// Status returns every check's state and the alerts.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Alerts: s.engine.Alerts(), Started: s.started}
	if s.last != nil {
		st.LastSample = s.last.Time
	}
	for _, c := range s.checks {
		cs := CheckStatus{Name: c.Name(), Kind: c.Kind(), Interval: c.Config().Interval.D().Seconds(), State: "pending"}
		if x := s.states[c.Name()]; x != nil {
			r := x.Result
			cs.Result, cs.Since, cs.State = &r, x.Since, "down"
			if r.OK {
				cs.State = "up"
			}
		}
		st.Checks = append(st.Checks, cs)
	}
	return st
}

// Points returns the series of the last host sample.
func (s *Service) Points() []alert.Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.points)
}

// Ack acknowledges an alert and saves the state.
func (s *Service) Ack(ctx context.Context, key, by, comment string) (*alert.Alert, error) {
	s.mu.Lock()
	a, err := s.engine.Ack(ctx, key, by, comment)
	s.release(ctx)
	if err != nil {
		return nil, err
	}
	s.saveAlerts(ctx)
	return a, nil
}

// AddSilence stores a silence and applies it.
func (s *Service) AddSilence(ctx context.Context, sl alert.Silence) error {
	s.mu.Lock()
	err := s.engine.AddSilence(sl)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.history.SaveSilence(ctx, sl); err != nil {
		return fmt.Errorf("monitor: save silence: %w", err)
	}
	s.publish(ctx, events.Event{Type: events.TypeAlertSilenced, Severity: events.SeverityNotice, Resource: "silence/" + sl.ID,
		Message: fmt.Sprintf("silence %s by %s until %s: %s", sl.ID, sl.Author, sl.End.UTC().Format(time.RFC3339), sl.Reason),
		Data:    map[string]any{"rule": sl.Rule, "check": sl.Check, "labels": sl.Labels, "start": sl.Start, "end": sl.End, "author": sl.Author, "reason": sl.Reason}})
	return nil
}

// RemoveSilence ends a silence.
func (s *Service) RemoveSilence(ctx context.Context, id string) error {
	s.mu.Lock()
	ok := s.engine.RemoveSilence(id)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: no silence %q", ErrNotFound, id)
	}
	if err := s.history.DeleteSilence(ctx, id); err != nil {
		return err
	}
	s.Tick(ctx) // notices held back by it go out now
	return nil
}

// Silences returns the silences in force or scheduled.
func (s *Service) Silences() []alert.Silence {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.engine.Silences()
}

// HasCheck reports whether a check of that name is configured.
func (s *Service) HasCheck(name string) bool {
	return slices.ContainsFunc(s.checks, func(c *check.Check) bool { return c.Name() == name })
}

// Resolution is the history resolution a query of [from, to) uses by
// default: the finest kept that far back in at most MaxPoints points.
func (s *Service) Resolution(from, to time.Time) int {
	h := s.o.Monitor.History
	return Retention{Raw: h.Raw.D(), Minute: h.Minute.D(), Hour: h.Hour.D()}.Resolution(from, to, s.o.Now(), s.o.Monitor.Interval.D())
}

// CheckNow runs every check once, now, and takes the results as if they
// had come on schedule (state, events, rules, history).
func (s *Service) CheckNow(ctx context.Context) []check.Result {
	results := check.RunAll(ctx, s.checks, 16)
	for _, r := range results {
		s.observe(ctx, r)
	}
	if err := s.history.RecordChecks(ctx, results); err != nil {
		s.o.Logger.Warn("monitor: record check results", "err", err)
	}
	return results
}

// Wait waits until the notices being delivered are done (tests, shutdown).
func (s *Service) Wait() { s.delivers.Wait() }
