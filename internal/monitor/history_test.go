package monitor

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/monitor/alert"
	"github.com/bulwarkhq/bulwark/internal/monitor/check"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func TestHistory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := NewHistory(db)
		// Ten minutes of samples every 15 s: / climbs from 0 to 39.
		for i := range 40 {
			pts := []alert.Point{
				{Name: "filesystem_used_percent", Labels: map[string]string{"mountpoint": "/"}, Value: float64(i)},
				{Name: "filesystem_used_percent", Labels: map[string]string{"mountpoint": "/var"}, Value: 50},
				{Name: "load1", Value: 1},
			}
			if err := h.Record(ctx, t0.Add(time.Duration(i)*15*time.Second), pts); err != nil {
				t.Fatal(err)
			}
		}
		raw, err := h.Query(ctx, "filesystem_used_percent", t0, t0.Add(time.Hour), ResRaw)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) != 2 || raw[0].Series != `filesystem_used_percent{mountpoint="/"}` || len(raw[0].Points) != 40 || raw[0].Points[39].Mean != 39 {
			t.Fatalf("raw: %+v", raw)
		}
		mins, err := h.Query(ctx, `filesystem_used_percent{mountpoint="/"}`, t0, t0.Add(time.Hour), ResMinute)
		if err != nil {
			t.Fatal(err)
		}
		// Minute 0 holds samples 0..3: mean 1.5, min 0, max 3.
		if len(mins) != 1 || len(mins[0].Points) != 10 {
			t.Fatalf("minutes: %+v", mins)
		}
		if p := mins[0].Points[0]; p.Mean != 1.5 || p.Min != 0 || p.Max != 3 || p.Samples != 4 || !p.Time.Equal(t0) {
			t.Errorf("minute 0: %+v", p)
		}
		hours, _ := h.Query(ctx, "load1", t0, t0.Add(time.Hour), ResHour)
		if len(hours) != 1 || len(hours[0].Points) != 1 || hours[0].Points[0].Samples != 40 {
			t.Errorf("hours: %+v", hours)
		}
		// "load" must not select load1 (a name is matched whole).
		if s, _ := h.Query(ctx, "load", t0, t0.Add(time.Hour), ResRaw); len(s) != 0 {
			t.Errorf("a name prefix selected %v", s)
		}
		if err := h.Prune(ctx, t0.Add(10*time.Minute+48*time.Hour), Retention{Raw: 48 * time.Hour, Minute: 30 * 24 * time.Hour, Hour: 400 * 24 * time.Hour}); err != nil {
			t.Fatal(err)
		}
		raw, _ = h.Query(ctx, "load1", t0, t0.Add(time.Hour), ResRaw)
		mins, _ = h.Query(ctx, "load1", t0, t0.Add(time.Hour), ResMinute)
		if len(raw) != 0 || len(mins) != 1 {
			t.Errorf("after 48h raw should be gone and minutes kept: %d %d", len(raw), len(mins))
		}
		// A range of more than MaxPoints samples returns the newest.
		must(t, db.Tx(ctx, func(tx *sql.Tx) error {
			for i := range MaxPoints + 10 {
				if _, err := tx.ExecContext(ctx, `INSERT INTO monitor_samples(res, series, ts, total, n, lo, hi) VALUES (0, 'x', $1, $2, 1, $2, $2)`,
					store.Micros(t0.Add(time.Duration(i)*time.Second)), float64(i)); err != nil {
					return err
				}
			}
			return nil
		}))
		xs, err := h.Query(ctx, "x", t0, t0.Add(3*time.Hour), ResRaw)
		if err != nil || len(xs) != 1 || !xs[0].Truncated || len(xs[0].Points) != MaxPoints || xs[0].Points[MaxPoints-1].Mean != MaxPoints+9 || xs[0].Points[0].Mean != 10 {
			t.Errorf("truncated query: %v %d points, truncated %v", err, len(xs[0].Points), xs[0].Truncated)
		}
		list, _ := h.SeriesList(ctx, t0)
		if len(list) != 3 {
			t.Errorf("series %v", list)
		}
	}, Migrations)
}

func TestCheckDaysAndGaps(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := NewHistory(db)
		day := t0.Truncate(24 * time.Hour)
		// The monitor ran from 00:00 to 12:00, then was down until 18:00.
		must(t, h.Alive(ctx, day, day.Add(12*time.Hour)))
		must(t, h.Alive(ctx, day.Add(18*time.Hour), day.Add(24*time.Hour-time.Minute)))
		var results []check.Result
		for i := range 10 {
			results = append(results, check.Result{Name: "web", OK: i != 3, Time: day.Add(time.Duration(i) * time.Hour), DurationSeconds: 0.01})
		}
		must(t, h.RecordChecks(ctx, results))
		days, err := h.Days(ctx, "web", 3, day.Add(24*time.Hour-time.Second))
		if err != nil {
			t.Fatal(err)
		}
		d := days[2]
		if d.Date != "2026-11-22" || d.Runs != 10 || d.Failures != 1 || d.UptimePercent == nil || *d.UptimePercent != 90 {
			t.Fatalf("today %+v", d)
		}
		// 18 of 24 hours monitored (each run stretched by 2 minutes of slack).
		if d.MonitoredPercent < 75 || d.MonitoredPercent > 76 {
			t.Errorf("monitored %.2f%%, want about 75%%", d.MonitoredPercent)
		}
		if days[0].UptimePercent != nil || days[0].MonitoredPercent != 0 {
			t.Errorf("a day without the monitor: %+v", days[0])
		}
		last, err := h.LastResults(ctx)
		if err != nil || !last["web"].Result.OK || !last["web"].Since.Equal(day.Add(4*time.Hour)) {
			t.Errorf("last %+v %v", last, err)
		}
	}, Migrations)
}

func TestAlertsPersist(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := NewHistory(db)
		a := []alert.Alert{{Key: "web-down/web", Rule: "web-down", Check: "web", State: alert.StateFiring, AckedBy: "alice", Notified: []string{"mail"}}}
		must(t, h.SaveAlerts(ctx, a))
		must(t, h.SaveSilence(ctx, alert.Silence{ID: "s1", Check: "web", Start: t0, End: t0.Add(time.Hour), Author: "bob", Reason: "upgrade"}))
		got, sil, err := h.LoadAlerts(ctx)
		if err != nil || len(got) != 1 || got[0].AckedBy != "alice" || len(sil) != 1 || sil[0].Reason != "upgrade" {
			t.Fatalf("%+v %+v %v", got, sil, err)
		}
		must(t, h.Prune(ctx, t0.Add(2*time.Hour), Retention{Raw: time.Hour, Minute: time.Hour, Hour: time.Hour}))
		if _, sil, _ = h.LoadAlerts(ctx); len(sil) != 0 {
			t.Errorf("an ended silence was kept: %+v", sil)
		}
		in, err := h.AddIncident(ctx, Incident{Page: "main", Title: "Database slow", Body: "Investigating.", Status: "investigating", Author: "alice", Created: t0})
		if err != nil || in.ID == 0 {
			t.Fatal(in, err)
		}
		if _, err := h.AddIncident(ctx, Incident{Page: "main", Status: "panicking"}); err == nil {
			t.Error("a bad status was accepted")
		}
		list, err := h.Incidents(ctx, "main", t0.Add(-time.Hour))
		if err != nil || len(list) != 1 || list[0].Title != "Database slow" {
			t.Errorf("%+v %v", list, err)
		}
	}, Migrations)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
