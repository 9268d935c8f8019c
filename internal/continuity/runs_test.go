package continuity

import (
	"context"
	"errors"
	"os/exec"
	"strings"
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
		// That run belongs to this (live) process: a scheduler starting
		// beside it must leave it alone, and Live reports it, unless the
		// caller holds the in-memory claim (self), which proves the row
		// stale.
		if n, err := h.AbandonRunning(ctx, t0.Add(3*time.Hour)); err != nil || n != 0 {
			t.Fatalf("abandon with the owner alive: %d %v", n, err)
		}
		if live, ok, err := h.Live(ctx, "db", KindRestoreTest, t0, false); err != nil || !ok || live.Owner != processOwner() {
			t.Fatalf("live run: %+v %v %v", live, ok, err)
		}
		// One running job per policy and kind, atomically.
		if _, err := h.Start(ctx, "db", KindRestoreTest, t0); !errors.Is(err, ErrRunning) {
			t.Fatalf("a second running row for db/restore_test: %v", err)
		}
		if _, ok, err := h.Live(ctx, "db", KindRestoreTest, t0, true); err != nil || ok {
			t.Fatalf("own stale row with self: %v %v", ok, err)
		}
		// Runs of a live process, of one that has ended, of a process
		// recorded before owners were, and of other hosts, one still
		// beating and one silent for longer than HeartbeatStale.
		alive := &History{db: db, owner: liveOwner(t)}
		alive.Start(ctx, "alive", KindBackup, t0.Add(2*time.Hour))
		dead := &History{db: db, owner: deadOwner(t)}
		dead.Start(ctx, "web", KindScrub, t0.Add(2*time.Hour))
		legacy := &History{db: db}
		legacy.Start(ctx, "legacy", KindBackup, t0.Add(2*time.Hour))
		other := &History{db: db, owner: "another-host.example/x/1/1"}
		beating, _ := other.Start(ctx, "beating", KindBackup, t0)
		must(t, other.Beat(ctx, beating, t0.Add(3*time.Hour-time.Minute)))
		other.Start(ctx, "silent", KindBackup, t0.Add(3*time.Hour-HeartbeatStale-time.Second))
		if _, ok, err := h.Live(ctx, "web", KindScrub, t0.Add(3*time.Hour), false); err != nil || ok {
			t.Fatalf("a dead process's run reported live: %v %v", ok, err)
		}
		n, err := h.AbandonRunning(ctx, t0.Add(3*time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("abandon: %d %v (want the legacy and the silent run; Live already marked the dead one)", n, err)
		}
		for _, c := range []struct {
			policy string
			kind   Kind
			want   Status
		}{{"web", KindScrub, StatusFailed}, {"legacy", KindBackup, StatusFailed}, {"silent", KindBackup, StatusFailed},
			{"beating", KindBackup, StatusRunning}, {"alive", KindBackup, StatusRunning}, {"db", KindRestoreTest, StatusFailed}} {
			r, _, _ := h.Last(ctx, c.policy, c.kind, false)
			if r.Status != c.want || (c.want == StatusFailed && !strings.Contains(r.Error, "interrupted")) {
				t.Errorf("%s %s: %+v, want %s", c.policy, c.kind, r, c.want)
			}
		}
		if got, err := h.Get(ctx, id1); err != nil || got.ID != id1 || got.Status != StatusOK {
			t.Errorf("get: %+v %v", got, err)
		}
		if _, err := h.Get(ctx, 999999); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get of a missing run: %v", err)
		}
	}, Migrations)
}

// liveOwner is the owner string of another process, alive until the test
// ends.
func liveOwner(t *testing.T) string {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return ownerOf(cmd.Process.Pid)
}

// deadOwner is the owner string of a process that has exited.
func deadOwner(t *testing.T) string {
	cmd := exec.Command("sleep", "0.2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	owner := ownerOf(cmd.Process.Pid)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return owner
}

// A reused PID is a different process: its start time differs.
func TestOwnerGone(t *testing.T) {
	self := processOwner()
	if ownerGone(self) {
		t.Fatalf("own process %s counted as gone", self)
	}
	parts := strings.Split(self, "/")
	reused := strings.Join([]string{parts[0], parts[1], parts[2], "1"}, "/")
	for _, c := range []struct {
		owner string
		gone  bool
	}{
		{self, false},
		{"", true},
		{"garbage", true},
		{reused, true},
		{strings.Join([]string{parts[0], "another-boot", parts[2], parts[3]}, "/"), true},
		{strings.Join([]string{"elsewhere.example", parts[1], parts[2], parts[3]}, "/"), false},
		{deadOwner(t), true},
	} {
		if got := ownerGone(c.owner); got != c.gone {
			t.Errorf("ownerGone(%q) = %v, want %v", c.owner, got, c.gone)
		}
	}
}
