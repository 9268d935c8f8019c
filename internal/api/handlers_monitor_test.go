package api_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/api"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/monitor"
	"github.com/bulwarkhq/bulwark/internal/monitor/alert"
	"github.com/bulwarkhq/bulwark/internal/notify"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
	"github.com/bulwarkhq/bulwark/internal/web/statuspage"
)

// TestMonitorAPI: module monitoring's grants on every endpoint; an alert
// fired by a real check failure, acknowledged by an operator; silences
// with their validation; incident notes shown on the public page; the
// channels' evidence and a test delivery; history queries; 503 without
// supervision.
func TestMonitorAPI(t *testing.T) {
	db := storetest.SQLite(t, append(migrations(), monitor.Migrations, notify.Migrations)...)
	var delivered atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		delivered.Add(1)
	}))
	defer hook.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close() // nothing listens: the check fails

	var svc *monitor.Service
	e := newEnvWith(t, db, func(e *env, d *api.Deps) {
		ch := config.Channel{Name: "hook", Webhook: config.WebhookChannel{URL: hook.URL}}
		chs, err := notify.Channels([]config.Channel{ch}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := notify.NewNotifier(db, chs, notify.Options{Bus: e.events, Now: e.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		mon := config.Default().Monitor
		mon.Checks = []config.Check{{Name: "db", TCP: config.TCPCheck{Address: down}}}
		svc, err = monitor.New(monitor.Options{Monitor: mon, DB: db, Events: e.events, Notifier: n, Now: e.clock.Now, GroupWait: -1,
			Status: config.StatusPages{Title: "Example status"},
			Alerts: config.Alerts{Channels: []config.Channel{ch}, Rules: []config.AlertRule{{Name: "db-down", Check: "db", Channels: []string{"hook"}}}}})
		if err != nil {
			t.Fatal(err)
		}
		d.Monitor, d.Notifier, d.StatusPages = svc, n, statuspage.Handler("/status", svc)
	})
	ctx := context.Background()
	svc.CheckNow(ctx)
	svc.Wait()
	if delivered.Load() != 1 {
		t.Fatalf("the firing notice was delivered %d times", delivered.Load())
	}

	admin := e.login("admin", adminPassword)
	e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "mon-view", "grants": []map[string]any{{"module": "monitoring", "level": "read"}}}), 201)
	e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "mon-op", "grants": []map[string]any{{"module": "monitoring", "level": "operate"}}}), 201)
	e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "backup-view", "grants": []map[string]any{{"module": "backups", "level": "read"}}}), 201)
	e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "mon-blue", "grants": []map[string]any{{"module": "monitoring", "level": "operate", "scope": "team=blue"}}}), 201)
	viewer := e.mkuser(admin, "mview", "mon-view")
	scoped := e.mkuser(admin, "mblue", "mon-blue")
	op := e.mkuser(admin, "mop", "mon-op")
	other := e.mkuser(admin, "bview", "backup-view")

	var st monitor.Status
	e.want(e.do("GET", "/api/v1/monitor/status", viewer, nil), 200).json(t, &st)
	if len(st.Checks) != 1 || st.Checks[0].State != "down" || len(st.Alerts) != 1 || st.Alerts[0].State != alert.StateFiring {
		t.Fatalf("status %+v", st)
	}
	for _, path := range []string{"/api/v1/monitor/status", "/api/v1/monitor/alerts", "/api/v1/monitor/silences", "/api/v1/notify/channels", "/api/v1/notify/deliveries", "/api/v1/monitor/metrics"} {
		e.want(e.do("GET", path, other, nil), 403)
		// Checks and alerts carry no tags: a grant scoped to some tags
		// does not reach them.
		e.want(e.do("GET", path, scoped, nil), 403)
	}
	e.want(e.do("POST", "/api/v1/monitor/silences", scoped, map[string]any{"check": "db", "duration": "2h", "reason": "x"}), 403)

	// Acknowledge: operate, with a comment.
	key := st.Alerts[0].Key
	e.want(e.do("POST", "/api/v1/monitor/alerts/ack", viewer, map[string]any{"key": key, "comment": "on it"}), 403)
	e.want(e.do("POST", "/api/v1/monitor/alerts/ack", op, map[string]any{"key": key}), 400)
	e.want(e.do("POST", "/api/v1/monitor/alerts/ack", op, map[string]any{"key": "nope/x", "comment": "x"}), 404)
	var a alert.Alert
	e.want(e.do("POST", "/api/v1/monitor/alerts/ack", op, map[string]any{"key": key, "comment": "restarting postgres"}), 200).json(t, &a)
	if a.AckedBy != "user:mop" || a.AckComment != "restarting postgres" {
		t.Errorf("ack %+v", a)
	}
	svc.Wait()
	if delivered.Load() != 2 {
		t.Errorf("the acknowledgement was not sent to the channel (%d deliveries)", delivered.Load())
	}

	// Silences.
	e.want(e.do("POST", "/api/v1/monitor/silences", op, map[string]any{"check": "db", "duration": "2h"}), 400)
	e.want(e.do("POST", "/api/v1/monitor/silences", op, map[string]any{"duration": "2h", "reason": "everything"}), 400)
	e.want(e.do("POST", "/api/v1/monitor/silences", op, map[string]any{"check": "db", "duration": "forever", "reason": "x"}), 400)
	e.want(e.do("POST", "/api/v1/monitor/silences", viewer, map[string]any{"check": "db", "duration": "2h", "reason": "upgrade"}), 403)
	var sl alert.Silence
	e.want(e.do("POST", "/api/v1/monitor/silences", op, map[string]any{"check": "db", "duration": "2h", "reason": "PostgreSQL 17 upgrade"}), 201).json(t, &sl)
	if sl.Author != "user:mop" || sl.End.Sub(sl.Start).Hours() != 2 {
		t.Errorf("silence %+v", sl)
	}
	var sls struct{ Items []alert.Silence }
	e.want(e.do("GET", "/api/v1/monitor/silences", viewer, nil), 200).json(t, &sls)
	if len(sls.Items) != 1 {
		t.Errorf("silences %+v", sls)
	}
	e.want(e.do("DELETE", "/api/v1/monitor/silences/"+sl.ID, op, nil), 204)
	e.want(e.do("DELETE", "/api/v1/monitor/silences/"+sl.ID, op, nil), 404)

	// Incident notes, shown on the public page.
	e.want(e.do("POST", "/api/v1/status/main/incidents", op, map[string]any{"title": "Database unavailable", "body": "We are restarting it.", "status": "panicking"}), 400)
	e.want(e.do("POST", "/api/v1/status/nope/incidents", op, map[string]any{"title": "x", "status": "investigating"}), 404)
	e.want(e.do("POST", "/api/v1/status/main/incidents", op, map[string]any{"title": "Database unavailable", "body": "We are restarting it.", "status": "investigating"}), 201)
	page := e.do("GET", "/status", "", nil)
	e.want(page, 200)
	if body := string(page.Body); !strings.Contains(body, "Example status") || !strings.Contains(body, "Database unavailable") || !strings.Contains(body, "Major outage") {
		t.Errorf("public page:\n%s", body)
	}
	if js := e.do("GET", "/status/status.json", "", nil); strings.Contains(string(js.Body), "mop") || !strings.Contains(string(js.Body), "Database unavailable") {
		t.Errorf("the public JSON must carry the note, not its author:\n%s", js.Body)
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}

	// The channels' evidence, the attempts and a test delivery.
	var chs struct{ Items []map[string]any }
	e.want(e.do("GET", "/api/v1/notify/channels", viewer, nil), 200).json(t, &chs)
	if len(chs.Items) != 1 || chs.Items[0]["name"] != "hook" || chs.Items[0]["last_delivered"] == nil {
		t.Errorf("channels %+v", chs)
	}
	e.want(e.do("POST", "/api/v1/notify/channels/hook/test", viewer, nil), 403)
	e.want(e.do("POST", "/api/v1/notify/channels/hook/test", op, nil), 200)
	e.want(e.do("POST", "/api/v1/notify/channels/nope/test", op, nil), 404)
	var atts struct{ Items []notify.Attempt }
	e.want(e.do("GET", "/api/v1/notify/deliveries?channel=hook", viewer, nil), 200).json(t, &atts)
	if len(atts.Items) != 3 || !atts.Items[0].OK || atts.Items[0].State != notify.StateTest {
		t.Errorf("attempts %+v", atts)
	}
	e.want(e.do("GET", "/api/v1/notify/deliveries?outcome=maybe", viewer, nil), 400)

	// History of a host series.
	if _, err := svc.Sample(ctx); err != nil {
		t.Log(err)
	}
	var hist struct{ Items []monitor.Series }
	e.want(e.do("GET", "/api/v1/monitor/history?series=load1&from=1h", viewer, nil), 200).json(t, &hist)
	if len(hist.Items) != 1 || len(hist.Items[0].Points) != 1 {
		t.Errorf("history %+v", hist)
	}
	e.want(e.do("GET", "/api/v1/monitor/history?series=load1&from=yesterday", viewer, nil), 400)
	e.want(e.do("GET", "/api/v1/monitor/history", viewer, nil), 400)
	e.want(e.do("GET", "/api/v1/monitor/checks/db/days?days=7", viewer, nil), 200)
	e.want(e.do("GET", "/api/v1/monitor/checks/nope/days", viewer, nil), 404)

	none := newEnv(t, storetest.SQLite(t, migrations()...))
	e.want(none.do("GET", "/api/v1/monitor/status", none.login("admin", adminPassword), nil), 503)
	e.want(none.do("GET", "/status", "", nil), 404)
}
