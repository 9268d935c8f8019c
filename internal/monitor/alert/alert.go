// Package alert turns check results and metric samples into alerts, and
// alerts into notices for people: fired, repeated, escalated, acknowledged
// and resolved.
//
// An alert is one rule applied to one thing: a check (for a check rule,
// "*" making one alert per check) or a metric series (for a metric rule,
// one alert per series its selector matches, told apart by labels). Its
// key is the rule's name and the check's name or the series' labels.
//
// Life of an alert:
//
//	pending   the condition holds but not yet long enough: fewer than
//	          `failures` failed runs in a row, or less than `for` of time
//	firing    notice "firing" to the rule's channels; again every `repeat`
//	          while unacknowledged; to the escalation channels once, when
//	          still unacknowledged `escalate.after` after firing
//	acked     someone took it (Ack, with who and why): notice
//	          "acknowledged", no more repeats or escalation
//	resolved  the check passed or the series no longer meets the
//	          condition (or is gone): notice "resolved" to every channel
//	          that was told it fired
//
// A silence (or maintenance window: a silence that starts later) matches
// alerts by rule, check and labels, and carries an author and a reason.
// A silenced alert keeps its state but sends nothing; when the silence ends
// while it is still firing, its firing notice goes out then.
//
// Notices are grouped: everything one call (Observe*, Tick, Ack) produces
// for the same rule, state and channels goes out as one notice listing the
// alerts, so a disk rule matching twenty filesystems sends one message,
// not twenty. Deduplication is the key: a condition that keeps holding
// never fires twice.
//
// The engine is not safe for concurrent use; the monitor serialises calls.
// Time comes only from Options.Now, so rule timing is tested with an
// injected clock.
package alert

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/monitor/cond"
)

// State is an alert's state.
type State string

// The states.
const (
	StatePending  State = "pending"
	StateFiring   State = "firing"
	StateResolved State = "resolved"
)

// Alert is one rule applied to one check or series.
type Alert struct {
	Key      string            `json:"key"`
	Rule     string            `json:"rule"`
	Check    string            `json:"check,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	State    State             `json:"state"`
	Severity string            `json:"severity"`
	// Since is when the condition began to hold.
	Since time.Time `json:"since"`
	// FiredAt and ResolvedAt are when it fired and resolved.
	FiredAt    time.Time `json:"fired_at,omitzero"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// Failures is the check's failed runs in a row (check rules).
	Failures int `json:"failures,omitempty"`
	// Value is the metric's last value (metric rules).
	Value float64 `json:"value,omitempty"`
	// Message is what the check or condition last said.
	Message string `json:"message"`
	// Acknowledged, with who and why.
	AckedBy    string    `json:"acked_by,omitempty"`
	AckComment string    `json:"ack_comment,omitempty"`
	AckedAt    time.Time `json:"acked_at,omitzero"`
	// Silenced names the silence that holds its notices back.
	Silenced string `json:"silenced,omitempty"`
	// Notified lists the channels told it fired; FirstNotified and
	// LastNotified are when it was first and last told (escalation counts
	// from the first notice, so a maintenance window that outlasts the
	// escalation delay does not escalate the moment it ends).
	Notified      []string  `json:"notified,omitempty"`
	FirstNotified time.Time `json:"first_notified,omitzero"`
	LastNotified  time.Time `json:"last_notified,omitzero"`
	Escalated     bool      `json:"escalated,omitempty"`
}

// Silence holds back the notices of the alerts it matches between Start
// and End. Empty matchers match everything.
type Silence struct {
	ID     string            `json:"id"`
	Rule   string            `json:"rule,omitempty"`
	Check  string            `json:"check,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
	Start  time.Time         `json:"start"`
	End    time.Time         `json:"end"`
	Author string            `json:"author"`
	Reason string            `json:"reason"`
}

// Active reports whether the silence is in force at t.
func (s Silence) Active(t time.Time) bool { return !t.Before(s.Start) && t.Before(s.End) }

// Matches reports whether the silence covers the alert.
func (s Silence) Matches(a *Alert) bool {
	if s.Rule != "" && s.Rule != a.Rule || s.Check != "" && s.Check != a.Check {
		return false
	}
	for k, v := range s.Labels {
		if a.Labels[k] != v {
			return false
		}
	}
	return true
}

// Notice is one message for people: one or more alerts of one rule that
// changed the same way, for the same channels.
type Notice struct {
	// State is firing, repeat, escalated, acknowledged or resolved.
	State    string
	Rule     string
	Severity string
	Channels []string
	Alerts   []Alert
	Time     time.Time
}

// Title is the notice's one-line summary.
func (n Notice) Title() string {
	what := n.Alerts[0].Check
	if what == "" {
		what = labelText(n.Alerts[0].Labels)
	}
	if len(n.Alerts) > 1 {
		what = fmt.Sprintf("%d alerts", len(n.Alerts))
	}
	return fmt.Sprintf("%s %s: %s", n.Rule, n.State, what)
}

// Text is the notice's body: one line per alert.
func (n Notice) Text() string {
	var b strings.Builder
	for _, a := range n.Alerts {
		what := a.Check
		if what == "" {
			what = labelText(a.Labels)
		}
		fmt.Fprintf(&b, "%s: %s (since %s)\n", what, a.Message, a.Since.UTC().Format(time.RFC3339))
		if a.AckedBy != "" {
			fmt.Fprintf(&b, "  acknowledged by %s: %s\n", a.AckedBy, a.AckComment)
		}
	}
	return b.String()
}

func labelText(l map[string]string) string {
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, l[k])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Sink receives what the engine decides: notices to deliver and events to
// record. Both are called synchronously; a slow delivery should be queued
// by the sink.
type Sink interface {
	Notify(ctx context.Context, n Notice)
	Publish(ctx context.Context, e events.Event)
}

// Point is one value of a metric series.
type Point struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// CheckResult is what a rule needs of one run of a check.
type CheckResult struct {
	Check   string
	OK      bool
	Message string
}

type rule struct {
	cfg    config.AlertRule
	metric *cond.Metric
}

// Engine evaluates the rules.
type Engine struct {
	rules    []rule
	now      func() time.Time
	sink     Sink
	alerts   map[string]*Alert
	silences map[string]Silence
	// failing tracks each check's current run of failures.
	failing   map[string]*streak
	pending   []Notice
	groupWait time.Duration
}

type streak struct {
	n     int
	since time.Time
	msg   string
}

// Options configure an Engine.
type Options struct {
	Now  func() time.Time
	Sink Sink
	// GroupWait holds notices this long so that those of one rule, state
	// and channels arriving apart (twenty checks failing within seconds of
	// each other under a "*" rule) go out as one; Tick sends them. 0 sends
	// at the end of each call.
	GroupWait time.Duration
}

// New compiles the rules. Errors name the rule.
func New(rules []config.AlertRule, o Options) (*Engine, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	e := &Engine{now: o.Now, sink: o.Sink, alerts: map[string]*Alert{}, silences: map[string]Silence{}, failing: map[string]*streak{}, groupWait: o.GroupWait}
	for i, r := range rules {
		rr := rule{cfg: r}
		if r.Metric != "" {
			m, err := cond.ParseMetric(r.Metric)
			if err != nil {
				return nil, fmt.Errorf("alerts.rules[%d] (%s).metric: %w", i, r.Name, err)
			}
			rr.metric = m
		}
		if rr.cfg.Failures == 0 {
			rr.cfg.Failures = 1
		}
		if rr.cfg.Severity == "" {
			rr.cfg.Severity = "error"
		}
		e.rules = append(e.rules, rr)
	}
	return e, nil
}

// ObserveCheck records one run of a check and evaluates the check rules.
func (e *Engine) ObserveCheck(ctx context.Context, r CheckResult) {
	now := e.now()
	if r.OK {
		delete(e.failing, r.Check)
	} else {
		s := e.failing[r.Check]
		if s == nil {
			s = &streak{since: now}
			e.failing[r.Check] = s
		}
		s.n++
		s.msg = r.Message
	}
	for i := range e.rules {
		rl := &e.rules[i]
		if rl.metric != nil || rl.cfg.Check != "*" && rl.cfg.Check != r.Check {
			continue
		}
		key := rl.cfg.Name + "/" + r.Check
		a := e.alerts[key]
		if r.OK {
			if a != nil {
				a.Message = r.Message
				e.resolve(a, now)
			}
			continue
		}
		s := e.failing[r.Check]
		if a == nil || a.State == StateResolved {
			a = &Alert{Key: key, Rule: rl.cfg.Name, Check: r.Check, State: StatePending, Severity: rl.cfg.Severity, Since: s.since}
			e.alerts[key] = a
		}
		a.Failures, a.Message = s.n, r.Message
		e.evaluate(rl, a, now)
	}
	e.flush(ctx)
}

// ObserveMetrics evaluates the metric rules on one sample of every series:
// a series absent from points no longer meets its condition.
func (e *Engine) ObserveMetrics(ctx context.Context, points []Point) {
	now := e.now()
	for i := range e.rules {
		rl := &e.rules[i]
		if rl.metric == nil {
			continue
		}
		seen := map[string]bool{}
		for _, p := range points {
			if !rl.metric.Selects(p.Name, p.Labels) {
				continue
			}
			key := rl.cfg.Name + "/" + labelText(p.Labels)
			seen[key] = true
			a := e.alerts[key]
			if !rl.metric.Holds(p.Value) {
				if a != nil {
					a.Value, a.Message = p.Value, fmt.Sprintf("%s is %g, no longer %s %g", p.Name, p.Value, rl.metric.Op, rl.metric.Value)
					e.resolve(a, now)
				}
				continue
			}
			if a == nil || a.State == StateResolved {
				a = &Alert{Key: key, Rule: rl.cfg.Name, Labels: maps.Clone(p.Labels), State: StatePending, Severity: rl.cfg.Severity, Since: now}
				e.alerts[key] = a
			}
			a.Value, a.Message = p.Value, fmt.Sprintf("%s is %g (%s %g)", p.Name, p.Value, rl.metric.Op, rl.metric.Value)
			e.evaluate(rl, a, now)
		}
		for key, a := range e.alerts {
			if a.Rule == rl.cfg.Name && !seen[key] && a.State != StateResolved {
				a.Message = "the series is gone"
				e.resolve(a, now)
			}
		}
	}
	e.flush(ctx)
}

// Tick re-evaluates what depends on time alone: `for` durations, repeats,
// escalations, silences that began or ended, and forgets alerts resolved
// more than a day ago. Call it every few seconds.
func (e *Engine) Tick(ctx context.Context) {
	now := e.now()
	for i := range e.rules {
		rl := &e.rules[i]
		for _, a := range e.alerts {
			if a.Rule == rl.cfg.Name && a.State != StateResolved {
				e.evaluate(rl, a, now)
			}
		}
	}
	for key, a := range e.alerts {
		if a.State == StateResolved && now.Sub(a.ResolvedAt) > 24*time.Hour {
			delete(e.alerts, key)
		}
	}
	for id, s := range e.silences {
		if now.After(s.End) {
			delete(e.silences, id)
		}
	}
	e.flush(ctx)
}

// evaluate moves a pending alert to firing when its rule is met, and sends
// what a firing alert is owed: its first notice (once unsilenced),
// repeats and escalation.
func (e *Engine) evaluate(rl *rule, a *Alert, now time.Time) {
	a.Silenced = e.silencedBy(a, now)
	if a.State == StatePending {
		met := now.Sub(a.Since) >= rl.cfg.For.D()
		if rl.metric == nil {
			met = met && a.Failures >= rl.cfg.Failures
		}
		if !met {
			return
		}
		a.State, a.FiredAt = StateFiring, now
		e.publish(a, events.TypeAlertFired, Severity(a.Severity), fmt.Sprintf("alert %s fired: %s", a.Key, a.Message))
	}
	if a.State != StateFiring || a.Silenced != "" {
		return
	}
	switch {
	case a.Notified == nil:
		e.queue("firing", rl.cfg.Name, a, rl.cfg.Channels, now)
		a.Notified = slices.Clone(rl.cfg.Channels)
		a.FirstNotified, a.LastNotified = now, now
	case a.AckedBy != "":
		// Someone has it: no repeats, no escalation.
	default:
		if rl.cfg.Repeat != 0 && now.Sub(a.LastNotified) >= rl.cfg.Repeat.D() {
			e.queue("repeat", rl.cfg.Name, a, rl.cfg.Channels, now)
			a.LastNotified = now
		}
		if esc := rl.cfg.Escalate; !a.Escalated && esc.After != 0 && now.Sub(a.FirstNotified) >= esc.After.D() {
			a.Escalated = true
			e.queue("escalated", rl.cfg.Name, a, esc.Channels, now)
			a.Notified = union(a.Notified, esc.Channels)
			e.publish(a, events.TypeAlertEscalated, Severity(a.Severity), fmt.Sprintf("alert %s unacknowledged for %s: escalated to %s", a.Key, esc.After, strings.Join(esc.Channels, ", ")))
		}
	}
}

func (e *Engine) resolve(a *Alert, now time.Time) {
	switch a.State {
	case StatePending:
		delete(e.alerts, a.Key)
		return
	case StateResolved:
		return
	}
	a.State, a.ResolvedAt = StateResolved, now
	e.publish(a, events.TypeAlertResolved, events.SeverityInfo, fmt.Sprintf("alert %s resolved: %s", a.Key, a.Message))
	if len(a.Notified) > 0 {
		e.queue("resolved", a.Rule, a, a.Notified, now)
	}
}

// Ack acknowledges a firing alert: no more repeats or escalation, and a
// notice to the channels already told.
func (e *Engine) Ack(ctx context.Context, key, by, comment string) (*Alert, error) {
	a := e.alerts[key]
	if a == nil || a.State == StateResolved {
		return nil, fmt.Errorf("%w: no open alert %q", ErrNotFound, key)
	}
	if by == "" || strings.TrimSpace(comment) == "" {
		return nil, fmt.Errorf("%w: an acknowledgement needs who and a comment", ErrInvalid)
	}
	now := e.now()
	a.AckedBy, a.AckComment, a.AckedAt = by, comment, now
	e.publish(a, events.TypeAlertAcknowledged, events.SeverityNotice, fmt.Sprintf("alert %s acknowledged by %s: %s", key, by, comment))
	if len(a.Notified) > 0 {
		e.queue("acknowledged", a.Rule, a, a.Notified, now)
	}
	e.flush(ctx)
	c := *a
	return &c, nil
}

// Errors of Ack and AddSilence, for the API's status codes.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid")
)

// AddSilence adds or replaces a silence.
func (e *Engine) AddSilence(s Silence) error {
	switch {
	case s.ID == "":
		return fmt.Errorf("%w: a silence needs an id", ErrInvalid)
	case s.Author == "" || strings.TrimSpace(s.Reason) == "":
		return fmt.Errorf("%w: a silence needs an author and a reason", ErrInvalid)
	case !s.End.After(s.Start):
		return fmt.Errorf("%w: a silence must end after it starts", ErrInvalid)
	}
	e.silences[s.ID] = s
	return nil
}

// RemoveSilence ends a silence now; its alerts' notices go out at the next
// Tick.
func (e *Engine) RemoveSilence(id string) bool {
	_, ok := e.silences[id]
	delete(e.silences, id)
	return ok
}

// Silences returns the silences not yet over, by start.
func (e *Engine) Silences() []Silence {
	out := slices.Collect(maps.Values(e.silences))
	sort.Slice(out, func(i, j int) bool {
		return out[i].Start.Before(out[j].Start) || out[i].Start.Equal(out[j].Start) && out[i].ID < out[j].ID
	})
	return out
}

// Alerts returns copies of the alerts, open ones first, by key.
func (e *Engine) Alerts() []Alert {
	out := make([]Alert, 0, len(e.alerts))
	for _, a := range e.alerts {
		c := *a
		c.Labels, c.Notified = maps.Clone(a.Labels), slices.Clone(a.Notified)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].State == StateResolved) != (out[j].State == StateResolved) {
			return out[j].State == StateResolved
		}
		return out[i].Key < out[j].Key
	})
	return out
}

// Restore puts alerts saved by an earlier process back, so that a restart
// neither fires again what had fired nor forgets what was acknowledged.
//
// Alerts of rules no longer configured are dropped: nothing would ever
// resolve them.
func (e *Engine) Restore(alerts []Alert, silences []Silence) {
	for _, a := range alerts {
		if !slices.ContainsFunc(e.rules, func(r rule) bool { return r.cfg.Name == a.Rule }) {
			continue
		}
		c := a
		e.alerts[a.Key] = &c
	}
	for _, s := range silences {
		e.silences[s.ID] = s
	}
}

// silencedBy names the silence holding a's notices back: of those in force
// that match, the earliest to start (then the smallest id), as Silences
// orders them, found without copying and sorting them all at every
// evaluation.
func (e *Engine) silencedBy(a *Alert, now time.Time) string {
	var best *Silence
	for id := range e.silences {
		s := e.silences[id]
		if !s.Active(now) || !s.Matches(a) {
			continue
		}
		if best == nil || s.Start.Before(best.Start) || s.Start.Equal(best.Start) && s.ID < best.ID {
			best = &s
		}
	}
	if best == nil {
		return ""
	}
	return best.ID
}

// Severity maps a rule's severity word to an event severity (error when
// unset or unknown).
func Severity(s string) events.Severity {
	switch s {
	case "critical":
		return events.SeverityCritical
	case "warning":
		return events.SeverityWarning
	case "info":
		return events.SeverityInfo
	}
	return events.SeverityError
}

func (e *Engine) publish(a *Alert, typ events.Type, sev events.Severity, msg string) {
	if e.sink == nil {
		return
	}
	data := map[string]any{"rule": a.Rule, "key": a.Key, "state": string(a.State), "message": a.Message}
	if a.Check != "" {
		data["check"] = a.Check
	}
	if len(a.Labels) > 0 {
		data["labels"] = a.Labels
		data["value"] = a.Value
	}
	if a.AckedBy != "" {
		data["acked_by"], data["ack_comment"] = a.AckedBy, a.AckComment
	}
	if a.Silenced != "" {
		data["silenced"] = a.Silenced
	}
	e.sink.Publish(context.Background(), events.Event{Type: typ, Severity: sev, Module: events.ModuleMonitoring,
		Actor: events.SystemActor("monitor"), Resource: "alert/" + a.Key, Message: msg, Data: data})
}

func (e *Engine) queue(state, ruleName string, a *Alert, channels []string, now time.Time) {
	if len(channels) == 0 {
		return
	}
	c := *a
	c.Labels = maps.Clone(a.Labels)
	for i := range e.pending {
		n := &e.pending[i]
		if n.State == state && n.Rule == ruleName && slices.Equal(n.Channels, channels) {
			if i := slices.IndexFunc(n.Alerts, func(x Alert) bool { return x.Key == c.Key }); i >= 0 {
				n.Alerts[i] = c // a repeat while waiting: one line, the latest
				return
			}
			n.Alerts = append(n.Alerts, c)
			return
		}
	}
	e.pending = append(e.pending, Notice{State: state, Rule: ruleName, Severity: a.Severity, Channels: slices.Clone(channels), Alerts: []Alert{c}, Time: now})
}

// flush sends the notices whose group wait is over (all of them without
// one). A notice's Time is when its first alert was queued.
func (e *Engine) flush(ctx context.Context) {
	now := e.now()
	var keep []Notice
	for _, n := range e.pending {
		if e.groupWait > 0 && now.Sub(n.Time) < e.groupWait {
			keep = append(keep, n)
			continue
		}
		if e.sink != nil {
			sort.Slice(n.Alerts, func(i, j int) bool { return n.Alerts[i].Key < n.Alerts[j].Key })
			e.sink.Notify(ctx, n)
		}
	}
	e.pending = keep
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
