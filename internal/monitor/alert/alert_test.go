package alert

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
)

// clock is the injected time: tests move it, never sleep.
type clock struct{ t time.Time }

func (c *clock) now() time.Time           { return c.t }
func (c *clock) add(d time.Duration)      { c.t = c.t.Add(d) }
func newClock() *clock                    { return &clock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)} }
func dur(d time.Duration) config.Duration { return config.Duration(d) }

// recorder is a Sink that keeps everything.
type recorder struct {
	notices []Notice
	events  []events.Event
}

func (r *recorder) Notify(_ context.Context, n Notice)        { r.notices = append(r.notices, n) }
func (r *recorder) Publish(_ context.Context, e events.Event) { r.events = append(r.events, e) }

// take returns the notices since the last take as "state rule channels
// [alerts]" lines.
func (r *recorder) take() []string {
	var out []string
	for _, n := range r.notices {
		var keys []string
		for _, a := range n.Alerts {
			keys = append(keys, a.Key)
		}
		out = append(out, fmt.Sprintf("%s %s %s %s", n.State, n.Rule, strings.Join(n.Channels, ","), strings.Join(keys, ",")))
	}
	r.notices = nil
	return out
}

func (r *recorder) types() []string {
	var out []string
	for _, e := range r.events {
		out = append(out, string(e.Type))
	}
	r.events = nil
	return out
}

func setup(t *testing.T, rules ...config.AlertRule) (*Engine, *clock, *recorder) {
	t.Helper()
	c, rec := newClock(), &recorder{}
	e, err := New(rules, Options{Now: c.now, Sink: rec})
	if err != nil {
		t.Fatal(err)
	}
	return e, c, rec
}

func expect(t *testing.T, step string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got %q\nwant %q", step, got, want)
	}
}

var ctx = context.Background()

func fail(e *Engine, check string) {
	e.ObserveCheck(ctx, CheckResult{Check: check, OK: false, Message: "status 503, want 200"})
}

func pass(e *Engine, check string) {
	e.ObserveCheck(ctx, CheckResult{Check: check, OK: true, Message: "status 200 in 3 ms"})
}

func TestCheckRuleFailuresInARow(t *testing.T) {
	e, c, rec := setup(t, config.AlertRule{Name: "web-down", Check: "web", Failures: 3, Channels: []string{"mail"}})
	fail(e, "web")
	c.add(30 * time.Second)
	fail(e, "web")
	expect(t, "two failures", rec.take())
	pass(e, "web") // the run of failures is broken
	c.add(30 * time.Second)
	fail(e, "web")
	fail(e, "web")
	expect(t, "two more", rec.take())
	fail(e, "web")
	expect(t, "the third in a row", rec.take(), "firing web-down mail web-down/web")
	expect(t, "events", rec.types(), "alert.fired")
	fail(e, "web")
	fail(e, "web")
	expect(t, "still failing: deduplicated", rec.take())
	pass(e, "web")
	expect(t, "recovery", rec.take(), "resolved web-down mail web-down/web")
	expect(t, "events", rec.types(), "alert.resolved")
	// Another check is not watched by this rule.
	for range 5 {
		fail(e, "db")
	}
	expect(t, "other check", rec.take())
}

func TestCheckRuleForDuration(t *testing.T) {
	e, c, rec := setup(t, config.AlertRule{Name: "down-2m", Check: "*", For: dur(2 * time.Minute), Channels: []string{"mail"}})
	fail(e, "web")
	c.add(time.Minute)
	fail(e, "web")
	e.Tick(ctx)
	expect(t, "failing for 1m", rec.take())
	c.add(59 * time.Second)
	e.Tick(ctx)
	expect(t, "failing for 1m59s", rec.take())
	c.add(time.Second)
	e.Tick(ctx)
	expect(t, "failing for 2m", rec.take(), "firing down-2m mail down-2m/web")
	// "*" makes one alert per check.
	fail(e, "db")
	c.add(2 * time.Minute)
	e.Tick(ctx)
	expect(t, "second check", rec.take(), "firing down-2m mail down-2m/db")
}

func TestMetricRuleHeldForDuration(t *testing.T) {
	e, c, rec := setup(t, config.AlertRule{Name: "disk-full", Metric: `filesystem_used_percent{mountpoint=~"/|/var"} > 90`, For: dur(5 * time.Minute), Channels: []string{"mail"}, Severity: "warning"})
	sample := func(root, varfs, home float64) {
		e.ObserveMetrics(ctx, []Point{
			{Name: "filesystem_used_percent", Labels: map[string]string{"mountpoint": "/"}, Value: root},
			{Name: "filesystem_used_percent", Labels: map[string]string{"mountpoint": "/var"}, Value: varfs},
			{Name: "filesystem_used_percent", Labels: map[string]string{"mountpoint": "/home"}, Value: home},
			{Name: "inodes_used_percent", Labels: map[string]string{"mountpoint": "/"}, Value: 99},
		})
	}
	sample(95, 50, 99) // /home is not selected; inodes is another metric
	for range 4 {
		c.add(time.Minute)
		sample(95, 50, 99)
	}
	expect(t, "held 4m", rec.take())
	c.add(59 * time.Second)
	sample(89, 50, 99) // dipped below: the clock starts again
	c.add(time.Second)
	sample(95, 50, 99)
	for range 4 {
		c.add(time.Minute)
		sample(95, 50, 99)
	}
	expect(t, "held 4m again", rec.take())
	c.add(time.Minute)
	sample(95, 50, 99)
	expect(t, "held 5m", rec.take(), `firing disk-full mail disk-full/{mountpoint="/"}`)
	if got := rec.events[0]; got.Severity != events.SeverityWarning || got.Data["value"] != 95.0 {
		t.Errorf("event %+v", got)
	}
	rec.types()
	c.add(time.Minute)
	sample(80, 50, 99)
	expect(t, "below the threshold", rec.take(), `resolved disk-full mail disk-full/{mountpoint="/"}`)
}

func TestGrouping(t *testing.T) {
	e, c, rec := setup(t, config.AlertRule{Name: "disk-full", Metric: `filesystem_used_percent > 90`, Channels: []string{"mail", "chat"}})
	var pts []Point
	for i := range 20 {
		pts = append(pts, Point{Name: "filesystem_used_percent", Labels: map[string]string{"mountpoint": fmt.Sprintf("/srv/%02d", i)}, Value: 95})
	}
	e.ObserveMetrics(ctx, pts)
	if len(rec.notices) != 1 || len(rec.notices[0].Alerts) != 20 {
		t.Fatalf("20 series over the threshold gave %d notices (first with %d alerts), want one notice of 20", len(rec.notices), len(rec.notices[0].Alerts))
	}
	if got := rec.notices[0].Title(); got != "disk-full firing: 20 alerts" {
		t.Errorf("title %q", got)
	}
	if got := rec.notices[0].Text(); strings.Count(got, "\n") != 20 || !strings.Contains(got, `{mountpoint="/srv/07"}: filesystem_used_percent is 95 (> 90)`) {
		t.Errorf("text %q", got)
	}
	rec.take()
	c.add(time.Minute)
	e.ObserveMetrics(ctx, pts[:5]) // fifteen series gone
	expect(t, "gone series resolve together", rec.take(), "resolved disk-full mail,chat "+strings.Join(keys(15, 5), ","))
}

func keys(n, from int) []string {
	var out []string
	for i := from; i < from+n; i++ {
		out = append(out, fmt.Sprintf(`disk-full/{mountpoint="/srv/%02d"}`, i))
	}
	return out
}

func TestRepeatEscalateAck(t *testing.T) {
	e, c, rec := setup(t, config.AlertRule{Name: "web-down", Check: "web", Channels: []string{"mail"}, Repeat: dur(time.Hour),
		Escalate: config.Escalation{After: dur(30 * time.Minute), Channels: []string{"pager"}}})
	fail(e, "web")
	expect(t, "fired", rec.take(), "firing web-down mail web-down/web")
	c.add(29 * time.Minute)
	e.Tick(ctx)
	expect(t, "29m", rec.take())
	c.add(time.Minute)
	e.Tick(ctx)
	expect(t, "30m unacknowledged", rec.take(), "escalated web-down pager web-down/web")
	e.Tick(ctx)
	expect(t, "escalates once", rec.take())
	c.add(30 * time.Minute)
	e.Tick(ctx)
	expect(t, "1h: repeat", rec.take(), "repeat web-down mail web-down/web")
	rec.types()
	if _, err := e.Ack(ctx, "web-down/web", "alice", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("ack without a comment: %v", err)
	}
	if _, err := e.Ack(ctx, "web-down/nope", "alice", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ack of an unknown alert: %v", err)
	}
	a, err := e.Ack(ctx, "web-down/web", "alice", "restarting php-fpm")
	if err != nil || a.AckedBy != "alice" {
		t.Fatalf("ack: %v %+v", err, a)
	}
	expect(t, "acknowledged: everyone told", rec.take(), "acknowledged web-down mail,pager web-down/web")
	expect(t, "event", rec.types(), "alert.acknowledged")
	c.add(5 * time.Hour)
	e.Tick(ctx)
	fail(e, "web")
	expect(t, "no repeats after ack", rec.take())
	pass(e, "web")
	expect(t, "resolution to everyone told", rec.take(), "resolved web-down mail,pager web-down/web")
}

func TestSilenceAndMaintenance(t *testing.T) {
	e, c, rec := setup(t, config.AlertRule{Name: "web-down", Check: "*", Channels: []string{"mail"}})
	start := c.now().Add(time.Hour)
	if err := e.AddSilence(Silence{ID: "m1", Check: "web", Start: start, End: start.Add(time.Hour), Author: "bob"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a silence without a reason: %v", err)
	}
	if err := e.AddSilence(Silence{ID: "m1", Check: "web", Start: start, End: start, Author: "bob", Reason: "x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("an empty window: %v", err)
	}
	// A maintenance window of the web check, an hour from now.
	if err := e.AddSilence(Silence{ID: "m1", Check: "web", Start: start, End: start.Add(time.Hour), Author: "bob", Reason: "kernel upgrade"}); err != nil {
		t.Fatal(err)
	}
	c.add(time.Hour)
	fail(e, "web")
	fail(e, "db")
	expect(t, "inside the window only db is sent", rec.take(), "firing web-down mail web-down/db")
	ev := rec.events
	if len(ev) != 2 || ev[0].Data["silenced"] != "m1" && ev[1].Data["silenced"] != "m1" {
		t.Errorf("the silenced alert's event should name the silence: %+v", ev)
	}
	rec.types()
	c.add(30 * time.Minute)
	e.Tick(ctx)
	expect(t, "still silenced", rec.take())
	c.add(30 * time.Minute)
	e.Tick(ctx)
	expect(t, "the window ended while web still fails", rec.take(), "firing web-down mail web-down/web")
	// A silence that covers an alert from fire to resolution sends nothing.
	e.AddSilence(Silence{ID: "s2", Rule: "web-down", Start: c.now(), End: c.now().Add(time.Hour), Author: "bob", Reason: "flapping"})
	fail(e, "cache")
	pass(e, "cache")
	expect(t, "silenced from start to end", rec.take())
	if !e.RemoveSilence("s2") || e.RemoveSilence("s2") {
		t.Error("RemoveSilence")
	}
}

func TestRestoreAfterRestart(t *testing.T) {
	e, c, rec := setup(t, config.AlertRule{Name: "web-down", Check: "web", Channels: []string{"mail"}})
	fail(e, "web")
	e.Ack(ctx, "web-down/web", "alice", "on it")
	saved := e.Alerts()
	rec.take()
	e2, _ := New([]config.AlertRule{{Name: "web-down", Check: "web", Channels: []string{"mail"}}}, Options{Now: c.now, Sink: rec})
	e2.Restore(saved, nil)
	c.add(time.Minute)
	fail(e2, "web")
	expect(t, "a restart does not fire again", rec.take())
	pass(e2, "web")
	expect(t, "but resolves", rec.take(), "resolved web-down mail web-down/web")
}

func TestNewErrors(t *testing.T) {
	_, err := New([]config.AlertRule{{Name: "x", Metric: "load1 >"}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "alerts.rules[0] (x).metric") {
		t.Errorf("bad metric: %v", err)
	}
}

// TestEscalationCountsFromFirstNotice: an alert held back by a maintenance
// window longer than the escalation delay is sent when the window ends,
// and escalates only escalate.after later.
func TestEscalationCountsFromFirstNotice(t *testing.T) {
	e, c, rec := setup(t, config.AlertRule{Name: "web-down", Check: "web", Channels: []string{"mail"},
		Escalate: config.Escalation{After: dur(30 * time.Minute), Channels: []string{"pager"}}})
	must(t, e.AddSilence(Silence{ID: "m", Check: "web", Start: c.now(), End: c.now().Add(2 * time.Hour), Author: "bob", Reason: "migration"}))
	fail(e, "web")
	c.add(2 * time.Hour)
	e.Tick(ctx)
	expect(t, "the window ended", rec.take(), "firing web-down mail web-down/web")
	c.add(5 * time.Second)
	e.Tick(ctx)
	expect(t, "5 s later: no escalation yet", rec.take())
	c.add(30 * time.Minute)
	e.Tick(ctx)
	expect(t, "30 min after the first notice", rec.take(), "escalated web-down pager web-down/web")
}

// TestRestoreDropsRemovedRules: alerts of a rule no longer configured
// would never resolve; a restart forgets them.
func TestRestoreDropsRemovedRules(t *testing.T) {
	e, _, _ := setup(t, config.AlertRule{Name: "old", Check: "web", Channels: []string{"mail"}})
	fail(e, "web")
	saved := e.Alerts()
	e2, _, _ := setup(t, config.AlertRule{Name: "new", Check: "web", Channels: []string{"mail"}})
	e2.Restore(saved, nil)
	if got := e2.Alerts(); len(got) != 0 {
		t.Errorf("restored %+v", got)
	}
}

// TestGroupWait: under a "*" rule, checks failing seconds apart go out as
// one notice when the group wait is over.
func TestGroupWait(t *testing.T) {
	c, rec := newClock(), &recorder{}
	e, err := New([]config.AlertRule{{Name: "down", Check: "*", Channels: []string{"mail"}}}, Options{Now: c.now, Sink: rec, GroupWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		fail(e, fmt.Sprintf("site%02d", i))
		c.add(300 * time.Millisecond)
	}
	e.Tick(ctx)
	expect(t, "6 s after the first", rec.take())
	c.add(4 * time.Second)
	e.Tick(ctx)
	if len(rec.notices) != 1 || len(rec.notices[0].Alerts) != 20 {
		t.Fatalf("%d notices, want one of 20 alerts", len(rec.notices))
	}
	if got := rec.notices[0].Title(); got != "down firing: 20 alerts" {
		t.Errorf("title %q", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
