package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// fixture is a Notifier on a fake clock with an event bus.
type fixture struct {
	n   *Notifier
	bus *events.Bus
	clk *fakeClock
}

func newFixture(t *testing.T, db *store.DB, channels []Channel, o Options) *fixture {
	t.Helper()
	clk := newFakeClock()
	bus := events.NewBus(db, events.Options{Now: clk.Now})
	o.Bus, o.Now, o.Sleep = bus, clk.Now, clk.Sleep
	o.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	if o.Host == "" {
		o.Host = "web1"
	}
	n, err := NewNotifier(db, channels, o)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{n: n, bus: bus, clk: clk}
}

// hookServer is a webhook receiver answering statuses in turn (the last
// one repeated), verifying every signature.
func hookServer(t *testing.T, statuses ...int) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := int(calls.Add(1))
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := VerifySignature([]byte("whsec_test-0123456789"), r.Header.Get(TimestampHeader), r.Header.Get(SignatureHeader), body, time.Now(), time.Minute); err != nil {
			t.Errorf("receiver: %v", err)
		}
		code := statuses[min(k, len(statuses))-1]
		w.WriteHeader(code)
		io.WriteString(w, http.StatusText(code)+" (call "+strconv.Itoa(k)+")")
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func hookChannel(t *testing.T, name, url string) Channel {
	t.Helper()
	return Channel{Name: name, Kind: KindWebhook, Sender: mustNew(t, webhookChannel(name, url), hookEnv)}
}

// eventsOf returns the published events of type typ.
func eventsOf(t *testing.T, bus *events.Bus, typ events.Type) []events.Event {
	t.Helper()
	evs, err := bus.Query(context.Background(), events.Filter{Types: []events.Type{typ}})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// summary is what the tests compare of an Attempt.
type summary struct {
	Attempt int
	OK      bool
	Err     string // a substring of the error
}

func summarize(as []Attempt, errWords ...string) []summary {
	var out []summary
	for _, a := range as {
		s := summary{Attempt: a.Attempt, OK: a.OK}
		for _, w := range errWords {
			if strings.Contains(a.Error, w) {
				s.Err = w
			}
		}
		out = append(out, s)
	}
	return out
}

func TestDeliverRetriesThenSucceeds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv, calls := hookServer(t, 503, 502, 200)
		f := newFixture(t, db, []Channel{hookChannel(t, "hook", srv.URL)}, Options{})
		if err := f.n.Deliver(ctx, "hook", sampleMessage()); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
		if got := calls.Load(); got != 3 {
			t.Errorf("receiver called %d times, want 3", got)
		}
		if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second}, f.clk.Slept()); diff != "" {
			t.Errorf("back-off waits (-want +got):\n%s", diff)
		}
		as, err := f.n.Attempts(ctx, AttemptFilter{Channel: "hook"})
		if err != nil {
			t.Fatal(err)
		}
		want := []summary{{3, true, ""}, {2, false, "502 Bad Gateway"}, {1, false, "503 Service Unavailable"}}
		if diff := cmp.Diff(want, summarize(as, "503 Service Unavailable", "502 Bad Gateway")); diff != "" {
			t.Errorf("attempts (-want +got):\n%s", diff)
		}
		for _, a := range as {
			if a.Delivery != as[0].Delivery || a.Channel != "hook" || a.Kind != "webhook" || a.Title != "Disk almost full on web1" ||
				a.State != StateFiring || a.Severity != events.SeverityCritical || a.Alert != "disk-full/web1:/" {
				t.Errorf("attempt %+v", a)
			}
		}
		// Started times follow the fake clock through the back-off.
		if !as[2].Started.Equal(testTime) || !as[1].Started.Equal(testTime.Add(time.Second)) || !as[0].Started.Equal(testTime.Add(3*time.Second)) {
			t.Errorf("started %v %v %v", as[2].Started, as[1].Started, as[0].Started)
		}
		last, ok, err := f.n.LastDelivered(ctx, "hook")
		if err != nil || !ok || !last.Equal(testTime.Add(3*time.Second)) {
			t.Errorf("LastDelivered = %v %v %v, want %v", last, ok, err, testTime.Add(3*time.Second))
		}
		evs := eventsOf(t, f.bus, events.TypeNotificationDelivered)
		if len(evs) != 1 {
			t.Fatalf("%d delivered events, want 1", len(evs))
		}
		e := evs[0]
		if e.Severity != events.SeverityInfo || e.Module != events.ModuleMonitoring || e.Resource != "channel/hook" ||
			e.Data["channel"] != "hook" || e.Data["attempts"] != json.Number("3") || e.Data["delivery"] != as[0].Delivery {
			t.Errorf("delivered event %+v", e)
		}
		if n := len(eventsOf(t, f.bus, events.TypeNotificationFailed)); n != 0 {
			t.Errorf("%d failed events, want none", n)
		}
	}, Migrations, events.Migrations)
}

func TestDeliverGivesUp(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv, calls := hookServer(t, 500)
		f := newFixture(t, db, []Channel{hookChannel(t, "hook", srv.URL)}, Options{MaxBackoff: 3 * time.Second})
		err := f.n.Deliver(ctx, "hook", sampleMessage())
		if !errors.Is(err, ErrNotDelivered) || errors.Is(err, ErrNotRecorded) || !strings.Contains(err.Error(), "500 Internal Server Error") ||
			!strings.Contains(err.Error(), "after 5 attempts") {
			t.Fatalf("Deliver = %v, want not delivered after 5 attempts with the 500", err)
		}
		if got := calls.Load(); got != DefaultMaxAttempts {
			t.Errorf("receiver called %d times, want %d", got, DefaultMaxAttempts)
		}
		if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}, f.clk.Slept()); diff != "" {
			t.Errorf("back-off waits, capped at 3s (-want +got):\n%s", diff)
		}
		as, err := f.n.Attempts(ctx, AttemptFilter{Channel: "hook", Outcome: OutcomeFailed})
		if err != nil {
			t.Fatal(err)
		}
		want := []summary{{5, false, "500"}, {4, false, "500"}, {3, false, "500"}, {2, false, "500"}, {1, false, "500"}}
		if diff := cmp.Diff(want, summarize(as, "500")); diff != "" {
			t.Errorf("attempts (-want +got):\n%s", diff)
		}
		if _, ok, err := f.n.LastDelivered(ctx, "hook"); ok || err != nil {
			t.Errorf("LastDelivered = %v, %v; want none", ok, err)
		}
		evs := eventsOf(t, f.bus, events.TypeNotificationFailed)
		if len(evs) != 1 {
			t.Fatalf("%d failed events, want 1", len(evs))
		}
		e := evs[0]
		errText, _ := e.Data["error"].(string)
		if e.Severity != events.SeverityError || e.Resource != "channel/hook" || e.Data["channel"] != "hook" ||
			e.Data["kind"] != "webhook" || e.Data["attempts"] != json.Number("5") || !strings.Contains(errText, "500 Internal Server Error") ||
			!strings.Contains(e.Message, "hook") {
			t.Errorf("failed event %+v", e)
		}
		if n := len(eventsOf(t, f.bus, events.TypeNotificationDelivered)); n != 0 {
			t.Errorf("%d delivered events, want none", n)
		}
	}, Migrations, events.Migrations)
}

func TestDeliverPermanentStops(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		srv, calls := hookServer(t, 400)
		f := newFixture(t, db, []Channel{hookChannel(t, "hook", srv.URL)}, Options{})
		err := f.n.Deliver(ctx, "hook", sampleMessage())
		if !errors.Is(err, ErrNotDelivered) || !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "after 1 attempt:") {
			t.Fatalf("Deliver = %v, want a permanent failure after 1 attempt", err)
		}
		if calls.Load() != 1 || len(f.clk.Slept()) != 0 {
			t.Fatalf("%d calls, waits %v: a 400 is not retried", calls.Load(), f.clk.Slept())
		}
		if n := len(eventsOf(t, f.bus, events.TypeNotificationFailed)); n != 1 {
			t.Fatalf("%d failed events, want 1", n)
		}
	}, Migrations, events.Migrations)
}

func TestDeliverCancelledWhileWaiting(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		srv, calls := hookServer(t, 503)
		f := newFixture(t, db, []Channel{hookChannel(t, "hook", srv.URL)}, Options{})
		// Shutdown during the back-off: the wait ends, nothing more is sent.
		f.n.o.Sleep = func(ctx context.Context, d time.Duration) error {
			cancel()
			return f.clk.Sleep(ctx, d)
		}
		err := f.n.Deliver(ctx, "hook", sampleMessage())
		if !errors.Is(err, ErrNotDelivered) || !errors.Is(err, context.Canceled) {
			t.Fatalf("Deliver = %v, want not delivered, cancelled", err)
		}
		if calls.Load() != 1 {
			t.Fatalf("%d calls after cancellation, want 1", calls.Load())
		}
		// The attempt and the failure are on record although ctx ended.
		as, err := f.n.Attempts(context.Background(), AttemptFilter{})
		if err != nil || len(as) != 1 {
			t.Fatalf("attempts %v, %v; want 1", as, err)
		}
		if n := len(eventsOf(t, f.bus, events.TypeNotificationFailed)); n != 1 {
			t.Fatalf("%d failed events, want 1", n)
		}
	}, Migrations, events.Migrations)
}

// blockingSender waits for release (or ctx) before succeeding.
type blockingSender struct {
	started chan struct{}
	release chan struct{}
}

func (b *blockingSender) Send(ctx context.Context, _ Message) error {
	close(b.started)
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// funcSender adapts a function.
type funcSender func(ctx context.Context, m Message) error

func (f funcSender) Send(ctx context.Context, m Message) error { return f(ctx, m) }

func TestDeliverAllSlowChannelDoesNotBlock(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		slow := &blockingSender{started: make(chan struct{}), release: make(chan struct{})}
		fastDone := make(chan struct{})
		fast := funcSender(func(context.Context, Message) error { close(fastDone); return nil })
		f := newFixture(t, db, []Channel{
			{Name: "slow", Kind: "test", Sender: slow},
			{Name: "fast", Kind: "test", Sender: fast},
		}, Options{})
		result := make(chan error, 1)
		go func() { result <- f.n.DeliverAll(ctx, []string{"slow", "fast", "slow", "missing"}, sampleMessage()) }()
		// The fast channel delivers while the slow one is still stuck: if
		// DeliverAll went one channel at a time, fastDone would never close.
		<-slow.started
		select {
		case <-fastDone:
		case err := <-result:
			t.Fatalf("DeliverAll returned %v before the fast channel delivered", err)
		case <-time.After(30 * time.Second):
			t.Fatal("the fast channel waited for the slow one")
		}
		close(slow.release)
		err := <-result
		if !errors.Is(err, ErrUnknownChannel) || !strings.Contains(err.Error(), `"missing"`) || errors.Is(err, ErrNotDelivered) {
			t.Fatalf("DeliverAll = %v, want only the unknown channel's error", err)
		}
		got, err := f.n.LastDeliveries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]time.Time{"slow": testTime, "fast": testTime}, got); diff != "" {
			t.Errorf("LastDeliveries (-want +got):\n%s", diff)
		}
		// "slow" was named twice, delivered once.
		if as, _ := f.n.Attempts(ctx, AttemptFilter{Channel: "slow"}); len(as) != 1 {
			t.Errorf("%d attempts to slow, want 1", len(as))
		}
	}, Migrations, events.Migrations)
}

func TestTestNotification(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		got := make(chan Payload, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var p Payload
			if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
				t.Errorf("decode: %v", err)
			}
			got <- p
		}))
		defer srv.Close()
		f := newFixture(t, db, []Channel{hookChannel(t, "hook", srv.URL)}, Options{})
		if err := f.n.Test(ctx, "hook"); err != nil {
			t.Fatalf("Test: %v", err)
		}
		p := <-got
		if p.State != StateTest || p.Severity != events.SeverityInfo || p.Title != "Test notification" || p.Host != "web1" ||
			!strings.Contains(p.Text, `"hook"`) {
			t.Errorf("test payload %+v", p)
		}
		as, err := f.n.Attempts(ctx, AttemptFilter{Channel: "hook", Outcome: OutcomeOK})
		if err != nil || len(as) != 1 || as[0].State != StateTest {
			t.Fatalf("attempts %+v, %v; want one test attempt", as, err)
		}
		err = f.n.Test(ctx, "nope")
		if !errors.Is(err, ErrUnknownChannel) || !strings.Contains(err.Error(), "hook") {
			t.Fatalf("Test(nope) = %v, want ErrUnknownChannel listing the channels", err)
		}
	}, Migrations, events.Migrations)
}

func TestAttemptsKeepSecretsOut(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// The receiver echoes the URL, token included, in its answer.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "cannot serve "+r.URL.String())
		}))
		defer srv.Close()
		slackURL := srv.URL + "/services/T000/B000/XXXXSLACKSECRET"
		chat := Channel{Name: "chat", Kind: KindSlack, Sender: mustNew(t, config.Channel{Name: "chat", Slack: config.SlackChannel{URL: config.LiteralSecret(slackURL)}}, nil)}
		hook := hookChannel(t, "hook", srv.URL+"/in?token=tok_SECRET123")
		f := newFixture(t, db, []Channel{chat, hook}, Options{MaxAttempts: 2})
		if err := f.n.DeliverAll(ctx, []string{"chat", "hook"}, sampleMessage()); err == nil {
			t.Fatal("DeliverAll succeeded against a 503")
		} else if strings.Contains(err.Error(), "tok_SECRET123") || strings.Contains(err.Error(), "XXXXSLACKSECRET") {
			t.Fatalf("error reveals a secret: %v", err)
		}
		var stored []string
		rows, err := db.QueryContext(ctx, `SELECT channel, kind, title, state, error FROM notify_attempts`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var a, b, c, d, e string
			if err := rows.Scan(&a, &b, &c, &d, &e); err != nil {
				t.Fatal(err)
			}
			stored = append(stored, strings.Join([]string{a, b, c, d, e}, "|"))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(stored) != 4 {
			t.Fatalf("%d attempts stored, want 4", len(stored))
		}
		evs, err := f.bus.Query(ctx, events.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			b, _ := json.Marshal(e)
			stored = append(stored, string(b))
		}
		for _, s := range stored {
			for _, sec := range []string{"tok_SECRET123", "XXXXSLACKSECRET", "/services/T000", "whsec_test"} {
				if strings.Contains(s, sec) {
					t.Errorf("stored %q reveals %q", s, sec)
				}
			}
		}
	}, Migrations, events.Migrations)
}

func TestAttemptsQueryAndPrune(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fail := true
		flaky := funcSender(func(context.Context, Message) error {
			if fail {
				return permanent(errors.New("refused"))
			}
			return nil
		})
		f := newFixture(t, db, []Channel{{Name: "a", Kind: "test", Sender: flaky}, {Name: "b", Kind: "test", Sender: funcSender(func(context.Context, Message) error { return nil })}}, Options{})
		for i := range 3 {
			fail = i == 0
			_ = f.clk.Sleep(ctx, time.Hour)
			_ = f.n.Deliver(ctx, "a", Message{Title: "a" + string(rune('0'+i))})
			_ = f.n.Deliver(ctx, "b", Message{Title: "b" + string(rune('0'+i))})
		}
		all, err := f.n.Attempts(ctx, AttemptFilter{})
		if err != nil || len(all) != 6 {
			t.Fatalf("Attempts = %d, %v; want 6", len(all), err)
		}
		page, err := f.n.Attempts(ctx, AttemptFilter{Limit: 2, Before: all[1].ID})
		if err != nil || len(page) != 2 || page[0].ID != all[2].ID {
			t.Fatalf("page after %d: %+v, %v", all[1].ID, page, err)
		}
		failed, err := f.n.Attempts(ctx, AttemptFilter{Outcome: OutcomeFailed})
		if err != nil || len(failed) != 1 || failed[0].Title != "a0" || failed[0].Error != "refused" {
			t.Fatalf("failed attempts %+v, %v", failed, err)
		}
		since, err := f.n.Attempts(ctx, AttemptFilter{Channel: "a", Since: testTime.Add(2 * time.Hour)})
		if err != nil || len(since) != 2 {
			t.Fatalf("since: %+v, %v", since, err)
		}
		if _, err := f.n.Attempts(ctx, AttemptFilter{Outcome: "maybe"}); err == nil {
			t.Fatal("a bad outcome was accepted")
		}
		k, err := f.n.Prune(ctx, testTime.Add(2*time.Hour))
		if err != nil || k != 2 {
			t.Fatalf("Prune = %d, %v; want 2", k, err)
		}
		last, ok, err := f.n.LastDelivered(ctx, "a")
		if err != nil || !ok || !last.Equal(testTime.Add(3*time.Hour)) {
			t.Fatalf("LastDelivered(a) = %v %v %v", last, ok, err)
		}
	}, Migrations, events.Migrations)
}

func TestBackoff(t *testing.T) {
	n, err := NewNotifier(storetest.SQLite(t, Migrations), nil, Options{InitialBackoff: time.Second, MaxBackoff: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var got []time.Duration
	for a := 1; a <= 8; a++ {
		got = append(got, n.Backoff(a))
	}
	want := []time.Duration{1, 2, 4, 8, 10, 10, 10, 10}
	for i := range want {
		want[i] *= time.Second
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Backoff (-want +got):\n%s", diff)
	}
	if d := n.Backoff(1 << 30); d != 10*time.Second {
		t.Fatalf("Backoff(huge) = %s", d)
	}
}

func TestNewNotifierErrors(t *testing.T) {
	db := storetest.SQLite(t, Migrations)
	ok := funcSender(func(context.Context, Message) error { return nil })
	tests := []struct {
		name     string
		channels []Channel
		o        Options
	}{
		{"no name", []Channel{{Sender: ok}}, Options{}},
		{"no sender", []Channel{{Name: "a"}}, Options{}},
		{"duplicate", []Channel{{Name: "a", Sender: ok}, {Name: "a", Sender: ok}}, Options{}},
		{"attempts too many", nil, Options{MaxAttempts: MaxAttemptsLimit + 1}},
		{"attempts negative", nil, Options{MaxAttempts: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewNotifier(db, tt.channels, tt.o); err == nil {
				t.Fatal("NewNotifier accepted it")
			}
		})
	}
	if _, err := NewNotifier(nil, nil, Options{}); err == nil {
		t.Fatal("NewNotifier accepted a nil store")
	}
}
