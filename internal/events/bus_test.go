package events_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// syncBuffer is a log destination safe for the sink goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type busOpts struct {
	queue int
	log   *syncBuffer
}

func newBus(t *testing.T, db *store.DB, o busOpts) *events.Bus {
	t.Helper()
	if o.log == nil {
		o.log = &syncBuffer{}
	}
	b := events.NewBus(db, events.Options{
		Now:       func() time.Time { return t0 },
		Logger:    slog.New(slog.NewTextHandler(o.log, nil)),
		QueueSize: o.queue,
	})
	t.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// recorder is a sink that remembers what it received.
type recorder struct {
	mu     sync.Mutex
	events []events.Event
}

func (r *recorder) HandleEvent(_ context.Context, e events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) got() []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) ids() []int64 {
	var ids []int64
	for _, e := range r.got() {
		ids = append(ids, e.ID)
	}
	return ids
}

func ev(typ events.Type, msg string) events.Event {
	return events.Event{Type: typ, Module: events.ModuleBackups, Actor: "system:scheduler", Message: msg}
}

func mustPublish(t *testing.T, b *events.Bus, e events.Event) events.Event {
	t.Helper()
	got, err := b.Publish(context.Background(), e)
	if err != nil {
		t.Fatalf("Publish(%s %q): %v", e.Type, e.Message, err)
	}
	return got
}

func ids(es []events.Event) []int64 {
	out := []int64{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func TestPublishGet(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		b := newBus(t, db, busOpts{})
		at := t0.Add(1500 * time.Nanosecond).In(time.FixedZone("CET", 3600))
		in := events.Event{
			Time: at, Type: events.TypeBackupCompleted, Severity: events.SeverityNotice,
			Module: events.ModuleBackups, Actor: events.SystemActor("scheduler"), Resource: "policy/web-daily",
			Tags:    map[string]string{"team": "blue", "env": "prod"},
			Message: "backup of web-daily completed <ok> & done",
			Data: map[string]any{
				"bytes":  int64(1) << 60,
				"ratio":  0.5,
				"ok":     true,
				"files":  []string{"a", "b"},
				"nested": map[string]any{"snapshot": "abc123"},
				"none":   nil,
			},
		}
		got := mustPublish(t, b, in)
		want := in
		want.ID = got.ID
		want.Time = t0.Add(time.Microsecond) // UTC, cut to microseconds
		want.Data = map[string]any{
			"bytes":  json.Number("1152921504606846976"),
			"ratio":  json.Number("0.5"),
			"ok":     true,
			"files":  []any{"a", "b"},
			"nested": map[string]any{"snapshot": "abc123"},
			"none":   nil,
		}
		if got.ID <= 0 {
			t.Fatalf("ID = %d, want > 0", got.ID)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Publish returned (-want +got):\n%s", diff)
		}
		stored, err := b.Get(ctx, got.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if diff := cmp.Diff(want, stored); diff != "" {
			t.Errorf("Get (-want +got):\n%s", diff)
		}
		if stored.Time.Location() != time.UTC {
			t.Errorf("Get time location = %v, want UTC", stored.Time.Location())
		}

		t.Run("defaults", func(t *testing.T) {
			got := mustPublish(t, b, ev(events.TypeBackupFailed, "minimal"))
			want := events.Event{ID: got.ID, Time: t0, Type: events.TypeBackupFailed, Severity: events.SeverityInfo,
				Module: events.ModuleBackups, Actor: "system:scheduler", Message: "minimal"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Publish (-want +got):\n%s", diff)
			}
			stored, err := b.Get(ctx, got.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, stored); diff != "" {
				t.Errorf("Get (-want +got):\n%s", diff)
			}
		})
		t.Run("caller's maps are copied", func(t *testing.T) {
			tags := map[string]string{"team": "blue"}
			e := ev(events.TypeBanAdded, "copy")
			e.Tags = tags
			got := mustPublish(t, b, e)
			tags["team"] = "red"
			if got.Tags["team"] != "blue" {
				t.Errorf("published tags changed with the caller's map: %v", got.Tags)
			}
		})
		t.Run("get missing", func(t *testing.T) {
			_, err := b.Get(ctx, 999999)
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get(missing) error = %v, want store.ErrNotFound", err)
			}
		})
	}, events.Migrations)
}

func TestPublishValidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		b := newBus(t, db, busOpts{})
		manyTags := map[string]string{}
		for i := range events.MaxTags + 1 {
			manyTags[fmt.Sprintf("k%d", i)] = "v"
		}
		// {"k":"..."} is 8 bytes plus the string.
		dataOfSize := func(n int) map[string]any { return map[string]any{"k": strings.Repeat("x", n-8)} }
		tests := []struct {
			name      string
			mutate    func(e *events.Event)
			wantField string // "" means valid
		}{
			{"valid", func(e *events.Event) {}, ""},
			{"id set", func(e *events.Event) { e.ID = 5 }, "id"},
			{"missing type", func(e *events.Event) { e.Type = "" }, "type"},
			{"uppercase type", func(e *events.Event) { e.Type = "Backup.Completed" }, "type"},
			{"one-word type", func(e *events.Event) { e.Type = "backup" }, "type"},
			{"type with newline", func(e *events.Event) { e.Type = "backup.done\nfake.line" }, "type"},
			{"oversized type", func(e *events.Event) { e.Type = events.Type("a." + strings.Repeat("b", 63)) }, "type"},
			{"bad severity", func(e *events.Event) { e.Severity = "fatal" }, "severity"},
			{"severity case", func(e *events.Event) { e.Severity = "ERROR" }, "severity"},
			{"missing module", func(e *events.Event) { e.Module = "" }, "module"},
			{"unknown module", func(e *events.Event) { e.Module = "payroll" }, "module"},
			{"missing actor", func(e *events.Event) { e.Actor = "" }, "actor"},
			{"actor without kind", func(e *events.Event) { e.Actor = "alice" }, "actor"},
			{"actor with empty name", func(e *events.Event) { e.Actor = "user:" }, "actor"},
			{"actor with newline", func(e *events.Event) { e.Actor = "user:al\nice" }, "actor"},
			{"oversized actor", func(e *events.Event) { e.Actor = "user:" + strings.Repeat("a", 252) }, "actor"},
			{"resource with control", func(e *events.Event) { e.Resource = "policy/\x1b[2J" }, "resource"},
			{"oversized resource", func(e *events.Event) { e.Resource = strings.Repeat("r", 513) }, "resource"},
			{"empty message", func(e *events.Event) { e.Message = "  " }, "message"},
			{"message with newline", func(e *events.Event) { e.Message = "ok\nFAKE: admin logged in" }, "message"},
			{"message invalid utf8", func(e *events.Event) { e.Message = "a\xffb" }, "message"},
			{"message at limit", func(e *events.Event) { e.Message = strings.Repeat("m", events.MaxMessageBytes) }, ""},
			{"oversized message", func(e *events.Event) { e.Message = strings.Repeat("m", events.MaxMessageBytes+1) }, "message"},
			{"data at limit", func(e *events.Event) { e.Data = dataOfSize(events.MaxDataBytes) }, ""},
			{"oversized data", func(e *events.Event) { e.Data = dataOfSize(events.MaxDataBytes + 1) }, "data"},
			{"unencodable data", func(e *events.Event) { e.Data = map[string]any{"x": math.NaN()} }, "data"},
			{"data with channel", func(e *events.Event) { e.Data = map[string]any{"x": make(chan int)} }, "data"},
			{"bad tag key", func(e *events.Event) { e.Tags = map[string]string{"team blue": "x"} }, "tags"},
			{"empty tag key", func(e *events.Event) { e.Tags = map[string]string{"": "x"} }, "tags"},
			{"tag value newline", func(e *events.Event) { e.Tags = map[string]string{"team": "a\nb"} }, "tags"},
			{"tag at limits", func(e *events.Event) {
				e.Tags = map[string]string{strings.Repeat("k", events.MaxTagKeyBytes): strings.Repeat("v", events.MaxTagValueBytes)}
			}, ""},
			{"oversized tag key", func(e *events.Event) { e.Tags = map[string]string{strings.Repeat("k", 129): "v"} }, "tags"},
			{"oversized tag value", func(e *events.Event) { e.Tags = map[string]string{"team": strings.Repeat("v", 257)} }, "tags"},
			{"empty tag value", func(e *events.Event) { e.Tags = map[string]string{"team": ""} }, "tags"},
			{"tag value with quote", func(e *events.Event) { e.Tags = map[string]string{"note": `a","team":"blue`} }, "tags"},
			{"too many tags", func(e *events.Event) { e.Tags = manyTags }, "tags"},
			{"time before 1970", func(e *events.Event) { e.Time = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }, "time"},
			{"time after 9999", func(e *events.Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "time"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := ev(events.TypeBackupCompleted, "validation "+tt.name)
				tt.mutate(&e)
				before := b.Stats().Published
				got, err := b.Publish(ctx, e)
				if tt.wantField == "" {
					if err != nil {
						t.Fatalf("Publish: %v, want success", err)
					}
					if _, err := b.Get(ctx, got.ID); err != nil {
						t.Errorf("Get after valid publish: %v", err)
					}
					return
				}
				var ve *events.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("Publish error = %v, want a *ValidationError for %s", err, tt.wantField)
				}
				if ve.Field != tt.wantField {
					t.Errorf("error field = %q, want %q (%v)", ve.Field, tt.wantField, err)
				}
				if !errors.Is(err, events.ErrInvalid) {
					t.Errorf("error %v does not match ErrInvalid", err)
				}
				if !strings.Contains(err.Error(), tt.wantField) {
					t.Errorf("error %q does not name the field %q", err, tt.wantField)
				}
				if after := b.Stats().Published; after != before {
					t.Errorf("published counter moved from %d to %d on an invalid event", before, after)
				}
			})
		}
		// Nothing invalid reached the table: only the "valid" and "at
		// limit" cases were stored.
		all, err := b.Query(ctx, events.Filter{Limit: events.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 4 {
			t.Errorf("stored %d events, want 4 (valid, message, data and tag at limit)", len(all))
		}
	}, events.Migrations)
}

// seed publishes a fixed set of events one minute apart and returns them.
func seed(t *testing.T, b *events.Bus) []events.Event {
	t.Helper()
	in := []events.Event{
		{Type: events.TypeBackupCompleted, Severity: events.SeverityInfo, Module: events.ModuleBackups, Resource: "policy/a", Tags: map[string]string{"team": "blue"}},
		{Type: events.TypeBackupFailed, Severity: events.SeverityError, Module: events.ModuleBackups, Resource: "policy/b", Tags: map[string]string{"team": "red"}},
		{Type: events.TypeBanAdded, Severity: events.SeverityWarning, Module: events.ModuleGuard, Resource: "ip/192.0.2.7", Tags: map[string]string{"team": "blue", "env": "prod"}},
		{Type: events.TypeIntegrityChanged, Severity: events.SeverityNotice, Module: events.ModuleIntegrity, Resource: "file/etc/passwd"},
		{Type: events.TypeCheckFailed, Severity: events.SeverityCritical, Module: events.ModuleMonitoring, Resource: "check/http", Tags: map[string]string{"team": "blue", "env": "dev"}},
		// Same letters, other case: SQLite's LIKE would take it for team=blue.
		{Type: events.TypeBackupCompleted, Severity: events.SeverityInfo, Module: events.ModuleBackups, Resource: "policy/a", Tags: map[string]string{"team": "Blue"}},
		// A key ending in the other key's letters.
		{Type: "backup_job.started", Severity: events.SeverityInfo, Module: events.ModuleContinuity, Resource: "policy/a", Tags: map[string]string{"subteam": "blue"}},
	}
	var out []events.Event
	for i, e := range in {
		e.Time = t0.Add(time.Duration(i) * time.Minute)
		e.Actor = "system:test"
		e.Message = fmt.Sprintf("event %d", i)
		out = append(out, mustPublish(t, b, e))
	}
	return out
}

func TestQuery(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		b := newBus(t, db, busOpts{})
		s := seed(t, b)
		id := func(i ...int) []int64 {
			out := []int64{}
			for _, n := range i {
				out = append(out, s[n].ID)
			}
			return out
		}
		tests := []struct {
			name string
			f    events.Filter
			want []int64
		}{
			{"all", events.Filter{}, id(0, 1, 2, 3, 4, 5, 6)},
			{"desc", events.Filter{Desc: true}, id(6, 5, 4, 3, 2, 1, 0)},
			{"exact type", events.Filter{Types: []events.Type{events.TypeBackupCompleted}}, id(0, 5)},
			{"type prefix", events.Filter{Types: []events.Type{"backup."}}, id(0, 1, 5)},
			{"prefix does not treat _ as wildcard", events.Filter{Types: []events.Type{"backup_job."}}, id(6)},
			{"types OR", events.Filter{Types: []events.Type{"ban.", events.TypeCheckFailed}}, id(2, 4)},
			{"module", events.Filter{Modules: []string{events.ModuleGuard, events.ModuleIntegrity}}, id(2, 3)},
			{"min severity", events.Filter{MinSeverity: events.SeverityWarning}, id(1, 2, 4)},
			{"min severity critical", events.Filter{MinSeverity: events.SeverityCritical}, id(4)},
			{"since inclusive", events.Filter{Since: t0.Add(5 * time.Minute)}, id(5, 6)},
			{"since sub-microsecond", events.Filter{Since: t0.Add(5*time.Minute + 500*time.Nanosecond)}, id(6)},
			{"until exclusive", events.Filter{Until: t0.Add(2 * time.Minute)}, id(0, 1)},
			{"until sub-microsecond", events.Filter{Until: t0.Add(2*time.Minute + 500*time.Nanosecond)}, id(0, 1, 2)},
			{"window in another zone", events.Filter{Since: t0.Add(time.Minute).In(time.FixedZone("X", -7200)), Until: t0.Add(3 * time.Minute)}, id(1, 2)},
			{"resource", events.Filter{Resource: "policy/a"}, id(0, 5, 6)},
			{"tag", events.Filter{Tags: map[string]string{"team": "blue"}}, id(0, 2, 4)},
			{"tags all", events.Filter{Tags: map[string]string{"team": "blue", "env": "prod"}}, id(2)},
			{"tag no match", events.Filter{Tags: map[string]string{"team": "green"}}, id()},
			{"combined", events.Filter{Types: []events.Type{"backup."}, Resource: "policy/a", Tags: map[string]string{"team": "blue"}}, id(0)},
			{"after", events.Filter{AfterID: s[4].ID}, id(5, 6)},
			{"after desc", events.Filter{AfterID: s[4].ID, Desc: true}, id(3, 2, 1, 0)},
			{"limit", events.Filter{Limit: 2}, id(0, 1)},
			{"limit desc", events.Filter{Limit: 2, Desc: true}, id(6, 5)},
			{"tag with limit", events.Filter{Tags: map[string]string{"team": "blue"}, Limit: 2, Desc: true}, id(4, 2)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := b.Query(ctx, tt.f)
				if err != nil {
					t.Fatalf("Query: %v", err)
				}
				if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
					t.Errorf("ids (-want +got):\n%s", diff)
				}
			})
		}
		t.Run("returns full events", func(t *testing.T) {
			got, err := b.Query(ctx, events.Filter{Resource: "ip/192.0.2.7"})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]events.Event{s[2]}, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
		t.Run("invalid filter", func(t *testing.T) {
			for _, f := range []events.Filter{
				{Types: []events.Type{"backup"}},
				{Modules: []string{"payroll"}},
				{MinSeverity: "fatal"},
				{Limit: events.MaxLimit + 1},
				{Limit: -1},
				{AfterID: -1},
				{Tags: map[string]string{"bad key": "x"}},
				{Since: t0, Until: t0},
			} {
				if _, err := b.Query(ctx, f); !errors.Is(err, events.ErrInvalid) {
					t.Errorf("Query(%+v) error = %v, want ErrInvalid", f, err)
				}
			}
		})
	}, events.Migrations)
}

func TestQueryPagination(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		b := newBus(t, db, busOpts{})
		// 40 events: every third is team=blue, the others team=Blue or
		// team=red, so on SQLite the SQL prefilter over-selects and Query
		// must keep reading past rejected rows without skipping any.
		var wantBlue, wantAll []int64
		for i := range 40 {
			team := []string{"blue", "Blue", "red"}[i%3]
			e := ev(events.TypeBackupCompleted, fmt.Sprintf("n%d", i))
			e.Tags = map[string]string{"team": team}
			got := mustPublish(t, b, e)
			wantAll = append(wantAll, got.ID)
			if team == "blue" {
				wantBlue = append(wantBlue, got.ID)
			}
		}
		reversed := func(s []int64) []int64 { r := slices.Clone(s); slices.Reverse(r); return r }
		tests := []struct {
			name string
			f    events.Filter
			want []int64
		}{
			{"all asc", events.Filter{Limit: 7}, wantAll},
			{"all desc", events.Filter{Limit: 7, Desc: true}, reversed(wantAll)},
			{"tag asc", events.Filter{Limit: 4, Tags: map[string]string{"team": "blue"}}, wantBlue},
			{"tag desc", events.Filter{Limit: 4, Desc: true, Tags: map[string]string{"team": "blue"}}, reversed(wantBlue)},
			{"tag page of one", events.Filter{Limit: 1, Tags: map[string]string{"team": "blue"}}, wantBlue},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f := tt.f
				var got []int64
				for pages := 0; ; pages++ {
					if pages > len(tt.want)+1 {
						t.Fatalf("more pages than events; cursor stuck at %d", f.AfterID)
					}
					page, err := b.Query(ctx, f)
					if err != nil {
						t.Fatal(err)
					}
					if len(page) > f.Limit {
						t.Fatalf("page of %d events, limit %d", len(page), f.Limit)
					}
					got = append(got, ids(page)...)
					if len(page) < f.Limit {
						break
					}
					f.AfterID = page[len(page)-1].ID
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("pages joined (-want +got):\n%s", diff)
				}
			})
		}
		t.Run("default and maximum limit", func(t *testing.T) {
			// One transaction keeps a thousand inserts quick on PostgreSQL.
			err := b.Tx(ctx, func(_ *sql.Tx, publish func(events.Event) (events.Event, error)) error {
				for range events.MaxLimit + 20 - 40 {
					if _, err := publish(ev(events.TypeBackupCompleted, "bulk")); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			got, err := b.Query(ctx, events.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != events.DefaultLimit {
				t.Errorf("default page = %d events, want %d", len(got), events.DefaultLimit)
			}
			got, err = b.Query(ctx, events.Filter{Limit: events.MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != events.MaxLimit {
				t.Errorf("max page = %d events, want %d", len(got), events.MaxLimit)
			}
		})
	}, events.Migrations)
}

func TestPrune(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		defer events.SetPruneBatch(2)()
		b := newBus(t, db, busOpts{})
		s := seed(t, b) // 7 events, t0 + 0..6 minutes
		n, err := b.Prune(ctx, t0.Add(5*time.Minute))
		if err != nil {
			t.Fatalf("Prune: %v", err)
		}
		if n != 5 {
			t.Errorf("Prune deleted %d, want 5", n)
		}
		got, err := b.Query(ctx, events.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{s[5].ID, s[6].ID}, ids(got)); diff != "" {
			t.Errorf("remaining (-want +got):\n%s", diff)
		}
		if n, err := b.Prune(ctx, t0.Add(5*time.Minute)); err != nil || n != 0 {
			t.Errorf("second Prune = %d, %v; want 0, nil", n, err)
		}
	}, events.Migrations)
}

func TestSinksReceiveInOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newBus(t, db, busOpts{})
		all, backups, severe := &recorder{}, &recorder{}, &recorder{}
		b.Subscribe("all", all, events.Filter{})
		b.Subscribe("backups", backups, events.Filter{Types: []events.Type{"backup."}})
		b.Subscribe("severe", severe, events.Filter{MinSeverity: events.SeverityError, Tags: map[string]string{"team": "blue"}})
		s := seed(t, b)
		if err := b.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if diff := cmp.Diff(s, all.got()); diff != "" {
			t.Errorf("all sink (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]int64{s[0].ID, s[1].ID, s[5].ID}, backups.ids()); diff != "" {
			t.Errorf("backups sink (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]int64{s[4].ID}, severe.ids()); diff != "" {
			t.Errorf("severe sink (-want +got):\n%s", diff)
		}
		st := b.Stats()
		if st.Published != 7 || st.Sinks["all"].Delivered != 7 || st.Sinks["backups"].Delivered != 3 {
			t.Errorf("stats = %+v, want 7 published, 7 delivered to all, 3 to backups", st)
		}
		if _, err := b.Publish(context.Background(), ev(events.TypeBackupCompleted, "late")); !errors.Is(err, events.ErrClosed) {
			t.Errorf("Publish after Close error = %v, want ErrClosed", err)
		}
	}, events.Migrations)
}

func TestSlowSinkDropsOldest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		const queue = 3
		b := newBus(t, db, busOpts{queue: queue})
		started := make(chan int64, 16)
		release := make(chan struct{})
		slow := &recorder{}
		b.Subscribe("slow", events.SinkFunc(func(ctx context.Context, e events.Event) error {
			started <- e.ID
			<-release
			return slow.HandleEvent(ctx, e)
		}), events.Filter{})
		fast := &recorder{}
		fastGot := make(chan int64, 16)
		b.Subscribe("fast", events.SinkFunc(func(ctx context.Context, e events.Event) error {
			fastGot <- e.ID
			return fast.HandleEvent(ctx, e)
		}), events.Filter{})
		// publish waits until the fast sink has the event, which shows that
		// the stuck slow sink does not hold the others up, and keeps the
		// fast sink's own small queue from overflowing.
		publish := func(msg string) int64 {
			t.Helper()
			id := mustPublish(t, b, ev(events.TypeBackupCompleted, msg)).ID
			if got := <-fastGot; got != id {
				t.Fatalf("fast sink got %d, want %d", got, id)
			}
			return id
		}

		first := publish("first")
		if got := <-started; got != first {
			t.Fatalf("slow sink started with %d, want %d", got, first)
		}
		// The slow sink is now stuck in HandleEvent(first). Publish must
		// not wait for it: these return although nothing drains its queue.
		var rest []int64
		for i := range queue + 2 {
			rest = append(rest, publish(fmt.Sprintf("more %d", i)))
		}
		st := b.Stats().Sinks["slow"]
		if st.Dropped != 2 || st.Queued != queue {
			t.Errorf("slow sink stats = %+v, want 2 dropped and %d queued", st, queue)
		}
		close(release)
		if err := b.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		// The two oldest queued events were dropped; the newest survive.
		want := append([]int64{first}, rest[2:]...)
		if diff := cmp.Diff(want, slow.ids()); diff != "" {
			t.Errorf("slow sink got (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(append([]int64{first}, rest...), fast.ids()); diff != "" {
			t.Errorf("fast sink got (-want +got):\n%s", diff)
		}
		st = b.Stats().Sinks["slow"]
		if st.Delivered != 4 || st.Dropped != 2 || st.Queued != 0 {
			t.Errorf("slow sink final stats = %+v, want 4 delivered, 2 dropped", st)
		}
	}, events.Migrations)
}

func TestFailingSinkIsIsolated(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		logs := &syncBuffer{}
		b := newBus(t, db, busOpts{log: logs})
		good := &recorder{}
		b.Subscribe("failing", events.SinkFunc(func(context.Context, events.Event) error {
			return errors.New("smtp: connection refused")
		}), events.Filter{})
		b.Subscribe("panicking", events.SinkFunc(func(context.Context, events.Event) error {
			panic("nil map")
		}), events.Filter{})
		b.Subscribe("good", good, events.Filter{})
		var want []int64
		for i := range 3 {
			e, err := b.Publish(context.Background(), ev(events.TypeCheckFailed, fmt.Sprintf("c%d", i)))
			if err != nil {
				t.Fatalf("Publish returned a sink's failure: %v", err)
			}
			want = append(want, e.ID)
		}
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, good.ids()); diff != "" {
			t.Errorf("good sink (-want +got):\n%s", diff)
		}
		st := b.Stats()
		for _, name := range []string{"failing", "panicking"} {
			if got := st.Sinks[name]; got.Errors != 3 || got.Delivered != 0 {
				t.Errorf("%s stats = %+v, want 3 errors, 0 delivered", name, got)
			}
		}
		if got := st.Sinks["good"]; got.Errors != 0 || got.Delivered != 3 {
			t.Errorf("good stats = %+v, want 3 delivered", got)
		}
		for _, want := range []string{"sink=failing", "connection refused", "sink=panicking", "panic: nil map"} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %q:\n%s", want, logs.String())
			}
		}
	}, events.Migrations)
}

func TestPublishTx(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boom := errors.New("boom")
		t.Run("rolled back: nothing stored, nothing delivered", func(t *testing.T) {
			b := newBus(t, db, busOpts{})
			rec := &recorder{}
			b.Subscribe("rec", rec, events.Filter{})
			var stored events.Event
			err := b.Tx(ctx, func(tx *sql.Tx, publish func(events.Event) (events.Event, error)) error {
				var err error
				if stored, err = publish(ev(events.TypeBackupCompleted, "in tx")); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("Tx error = %v, want boom", err)
			}
			if stored.ID == 0 {
				t.Fatal("publish inside Tx returned no ID")
			}
			if _, err := b.Get(ctx, stored.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get(rolled back) error = %v, want ErrNotFound", err)
			}
			// Same with PublishTx inside a plain store transaction.
			err = db.Tx(ctx, func(tx *sql.Tx) error {
				if _, err := b.PublishTx(ctx, tx, ev(events.TypeBackupCompleted, "raw tx")); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("db.Tx error = %v, want boom", err)
			}
			if got, err := b.Query(ctx, events.Filter{}); err != nil || len(got) != 0 {
				t.Errorf("Query after rollbacks = %d events, %v; want none", len(got), err)
			}
			if err := b.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got := rec.got(); len(got) != 0 {
				t.Errorf("sink received %d rolled-back events", len(got))
			}
			if p := b.Stats().Published; p != 0 {
				t.Errorf("published = %d, want 0", p)
			}
		})
		t.Run("committed: delivered after commit", func(t *testing.T) {
			b := newBus(t, db, busOpts{})
			rec := &recorder{}
			b.Subscribe("rec", rec, events.Filter{})
			var inTx []events.Event
			err := b.Tx(ctx, func(tx *sql.Tx, publish func(events.Event) (events.Event, error)) error {
				for _, m := range []string{"one", "two"} {
					e, err := publish(ev(events.TypeBackupCompleted, m))
					if err != nil {
						return err
					}
					inTx = append(inTx, e)
				}
				// An invalid event is refused without spoiling the tx.
				if _, err := publish(ev("bad", "x")); !errors.Is(err, events.ErrInvalid) {
					return fmt.Errorf("invalid publish in tx: got %v, want ErrInvalid", err)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("Tx: %v", err)
			}
			var raw events.Event
			err = db.Tx(ctx, func(tx *sql.Tx) error {
				var err error
				raw, err = b.PublishTx(ctx, tx, ev(events.TypeBanAdded, "raw"))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			b.Deliver(raw)
			if err := b.Close(ctx); err != nil {
				t.Fatal(err)
			}
			want := append(inTx, raw)
			if diff := cmp.Diff(want, rec.got()); diff != "" {
				t.Errorf("delivered (-want +got):\n%s", diff)
			}
			stored, err := b.Query(ctx, events.Filter{Modules: []string{events.ModuleBackups}, AfterID: inTx[0].ID - 1})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, stored); diff != "" {
				t.Errorf("stored (-want +got):\n%s", diff)
			}
		})
	}, events.Migrations)
}

func TestCloseDrains(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		b := newBus(t, db, busOpts{})
		release := make(chan struct{})
		started := make(chan struct{}, 1)
		rec := &recorder{}
		b.Subscribe("gated", events.SinkFunc(func(ctx context.Context, e events.Event) error {
			select {
			case started <- struct{}{}:
			default:
			}
			<-release
			return rec.HandleEvent(ctx, e)
		}), events.Filter{})
		for i := range 10 {
			mustPublish(t, b, ev(events.TypeBackupCompleted, fmt.Sprint(i)))
		}
		<-started
		closed := make(chan error, 1)
		go func() { closed <- b.Close(ctx) }()
		// Wait until Close has begun (Publish is refused), so the queue is
		// provably non-empty when Close starts draining it. Probes that get
		// in before Close are stored and must be delivered too.
		for {
			_, err := b.Publish(ctx, ev(events.TypeBackupCompleted, "probe"))
			if errors.Is(err, events.ErrClosed) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			runtime.Gosched()
		}
		close(release)
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		all, err := b.Query(ctx, events.Filter{Limit: events.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ids(all), rec.ids()); diff != "" {
			t.Errorf("delivered vs stored (-stored +delivered):\n%s", diff)
		}
		if len(rec.ids()) < 10 {
			t.Errorf("delivered %d events, want at least 10", len(rec.ids()))
		}
		if st := b.Stats().Sinks["gated"]; st.Dropped != 0 || st.Queued != 0 {
			t.Errorf("stats after drain = %+v, want nothing dropped or queued", st)
		}
	}, events.Migrations)
}

func TestCloseTimeout(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newBus(t, db, busOpts{})
		started := make(chan struct{}, 1)
		unsub := b.Subscribe("stuck", events.SinkFunc(func(ctx context.Context, e events.Event) error {
			select {
			case started <- struct{}{}:
			default:
			}
			<-ctx.Done() // a well-behaved sink gives up when told to
			return ctx.Err()
		}), events.Filter{})
		for i := range 3 {
			mustPublish(t, b, ev(events.TypeBackupCompleted, fmt.Sprint(i)))
		}
		<-started
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := b.Close(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Close with a done context = %v, want context.Canceled", err)
		}
		unsub() // waits for the sink goroutine to finish
		st := b.Stats().Sinks["stuck"]
		if st.Errors != 1 || st.Dropped != 2 || st.Delivered != 0 {
			t.Errorf("stats = %+v, want 1 error (cancelled), 2 dropped", st)
		}
	}, events.Migrations)
}

func TestSubscribeUnsubscribe(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newBus(t, db, busOpts{})
		rec := &recorder{}
		unsub := b.Subscribe("rec", rec, events.Filter{})
		first := mustPublish(t, b, ev(events.TypeBackupCompleted, "1"))
		unsub()
		unsub() // idempotent
		mustPublish(t, b, ev(events.TypeBackupCompleted, "2"))
		// The name is free again; counters carry on.
		rec2 := &recorder{}
		b.Subscribe("rec", rec2, events.Filter{})
		third := mustPublish(t, b, ev(events.TypeBackupCompleted, "3"))
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		// The first event may or may not have been handled before
		// unsubscribe discarded the queue, but nothing after it.
		if got := rec.ids(); len(got) > 1 || (len(got) == 1 && got[0] != first.ID) {
			t.Errorf("unsubscribed sink got %v, want at most [%d]", got, first.ID)
		}
		if diff := cmp.Diff([]int64{third.ID}, rec2.ids()); diff != "" {
			t.Errorf("resubscribed sink (-want +got):\n%s", diff)
		}
		st := b.Stats().Sinks["rec"]
		if st.Delivered+st.Dropped != 2 || st.Delivered < 1 {
			t.Errorf("stats = %+v, want delivered+dropped = 2 across both subscriptions", st)
		}

		t.Run("programming errors panic", func(t *testing.T) {
			b := newBus(t, db, busOpts{})
			b.Subscribe("dup", &recorder{}, events.Filter{})
			for name, f := range map[string]func(){
				"duplicate name": func() { b.Subscribe("dup", &recorder{}, events.Filter{}) },
				"empty name":     func() { b.Subscribe("", &recorder{}, events.Filter{}) },
				"nil sink":       func() { b.Subscribe("x", nil, events.Filter{}) },
				"invalid filter": func() { b.Subscribe("y", &recorder{}, events.Filter{Types: []events.Type{"nope"}}) },
			} {
				func() {
					defer func() {
						if recover() == nil {
							t.Errorf("%s: Subscribe did not panic", name)
						}
					}()
					f()
				}()
			}
		})
	}, events.Migrations)
}

func TestConcurrentPublish(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const publishers, each = 6, 20
		b := newBus(t, db, busOpts{queue: publishers * each})
		rec := &recorder{}
		b.Subscribe("rec", rec, events.Filter{})
		var wg sync.WaitGroup
		errs := make(chan error, publishers+2)
		for p := range publishers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					e := ev(events.TypeBackupCompleted, fmt.Sprintf("p%d-%d", p, i))
					e.Actor = fmt.Sprintf("system:p%d", p)
					if _, err := b.Publish(ctx, e); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		// Readers, stats and subscription churn run alongside.
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := b.Query(ctx, events.Filter{Desc: true, Limit: 5}); err != nil {
					errs <- err
					return
				}
				_ = b.Stats()
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 10 {
				unsub := b.Subscribe(fmt.Sprintf("churn%d", i), &recorder{}, events.Filter{})
				unsub()
			}
		}()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if err := b.Close(ctx); err != nil {
			t.Fatal(err)
		}
		got := rec.got()
		if len(got) != publishers*each {
			t.Fatalf("sink got %d events, want %d", len(got), publishers*each)
		}
		// Each publisher's events reach the sink in its publish order.
		last := map[string]int64{}
		seen := map[int64]bool{}
		for _, e := range got {
			if seen[e.ID] {
				t.Errorf("event %d delivered twice", e.ID)
			}
			seen[e.ID] = true
			if e.ID <= last[e.Actor] {
				t.Errorf("%s: event %d delivered after %d", e.Actor, e.ID, last[e.Actor])
			}
			last[e.Actor] = e.ID
		}
		stored, err := b.Query(ctx, events.Filter{Limit: events.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(stored) != publishers*each {
			t.Errorf("stored %d events, want %d", len(stored), publishers*each)
		}
		if p := b.Stats().Published; p != publishers*each {
			t.Errorf("published = %d, want %d", p, publishers*each)
		}
	}, events.Migrations)
}

func TestCollector(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newBus(t, db, busOpts{})
		b.Subscribe("ok", &recorder{}, events.Filter{})
		b.Subscribe("bad", events.SinkFunc(func(context.Context, events.Event) error { return errors.New("no") }), events.Filter{})
		for range 2 {
			mustPublish(t, b, ev(events.TypeBackupCompleted, "m"))
		}
		if err := b.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewRegistry()
		if err := reg.Register(b.Collector()); err != nil {
			t.Fatalf("register: %v", err)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				key := mf.GetName()
				for _, l := range m.GetLabel() {
					key += "{" + l.GetName() + "=" + l.GetValue() + "}"
				}
				if c := m.GetCounter(); c != nil {
					got[key] = c.GetValue()
				} else {
					got[key] = m.GetGauge().GetValue()
				}
			}
		}
		want := map[string]float64{
			"bulwark_events_published_total":                2,
			"bulwark_events_sink_delivered_total{sink=ok}":  2,
			"bulwark_events_sink_delivered_total{sink=bad}": 0,
			"bulwark_events_sink_errors_total{sink=ok}":     0,
			"bulwark_events_sink_errors_total{sink=bad}":    2,
			"bulwark_events_sink_dropped_total{sink=ok}":    0,
			"bulwark_events_sink_dropped_total{sink=bad}":   0,
			"bulwark_events_sink_queued{sink=ok}":           0,
			"bulwark_events_sink_queued{sink=bad}":          0,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("metrics (-want +got):\n%s", diff)
		}
	}, events.Migrations)
}
