package prune

// Object lock (backend.Retainer, e.g. S3 with object lock).
//
// A locked object cannot be removed by anyone until its lock expires, so
// prune must neither try nor plan on it:
//
//   - A pack whose lock has not expired is kept, whatever its use: it is
//     neither repacked (the copy would double its space until the lock
//     expires) nor removed. It stays in the index; once its lock has
//     expired a later prune removes or repacks it. Such packs are counted
//     in Report.Locked.
//   - Unreferenced packs, superseded index files and orphaned parity that
//     are still locked are left in place and counted in Report.LockedLeft;
//     the next prune after their expiry removes them.
//   - Everything the kept snapshots need (their snapshot objects, every
//     kept pack and its parity, the index, the keys and the config) gets
//     its lock extended to now + Retention when it would expire within
//     Retention/2. So as long as prune runs at least every Retention/2 (the
//     continuity scheduler does), nothing a kept snapshot needs ever
//     becomes deletable, while forgotten snapshots' data expires and can be
//     pruned.

import (
	"context"
	"fmt"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
)

// DefaultRetention is the lock Prune extends to when Options.Retention is
// zero and the backend does not say (RetentionPeriod).
const DefaultRetention = 30 * 24 * time.Hour

// retention is the period locks are extended to.
func (p *pruner) retention() time.Duration {
	if p.o.Retention > 0 {
		return p.o.Retention
	}
	if rp, ok := p.ret.(interface{ RetentionPeriod() time.Duration }); ok && rp.RetentionPeriod() > 0 {
		return rp.RetentionPeriod()
	}
	return DefaultRetention
}

func (p *pruner) now() time.Time {
	if p.o.Now != nil {
		return p.o.Now()
	}
	return time.Now()
}

// locked reports whether h's lock has not yet expired.
func (p *pruner) locked(ctx context.Context, h backend.Handle) (bool, error) {
	until, err := p.ret.RetainUntil(ctx, h)
	if err != nil {
		return false, fmt.Errorf("retention of %s: %w", h, err)
	}
	return until.After(p.now()), nil
}

// keepLocked turns every pack prune would remove or repack, but whose lock
// has not expired, into a kept one. Called after classify.
func (p *pruner) keepLocked(ctx context.Context) error {
	if p.ret == nil {
		return nil
	}
	changed := false
	for _, pi := range p.order {
		if pi.action == actKeep {
			continue
		}
		l, err := p.locked(ctx, packHandle(pi.id))
		if err != nil {
			return err
		}
		if l {
			pi.locked = true
			changed = true
		}
	}
	if !changed {
		return nil
	}
	p.decide()
	p.tally()
	return nil
}

// removable drops the handles whose lock has not expired, counting them.
func (p *pruner) removable(ctx context.Context, hs []backend.Handle) ([]backend.Handle, error) {
	if p.ret == nil {
		return hs, nil
	}
	out := hs[:0:0]
	for _, h := range hs {
		l, err := p.locked(ctx, h)
		if err != nil {
			return nil, err
		}
		if l {
			p.rep.LockedLeft++
			continue
		}
		out = append(out, h)
	}
	return out, nil
}

// extendLocks extends the locks of everything the kept snapshots need.
func (p *pruner) extendLocks(ctx context.Context, snaps []*repo.Snapshot) error {
	if p.ret == nil || p.o.DryRun {
		return nil
	}
	p.o.Progress.start("extending object locks", 0)
	var hs []backend.Handle
	for _, s := range snaps {
		hs = append(hs, backend.Handle{Type: backend.SnapshotFile, Name: repo.Hex(s.ID)})
	}
	// The packs kept snapshots need: kept packs in use (those kept only for
	// their lock, with nothing in use, may expire) and new ones.
	needed := map[string]bool{}
	for _, pi := range p.order {
		if pi.action == actKeep && pi.used > 0 {
			needed[repo.Hex(pi.id)] = true
		}
	}
	for _, w := range p.written {
		needed[repo.Hex(w.ID)] = true
	}
	for name := range needed {
		hs = append(hs, backend.Handle{Type: backend.PackFile, Name: name})
	}
	for _, t := range []backend.Type{backend.ParityFile, backend.IndexFile, backend.KeyFile, backend.ConfigFile} {
		err := p.be.List(ctx, t, func(fi backend.FileInfo) error {
			h := backend.Handle{Type: t, Name: fi.Name}
			if h.Validate() != nil {
				return nil // foreign entries are not ours to keep
			}
			if t == backend.ParityFile && !needed[fi.Name] {
				return nil
			}
			hs = append(hs, h)
			return nil
		})
		if err != nil {
			return fmt.Errorf("listing %s: %w", t, err)
		}
	}
	ret := p.retention()
	until := p.now().Add(ret)
	p.o.Progress.start("extending object locks", len(hs))
	for _, h := range hs {
		cur, err := p.ret.RetainUntil(ctx, h)
		if err != nil {
			return fmt.Errorf("retention of %s: %w", h, err)
		}
		if cur.Sub(p.now()) < ret/2 {
			if err := p.ret.ExtendRetention(ctx, h, until); err != nil {
				return fmt.Errorf("extending the lock of %s: %w", h, err)
			}
			p.rep.LocksExtended++
		}
		p.o.Progress.add(1)
	}
	return nil
}
