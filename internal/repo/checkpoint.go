package repo

// Index checkpoints: an interrupted backup or copy resumes.
//
// A pack is usable (found by the next session's deduplication, readable)
// only once an index file lists it. If a session wrote its only index file
// in Flush, at the end, a long first backup to an offsite vault that is
// cut off (connection gone longer than the retry layer's back-off, process
// killed) would leave every pack it uploaded unindexed, and the next run
// would upload everything again. So a session writes a checkpoint: an
// ordinary index file listing the packs uploaded since the previous one,
// as soon as CheckpointPacks uploaded packs are in no index file yet
// (default: as many packs as make 1 GiB, 64 at the default 16 MiB), or the
// oldest of them finished uploading CheckpointInterval ago (default 5
// minutes; checked whenever a pack finishes). Flush writes the packs no
// checkpoint covers. An interruption loses at most the packs uploaded
// since the last checkpoint (fewer than CheckpointPacks, or about
// CheckpointInterval of uploading plus one pack) and those in flight.
//
// No entry is written twice: each uploaded pack is appended to
// r.written once, and a checkpoint takes the whole list under r.mu and
// leaves it empty, so two uploads finishing together cannot both list a
// pack, and Flush lists what remains. The index the repository grows by is
// the same as without checkpoints; the cost is one more small object (a
// nonce, a key id, a signature, 100 bytes or so) per checkpoint, about one
// per GiB uploaded.
//
// Ordering: a pack joins r.written after its upload (parity first)
// returned, so a checkpoint never names a pack that is not stored. The
// checkpoint is written by the upload goroutine whose pack triggered it,
// inside its upload slot, so Flush, which waits for every upload, also
// waits for checkpoints in progress. A checkpoint that fails is not fatal:
// its packs go back to r.written, for the next checkpoint or Flush (a
// backend that stays down fails the uploads anyway). No checkpoint is
// written once a lock of the session has lapsed (lock.go): prune may have
// removed packs it would list; Flush then fails.
//
// What the next session sees: LoadIndex merges checkpoints like any index
// file, so their blobs deduplicate and only the rest is uploaded. Their
// blobs are referenced by no snapshot until a snapshot that uses them is
// saved: `repo check` does not require indexed blobs to be referenced, and
// prune removes them when no snapshot uses them, under its exclusive lock,
// which the shared lock of a running backup keeps out.
//
// Trust: a full key's checkpoints are signed like its other index files. A
// write-only key's are unsigned; SaveIndex records each one in the local
// cache as the client's own, so its next session trusts them for
// deduplication (a client without a cache uploads again, as it would after
// any unsigned index).
//
// Prune and repair store with SaveBlobCopy and write, after FlushPacks,
// one index file that supersedes every other: a checkpoint would sit
// outside it, so a session that has called SaveBlobCopy writes none.

import (
	"context"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/index"
)

// Checkpoint defaults (see Repository.CheckpointPacks and
// CheckpointInterval).
const (
	// DefaultCheckpointBytes sets the default CheckpointPacks: as many
	// packs of the repository's pack size as make this many bytes.
	DefaultCheckpointBytes = 1 << 30
	// DefaultCheckpointInterval is the default CheckpointInterval.
	DefaultCheckpointInterval = 5 * time.Minute
)

// checkpointPacks is the effective CheckpointPacks (0: none by count).
func (r *Repository) checkpointPacks() int {
	switch n := r.CheckpointPacks; {
	case n < 0:
		return 0
	case n > 0:
		return n
	}
	return max(1, DefaultCheckpointBytes/max(r.cfg.PackSize, 1))
}

// checkpointInterval is the effective CheckpointInterval (0: none by time).
func (r *Repository) checkpointInterval() time.Duration {
	switch d := r.CheckpointInterval; {
	case d < 0:
		return 0
	case d > 0:
		return d
	}
	return DefaultCheckpointInterval
}

// pendingCheckpoint is the packs a checkpoint covers and when the oldest
// of them finished uploading.
type pendingCheckpoint struct {
	packs []index.Pack
	since time.Time
}

// addWritten records an uploaded pack and, when a checkpoint is due,
// takes the packs it covers out of r.written. Called with r.mu held.
func (r *Repository) addWritten(p index.Pack, now time.Time) *pendingCheckpoint {
	if len(r.written) == 0 {
		r.uncoveredSince = now
	}
	r.written = append(r.written, p)
	if r.copied != nil {
		return nil // prune or repair: one superseding index at the end
	}
	n, d := r.checkpointPacks(), r.checkpointInterval()
	if (n > 0 && len(r.written) >= n) || (d > 0 && now.Sub(r.uncoveredSince) >= d) {
		c := &pendingCheckpoint{packs: r.written, since: r.uncoveredSince}
		r.written = nil
		return c
	}
	return nil
}

// checkpoint writes an index file for c; on failure its packs go back to
// r.written, ahead of the ones uploaded meanwhile (the time trigger then
// fires again at the next pack).
func (r *Repository) checkpoint(ctx context.Context, c *pendingCheckpoint) {
	err := r.checkLocks()
	if err == nil {
		_, err = r.SaveIndex(ctx, &index.File{Packs: c.packs})
	}
	if err != nil {
		r.mu.Lock()
		r.written = append(c.packs, r.written...)
		r.uncoveredSince = c.since
		r.mu.Unlock()
		return
	}
	r.stats.Checkpoints.Add(1)
}
