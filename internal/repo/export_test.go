package repo

import "context"

// WriteLockForTest writes a lock object as another process would.
func WriteLockForTest(ctx context.Context, r *Repository, li LockInfo) (string, error) {
	return r.writeLock(ctx, li)
}

// PackStateForTest returns the pack buffers r allocated, the full packs
// holding theirs, and the savers waiting for a pending slot.
func PackStateForTest(r *Repository) (buffers, pending, waiting int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.packBuffers, r.pendingPacks, r.waiting
}

// StreamPiece is the size of a streaming packer's buffers.
const StreamPiece = streamPiece
