// Package copier copies snapshots from one repository to another, moving
// only the blobs the destination lacks, and then verifies what it copied.
//
// Blob ids are keyed hashes, so whether the two repositories can share
// blobs as they are depends on their id key:
//
//   - Same id key (the destination was made with `repo init
//     --copy-params-from SRC`, which also shares the chunker): every blob
//     keeps its id and trees are copied byte for byte. Blobs the
//     destination's index already lists are skipped, so an unchanged
//     snapshot costs reading its trees and one index lookup per blob, and
//     the destination's own backups of the same files deduplicate with the
//     copies.
//   - Different id keys: every blob is read and re-hashed under the
//     destination's key, and trees are rewritten with the new ids. Copies
//     still deduplicate among themselves, not with the destination's own
//     backups (their chunk boundaries differ too).
//
// The destination key may be write-only (an offsite vault credential that
// cannot read or delete): it can store blobs, trees and snapshots and read
// the index. A snapshot already copied is recognised by the Original field
// of the destination's snapshots, which a write-only key cannot read; it
// then relies on the local cache (repo.Repository.CopiedBefore), and
// without one copies the snapshot object again (its blobs are still not
// stored twice).
//
// Order and failure: blobs first, then trees, then Flush (packs and index),
// then the snapshot object, so an interrupted copy never leaves a
// snapshot whose data is missing; what it stored before the interruption
// is reused by the next run. Verification reads the destination's index
// files afresh and checks that every blob the new snapshots need is listed
// and every pack they lie in exists, large enough for them; with a full
// key it also reads each new snapshot and its root tree back.
package copier

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
)

// Progress counts work done; safe to read while Copy runs.
type Progress struct {
	Snapshots, Blobs, Bytes atomic.Int64 // blobs and plaintext bytes copied
	Checked                 atomic.Int64 // blobs looked at (copied or already there)
}

// Options tune Copy.
type Options struct {
	Progress *Progress
	Workers  int // blobs copied at once (default GOMAXPROCS+2)
	// BlobsOnly stores the blobs dst lacks and saves no snapshot: a scrub
	// heals a damaged repository from its offsite copy this way (the
	// damaged snapshots become complete again).
	BlobsOnly bool
}

// Copied pairs a source snapshot with its copy.
type Copied struct {
	Source string `json:"source"`
	Copy   string `json:"copy"`
}

// Result is what Copy did.
type Result struct {
	Copied      []Copied `json:"copied"`
	Skipped     []string `json:"skipped"` // already in the destination
	Blobs       int64    `json:"blobs_copied"`
	Bytes       int64    `json:"bytes_copied"`
	SameIDs     bool     `json:"same_ids"` // blobs kept their ids (shared parameters)
	BlobsNeeded int64    `json:"blobs_verified"`
	Verified    bool     `json:"verified"`
}

// SameIDKey reports whether a and b compute the same blob ids.
func SameIDKey(a, b *repo.Repository) bool {
	probe := []byte("bulwark copy id-key probe")
	return a.Secrets().BlobID(probe) == b.Secrets().BlobID(probe)
}

// Copy copies snaps (snapshots of src) into dst. src needs a full key; dst
// may be write-only. dst's index must be loaded.
func Copy(ctx context.Context, src, dst *repo.Repository, snaps []*repo.Snapshot, o Options) (*Result, error) {
	if !src.CanRead() {
		return nil, fmt.Errorf("copy: the source needs a full key: %w", repo.ErrNeedFullKey)
	}
	if o.Progress == nil {
		o.Progress = &Progress{}
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0) + 2
	}
	c := &copier{src: src, dst: dst, o: o, same: SameIDKey(src, dst), trees: map[repo.ID]repo.ID{},
		blobs: map[repo.ID]repo.ID{}, need: map[blobRef]bool{}, sem: make(chan struct{}, o.Workers)}
	res := &Result{SameIDs: c.same}

	done := map[repo.ID]bool{}
	if !o.BlobsOnly {
		var err error
		if done, err = c.alreadyCopied(ctx); err != nil {
			return nil, err
		}
	}
	type pending struct {
		src  *repo.Snapshot
		tree repo.ID
	}
	var todo []pending
	for _, s := range snaps {
		if done[s.ID] || done[originalOf(s)] {
			res.Skipped = append(res.Skipped, repo.Hex(s.ID))
			continue
		}
		root, err := c.copyTree(ctx, s.Tree)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", repo.Short(s.ID), err)
		}
		todo = append(todo, pending{s, root})
	}
	if err := c.wait(); err != nil {
		return nil, err
	}
	if err := dst.Flush(ctx); err != nil {
		return nil, err
	}
	res.Blobs, res.Bytes = o.Progress.Blobs.Load(), o.Progress.Bytes.Load()
	if o.BlobsOnly {
		if err := c.verify(ctx, res); err != nil {
			return res, fmt.Errorf("verifying the copied blobs: %w", err)
		}
		res.Verified = true
		return res, nil
	}
	for _, p := range todo {
		cp := *p.src
		cp.Tree = p.tree
		cp.Original = repo.Hex(originalOf(p.src))
		cp.ID = repo.ID{}
		if _, err := dst.SaveSnapshot(ctx, &cp); err != nil {
			return res, err
		}
		dst.RememberCopy(originalOf(p.src))
		res.Copied = append(res.Copied, Copied{Source: repo.Hex(p.src.ID), Copy: repo.Hex(cp.ID)})
		o.Progress.Snapshots.Add(1)
	}
	if len(todo) > 0 {
		if err := c.verify(ctx, res); err != nil {
			return res, fmt.Errorf("verifying the copy: %w", err)
		}
	}
	res.Verified = true
	return res, nil
}

// originalOf is the id of the snapshot s is a copy of, or its own.
func originalOf(s *repo.Snapshot) repo.ID {
	if s.Original != "" {
		if id, err := repo.ParseID(s.Original); err == nil {
			return id
		}
	}
	return s.ID
}

type blobRef struct {
	t  uint8
	id repo.ID // destination id
}

type copier struct {
	src, dst *repo.Repository
	o        Options
	same     bool

	mu    sync.Mutex
	trees map[repo.ID]repo.ID // source tree id -> destination tree id, for trees done
	blobs map[repo.ID]repo.ID // source data blob id -> destination id (different keys)
	need  map[blobRef]bool    // every blob the copied snapshots need, for verify

	wg  sync.WaitGroup
	sem chan struct{} // bounds the blobs copied at once (Workers)
	err error         // the first failure of a background copy (under mu)
}

// alreadyCopied returns the ids (and originals) of snapshots in dst.
func (c *copier) alreadyCopied(ctx context.Context) (map[repo.ID]bool, error) {
	done := c.dst.CopiedBefore()
	if !c.dst.CanRead() {
		return done, nil
	}
	snaps, _, err := c.dst.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("destination snapshots: %w", err)
	}
	for _, s := range snaps {
		done[originalOf(s)] = true
	}
	return done, nil
}

func (c *copier) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *copier) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *copier) wait() error {
	c.wg.Wait()
	return c.failed()
}

// copyTree copies the tree src (and everything below it) and returns its
// id in the destination.
func (c *copier) copyTree(ctx context.Context, id repo.ID) (repo.ID, error) {
	c.mu.Lock()
	if d, ok := c.trees[id]; ok {
		c.mu.Unlock()
		return d, nil
	}
	c.mu.Unlock()
	t, err := c.src.LoadTree(ctx, id)
	if err != nil {
		return repo.ID{}, err
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.Subtree != nil {
			sub, err := c.copyTree(ctx, repo.ID(*n.Subtree))
			if err != nil {
				return repo.ID{}, fmt.Errorf("%s: %w", n.Name, err)
			}
			st := tree.ID(sub)
			n.Subtree = &st
		}
		for j, ref := range n.Content {
			if ref.IsHole() {
				continue
			}
			d, err := c.copyData(ctx, repo.ID(ref.ID))
			if err != nil {
				return repo.ID{}, fmt.Errorf("%s: %w", n.Name, err)
			}
			n.Content[j].ID = tree.ID(d)
		}
	}
	var dstID repo.ID
	if c.same {
		// The same tree: the source's bytes under the same id.
		dstID = id
		if err := c.saveBlob(ctx, repo.TreeBlob, id, nil); err != nil {
			return repo.ID{}, err
		}
	} else {
		// Data blobs must have their new ids before the tree is encoded.
		if err := c.wait(); err != nil {
			return repo.ID{}, err
		}
		if dstID, err = c.dst.SaveTree(ctx, t); err != nil {
			return repo.ID{}, err
		}
		c.mu.Lock()
		c.need[blobRef{repo.TreeBlob, dstID}] = true
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.trees[id] = dstID
	c.mu.Unlock()
	return dstID, nil
}

// copyData copies a data blob and returns its destination id. With the
// same id key the copy runs in the background (Copy waits for all); with
// different keys the blob is read now to learn its new id.
func (c *copier) copyData(ctx context.Context, id repo.ID) (repo.ID, error) {
	if err := c.failed(); err != nil {
		return repo.ID{}, err
	}
	if c.same {
		return id, c.saveBlob(ctx, repo.DataBlob, id, nil)
	}
	c.mu.Lock()
	d, ok := c.blobs[id]
	c.mu.Unlock()
	if ok {
		return d, nil
	}
	data, err := c.src.LoadBlob(ctx, repo.DataBlob, id, nil)
	if err != nil {
		return repo.ID{}, err
	}
	d = c.dst.Secrets().BlobID(data)
	c.mu.Lock()
	c.blobs[id] = d
	c.mu.Unlock()
	return d, c.saveBlob(ctx, repo.DataBlob, d, data)
}

// saveBlob stores blob id of type t in dst unless it is there already.
// The plaintext is data, else read from src by id; reads and stores of
// data blobs run on the worker pool.
func (c *copier) saveBlob(ctx context.Context, t uint8, id repo.ID, data []byte) error {
	c.o.Progress.Checked.Add(1)
	c.mu.Lock()
	k := blobRef{t, id}
	seen := c.need[k]
	c.need[k] = true
	c.mu.Unlock()
	if seen {
		return nil
	}
	if _, ok := c.dst.Index().Lookup(t, id); ok {
		return nil
	}
	work := func() error {
		if data == nil {
			var err error
			if data, err = c.src.LoadBlob(ctx, t, id, nil); err != nil {
				return err
			}
		}
		stored, err := c.dst.SaveBlobWithID(ctx, t, id, data)
		if err != nil {
			return err
		}
		if stored {
			c.o.Progress.Blobs.Add(1)
			c.o.Progress.Bytes.Add(int64(len(data)))
		}
		return nil
	}
	if t == repo.TreeBlob {
		return work()
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() { <-c.sem }()
		if err := work(); err != nil {
			c.fail(err)
		}
	}()
	return nil
}

// verify checks the destination as stored, not as this process believes.
func (c *copier) verify(ctx context.Context, res *Result) error {
	files, err := c.dst.LoadIndexFiles(ctx)
	if err != nil {
		return err
	}
	type at struct {
		pack repo.ID
		end  int64
	}
	listed := map[blobRef]at{}
	for _, f := range files {
		if f.Err != nil {
			return f.Err
		}
		for _, p := range f.File.Packs {
			for _, b := range p.Blobs {
				listed[blobRef{b.Type, repo.ID(b.ID)}] = at{repo.ID(p.ID), int64(b.Offset) + int64(b.Length)}
			}
		}
	}
	packEnd := map[repo.ID]int64{}
	var missing []string
	for k := range c.need {
		a, ok := listed[k]
		if !ok {
			missing = append(missing, repo.Short(k.id))
			continue
		}
		packEnd[a.pack] = max(packEnd[a.pack], a.end)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d blobs are not in the destination's index (first: %s)", len(missing), missing[0])
	}
	for p, end := range packEnd {
		fi, err := c.dst.Backend().Stat(ctx, backend.Handle{Type: backend.PackFile, Name: repo.Hex(p)})
		if err != nil {
			return err
		}
		if fi.Size < end {
			return fmt.Errorf("pack %s is %d bytes, its blobs need %d", repo.Short(p), fi.Size, end)
		}
	}
	res.BlobsNeeded = int64(len(c.need))
	if !c.dst.CanRead() {
		return nil
	}
	for _, cp := range res.Copied {
		id, err := repo.ParseID(cp.Copy)
		if err != nil {
			return err
		}
		s, err := c.dst.LoadSnapshot(ctx, id)
		if err != nil {
			return err
		}
		if _, err := c.dst.LoadTree(ctx, s.Tree); err != nil {
			return fmt.Errorf("snapshot %s: root tree: %w", repo.Short(id), err)
		}
	}
	return nil
}

// ErrNothingToCopy is returned by callers that find no snapshot to copy.
var ErrNothingToCopy = errors.New("no snapshot to copy")
