package continuity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/continuity/dump"
	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/restorer"
)

// ActivateOptions say where a disaster-recovery activation restores to.
type ActivateOptions struct {
	Target   string // directory files are restored below (required for path and command sources)
	Postgres string // DSN dumps of PostgreSQL sources are restored into
	MySQL    string // DSN dumps of MariaDB/MySQL sources are restored into
}

// ActivationReport is the evidence of a disaster-recovery activation.
type ActivationReport struct {
	Policy   string            `json:"policy"`
	Started  time.Time         `json:"started"`
	Duration float64           `json:"recovery_seconds"` // the measured recovery time
	Sources  []ActivatedSource `json:"sources"`
	OK       bool              `json:"ok"`
}

// ActivatedSource is one source brought back.
type ActivatedSource struct {
	Source     string    `json:"source"`
	Repository string    `json:"repository"` // where the freshest copy was
	Snapshot   string    `json:"snapshot"`
	Time       time.Time `json:"snapshot_time"`
	DataAge    float64   `json:"data_age_seconds"` // the recovery point
	Files      int64     `json:"files,omitempty"`
	Bytes      int64     `json:"bytes,omitempty"`
	Restored   []string  `json:"databases,omitempty"`
	Error      string    `json:"error,omitempty"`
}

// Activate restores everything the policy covers from the freshest copy
// of each source (the primary, else any offsite repository that can be
// read), onto this machine: files below o.Target, database dumps into
// o.Postgres / o.MySQL. It reports the recovery time and the data's age.
func (s *Service) Activate(ctx context.Context, name string, o ActivateOptions) (*ActivationReport, error) {
	p, err := s.policy(name)
	if err != nil {
		return nil, err
	}
	start := s.now()
	rep := &ActivationReport{Policy: p.Name, Started: start, Sources: []ActivatedSource{}}
	defer func() { rep.Duration = s.now().Sub(start).Seconds() }()

	// Open every readable repository of the policy once.
	type candidate struct {
		name string
		r    *repo.Repository
	}
	var repos []candidate
	var openErrs []string
	for _, n := range append([]string{p.Repository}, p.Offsite...) {
		r, err := s.openNamed(ctx, n)
		if err != nil {
			openErrs = append(openErrs, err.Error())
			continue
		}
		defer r.Close()
		if !r.CanRead() {
			openErrs = append(openErrs, fmt.Sprintf("repository %s: write-only key", n))
			continue
		}
		repos = append(repos, candidate{n, r})
	}
	if len(repos) == 0 {
		return rep, fmt.Errorf("no repository of policy %s can be read: %s", p.Name, strings.Join(openErrs, "; "))
	}
	var failures []string
	for i, src := range p.Sources {
		sname := SourceName(src, i)
		as := ActivatedSource{Source: sname}
		var best *repo.Snapshot
		var from candidate
		for _, c := range repos {
			snaps, err := snapshotsOf(ctx, c.r, p.Name, sname)
			if err != nil || len(snaps) == 0 {
				continue
			}
			if sn := snaps[len(snaps)-1]; best == nil || sn.Time.After(best.Time) {
				best, from = sn, c
			}
		}
		if best == nil {
			as.Error = "no snapshot in any repository"
			rep.Sources = append(rep.Sources, as)
			failures = append(failures, sname+": "+as.Error)
			continue
		}
		as.Repository, as.Snapshot, as.Time, as.DataAge = from.name, repo.Hex(best.ID), best.Time, s.now().Sub(best.Time).Seconds()
		var err error
		switch sourceKind(src) {
		case "postgres":
			if o.Postgres == "" {
				err = errors.New("a PostgreSQL source: give --postgres DSN")
				break
			}
			var res []dump.Restored
			if res, err = dump.RestorePostgres(ctx, from.r, best, o.Postgres, dump.RestoreOptions{}); err == nil {
				for _, x := range res {
					as.Restored = append(as.Restored, x.Path)
				}
			}
		case "mysql":
			if o.MySQL == "" {
				err = errors.New("a MariaDB/MySQL source: give --mysql DSN")
				break
			}
			var res []dump.Restored
			if res, err = dump.RestoreMySQL(ctx, from.r, best, o.MySQL, dump.RestoreOptions{}); err == nil {
				for _, x := range res {
					as.Restored = append(as.Restored, x.Path)
				}
			}
		default:
			if o.Target == "" {
				err = errors.New("give --target DIR for file sources")
				break
			}
			var st *restorer.Stats
			if st, err = restorer.Restore(ctx, from.r, best, o.Target, restorer.Options{Verify: true}); err == nil {
				as.Files, as.Bytes = st.Files, st.Bytes
			}
		}
		if err != nil {
			as.Error = err.Error()
			failures = append(failures, sname+": "+as.Error)
		}
		rep.Sources = append(rep.Sources, as)
	}
	if len(failures) > 0 {
		return rep, errors.New(strings.Join(failures, "; "))
	}
	rep.OK = true
	return rep, nil
}
