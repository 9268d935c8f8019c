package s3

import (
	"context"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/retry"
)

// Retrying is an S3 backend behind the retry layer that still offers the
// S3 backend's object-lock methods, so prune and forget find them.
type Retrying struct {
	*retry.Backend
	s3 *Backend
}

var _ backend.Retainer = (*Retrying)(nil)

// OpenRetrying opens (or, with create, creates) the repository and wraps
// it in retry.New with policy p.
func OpenRetrying(ctx context.Context, c Config, create bool, p retry.Policy) (*Retrying, error) {
	var (
		b   *Backend
		err error
	)
	if create {
		b, err = Create(ctx, c)
	} else {
		b, err = Open(ctx, c)
	}
	if err != nil {
		return nil, err
	}
	return &Retrying{Backend: retry.New(b, p), s3: b}, nil
}

// RetainUntil returns when h's object lock expires.
func (b *Retrying) RetainUntil(ctx context.Context, h backend.Handle) (time.Time, error) {
	return b.s3.RetainUntil(ctx, h)
}

// ExtendRetention extends h's object lock to until (never shortens it).
func (b *Retrying) ExtendRetention(ctx context.Context, h backend.Handle, until time.Time) error {
	return b.s3.ExtendRetention(ctx, h, until)
}

// RetentionPeriod is the lock period of new objects.
func (b *Retrying) RetentionPeriod() time.Duration { return b.s3.RetentionPeriod() }
