package repo

import "context"

// WriteLockForTest writes a lock object as another process would.
func WriteLockForTest(ctx context.Context, r *Repository, li LockInfo) (string, error) {
	return r.writeLock(ctx, li)
}
