// Package repair implements `bulwark repo repair`: it brings a damaged
// repository back to a consistent state, restoring what can be restored
// exactly and recording precisely what could not.
//
// Repair holds an exclusive lock (a shared one for a dry run) and works in
// four steps, each reported in Report:
//
//  1. Packs. Every pack is read whole and its SHA-256 compared with its
//     name. A pack that matches is intact; with parity configured its
//     parity object is recomputed (parity objects are deterministic) and
//     written again when it is missing or differs. A pack that does not
//     match is rebuilt from its parity object when the damage fits in the
//     parity shards; the result must hash to the pack's name before it is
//     written back with Backend.Replace, so repair never writes a byte that
//     differs from the original (a parity object found for a pack is used
//     even when the config no longer asks for parity). If the backend
//     refuses Replace (append-only), the rebuilt pack is salvaged as below,
//     losing nothing. A pack that cannot be rebuilt (no parity, too many
//     damaged shards, a damaged parity header) is salvaged: every
//     blob that still decrypts and matches its id is copied into a new pack
//     (unless an intact pack holds it too). The blob list comes from the
//     pack's header, or, when the header is damaged, from any readable
//     index file that lists the pack. The damaged pack is left where it is
//     and reported: it leaves the index, so prune removes it later.
//  2. Index. The index is rebuilt from the headers of the intact and
//     repaired packs and the new packs. When it differs from what the
//     current index files say, or an index file is unreadable or unsigned,
//     repair writes one signed index file superseding every existing one
//     (readable or not) and then removes them. Otherwise the index files
//     stay as they are (already superseded files are removed), so a
//     healthy repository is left byte for byte unchanged.
//     Trust: a signed index file was written, or its packs verified, by a
//     full key; a pack named by its SHA-256 cannot change since. The blobs
//     of every other pack (listed only in unsigned index files, or in none)
//     are decrypted and checked against their ids before the new signed
//     index lists them, because a write-only key can write a pack whose
//     header claims blobs it does not hold; blobs that fail are left out
//     and reported.
//  3. Snapshots. A snapshot file that does not match its name is tried
//     for a single flipped bit (FixBitFlip) and written back when that
//     restores it; otherwise it is reported and left in place, since
//     nothing of it can be read. Every readable snapshot's trees are walked
//     against the rebuilt index. Rule for what is lost: a file with a
//     missing chunk is removed from its directory and listed as
//     "/path/name"; a directory whose tree is missing is kept, with an
//     empty tree, and listed as "/path/name/" (the root as "/"). So a
//     salvaged snapshot never restores a file whose content differs from
//     what was backed up, and its Lost says what to fetch elsewhere. The
//     changed trees are written and a new snapshot is saved with the same
//     time, host, paths, tags and summary, Original set to the damaged
//     snapshot's id and Lost counting the distinct missing chunks and
//     trees and listing the lost paths (added to what an earlier salvage
//     lost). With Options.Forget the damaged snapshot is removed once its
//     replacement is saved. A damaged snapshot that an existing snapshot
//     already names as its Original is not salvaged twice.
//  4. The Report says what was repaired and what was lost.
//
// Order of writes, so that a crash at any point leaves a valid repository:
// repaired packs and parity objects (exact original bytes, atomically),
// new packs, the new index, the salvaged snapshots, then the removal of
// damaged snapshots and of the old index files. A rerun finishes the job.
//
// A dry run does everything in memory (rebuilding damaged packs too) and
// writes nothing but its lock, which it removes.
//
// Repair reads through its own rebuilt index, never through the
// repository's in-memory one (r.Index), which may list lost blobs and is
// not cleaned: reopen the repository to use the repaired index.
package repair

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
)

// Options tune Repair.
type Options struct {
	// DryRun finds and reports everything, writes nothing.
	DryRun bool
	// Forget removes each damaged snapshot once its salvaged replacement
	// is saved. Without it both are kept (the damaged one still references
	// the intact chunks of partly lost files, which prune then keeps).
	Forget bool
	// LockWait is how long to wait for other processes' locks.
	LockWait time.Duration
	// Workers is how many packs are read at once (default GOMAXPROCS, at
	// least 2).
	Workers int
	// Progress, when set, is updated while Repair runs.
	Progress *Progress
}

// Phase is the step Repair is in.
type Phase int32

// Phases, in order.
const (
	PhaseLock Phase = iota
	PhasePacks
	PhaseDamaged
	PhaseSnapshots
	PhaseWrite
	PhaseDone
)

func (p Phase) String() string {
	switch p {
	case PhaseLock:
		return "locking"
	case PhasePacks:
		return "reading packs"
	case PhaseDamaged:
		return "repairing packs"
	case PhaseSnapshots:
		return "checking snapshots"
	case PhaseWrite:
		return "writing"
	case PhaseDone:
		return "done"
	}
	return fmt.Sprintf("phase(%d)", int32(p))
}

// Progress is updated atomically while Repair runs.
type Progress struct {
	Phase                         atomic.Int32 // a Phase
	Packs, TotalPacks             atomic.Int64
	Bytes, TotalBytes             atomic.Int64
	Snapshots, TotalSnapshots     atomic.Int64
	PacksRepaired, PacksDamaged   atomic.Int64
	SnapshotsSalvaged, FilesLost  atomic.Int64
	BlobsSalvaged, BlobsLost      atomic.Int64
	ParityWritten, SnapshotsFixed atomic.Int64
}

// Report is what Repair found and did (or, in a dry run, would do). Ids
// are hex.
type Report struct {
	DryRun    bool            `json:"dry_run"`
	Packs     PacksReport     `json:"packs"`
	Index     IndexReport     `json:"index"`
	Snapshots SnapshotsReport `json:"snapshots"`
	Lost      LostTotals      `json:"lost"`
	// Warnings are failures that left the repository consistent (an old
	// file that could not be removed).
	Warnings []string `json:"warnings"`
	Duration float64  `json:"duration_seconds"`
}

// PacksReport is step 1.
type PacksReport struct {
	Checked   int   `json:"checked"`
	BytesRead int64 `json:"bytes_read"`
	// Verified counts packs whose blobs were decrypted and checked
	// because no signed index vouched for them.
	Verified      int            `json:"verified"`
	Unindexed     int            `json:"unindexed"` // intact packs no current index file listed
	Repaired      []RepairedPack `json:"repaired"`
	Damaged       []DamagedPack  `json:"damaged"`
	Missing       []string       `json:"missing"` // listed by the index, absent from storage
	ParityWritten []ParityWrite  `json:"parity_written"`
	ParityOrphans []string       `json:"parity_orphans"` // parity objects without a pack (left alone)
	Rejected      []RejectedBlob `json:"rejected_blobs"`
	NewPacks      int            `json:"new_packs"` // packs written for salvaged blobs and trees
}

// RepairedPack is a pack rebuilt from parity.
type RepairedPack struct {
	ID string `json:"id"`
	// Shards rebuilt: data shards 0..d-1, parity shards d.. (parity.Check).
	Shards []int `json:"shards"`
	// Size is the damaged pack's size when it differed from the original.
	Size int64 `json:"size,omitempty"`
}

// DamagedPack is a pack that could not be rebuilt; it is left in place and
// out of the index.
type DamagedPack struct {
	ID    string `json:"id"`
	Size  int64  `json:"size"`
	Error string `json:"error"` // why it could not be repaired
	// Source of the blob list: "header", "index" or "" (none: nothing
	// could be salvaged, and what was in it is known only from the
	// snapshots that miss it).
	Source         string `json:"source"`
	BlobsSalvaged  int    `json:"blobs_salvaged"`  // copied into new packs
	BlobsElsewhere int    `json:"blobs_elsewhere"` // also in an intact pack
	BlobsLost      int    `json:"blobs_lost"`
}

// ParityWrite is a parity object written anew.
type ParityWrite struct {
	Pack   string `json:"pack"`
	Reason string `json:"reason"` // "missing" or "damaged"
}

// RejectedBlob is a blob of an unvouched pack that does not match its id.
type RejectedBlob struct {
	Pack  string `json:"pack"`
	Blob  string `json:"blob"`
	Error string `json:"error"`
}

// IndexReport is step 2.
type IndexReport struct {
	Files      int         `json:"files"`
	Unreadable []FileError `json:"unreadable"`
	// Rewritten says a new index file replaced all others; Reasons say why.
	Rewritten bool     `json:"rewritten"`
	Reasons   []string `json:"reasons"`
	Written   string   `json:"written,omitempty"` // the new index file
	Packs     int      `json:"packs"`             // packs in the rebuilt index
	Blobs     int      `json:"blobs"`
	Removed   []string `json:"removed"` // old index files removed
}

// FileError names an object that could not be read.
type FileError struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// SnapshotsReport is step 3.
type SnapshotsReport struct {
	Checked    int         `json:"checked"`
	Intact     int         `json:"intact"`
	Fixed      []string    `json:"fixed"` // a flipped bit corrected
	Unreadable []FileError `json:"unreadable"`
	Salvaged   []Salvaged  `json:"salvaged"`
	Removed    []string    `json:"removed"` // damaged originals removed (Forget)
	// TreesWritten counts the new trees of salvaged snapshots.
	TreesWritten int `json:"trees_written"`
}

// Salvaged is a snapshot that lost data.
type Salvaged struct {
	Original string    `json:"original"`
	New      string    `json:"new,omitempty"` // empty in a dry run, or when already salvaged
	Time     time.Time `json:"time"`
	Host     string    `json:"host"`
	Paths    []string  `json:"paths"`
	Lost     repo.Lost `json:"lost"` // this salvage's losses
	// AlreadyBy is the snapshot that an earlier repair saved for it.
	AlreadyBy string `json:"already_salvaged_by,omitempty"`
}

// LostTotals sums what the salvaged snapshots lost.
type LostTotals struct {
	Snapshots int `json:"snapshots"` // salvaged with losses
	Files     int `json:"files"`     // lost paths, summed over snapshots
	Chunks    int `json:"chunks"`
	Trees     int `json:"trees"`
	// Unreadable counts snapshot files that could not be read at all.
	Unreadable int `json:"unreadable_snapshots"`
}

// DataLost reports whether any snapshot lost content or could not be read.
func (r *Report) DataLost() bool {
	return r.Lost.Snapshots > 0 || r.Lost.Unreadable > 0
}

// Changed reports whether Repair wrote or removed anything (or would have,
// in a dry run).
func (r *Report) Changed() bool {
	p := &r.Packs
	return len(p.Repaired) > 0 || len(p.ParityWritten) > 0 || p.NewPacks > 0 || r.Index.Rewritten ||
		len(r.Index.Removed) > 0 || len(r.Snapshots.Fixed) > 0 || len(r.Snapshots.Salvaged) > 0 ||
		len(r.Snapshots.Removed) > 0
}

// Repair checks and repairs r (see the package documentation). It needs a
// full key. The returned Report is filled as far as Repair got, also when
// it returns an error.
func Repair(ctx context.Context, r *repo.Repository, o Options) (*Report, error) {
	start := time.Now()
	rep := &Report{DryRun: o.DryRun}
	if !r.CanRead() {
		return rep, fmt.Errorf("repo repair: %w", repo.ErrNeedFullKey)
	}
	if o.Workers <= 0 {
		o.Workers = max(runtime.GOMAXPROCS(0), 2)
	}
	if o.Progress == nil {
		o.Progress = &Progress{}
	}
	o.Progress.Phase.Store(int32(PhaseLock))
	l, err := r.Lock(ctx, !o.DryRun, o.LockWait)
	if err != nil {
		return rep, err
	}
	rp := newRepairer(r, o, rep)
	err = rp.run(ctx)
	if uerr := l.Unlock(); uerr != nil && err == nil {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("releasing the lock: %v", uerr))
	}
	rep.Duration = time.Since(start).Seconds()
	rep.normalize()
	o.Progress.Phase.Store(int32(PhaseDone))
	return rep, err
}

// normalize makes empty lists empty rather than nil, so that JSON has []
// and not null.
func (r *Report) normalize() {
	fill := func(s *[]string) {
		if *s == nil {
			*s = []string{}
		}
	}
	fill(&r.Warnings)
	fill(&r.Packs.Missing)
	fill(&r.Packs.ParityOrphans)
	fill(&r.Index.Reasons)
	fill(&r.Index.Removed)
	fill(&r.Snapshots.Fixed)
	fill(&r.Snapshots.Removed)
	if r.Packs.Repaired == nil {
		r.Packs.Repaired = []RepairedPack{}
	}
	if r.Packs.Damaged == nil {
		r.Packs.Damaged = []DamagedPack{}
	}
	if r.Packs.ParityWritten == nil {
		r.Packs.ParityWritten = []ParityWrite{}
	}
	if r.Packs.Rejected == nil {
		r.Packs.Rejected = []RejectedBlob{}
	}
	if r.Index.Unreadable == nil {
		r.Index.Unreadable = []FileError{}
	}
	if r.Snapshots.Unreadable == nil {
		r.Snapshots.Unreadable = []FileError{}
	}
	if r.Snapshots.Salvaged == nil {
		r.Snapshots.Salvaged = []Salvaged{}
	}
	for i := range r.Packs.Repaired {
		if r.Packs.Repaired[i].Shards == nil {
			r.Packs.Repaired[i].Shards = []int{}
		}
	}
	for i := range r.Snapshots.Salvaged {
		if r.Snapshots.Salvaged[i].Lost.Files == nil {
			r.Snapshots.Salvaged[i].Lost.Files = []string{}
		}
	}
}

func (rp *repairer) run(ctx context.Context) error {
	steps := []func(context.Context) error{
		rp.load,        // list packs, parity objects, index files
		rp.scanPacks,   // step 1: hash every pack, parity, headers
		rp.fixDamaged,  // step 1: parity repair, salvage
		rp.snapshots,   // step 3: read snapshots, walk and salvage their trees
		rp.writeIndex,  // step 2: one new index when needed
		rp.saveSalvage, // step 3: salvaged snapshots, removals
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}
