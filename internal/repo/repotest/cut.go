package repotest

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
)

// ErrGone is what a CutBackend returns once it is cut.
var ErrGone = errors.New("injected: the backend is gone")

// CutBackend is a real backend that goes away for good once Packs packs
// have been stored: every later write fails with ErrGone (the vault is
// gone, the process was killed) or, with Cancel set, the session's context
// is cancelled instead. Uploads (default 2) is the number of pack uploads
// it lets a repository run at once, so that checkpoints race with uploads
// as they do on a remote backend.
type CutBackend struct {
	backend.Backend
	Packs   int64
	Cancel  context.CancelFunc
	Uploads int

	stored atomic.Int64
	cut    atomic.Bool
}

// Save stores, or fails once the backend is cut.
func (b *CutBackend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if b.cut.Load() {
		return ErrGone
	}
	if h.Type == backend.PackFile && b.stored.Load() >= b.Packs {
		b.cut.Store(true)
		if b.Cancel != nil {
			b.Cancel()
			return ctx.Err()
		}
		return ErrGone
	}
	if err := b.Backend.Save(ctx, h, data); err != nil {
		return err
	}
	if h.Type == backend.PackFile {
		b.stored.Add(1)
	}
	return nil
}

// Stored returns how many packs were stored.
func (b *CutBackend) Stored() int64 { return b.stored.Load() }

// IsCut reports whether the backend has gone away.
func (b *CutBackend) IsCut() bool { return b.cut.Load() }

// UploadConcurrency is Uploads (default 2).
func (b *CutBackend) UploadConcurrency() int {
	if b.Uploads > 0 {
		return b.Uploads
	}
	return 2
}
