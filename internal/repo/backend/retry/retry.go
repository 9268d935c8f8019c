// Package retry wraps a backend.Backend so that transient failures (a
// dropped connection, a server error, a timeout) are retried with
// exponential back-off instead of failing a backup.
//
// What is retried. Every error is transient except those the backend
// contract makes final: ErrNotExist, ErrExists, ErrForbidden,
// ErrInvalidName, io.ErrUnexpectedEOF (a range outside the object), the
// context's own error, and any error that says so by implementing
// Permanent() bool. A transport marks a failure final the same way (for
// example the vault's "401 token revoked" or S3's "access denied"), so a
// revoked credential fails at once instead of after minutes of waiting.
//
// Save after a transient failure. The failed attempt may have stored the
// object before the connection broke, so a later attempt can meet
// ErrExists. The contract allows a retrying caller to accept that, and
// Save does when the stored object has the size of the data it was
// saving: object names are the SHA-256 of their content (or, for locks and
// keys, random), so an object of the same name and size is the earlier
// attempt's. Otherwise ErrExists is returned as it is.
//
// List is retried only until it has reported its first entry: after that
// a retry would report entries twice.
package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
)

// Policy is how often and how long to retry.
type Policy struct {
	// Attempts is the most attempts per call, the first included (default 8).
	Attempts int
	// Initial is the wait before the second attempt (default 250ms); each
	// further wait doubles, up to Max (default 15s), with ±25% jitter.
	Initial, Max time.Duration
	// Notify, when set, is called before each wait with the failed
	// operation, its handle, the attempt that failed (1-based), its error and
	// the wait. Use it to tell a user why a backup paused.
	Notify func(op string, h backend.Handle, attempt int, err error, wait time.Duration)
	// Sleep waits for d or until ctx is done (tests replace it).
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultPolicy retries eight times over about one minute.
var DefaultPolicy = Policy{Attempts: 8, Initial: 250 * time.Millisecond, Max: 15 * time.Second}

// Backend is a backend.Backend that retries transient failures of another.
type Backend struct {
	be backend.Backend
	p  Policy
}

var _ backend.Backend = (*Backend)(nil)

// New wraps be. Zero fields of p take DefaultPolicy's values.
func New(be backend.Backend, p Policy) *Backend {
	if p.Attempts <= 0 {
		p.Attempts = DefaultPolicy.Attempts
	}
	if p.Initial <= 0 {
		p.Initial = DefaultPolicy.Initial
	}
	if p.Max <= 0 {
		p.Max = DefaultPolicy.Max
	}
	if p.Sleep == nil {
		p.Sleep = sleep
	}
	return &Backend{be: be, p: p}
}

// Unwrap returns the wrapped backend.
func (b *Backend) Unwrap() backend.Backend { return b.be }

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// IsPermanent reports whether err is final: retrying cannot help.
func IsPermanent(ctx context.Context, err error) bool {
	var p interface{ Permanent() bool }
	switch {
	case err == nil:
		return true
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return true
	case errors.Is(err, backend.ErrNotExist), errors.Is(err, backend.ErrExists),
		errors.Is(err, backend.ErrForbidden), errors.Is(err, backend.ErrInvalidName),
		errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &p):
		return p.Permanent()
	}
	return false
}

// do runs fn until it succeeds, fails permanently, or attempts run out.
func (b *Backend) do(ctx context.Context, op string, h backend.Handle, fn func() error) error {
	wait := b.p.Initial
	for attempt := 1; ; attempt++ {
		err := fn()
		if IsPermanent(ctx, err) {
			return err
		}
		if attempt >= b.p.Attempts {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		d := jitter(wait)
		if b.p.Notify != nil {
			b.p.Notify(op, h, attempt, err, d)
		}
		if serr := b.p.Sleep(ctx, d); serr != nil {
			return fmt.Errorf("%w (while waiting to retry: %w)", err, serr)
		}
		wait = min(2*wait, b.p.Max)
	}
}

func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()-0.5)*0.5*float64(d))
}

// Location returns the wrapped backend's location.
func (b *Backend) Location() string { return b.be.Location() }

// Save stores data, retrying transient failures; see the package comment
// for ErrExists after a failed attempt.
func (b *Backend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	failed := false
	return b.do(ctx, "save", h, func() error {
		err := b.be.Save(ctx, h, data)
		if err != nil && failed && errors.Is(err, backend.ErrExists) {
			if fi, serr := b.be.Stat(ctx, h); serr == nil && fi.Size == int64(len(data)) {
				return nil // an earlier attempt stored it before failing
			}
		}
		if err != nil {
			failed = true
		}
		return err
	})
}

// Replace overwrites h, retrying transient failures (Replace is idempotent).
func (b *Backend) Replace(ctx context.Context, h backend.Handle, data []byte) error {
	return b.do(ctx, "replace", h, func() error { return b.be.Replace(ctx, h, data) })
}

// Load reads a range of h, retrying transient failures.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset int64, length int) ([]byte, error) {
	var out []byte
	err := b.do(ctx, "load", h, func() error {
		var err error
		out, err = b.be.Load(ctx, h, offset, length)
		return err
	})
	return out, err
}

// Stat returns h's size, retrying transient failures.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	var fi backend.FileInfo
	err := b.do(ctx, "stat", h, func() error {
		var err error
		fi, err = b.be.Stat(ctx, h)
		return err
	})
	return fi, err
}

// Remove deletes h, retrying transient failures. After a failed attempt,
// ErrNotExist means an earlier attempt removed it, and is success.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	failed := false
	return b.do(ctx, "remove", h, func() error {
		err := b.be.Remove(ctx, h)
		if err != nil && failed && errors.Is(err, backend.ErrNotExist) {
			return nil
		}
		if err != nil {
			failed = true
		}
		return err
	})
}

// List lists objects of type t, retrying a transient failure that comes
// before the first entry.
func (b *Backend) List(ctx context.Context, t backend.Type, fn func(backend.FileInfo) error) error {
	started := false
	var fnErr error
	err := b.do(ctx, "list", backend.Handle{Type: t}, func() error {
		err := b.be.List(ctx, t, func(fi backend.FileInfo) error {
			started = true
			if err := fn(fi); err != nil {
				fnErr = err
				return err
			}
			return nil
		})
		if err != nil && (started || fnErr != nil) {
			return permanent{err}
		}
		return err
	})
	if p, ok := err.(permanent); ok {
		return p.err
	}
	return err
}

// permanent stops retries of an error that is not final by itself.
type permanent struct{ err error }

func (p permanent) Error() string   { return p.err.Error() }
func (p permanent) Unwrap() error   { return p.err }
func (p permanent) Permanent() bool { return true }

// Close closes the wrapped backend.
func (b *Backend) Close() error { return b.be.Close() }
