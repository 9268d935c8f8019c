package continuity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity/dump"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/copier"
	"github.com/bulwarkhq/bulwark/internal/repo/prune"
)

// BackupReport is the evidence of one backup run.
type BackupReport struct {
	Policy     string         `json:"policy"`
	Started    time.Time      `json:"started"`
	Duration   float64        `json:"duration_seconds"`
	Repository string         `json:"repository"`
	Sources    []SourceResult `json:"sources"`
	Forgotten  int            `json:"snapshots_forgotten"`
	Locked     int            `json:"snapshots_locked,omitempty"`
	Pruned     *prune.Report  `json:"prune,omitempty"`
	// PruneSkipped says why retention did not prune (forget still ran).
	PruneSkipped string       `json:"prune_skipped,omitempty"`
	Copies       []CopyResult `json:"copies"`
	OK           bool         `json:"ok"`
}

// SourceResult is one source's backup.
type SourceResult struct {
	Source   string       `json:"source"`
	Kind     string       `json:"kind"` // paths, postgres, mysql, command
	Snapshot string       `json:"snapshot,omitempty"`
	Summary  repo.Summary `json:"summary"`
	Warnings int          `json:"warnings,omitempty"`
	Error    string       `json:"error,omitempty"`
}

// CopyResult is one offsite copy.
type CopyResult struct {
	Repository string   `json:"repository"`
	Copied     int      `json:"snapshots_copied"`
	Blobs      int64    `json:"blobs_copied"`
	Bytes      int64    `json:"bytes_copied"`
	Duration   float64  `json:"duration_seconds"`
	Snapshots  []string `json:"snapshots,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// PolicyTag is the tag every snapshot of policy carries.
func PolicyTag(policy string) string { return "policy=" + policy }

// SourceTag is the tag naming a snapshot's source within its policy.
func SourceTag(name string) string { return "source=" + name }

// SourceName is a source's label: its name, else its kind and first path
// or database.
func SourceName(src config.Source, i int) string {
	if src.Name != "" {
		return src.Name
	}
	switch {
	case len(src.Paths) > 0:
		return fmt.Sprintf("paths%d", i+1)
	case src.Postgres.IsSet():
		return fmt.Sprintf("postgres%d", i+1)
	case src.MySQL.IsSet():
		return fmt.Sprintf("mysql%d", i+1)
	}
	return fmt.Sprintf("command%d", i+1)
}

func sourceKind(src config.Source) string {
	switch {
	case len(src.Paths) > 0:
		return "paths"
	case src.Postgres.IsSet():
		return "postgres"
	case src.MySQL.IsSet():
		return "mysql"
	}
	return "command"
}

// RunBackup runs a policy's backup: every source into the primary, then
// a copy of the new snapshots to every offsite repository, then retention
// on the primary. A failed source does not stop the others; the run
// fails if any part failed, and says which.
func (s *Service) RunBackup(ctx context.Context, name string) (*BackupReport, error) {
	c, err := s.claim(ctx, name, KindBackup)
	if err != nil {
		return nil, err
	}
	return s.runBackup(ctx, c)
}

func (s *Service) runBackup(ctx context.Context, c *claim) (*BackupReport, error) {
	ctx = withPolicy(ctx, c.p)
	return runClaimed(ctx, s, c, func(p config.Policy) (*BackupReport, error) { return s.backup(ctx, p) })
}

func (s *Service) backup(ctx context.Context, p config.Policy) (*BackupReport, error) {
	start := s.now()
	rep := &BackupReport{Policy: p.Name, Started: start, Repository: p.Repository, Sources: []SourceResult{}, Copies: []CopyResult{}}
	defer func() { rep.Duration = s.now().Sub(start).Seconds() }()
	res := events.Event{Resource: "policy/" + p.Name, Module: events.ModuleBackups}

	r, err := s.openNamed(ctx, p.Repository)
	if err != nil {
		s.publish(ctx, withMsg(res, events.TypeBackupFailed, events.SeverityError, "backup of %s failed: %v", p.Name, err))
		return rep, err
	}
	defer r.Close()
	// A shared lock keeps a prune (ours in retention below, or anyone's)
	// out while sources are saved and copied; the index loaded at open is
	// refreshed under it in case a prune ran in between.
	l, err := readLock(ctx, r)
	if err != nil {
		s.publish(ctx, withMsg(res, events.TypeBackupFailed, events.SeverityError, "backup of %s failed: %v", p.Name, err))
		return rep, err
	}
	var failures []string
	var fresh []*repo.Snapshot
	for i, src := range p.Sources {
		sr := s.backupSource(ctx, r, p, src, i)
		rep.Sources = append(rep.Sources, sr.SourceResult)
		if sr.snap != nil {
			fresh = append(fresh, sr.snap)
		}
		if sr.Error != "" {
			failures = append(failures, fmt.Sprintf("source %s: %s", sr.Source, sr.Error))
		}
	}
	if len(fresh) > 0 {
		s.publish(ctx, withData(withMsg(res, events.TypeBackupCompleted, events.SeverityInfo,
			"backup of %s: %d of %d sources saved", p.Name, len(fresh), len(p.Sources)), map[string]any{"sources": rep.Sources}))
	}
	if len(failures) > 0 {
		s.publish(ctx, withData(withMsg(res, events.TypeBackupFailed, events.SeverityError,
			"backup of %s: %s", p.Name, strings.Join(failures, "; ")), map[string]any{"sources": rep.Sources}))
	}

	// Copies first: the offsite has the new data before anything is
	// forgotten or pruned (and prune changes the index the copy reads).
	for _, off := range p.Offsite {
		cr := s.copyTo(ctx, r, off, fresh)
		rep.Copies = append(rep.Copies, cr)
		if cr.Error != "" {
			failures = append(failures, fmt.Sprintf("copy to %s: %s", off, cr.Error))
		}
	}
	l.Unlock()
	if !p.Retention.Empty() {
		// A source that failed may have left checkpointed uploads its
		// next run resumes from: prune would remove them.
		if len(failures) > 0 && p.Retention.Prune {
			p.Retention.Prune = false
			rep.PruneSkipped = "a source or copy failed: prune waits for a complete run, so the next run can resume from what this one uploaded"
		}
		if err := s.retention(ctx, r, p, rep); err != nil {
			failures = append(failures, "retention: "+err.Error())
		}
	}
	if len(failures) > 0 {
		return rep, errors.New(strings.Join(failures, "; "))
	}
	rep.OK = true
	return rep, nil
}

type sourceOutcome struct {
	SourceResult
	snap *repo.Snapshot
}

func (s *Service) backupSource(ctx context.Context, r *repo.Repository, p config.Policy, src config.Source, i int) sourceOutcome {
	name := SourceName(src, i)
	out := sourceOutcome{SourceResult: SourceResult{Source: name, Kind: sourceKind(src)}}
	host := p.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	tags := append([]string{PolicyTag(p.Name), SourceTag(name)}, p.Tags...)
	o := archiver.Options{Tags: tags, Host: host, ProgramVersion: "bulwark policy " + p.Name}
	var (
		res *archiver.Result
		err error
	)
	switch out.Kind {
	case "paths":
		o.Excludes, o.OneFileSystem = src.Exclude, src.OneFileSystem
		o.Warn = func(path string, err error) {
			s.logger().Warn("backup: unreadable entry", "policy", p.Name, "path", path, "err", err)
		}
		res, err = archiver.Backup(ctx, r, src.Paths, o)
	case "postgres":
		var dsn string
		if dsn, err = s.secret(src.Postgres); err == nil {
			res, err = dump.BackupPostgres(ctx, r, dsn, dump.PGOptions{}, o)
		}
	case "mysql":
		var dsn string
		if dsn, err = s.secret(src.MySQL); err == nil {
			res, err = dump.BackupMySQL(ctx, r, dsn, dump.Options{}, o)
		}
	case "command":
		output := src.Output
		if output == "" {
			output = "output"
		}
		var st archiver.Stream
		if st, err = dump.CommandStream(output, src.Command, dump.Options{}); err == nil {
			res, err = archiver.BackupStreams(ctx, r, []archiver.Stream{st}, o)
		}
	}
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.snap = res.Snapshot
	out.Snapshot = repo.Hex(res.Snapshot.ID)
	out.Summary = res.Summary
	out.Warnings = res.Warnings
	return out
}

// retention forgets the policy's snapshots its rules do not keep (groups
// are per host and source paths, as `bulwark forget`), and prunes when
// configured. It needs a full key; a write-only key skips it and says so.
func (s *Service) retention(ctx context.Context, r *repo.Repository, p config.Policy, rep *BackupReport) error {
	if !r.CanRead() {
		return errors.New("the primary repository's key is write-only: forget and prune need a full key (run them elsewhere)")
	}
	l, err := r.Lock(ctx, true, 10*time.Minute)
	if err != nil {
		return err
	}
	defer l.Unlock()
	snaps, _, err := r.Snapshots(ctx)
	if err != nil {
		return err
	}
	var mine []*repo.Snapshot
	for _, sn := range snaps {
		if sn.HasTag(PolicyTag(p.Name)) {
			mine = append(mine, sn)
		}
	}
	pol := prune.Policy{Last: p.Retention.KeepLast, Hourly: p.Retention.KeepHourly, Daily: p.Retention.KeepDaily,
		Weekly: p.Retention.KeepWeekly, Monthly: p.Retention.KeepMonthly, Yearly: p.Retention.KeepYearly,
		Within: prune.Duration{Clock: p.Retention.KeepWithin.D()}}
	var failed []string
	for _, g := range prune.ApplyGroups(mine, pol) {
		for _, d := range g.Remove {
			err := r.RemoveSnapshot(ctx, d.Snapshot.ID)
			switch {
			case err == nil:
				rep.Forgotten++
			case isForbidden(err):
				rep.Locked++ // an object lock or an append-only store keeps it
			default:
				failed = append(failed, fmt.Sprintf("%s: %v", repo.Short(d.Snapshot.ID), err))
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("forget: %s", strings.Join(failed, "; "))
	}
	if p.Retention.Prune && rep.Forgotten > 0 {
		pr, err := prune.Prune(ctx, r, prune.Options{MaxUnusedPercent: prune.DefaultMaxUnusedPercent, Lock: l})
		rep.Pruned = pr
		if err != nil {
			return fmt.Errorf("prune: %w", err)
		}
	}
	return nil
}

// copyTo copies snaps (and any other snapshot of the primary's policy the
// offsite lacks) to the repository named dst.
func (s *Service) copyTo(ctx context.Context, src *repo.Repository, dst string, snaps []*repo.Snapshot) CopyResult {
	cr := CopyResult{Repository: dst}
	start := s.now()
	ev := events.Event{Resource: "repository/" + dst}
	fail := func(err error) CopyResult {
		cr.Error = err.Error()
		cr.Duration = s.now().Sub(start).Seconds()
		s.publish(ctx, withData(withMsg(ev, events.TypeCopyFailed, events.SeverityError, "copy to %s failed: %v", dst, err), map[string]any{"copy": cr}))
		return cr
	}
	if len(snaps) == 0 {
		return cr
	}
	if !src.CanRead() {
		return fail(errors.New("the primary repository's key is write-only: copying needs a full key"))
	}
	d, err := s.openNamed(ctx, dst)
	if err != nil {
		return fail(err)
	}
	defer d.Close()
	l, err := readLock(ctx, d)
	if err != nil {
		return fail(err)
	}
	defer l.Unlock()
	res, err := copier.Copy(ctx, src, d, snaps, copier.Options{})
	if err != nil {
		return fail(err)
	}
	cr.Copied, cr.Blobs, cr.Bytes = len(res.Copied), res.Blobs, res.Bytes
	for _, c := range res.Copied {
		cr.Snapshots = append(cr.Snapshots, c.Copy)
	}
	cr.Duration = s.now().Sub(start).Seconds()
	s.publish(ctx, withData(withMsg(ev, events.TypeCopyCompleted, events.SeverityInfo, "copied %d snapshots to %s (%d new chunks)", cr.Copied, dst, cr.Blobs), map[string]any{"copy": cr}))
	return cr
}

func isForbidden(err error) bool {
	return errors.Is(err, os.ErrPermission)
}

func withMsg(e events.Event, t events.Type, sev events.Severity, format string, args ...any) events.Event {
	e.Type, e.Severity, e.Message = t, sev, fmt.Sprintf(format, args...)
	return e
}

func withData(e events.Event, data map[string]any) events.Event {
	e.Data = data
	return e
}

// snapshotsOf returns the policy's snapshots in r, oldest first; with
// source set, only that source's.
func snapshotsOf(ctx context.Context, r *repo.Repository, policy, source string) ([]*repo.Snapshot, error) {
	snaps, _, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	var out []*repo.Snapshot
	for _, sn := range snaps {
		if sn.HasTag(PolicyTag(policy)) && (source == "" || sn.HasTag(SourceTag(source))) {
			out = append(out, sn)
		}
	}
	slices.SortStableFunc(out, func(a, b *repo.Snapshot) int { return a.Time.Compare(b.Time) })
	return out, nil
}
