package continuity

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity/schedule"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// The scheduler starts a job at its activation (plus jitter), not before,
// never twice for one activation, and after downtime catches up once.
func TestSchedulerRunsAndCatchesUp(t *testing.T) {
	f := newFixture(t, config.Policy{Name: "web", Sources: []config.Source{{Command: []string{"echo", "x"}}}, Schedule: "every 1h", Jitter: config.Duration(10 * time.Minute)})
	jit := schedule.Jitter("web/backup", 10*time.Minute)
	// Started just after the 10:00 activation: the first run is 11:00.
	c := &clock{t: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC).Add(jit + time.Second)}
	f.svc.Now = c.Now
	sc := &Scheduler{Service: f.svc, RPOEvery: time.Hour}
	t.Cleanup(sc.Wait)

	if got := sc.TickOnce(ctx); len(got) != 0 {
		t.Fatalf("started %v before the first activation", got)
	}
	c.Set(time.Date(2026, 6, 1, 11, 0, 0, 0, time.UTC).Add(jit - time.Second))
	if got := sc.TickOnce(ctx); len(got) != 0 {
		t.Fatalf("started %v a second before activation + jitter", got)
	}
	c.Set(time.Date(2026, 6, 1, 11, 0, 0, 0, time.UTC).Add(jit + time.Second))
	if got := sc.TickOnce(ctx); len(got) != 1 || got[0] != "web/backup" {
		t.Fatalf("at activation + jitter: started %v", got)
	}
	sc.Wait()
	if got := sc.TickOnce(ctx); len(got) != 0 {
		t.Fatalf("started %v again for the same activation", got)
	}
	// Down from 11:xx to 16:30: one catch-up run, not five.
	c.Set(time.Date(2026, 6, 1, 16, 30, 0, 0, time.UTC))
	if got := sc.TickOnce(ctx); len(got) != 1 {
		t.Fatalf("after downtime: started %v, want one catch-up", got)
	}
	sc.Wait()
	if got := sc.TickOnce(ctx); len(got) != 0 {
		t.Fatalf("second tick after the catch-up started %v", got)
	}
	runs, _ := f.svc.History.List(ctx, "web", 10)
	if len(runs) != 2 || runs[0].Status != StatusOK {
		t.Errorf("history: %+v", runs)
	}
}

// The RPO watch raises a breach once and a recovery once.
func TestRPOWatch(t *testing.T) {
	f := newFixture(t, config.Policy{Name: "web", Sources: []config.Source{{Name: "x", Command: []string{"echo", "x"}}}, RPO: config.Duration(time.Hour), Offsite: []string{"offsite"}})
	c := &clock{t: time.Now()}
	f.svc.Now = c.Now
	st, err := f.svc.CheckRPO(ctx, "web")
	if err != nil || len(st) != 2 || !st[0].Breached || st[0].Error != "no snapshot" {
		t.Fatalf("before any backup: %+v %v", st, err)
	}
	if _, err := f.svc.RunBackup(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	st, _ = f.svc.CheckRPO(ctx, "web")
	if st[0].Breached || st[1].Breached || st[1].Repository != "offsite" || st[0].AgeSeconds > 60 {
		t.Fatalf("after a backup: %+v", st)
	}
	c.Set(c.Now().Add(2 * time.Hour))
	st, _ = f.svc.CheckRPO(ctx, "web")
	if !st[0].Breached || st[0].AgeSeconds < 7000 {
		t.Fatalf("two hours later: %+v", st)
	}
	f.svc.CheckRPO(ctx, "web") // still breached: no new event
	types := strings.Join(f.eventTypes(t), ",")
	if strings.Count(types, "rpo.breached") != 4 || strings.Count(types, "rpo.recovered") != 2 {
		t.Errorf("events: %s (want breach+recovery per repository, then a breach each)", types)
	}
}
