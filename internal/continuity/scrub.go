package continuity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity/schedule"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/checker"
	"github.com/bulwarkhq/bulwark/internal/repo/copier"
	"github.com/bulwarkhq/bulwark/internal/repo/prune"
	"github.com/bulwarkhq/bulwark/internal/repo/repair"
)

// Scrubbing: each run reads one group of the primary's packs in full
// (checker.Subset N/M: the packs whose id falls in group N of M), so that
// over M runs every byte is re-read and verified. M is the number of
// scrub runs in Scrub.Period (period / the schedule's interval, 1 to 256),
// and N advances with every run, so each byte is verified at least once
// per period.
//
// Damage found is repaired in place: first from parity (repo repair), and
// then, for packs parity cannot rebuild, from an offsite copy that shares
// the primary's chunk ids: the blobs the damaged packs held are copied
// back, which makes the damaged snapshots whole again. The group is then
// checked again; the run fails if anything is still wrong.

// DefaultScrubPeriod is the period of a full pass when none is configured.
const DefaultScrubPeriod = 30 * 24 * time.Hour

// ScrubReport is the evidence of a scrub.
type ScrubReport struct {
	Policy     string         `json:"policy"`
	Repository string         `json:"repository"`
	Started    time.Time      `json:"started"`
	Duration   float64        `json:"duration_seconds"`
	Group      string         `json:"group"` // N/M
	Packs      int            `json:"packs_read"`
	Bytes      int64          `json:"bytes_read"`
	Problems   []string       `json:"problems"`
	Repair     *repair.Report `json:"repair,omitempty"`
	Healed     []HealResult   `json:"healed_from_offsite,omitempty"`
	Prune      *prune.Report  `json:"prune,omitempty"`
	Recheck    []string       `json:"problems_after_repair,omitempty"`
	Stats      checker.Stats  `json:"stats"`
	OK         bool           `json:"ok"`
}

// HealResult is what an offsite copy gave back.
type HealResult struct {
	Repository string `json:"repository"`
	Blobs      int64  `json:"blobs"`
	Bytes      int64  `json:"bytes"`
	Error      string `json:"error,omitempty"`
}

// Scrub runs one scrub of the policy's primary repository.
func (s *Service) Scrub(ctx context.Context, name string) (*ScrubReport, error) {
	c, err := s.claim(ctx, name, KindScrub)
	if err != nil {
		return nil, err
	}
	return s.runScrub(ctx, c)
}

func (s *Service) runScrub(ctx context.Context, c *claim) (*ScrubReport, error) {
	ctx = withPolicy(ctx, c.p)
	p := c.p
	rep, err := runClaimed(ctx, s, c, func(p config.Policy) (*ScrubReport, error) { return s.scrub(ctx, p) })
	if rep == nil {
		return nil, err
	}
	res := events.Event{Resource: "repository/" + p.Repository}
	switch {
	case err != nil:
		s.publish(ctx, withData(withMsg(res, events.TypeScrubFailed, events.SeverityError, "scrub of %s: %v", p.Repository, err), map[string]any{"scrub": rep}))
	default:
		s.publish(ctx, withData(withMsg(res, events.TypeScrubCompleted, events.SeverityInfo, "scrub of %s: group %s, %d packs verified", p.Repository, rep.Group, rep.Packs), map[string]any{"scrub": rep}))
	}
	if rep != nil && (rep.Repair != nil || len(rep.Healed) > 0) {
		s.publish(ctx, withData(withMsg(res, events.TypeRepairCompleted, severityOf(err), "scrub of %s repaired damage (%d problems found)", p.Repository, len(rep.Problems)),
			map[string]any{"scrub": rep}))
	}
	return rep, err
}

// checkLocked checks r under a shared lock: a prune running meanwhile
// would make packs vanish and look like damage.
func checkLocked(ctx context.Context, r *repo.Repository, opts checker.Options) (*checker.Report, error) {
	l, err := r.Lock(ctx, false, 5*time.Minute)
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	return checker.Check(ctx, r, opts)
}

func severityOf(err error) events.Severity {
	if err != nil {
		return events.SeverityError
	}
	return events.SeverityWarning
}

// scrubGroups is M: how many runs a full pass takes.
func scrubGroups(sc config.Scrub) int {
	period := sc.Period.D()
	if period <= 0 {
		period = DefaultScrubPeriod
	}
	interval := period
	if sch, err := schedule.Parse(sc.Schedule); err == nil && sc.Schedule != "" {
		now := time.Now()
		a := sch.Next(now)
		if b := sch.Next(a); !a.IsZero() && !b.IsZero() {
			interval = b.Sub(a)
		}
	}
	m := int(math.Floor(float64(period) / float64(interval)))
	return min(max(m, 1), 256)
}

func (s *Service) scrub(ctx context.Context, p config.Policy) (*ScrubReport, error) {
	start := s.now()
	rep := &ScrubReport{Policy: p.Name, Repository: p.Repository, Started: start, Problems: []string{}}
	defer func() { rep.Duration = s.now().Sub(start).Seconds() }()
	m := scrubGroups(p.Scrub)
	n := 1
	if s.History != nil {
		// This run is already recorded: the count includes it.
		if c, err := s.History.Count(ctx, p.Name, KindScrub); err == nil && c > 0 {
			n = (c-1)%m + 1
		}
	}
	rep.Group = fmt.Sprintf("%d/%d", n, m)
	r, err := s.openNamed(ctx, p.Repository)
	if err != nil {
		return rep, err
	}
	defer r.Close()
	if !r.CanRead() {
		return rep, errors.New("the primary repository's key is write-only: scrubbing needs a full key")
	}
	opts := checker.Options{ReadData: true, Subset: checker.Subset{N: n, M: m}}
	if m == 1 {
		opts.Subset = checker.Subset{}
	}
	cr, err := checkLocked(ctx, r, opts)
	if err != nil {
		return rep, err
	}
	rep.Stats = cr.Stats
	rep.Packs, rep.Bytes = cr.Stats.PacksRead, cr.Stats.BytesRead
	for _, pr := range cr.Errors {
		rep.Problems = append(rep.Problems, pr.String())
	}
	if cr.OK {
		rep.OK = true
		return rep, nil
	}

	// Repair: parity first.
	rr, err := repair.Repair(ctx, r, repair.Options{LockWait: 10 * time.Minute})
	rep.Repair = rr
	if err != nil {
		return rep, fmt.Errorf("repair: %w", err)
	}
	// Everything from here works on a fresh handle: repair rewrote the
	// index, and the copy below deduplicates against the new one.
	r2, err := s.openNamed(ctx, p.Repository)
	if err != nil {
		return rep, err
	}
	defer r2.Close()
	// Then what parity could not rebuild, from an offsite copy; the
	// damaged packs, out of the index since the repair and now redundant,
	// are pruned away.
	if rr != nil && len(rr.Packs.Damaged)+len(rr.Packs.Missing) > 0 {
		for _, off := range p.Offsite {
			// Healing adds packs to the primary: under a shared lock, so a
			// prune cannot remove them before their index is written.
			l, err := readLock(ctx, r2)
			if err != nil {
				return rep, fmt.Errorf("heal: %w", err)
			}
			h := s.heal(ctx, p, off, r2)
			l.Unlock()
			rep.Healed = append(rep.Healed, h)
			if h.Error != "" {
				continue
			}
			pr, err := prune.Prune(ctx, r2, prune.Options{MaxUnusedPercent: prune.DefaultMaxUnusedPercent, LockWait: 10 * time.Minute})
			rep.Prune = pr
			if err != nil {
				return rep, fmt.Errorf("prune after healing: %w", err)
			}
			break
		}
	}
	// Check again (the checker reads the index files afresh).
	cr, err = checkLocked(ctx, r2, opts)
	if err != nil {
		return rep, err
	}
	for _, pr := range cr.Errors {
		rep.Recheck = append(rep.Recheck, pr.String())
	}
	if !cr.OK {
		return rep, fmt.Errorf("%d problems remain after repair: %s", len(rep.Recheck), strings.Join(rep.Recheck, "; "))
	}
	rep.OK = true
	return rep, nil
}

// heal copies back into dst (the primary), from the offsite repository
// off, every blob of the policy's snapshots that dst lacks.
func (s *Service) heal(ctx context.Context, p config.Policy, off string, dst *repo.Repository) HealResult {
	h := HealResult{Repository: off}
	src, err := s.openNamed(ctx, off)
	if err != nil {
		h.Error = err.Error()
		return h
	}
	defer src.Close()
	if !src.CanRead() || !copier.SameIDKey(src, dst) {
		h.Error = "the offsite copy cannot heal the primary: it needs a full key and the primary's chunk ids (repo init --copy-params-from)"
		return h
	}
	snaps, err := snapshotsOf(ctx, src, p.Name, "")
	if err != nil {
		h.Error = err.Error()
		return h
	}
	res, err := copier.Copy(ctx, src, dst, snaps, copier.Options{BlobsOnly: true})
	if err != nil {
		h.Error = err.Error()
		return h
	}
	h.Blobs, h.Bytes = res.Blobs, res.Bytes
	return h
}
