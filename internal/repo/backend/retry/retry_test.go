package retry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/backendtest"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
)

func newLocal(t *testing.T) backend.Backend {
	t.Helper()
	be, err := local.Create(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	return be
}

func noSleep(ctx context.Context, d time.Duration) error { return ctx.Err() }

// The wrapper keeps the whole contract.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		return New(newLocal(t), Policy{Sleep: noSleep})
	})
}

var errFlaky = errors.New("connection reset by peer")

// flaky fails the next n calls of each method with errFlaky; with
// storeFirst, a failing Save stores the object first (the connection broke
// after the server wrote it).
type flaky struct {
	backend.Backend
	mu         sync.Mutex
	fail       map[string]int
	calls      map[string]int
	storeFirst bool
	listAfter  int // List fails after reporting this many entries (once), or -1
}

func newFlaky(be backend.Backend, n int) *flaky {
	f := &flaky{Backend: be, fail: map[string]int{}, calls: map[string]int{}, listAfter: -1}
	for _, op := range []string{"save", "replace", "load", "stat", "remove", "list"} {
		f.fail[op] = n
	}
	return f
}

func (f *flaky) hit(op string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	if f.fail[op] > 0 {
		f.fail[op]--
		return true
	}
	return false
}

func (f *flaky) Save(ctx context.Context, h backend.Handle, data []byte) error {
	if f.hit("save") {
		if f.storeFirst {
			if err := f.Backend.Save(ctx, h, data); err != nil {
				return err
			}
		}
		return errFlaky
	}
	return f.Backend.Save(ctx, h, data)
}

func (f *flaky) Replace(ctx context.Context, h backend.Handle, data []byte) error {
	if f.hit("replace") {
		return errFlaky
	}
	return f.Backend.Replace(ctx, h, data)
}

func (f *flaky) Load(ctx context.Context, h backend.Handle, off int64, n int) ([]byte, error) {
	if f.hit("load") {
		return nil, errFlaky
	}
	return f.Backend.Load(ctx, h, off, n)
}

func (f *flaky) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if f.hit("stat") {
		return backend.FileInfo{}, errFlaky
	}
	return f.Backend.Stat(ctx, h)
}

func (f *flaky) Remove(ctx context.Context, h backend.Handle) error {
	if f.hit("remove") {
		if f.storeFirst {
			_ = f.Backend.Remove(ctx, h)
		}
		return errFlaky
	}
	return f.Backend.Remove(ctx, h)
}

func (f *flaky) List(ctx context.Context, t backend.Type, fn func(backend.FileInfo) error) error {
	if f.listAfter >= 0 {
		n := 0
		err := f.Backend.List(ctx, t, func(fi backend.FileInfo) error {
			if n == f.listAfter {
				return errFlaky
			}
			n++
			return fn(fi)
		})
		f.listAfter = -1
		return err
	}
	if f.hit("list") {
		return errFlaky
	}
	return f.Backend.List(ctx, t, fn)
}

func packHandle(data []byte) backend.Handle {
	sum := sha256.Sum256(data)
	return backend.Handle{Type: backend.PackFile, Name: hex.EncodeToString(sum[:])}
}

// Two transient failures of every operation are ridden out, and each
// wait is reported with the attempt and the error.
func TestRetriesTransientFailures(t *testing.T) {
	ctx := context.Background()
	f := newFlaky(newLocal(t), 2)
	var waits []string
	b := New(f, Policy{Sleep: noSleep, Notify: func(op string, h backend.Handle, attempt int, err error, wait time.Duration) {
		waits = append(waits, fmt.Sprintf("%s#%d:%v", op, attempt, err))
	}})
	data := []byte("pack bytes")
	h := packHandle(data)
	if err := b.Save(ctx, h, data); err != nil {
		t.Fatalf("Save: %v", err)
	}
	if got, err := b.Load(ctx, h, 0, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Load: %q, %v", got, err)
	}
	if fi, err := b.Stat(ctx, h); err != nil || fi.Size != int64(len(data)) {
		t.Fatalf("Stat: %+v, %v", fi, err)
	}
	n := 0
	if err := b.List(ctx, backend.PackFile, func(backend.FileInfo) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("List: %d entries, %v", n, err)
	}
	if err := b.Replace(ctx, h, data); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	if err := b.Remove(ctx, h); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if len(waits) != 12 || waits[0] != "save#1:connection reset by peer" || waits[1] != "save#2:connection reset by peer" {
		t.Errorf("notifications %q, want two per operation, save first", waits)
	}
}

// A Save whose failed attempt stored the object succeeds on the retry's
// ErrExists; an object of another size under that name is reported.
func TestSaveAcceptsEarlierAttempt(t *testing.T) {
	ctx := context.Background()
	f := newFlaky(newLocal(t), 0)
	f.fail["save"] = 1
	f.storeFirst = true
	b := New(f, Policy{Sleep: noSleep})
	data := []byte("stored, then the connection broke")
	h := packHandle(data)
	if err := b.Save(ctx, h, data); err != nil {
		t.Fatalf("Save after a failed attempt that stored the object: %v", err)
	}
	// Without a failed attempt, ErrExists stays an error.
	if err := b.Save(ctx, h, data); !errors.Is(err, backend.ErrExists) {
		t.Errorf("second Save: %v, want ErrExists", err)
	}
	// A failed attempt, then a different object under the name: ErrExists.
	f.fail["save"] = 1
	f.storeFirst = false
	if err := b.Save(ctx, h, append(data, 'x')); !errors.Is(err, backend.ErrExists) {
		t.Errorf("Save of other bytes under an existing name: %v, want ErrExists", err)
	}
	// Remove whose failed attempt removed the object: success.
	f.fail["remove"] = 1
	f.storeFirst = true
	if err := b.Remove(ctx, h); err != nil {
		t.Errorf("Remove after a failed attempt that removed the object: %v", err)
	}
}

type final struct{ error }

func (final) Permanent() bool { return true }

// Final errors are returned at once; attempts are bounded; a cancelled
// context stops the waiting.
func TestStopsRetrying(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		err   error
		calls int
	}{
		{"not exist", fmt.Errorf("data/x: %w", backend.ErrNotExist), 1},
		{"forbidden", fmt.Errorf("data/x: %w", backend.ErrForbidden), 1},
		{"invalid", backend.ErrInvalidName, 1},
		{"range", io.ErrUnexpectedEOF, 1},
		{"marked final", final{errors.New("401 token revoked")}, 1},
		{"transient", errFlaky, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			b := New(newLocal(t), Policy{Attempts: 3, Sleep: noSleep})
			err := b.do(ctx, "load", backend.Handle{}, func() error { calls++; return tc.err })
			if !errors.Is(err, tc.err) || calls != tc.calls {
				t.Errorf("got %v after %d calls, want %v after %d", err, calls, tc.err, tc.calls)
			}
		})
	}

	cctx, cancel := context.WithCancel(ctx)
	b := New(newLocal(t), Policy{Attempts: 100, Initial: time.Hour})
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	start := time.Now()
	err := b.do(cctx, "load", backend.Handle{}, func() error { return errFlaky })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errFlaky) || time.Since(start) > 10*time.Second {
		t.Errorf("cancelled during the wait: %v", err)
	}
}

// The back-off doubles up to Max, with jitter within ±25%.
func TestBackoff(t *testing.T) {
	var waits []time.Duration
	b := New(newLocal(t), Policy{Attempts: 7, Initial: 100 * time.Millisecond, Max: time.Second,
		Sleep: func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }})
	_ = b.do(context.Background(), "load", backend.Handle{}, func() error { return errFlaky })
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	if len(waits) != len(want) {
		t.Fatalf("waits %v, want %d", waits, len(want))
	}
	for i, w := range want {
		w *= time.Millisecond
		if waits[i] < w*3/4 || waits[i] > w*5/4 {
			t.Errorf("wait %d = %v, want %v ±25%%", i, waits[i], w)
		}
	}
}

// A List that fails after reporting entries is not retried (entries would
// repeat); one that fails before the first entry is.
func TestListRetry(t *testing.T) {
	ctx := context.Background()
	f := newFlaky(newLocal(t), 0)
	for i := range 3 {
		data := []byte{byte(i)}
		if err := f.Backend.Save(ctx, packHandle(data), data); err != nil {
			t.Fatal(err)
		}
	}
	b := New(f, Policy{Sleep: noSleep})
	f.listAfter = 1
	seen := 0
	err := b.List(ctx, backend.PackFile, func(backend.FileInfo) error { seen++; return nil })
	if !errors.Is(err, errFlaky) || seen != 1 {
		t.Errorf("List failing mid-way: %v after %d entries, want the error after 1", err, seen)
	}
	f.fail["list"] = 1
	seen = 0
	if err := b.List(ctx, backend.PackFile, func(backend.FileInfo) error { seen++; return nil }); err != nil || seen != 3 {
		t.Errorf("List failing at the start: %v, %d entries", err, seen)
	}
	stop := errors.New("stop")
	if err := b.List(ctx, backend.PackFile, func(backend.FileInfo) error { return stop }); err != stop {
		t.Errorf("fn's error: %v, want it unchanged", err)
	}
}
