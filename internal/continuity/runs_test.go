package continuity

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// The run history on both engines: start, finish, last (ok or any), list,
// and runs left "running" by a crash marked failed.
func TestHistory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		h := NewHistory(db)
		t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
		if _, ok, err := h.Last(ctx, "web", KindBackup, false); err != nil || ok {
			t.Fatalf("Last on an empty history: %v %v", ok, err)
		}
		id1, err := h.Start(ctx, "web", KindBackup, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Finish(ctx, id1, t0.Add(time.Minute), nil, map[string]any{"snapshots": 2}); err != nil {
			t.Fatal(err)
		}
		id2, _ := h.Start(ctx, "web", KindBackup, t0.Add(time.Hour))
		if err := h.Finish(ctx, id2, t0.Add(time.Hour+time.Second), errors.New("disk full"), nil); err != nil {
			t.Fatal(err)
		}
		h.Start(ctx, "db", KindRestoreTest, t0.Add(2*time.Hour))

		last, ok, err := h.Last(ctx, "web", KindBackup, false)
		if err != nil || !ok || last.ID != id2 || last.Status != StatusFailed || last.Error != "disk full" {
			t.Errorf("last backup: %+v %v %v", last, ok, err)
		}
		good, ok, err := h.Last(ctx, "web", KindBackup, true)
		if err != nil || !ok || good.ID != id1 || string(good.Evidence) != `{"snapshots":2}` || !good.Finished.Equal(t0.Add(time.Minute)) {
			t.Errorf("last good backup: %+v %v %v", good, ok, err)
		}
		all, err := h.List(ctx, "", 10)
		if err != nil || len(all) != 3 || all[0].Policy != "db" || all[0].Status != StatusRunning || !all[0].Finished.IsZero() {
			t.Fatalf("list: %+v %v", all, err)
		}
		web, _ := h.List(ctx, "web", 1)
		if len(web) != 1 || web[0].ID != id2 {
			t.Errorf("list web limit 1: %+v", web)
		}
		n, err := h.AbandonRunning(ctx, t0.Add(3*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("abandon: %d %v", n, err)
		}
		rt, _, _ := h.Last(ctx, "db", KindRestoreTest, false)
		if rt.Status != StatusFailed || rt.Error == "" {
			t.Errorf("interrupted run: %+v", rt)
		}
	}, Migrations)
}
