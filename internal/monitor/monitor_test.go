package monitor

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/notify"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// receiver is a webhook endpoint that verifies every signature and keeps
// the payloads that pass.
type receiver struct {
	secret []byte
	mu     sync.Mutex
	got    []notify.Payload
	bad    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := notify.VerifySignature(rc.secret, r.Header.Get(notify.TimestampHeader), r.Header.Get(notify.SignatureHeader), body, time.Now(), time.Minute); err != nil {
		rc.mu.Lock()
		rc.bad++
		rc.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var p notify.Payload
	if err := json.Unmarshal(body, &p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.got = append(rc.got, p)
	rc.mu.Unlock()
}

func (rc *receiver) states() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, p := range rc.got {
		out = append(out, string(p.State)+" "+p.Rule+" "+p.Check)
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes (the service
// works on its own goroutines; this bounds the wait, it asserts no timing).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServiceEndToEnd runs the monitor against a real HTTP server that goes
// down and comes back, with a real notifier posting signed webhooks to a
// receiver that verifies them, over a real event store.
func TestServiceEndToEnd(t *testing.T) {
	db := storetest.SQLite(t, Migrations, notify.Migrations, events.Migrations)
	bus := events.NewBus(db, events.Options{})
	defer bus.Close(context.Background())

	var status atomic.Int32
	status.Store(200)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
		io.WriteString(w, "ok")
	}))
	defer site.Close()
	rc := &receiver{secret: []byte("webhook-key-for-tests")}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	var pings atomic.Int32
	watchdog := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { pings.Add(1) }))
	defer watchdog.Close()

	cfgCh := config.Channel{Name: "hook", Webhook: config.WebhookChannel{URL: hook.URL, Secret: config.EnvSecret("HOOK_KEY")}}
	getenv := func(k string) string { return map[string]string{"HOOK_KEY": string(rc.secret)}[k] }
	chs, err := notify.Channels([]config.Channel{cfgCh}, getenv, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.NewNotifier(db, chs, notify.Options{Bus: bus, MaxAttempts: 2, InitialBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	mon := config.Default().Monitor
	mon.Interval = config.Duration(time.Second)
	mon.Checks = []config.Check{{Name: "web", Interval: config.Duration(time.Second), HTTP: config.HTTPCheck{URL: site.URL, Status: 200, Contains: "ok"}}}
	svc, err := New(Options{Monitor: mon, DB: db, Events: bus, Notifier: n, Status: config.StatusPages{Title: "Status"}, GroupWait: -1,
		Alerts: config.Alerts{
			Channels: []config.Channel{cfgCh},
			Rules:    []config.AlertRule{{Name: "web-down", Check: "web", Failures: 2, Channels: []string{"hook"}}},
			Watchdog: config.Watchdog{Interval: config.Duration(10 * time.Second), URL: watchdog.URL},
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	waitFor(t, "the first check run", func() bool { return svc.Status().Checks[0].State == "up" })
	waitFor(t, "the watchdog's first ping", func() bool { return pings.Load() >= 1 })
	status.Store(503)
	waitFor(t, "the firing notice", func() bool { return slices.Contains(rc.states(), "firing web-down web") })
	status.Store(200)
	waitFor(t, "the resolved notice", func() bool { return slices.Contains(rc.states(), "resolved web-down web") })
	rc.mu.Lock()
	bad := rc.bad
	rc.mu.Unlock()
	if bad != 0 {
		t.Errorf("%d deliveries failed verification", bad)
	}
	if got := rc.states(); len(got) != 2 {
		t.Errorf("notices %q, want exactly one firing and one resolved", got)
	}
	// Every step is an event.
	waitFor(t, "the events", func() bool {
		evs, err := bus.Query(context.Background(), events.Filter{Modules: []string{events.ModuleMonitoring}, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[events.Type]int{}
		for _, e := range evs {
			seen[e.Type]++
		}
		return seen[events.TypeCheckFailed] == 1 && seen[events.TypeCheckRecovered] == 1 && seen[events.TypeAlertFired] == 1 &&
			seen[events.TypeAlertResolved] == 1 && seen[events.TypeNotificationDelivered] == 2
	})
	// The last delivery is the channel's evidence.
	if last, ok, err := n.LastDelivered(context.Background(), "hook"); err != nil || !ok || time.Since(last) > time.Minute {
		t.Errorf("last delivery %v %v %v", last, ok, err)
	}
	// The host was sampled and its series recorded.
	waitFor(t, "a host sample", func() bool { return len(svc.Points()) > 0 })
	hist, err := svc.History().Query(context.Background(), "load1", time.Now().Add(-time.Hour), time.Now().Add(time.Minute), ResRaw)
	if err != nil || len(hist) != 1 || len(hist[0].Points) == 0 {
		t.Errorf("load1 history %+v %v", hist, err)
	}
	// The status page shows the check up, with today's runs and failures.
	pd, err := svc.Page(context.Background(), "main")
	if err != nil {
		t.Fatal(err)
	}
	today := pd.Checks[0].Days[len(pd.Checks[0].Days)-1]
	if pd.Overall != "operational" || pd.Checks[0].State != "up" || today.Failures < 2 || today.Runs <= today.Failures {
		// The batch of results is written every 5 s: wait for it.
		waitFor(t, "the check history", func() bool {
			pd, _ = svc.Page(context.Background(), "main")
			today = pd.Checks[0].Days[len(pd.Checks[0].Days)-1]
			return today.Failures >= 2 && today.Runs > today.Failures
		})
	}
	if _, err := svc.Page(context.Background(), "nope"); err == nil {
		t.Error("an unknown page was served")
	}
}

// TestOffsetSpreads: a check's first run is placed within its interval by
// its name.
func TestOffsetSpreads(t *testing.T) {
	// A thousand checks with one interval start spread over it: no
	// second of a 30 s interval holds more than a few of them.
	per := map[time.Duration]int{}
	for i := range 1000 {
		o := Offset("check-"+string(rune('a'+i%26))+time.Duration(i).String(), 30*time.Second)
		if o < 0 || o >= 30*time.Second {
			t.Fatalf("offset %s outside the interval", o)
		}
		per[o.Truncate(time.Second)]++
	}
	for s, n := range per {
		if n > 70 {
			t.Errorf("%d of 1000 checks start in second %s", n, s)
		}
	}
	if len(per) < 30 {
		t.Errorf("only %d distinct seconds of 30 used", len(per))
	}
	if Offset("web", 30*time.Second) != Offset("web", 30*time.Second) {
		t.Error("an offset must not change across restarts")
	}
}
