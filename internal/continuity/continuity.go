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
	Config  config.Continuity
	Open    Opener
	History *History    // nil: runs are not recorded
	Bus     *events.Bus // nil: no events
	Logger  *slog.Logger
	Now     func() time.Time
	Getenv  func(string) string
	// ReadFile reads secret files (default os.ReadFile).
	ReadFile func(string) ([]byte, error)
	// Actor is who starts the jobs, for events (default system:scheduler).
	Actor string

	mu      sync.Mutex
	running map[string]bool // policy/kind in progress
	rpo     map[string]bool // policy/repository currently in breach
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

// runRecorded runs job for the named policy as one history entry of
// kind: it refuses an overlapping run, records the start, and records the
// end with the job's report as evidence (even when ctx was cancelled).
func runRecorded[T any](ctx context.Context, s *Service, name string, kind Kind, job func(config.Policy) (T, error)) (T, config.Policy, error) {
	var out T
	p, err := s.policy(name)
	if err != nil {
		return out, p, err
	}
	done, err := s.begin(p.Name, kind)
	if err != nil {
		return out, p, err
	}
	defer done()
	var id int64
	if s.History != nil {
		if id, err = s.History.Start(ctx, p.Name, kind, s.now()); err != nil {
			return out, p, err
		}
	}
	out, jobErr := job(p)
	if s.History != nil {
		if err := s.History.Finish(context.WithoutCancel(ctx), id, s.now(), jobErr, out); err != nil && jobErr == nil {
			jobErr = err
		}
	}
	return out, p, jobErr
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
