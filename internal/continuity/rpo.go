package continuity

import (
	"context"
	"fmt"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/events"
)

// RPOStatus is the recovery point of one source of a policy in one of its
// repositories: how old its newest complete snapshot is, against the RPO.
type RPOStatus struct {
	Policy     string        `json:"policy"`
	Repository string        `json:"repository"`
	Source     string        `json:"source"`
	Newest     time.Time     `json:"newest_snapshot,omitzero"`
	Age        time.Duration `json:"-"`
	AgeSeconds float64       `json:"age_seconds"`
	RPOSeconds float64       `json:"rpo_seconds"`
	Breached   bool          `json:"breached"`
	Basis      string        `json:"basis"` // "snapshots" or "run history" (write-only keys)
	Error      string        `json:"error,omitempty"`
}

// CheckRPO measures the recovery point of every source of the policy in
// its primary and offsite repositories, and raises rpo.breached when one
// exceeds the RPO and rpo.recovered when it is back within it. A
// repository that cannot be read counts as breached. With a write-only
// key, snapshots cannot be read: the last successful run is the basis.
func (s *Service) CheckRPO(ctx context.Context, name string) ([]RPOStatus, error) {
	p, err := s.policy(name)
	if err != nil {
		return nil, err
	}
	if p.RPO == 0 {
		return nil, nil
	}
	ctx = withPolicy(ctx, p)
	now := s.now()
	var out []RPOStatus
	for _, repoName := range append([]string{p.Repository}, p.Offsite...) {
		out = append(out, s.rpoOf(ctx, p, repoName, now)...)
	}
	for _, st := range out {
		s.rpoTransition(ctx, st)
	}
	return out, nil
}

func (s *Service) rpoOf(ctx context.Context, p config.Policy, repoName string, now time.Time) []RPOStatus {
	mk := func(src string) RPOStatus {
		return RPOStatus{Policy: p.Name, Repository: repoName, Source: src, RPOSeconds: p.RPO.D().Seconds(), Basis: "snapshots"}
	}
	var out []RPOStatus
	all, canRead, err := s.readSnapshots(ctx, repoName)
	if err != nil && !canRead {
		for i, src := range p.Sources {
			st := mk(SourceName(src, i))
			st.Error, st.Breached = err.Error(), true
			out = append(out, st)
		}
		return out
	}
	var fallback time.Time
	if !canRead && s.History != nil {
		if run, ok, err := s.History.Last(ctx, p.Name, KindBackup, true); err == nil && ok {
			fallback = run.Started
		}
	}
	for i, src := range p.Sources {
		st := mk(SourceName(src, i))
		if canRead {
			if err != nil {
				st.Error = err.Error()
			} else if snaps := ofPolicy(all, p.Name, st.Source); len(snaps) > 0 {
				st.Newest = snaps[len(snaps)-1].Time
			}
		} else {
			st.Basis, st.Newest = "run history", fallback
		}
		if st.Newest.IsZero() {
			st.Breached = true
			if st.Error == "" {
				st.Error = "no snapshot"
			}
		} else {
			st.Age = now.Sub(st.Newest)
			st.AgeSeconds = st.Age.Seconds()
			st.Breached = st.Age > p.RPO.D()
		}
		out = append(out, st)
	}
	return out
}

// rpoTransition publishes an event when a breach starts or ends.
func (s *Service) rpoTransition(ctx context.Context, st RPOStatus) {
	key := st.Policy + "/" + st.Repository + "/" + st.Source
	s.mu.Lock()
	if s.rpo == nil {
		s.rpo = map[string]bool{}
	}
	was, known := s.rpo[key]
	s.rpo[key] = st.Breached
	s.mu.Unlock()
	if known && was == st.Breached || !known && !st.Breached {
		return
	}
	ev := events.Event{Resource: "policy/" + st.Policy, Data: map[string]any{"rpo": st}}
	if st.Breached {
		why := fmt.Sprintf("newest snapshot %.0fs old, RPO %.0fs", st.AgeSeconds, st.RPOSeconds)
		if st.Error != "" {
			why = st.Error
		}
		s.publish(ctx, withMsg(ev, events.TypeRPOBreached, events.SeverityError, "RPO of %s breached in %s (source %s): %s", st.Policy, st.Repository, st.Source, why))
		return
	}
	s.publish(ctx, withMsg(ev, events.TypeRPORecovered, events.SeverityInfo, "RPO of %s met again in %s (source %s)", st.Policy, st.Repository, st.Source))
}
