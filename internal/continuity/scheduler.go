package continuity

// The scheduler runs inside `bulwark up`. Every tick it asks, for each
// policy and each of its jobs (backup, restore test, scrub), whether an
// activation of the job's schedule (plus the policy's fixed jitter) fell
// since the job's last start, as recorded in the run history; if so, and
// the job is not already running, it starts it. Because the history is in
// the database, a run missed while the process was down is seen on the
// first tick after start and caught up once (schedule.Due reports one run
// however many activations were missed). A job never scheduled before
// waits for its first activation after the scheduler started. Runs left
// "running" by a crash are marked failed when the scheduler starts.
//
// The recovery-point watch runs every RPOEvery (default 5 minutes).
//
// Trigger starts a job now, outside its schedule (the API's "run now"): the
// job runs under the scheduler's context, so stopping `bulwark up` cancels
// it and waits for it like a scheduled one.

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity/schedule"
)

// Scheduler runs a Service's policies on their schedules.
type Scheduler struct {
	Service  *Service
	Tick     time.Duration // default 30s
	RPOEvery time.Duration // default 5m

	started time.Time
	lastRPO time.Time
	wg      sync.WaitGroup

	mu  sync.Mutex
	ctx context.Context // Run's, while it runs

	said map[string]string // policy/kind: the last reason a due job did not start
}

// ErrNotRunning is returned by Trigger when the scheduler is not running.
var ErrNotRunning = errors.New("the scheduler is not running")

// job is one schedulable job of a policy.
type job struct {
	kind     Kind
	schedule string
}

func jobs(p config.Policy) []job {
	return []job{{KindBackup, p.Schedule}, {KindRestoreTest, p.RestoreTest.Schedule}, {KindScrub, p.Scrub.Schedule}}
}

// launch starts a job under ctx, counted by Wait. The caller has added
// one to sc.wg.
func (sc *Scheduler) launch(ctx context.Context, policy string, kind Kind) (Run, error) {
	return sc.Service.Launch(ctx, policy, kind, sc.wg.Done)
}

// Trigger starts a job of a policy now, whatever its schedule, on behalf
// of actor (named in the job's events; empty: the Service's Actor), and
// returns its run as recorded at the start. It fails with ErrNoPolicy,
// ErrRunning (a job of that kind is in progress) or ErrNotRunning.
func (sc *Scheduler) Trigger(policy string, kind Kind, actor string) (Run, error) {
	// The job is counted before the lock is released: Run clears ctx
	// under the lock before it waits, so it never waits without it.
	sc.mu.Lock()
	ctx := sc.ctx
	if ctx == nil || ctx.Err() != nil {
		sc.mu.Unlock()
		return Run{}, ErrNotRunning
	}
	sc.wg.Add(1)
	sc.mu.Unlock()
	if actor != "" {
		ctx = WithActor(ctx, actor)
	}
	return sc.launch(ctx, policy, kind)
}

// Run schedules until ctx is done, then waits for running jobs (which see
// ctx cancelled) to end.
func (sc *Scheduler) Run(ctx context.Context) error {
	s := sc.Service
	if sc.Tick <= 0 {
		sc.Tick = 30 * time.Second
	}
	sc.started = s.now()
	if s.History != nil {
		if n, err := s.History.AbandonRunning(ctx, s.now()); err != nil {
			return err
		} else if n > 0 {
			s.logger().Warn("continuity: runs interrupted by the last stop marked failed", "runs", n)
		}
	}
	sc.mu.Lock()
	sc.ctx = ctx
	sc.mu.Unlock()
	t := time.NewTicker(sc.Tick)
	defer t.Stop()
	for {
		sc.TickOnce(ctx)
		select {
		case <-ctx.Done():
			sc.mu.Lock()
			sc.ctx = nil
			sc.mu.Unlock()
			sc.wg.Wait()
			return nil
		case <-t.C:
		}
	}
}

// TickOnce starts the jobs that are due now and, every RPOEvery, checks
// the RPOs. It returns without waiting for the jobs; Wait does.
func (sc *Scheduler) TickOnce(ctx context.Context) []string {
	s := sc.Service
	now := s.now()
	if sc.started.IsZero() {
		sc.started = now
	}
	var started []string
	for _, p := range s.Config.Policies {
		for _, j := range jobs(p) {
			if j.schedule == "" || s.Running(p.Name, j.kind) {
				continue
			}
			sch, err := schedule.Parse(j.schedule)
			if err != nil {
				continue // config validation refused it already
			}
			var last time.Time
			if s.History != nil {
				if run, ok, err := s.History.Last(ctx, p.Name, j.kind, false); err == nil && ok {
					last = run.Started
				}
			}
			d := schedule.Due(sch, last, now, schedule.Options{Jitter: schedule.Jitter(p.Name+"/"+string(j.kind), p.Jitter.D()), Enrolled: sc.started})
			if !d.Due {
				continue
			}
			if d.Missed {
				s.logger().Info("continuity: catching up a missed run", "policy", p.Name, "job", j.kind)
			}
			sc.wg.Add(1)
			if _, err := sc.launch(ctx, p.Name, j.kind); err != nil {
				// Another process runs it (its run is named), or the
				// history cannot be written: say so once per cause.
				key := p.Name + "/" + string(j.kind)
				if sc.said == nil {
					sc.said = map[string]string{}
				}
				if sc.said[key] != err.Error() {
					sc.said[key] = err.Error()
					s.logger().Warn("continuity: scheduled job not started", "policy", p.Name, "job", j.kind, "err", err)
				}
				continue
			}
			delete(sc.said, p.Name+"/"+string(j.kind))
			started = append(started, p.Name+"/"+string(j.kind))
		}
	}
	every := sc.RPOEvery
	if every <= 0 {
		every = 5 * time.Minute
	}
	if now.Sub(sc.lastRPO) >= every {
		sc.lastRPO = now
		for _, p := range s.Config.Policies {
			if p.RPO > 0 {
				if _, err := s.CheckRPO(ctx, p.Name); err != nil {
					s.logger().Warn("continuity: RPO check failed", "policy", p.Name, "err", err)
				}
			}
		}
	}
	return started
}

// Wait waits for the jobs started so far.
func (sc *Scheduler) Wait() { sc.wg.Wait() }
