// Package continuity runs backup policies: backups of every source into
// the primary repository, retention, offsite copies, restore tests, scrubs
// with self-repair, the recovery-point watch and disaster recovery. Each
// job is recorded in the run history (with its evidence: snapshot ids,
// bytes, durations, data age) and reported as an event, which the audit
// trail and the posture report consume.
//
// The package is a library: the composition root (internal/app) gives it
// the configuration, an Opener that turns a configured repository into an
// opened one (location dispatch and secrets live there), the run history
// and the event bus. The scheduler (scheduler.go) runs the jobs inside
// `bulwark up`; the command line runs them on demand.
//
// Jobs of one policy never overlap: a second start while one runs returns
// ErrRunning. Different policies run in parallel; the repositories' own
// locks keep concurrent writers safe.
package continuity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/repo"
)

// Opener opens a configured repository with its index loaded. create
// makes a new repository when none exists at the location.
type Opener func(ctx context.Context, r config.Repository) (*repo.Repository, error)

// Service runs the policies of one configuration.
type Service struct {
	Config config.Continuity
	Open   Opener
	// OpenList opens a repository to list its snapshots only (readers.go);
	// nil: Open. ReaderIdle is how long such a repository stays open after
	// its last listing (0: ReaderIdle, 5 minutes).
	OpenList   Opener
	ReaderIdle time.Duration
	History    *History    // nil: runs are not recorded
	Bus        *events.Bus // nil: no events
	Logger     *slog.Logger
	Now        func() time.Time
	Getenv     func(string) string
	// ReadFile reads secret files (default os.ReadFile).
	ReadFile func(string) ([]byte, error)
	// Actor is who starts the jobs, for events (default system:scheduler).
	Actor string

	mu      sync.Mutex
	running map[string]bool // policy/kind in progress
	rpo     map[string]bool // policy/repository currently in breach
	readers readers         // repositories open for listing snapshots (readers.go)
}

// ErrRunning is returned when a job of the policy is already running.
var ErrRunning = errors.New("already running")

// ErrNoPolicy is returned for an unknown policy name.
var ErrNoPolicy = errors.New("no such policy")

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Service) policy(name string) (config.Policy, error) {
	p, ok := s.Config.PolicyByName(name)
	if !ok {
		var names []string
		for _, p := range s.Config.Policies {
			names = append(names, p.Name)
		}
		return config.Policy{}, fmt.Errorf("%w %q (configured: %v)", ErrNoPolicy, name, names)
	}
	return p, nil
}

// begin marks policy/kind running, or fails with ErrRunning.
func (s *Service) begin(policy string, kind Kind) (func(), error) {
	key := policy + "/" + string(kind)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		s.running = map[string]bool{}
	}
	if s.running[key] {
		return nil, fmt.Errorf("%s of policy %s: %w", kind, policy, ErrRunning)
	}
	s.running[key] = true
	return func() {
		s.mu.Lock()
		delete(s.running, key)
		s.mu.Unlock()
	}, nil
}

// Running reports whether a job of policy and kind is in progress here.
func (s *Service) Running(policy string, kind Kind) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running[policy+"/"+string(kind)]
}

// A claim is a job of one policy that passed the overlap check and whose
// start is recorded in the history. runClaimed runs it and releases it.
type claim struct {
	p       config.Policy
	run     Run // as recorded at the start (ID 0 without a history)
	release func()
}

// claim refuses an unknown policy or an overlapping run, and records the
// start of a run of kind.
func (s *Service) claim(ctx context.Context, name string, kind Kind) (*claim, error) {
	p, err := s.policy(name)
	if err != nil {
		return nil, err
	}
	release, err := s.begin(p.Name, kind)
	if err != nil {
		return nil, err
	}
	if s.History != nil {
		// Another process (`bulwark policy run` beside `bulwark up`) may
		// be running the same job.
		if r, ok, err := s.History.Live(ctx, p.Name, kind, s.now(), true); err != nil || ok {
			release()
			if err == nil {
				err = fmt.Errorf("%s of policy %s: %w (run %d, process %s, since %s)", kind, p.Name, ErrRunning, r.ID, r.Owner, r.Started.Format(time.RFC3339))
			}
			return nil, err
		}
	}
	c := &claim{p: p, run: Run{Policy: p.Name, Kind: kind, Started: s.now(), Status: StatusRunning}, release: release}
	if s.History != nil {
		if c.run.ID, err = s.History.Start(ctx, p.Name, kind, c.run.Started); err != nil {
			release()
			return nil, err
		}
	}
	return c, nil
}

// runClaimed runs job for a claimed run, records its end with the job's
// report as evidence (even when ctx was cancelled) and releases the claim.
func runClaimed[T any](ctx context.Context, s *Service, c *claim, job func(config.Policy) (T, error)) (T, error) {
	defer c.release()
	if s.History != nil {
		// The heartbeat tells other hosts sharing the history that the
		// run is alive (History.over).
		stop := make(chan struct{})
		beating := make(chan struct{})
		go func() {
			defer close(beating)
			t := time.NewTicker(HeartbeatEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					if err := s.History.Beat(context.WithoutCancel(ctx), c.run.ID, s.now()); err != nil {
						s.logger().Warn("continuity: heartbeat", "run", c.run.ID, "err", err)
					}
				}
			}
		}()
		defer func() { close(stop); <-beating }()
	}
	out, jobErr := job(c.p)
	if s.History != nil {
		if err := s.History.Finish(context.WithoutCancel(ctx), c.run.ID, s.now(), jobErr, out); err != nil && jobErr == nil {
			jobErr = err
		}
	}
	return out, jobErr
}

// Launch starts a job of the named policy in the background under ctx and
// returns its run as recorded at the start; ErrNoPolicy for an unknown
// policy and ErrRunning when a job of that kind is in progress. done, when
// not nil, is called once the job has ended (also when Launch fails).
func (s *Service) Launch(ctx context.Context, name string, kind Kind, done func()) (Run, error) {
	var body func(context.Context, *claim) error
	switch kind {
	case KindBackup:
		body = func(ctx context.Context, c *claim) error { _, err := s.runBackup(ctx, c); return err }
	case KindRestoreTest:
		body = func(ctx context.Context, c *claim) error { _, err := s.runRestoreTest(ctx, c); return err }
	case KindScrub:
		body = func(ctx context.Context, c *claim) error { _, err := s.runScrub(ctx, c); return err }
	default:
		if done != nil {
			done()
		}
		return Run{}, fmt.Errorf("continuity: unknown job kind %q (want backup, restore_test or scrub)", kind)
	}
	c, err := s.claim(ctx, name, kind)
	if err != nil {
		if done != nil {
			done()
		}
		return Run{}, err
	}
	go func() {
		if done != nil {
			defer done()
		}
		if err := body(ctx, c); err != nil {
			s.logger().Warn("continuity: job failed", "policy", c.p.Name, "job", kind, "run", c.run.ID, "err", err)
		}
	}()
	return c.run, nil
}

type actorKey struct{}

type tagsKey struct{}

// withPolicy returns a context whose events carry p's access-control tags
// (ResourceTags), so that a grant scoped to policy=NAME sees them.
func withPolicy(ctx context.Context, p config.Policy) context.Context {
	return context.WithValue(ctx, tagsKey{}, ResourceTags(p))
}

// WithActor returns a context whose jobs report actor (for example
// "user:alice", who started them through the API) in their events instead
// of the Service's Actor.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// publish sends an event; failures are logged, never returned (the job's
// own result stands).
func (s *Service) publish(ctx context.Context, e events.Event) {
	if s.Bus == nil {
		return
	}
	if e.Module == "" {
		e.Module = events.ModuleContinuity
	}
	if e.Actor == "" {
		e.Actor, _ = ctx.Value(actorKey{}).(string)
	}
	if e.Tags == nil {
		e.Tags, _ = ctx.Value(tagsKey{}).(map[string]string)
	}
	if e.Actor == "" {
		e.Actor = s.Actor
		if e.Actor == "" {
			e.Actor = events.SystemActor("scheduler")
		}
	}
	e.Message = events.OneLine(e.Message)
	if _, err := s.Bus.Publish(context.WithoutCancel(ctx), e); err != nil {
		s.logger().Warn("continuity: event not published", "type", e.Type, "err", err)
	}
}

func (s *Service) secret(sec config.Secret) (string, error) {
	rf := s.ReadFile
	if rf == nil {
		rf = os.ReadFile
	}
	ge := s.Getenv
	if ge == nil {
		ge = os.Getenv
	}
	return sec.Resolve(ge, rf)
}

// readLock takes a shared lock on r, which keeps prunes out while a job
// reads or adds data, and refreshes the index r loaded when it was opened,
// in case a prune ran in between.
func readLock(ctx context.Context, r *repo.Repository) (*repo.Lock, error) {
	l, err := r.Lock(ctx, false, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	if _, err := r.RefreshIndex(ctx); err != nil {
		l.Unlock()
		return nil, err
	}
	return l, nil
}

// openNamed opens the repository called name.
func (s *Service) openNamed(ctx context.Context, name string) (*repo.Repository, error) {
	rc, ok := s.Config.RepositoryByName(name)
	if !ok {
		return nil, fmt.Errorf("repository %q is not configured", name)
	}
	r, err := s.Open(ctx, rc)
	if err != nil {
		return nil, fmt.Errorf("repository %s (%s): %w", name, rc.Location, err)
	}
	return r, nil
}
