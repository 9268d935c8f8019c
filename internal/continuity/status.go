package continuity

import (
	"context"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity/schedule"
	"github.com/bulwarkhq/bulwark/internal/events"
)

// PolicySummary describes a policy for lists (the CLI's policy list, the
// API): its definition without secrets, its last backup, when the next
// ones are due and what is running now.
type PolicySummary struct {
	Name       string       `json:"name"`
	Schedule   string       `json:"schedule"`
	Repository string       `json:"repository"`
	Offsite    []string     `json:"offsite"`
	Sources    []SourceInfo `json:"sources"`
	RPOSeconds float64      `json:"rpo_seconds,omitempty"`
	// Tags are the policy's snapshot tags; those of the form key=value,
	// and policy=NAME, are the tags access-control scopes match.
	Tags             []string  `json:"tags"`
	RestoreTestEvery string    `json:"restore_test_schedule,omitempty"`
	ScrubEvery       string    `json:"scrub_schedule,omitempty"`
	LastBackup       *Run      `json:"last_backup,omitempty"`
	NextBackup       time.Time `json:"next_backup,omitzero"`
	NextRestoreTest  time.Time `json:"next_restore_test,omitzero"`
	NextScrub        time.Time `json:"next_scrub,omitzero"`
	Running          []Kind    `json:"running"`
}

// SourceInfo is a source without its secrets (a database DSN may hold a
// password, so only the kind is shown).
type SourceInfo struct {
	Name    string   `json:"name"`
	Kind    string   `json:"kind"` // paths, postgres, mysql, command
	Paths   []string `json:"paths,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// ResourceTags are the tags a policy carries for access control and on
// its events: policy=NAME and every key=value snapshot tag of the policy
// that events accept (letters, digits, '.', '_', '/', '-').
func ResourceTags(p config.Policy) map[string]string { return TagsOf(p.Name, p.Tags) }

// TagsOf is ResourceTags of the policy called name with snapshot tags
// (a PolicySummary's Name and Tags give the same as its policy's).
func TagsOf(name string, snapshotTags []string) map[string]string {
	tags := map[string]string{"policy": name}
	for _, t := range snapshotTags {
		k, v, ok := strings.Cut(t, "=")
		if ok && k != "policy" && events.ValidTag(k, v) && len(tags) < events.MaxTags {
			tags[k] = v
		}
	}
	return tags
}

// NextRun returns when a job of the policy is next due after t (the
// schedule's next activation plus the policy's fixed jitter), or the zero
// time for a job with no schedule.
func NextRun(p config.Policy, kind Kind, t time.Time) time.Time {
	for _, j := range jobs(p) {
		if j.kind != kind || j.schedule == "" {
			continue
		}
		sch, err := schedule.Parse(j.schedule)
		if err != nil {
			return time.Time{}
		}
		if n := sch.Next(t); !n.IsZero() {
			return n.Add(schedule.Jitter(p.Name+"/"+string(kind), p.Jitter.D()))
		}
	}
	return time.Time{}
}

// Policies returns the configured policies.
func (s *Service) Policies() []config.Policy { return s.Config.Policies }

// Policy returns the named policy, or an error matching ErrNoPolicy.
func (s *Service) Policy(name string) (config.Policy, error) { return s.policy(name) }

// Summary describes policy p.
func (s *Service) Summary(ctx context.Context, p config.Policy) (PolicySummary, error) {
	now := s.now()
	out := PolicySummary{
		Name: p.Name, Schedule: p.Schedule, Repository: p.Repository, Offsite: append([]string{}, p.Offsite...),
		Sources: []SourceInfo{}, RPOSeconds: p.RPO.D().Seconds(), Tags: append([]string{PolicyTag(p.Name)}, p.Tags...),
		RestoreTestEvery: p.RestoreTest.Schedule, ScrubEvery: p.Scrub.Schedule,
		NextBackup: NextRun(p, KindBackup, now), NextRestoreTest: NextRun(p, KindRestoreTest, now), NextScrub: NextRun(p, KindScrub, now),
		Running: []Kind{},
	}
	for i, src := range p.Sources {
		out.Sources = append(out.Sources, SourceInfo{Name: SourceName(src, i), Kind: sourceKind(src), Paths: src.Paths, Exclude: src.Exclude})
	}
	for _, j := range jobs(p) {
		running := s.Running(p.Name, j.kind)
		if !running && s.History != nil {
			_, ok, err := s.History.Live(ctx, p.Name, j.kind, now, false)
			if err != nil {
				return out, err
			}
			running = ok
		}
		if running {
			out.Running = append(out.Running, j.kind)
		}
	}
	if s.History != nil {
		last, ok, err := s.History.Last(ctx, p.Name, KindBackup, false)
		if err != nil {
			return out, err
		}
		if ok {
			last.Evidence = nil
			out.LastBackup = &last
		}
	}
	return out, nil
}
