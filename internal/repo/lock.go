package repo

// Locks keep prune from deleting data that a running backup is about to
// reference. Backups hold non-exclusive locks; prune, forget and repair an
// exclusive one. A lock is an object in locks/ that its holder rewrites
// every RefreshInterval; one older than StaleAfter, or written on this host
// by a process that has exited, is stale and removed by whoever finds it.
//
// Taking a lock is optimistic: write ours, then list the others; when a
// conflicting lock exists, remove ours and fail (or retry). Two processes
// that race both see each other and both back off, never both proceed.
//
// A lock that could not be refreshed for StaleAfter (the storage was
// unreachable, the machine slept) has lapsed: another process may have
// found it stale, removed it and pruned, deleting packs this session
// uploaded or deduplicated against. From then on the repository refuses
// to write index files and snapshots for this session (ErrLockLapsed):
// they could name data that is gone. The next run starts from what the
// repository holds then (interrupted backups resume from their index
// checkpoints, checkpoint.go). Elapsed time is the larger of the
// monotonic and the wall-clock difference: the monotonic clock does not
// advance while the machine is suspended (on Linux), and other hosts judge
// staleness by wall clocks.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
)

// Lock timings.
var (
	RefreshInterval = 5 * time.Minute
	StaleAfter      = 30 * time.Minute
)

const lockAAD = "bulwark lock v1"

// LockInfo is the content of a lock object.
type LockInfo struct {
	Time      time.Time `json:"time"`
	Exclusive bool      `json:"exclusive"`
	Hostname  string    `json:"hostname"`
	PID       int       `json:"pid"`
	Username  string    `json:"username,omitempty"`
	Nonce     []byte    `json:"nonce"`
}

// Lock is a held lock.
type Lock struct {
	r    *Repository
	mu   sync.Mutex
	name string
	info LockInfo
	stop chan struct{}
	done chan struct{}
	lost error
	// written is when the last successful write of the lock began;
	// lapsed is set once two successful writes were further apart than
	// StaleAfter.
	written time.Time
	lapsed  bool
}

// ErrLocked means a conflicting lock is held.
var ErrLocked = errors.New("repository is locked")

// ErrLockLapsed means a lock of this session could not be refreshed for
// longer than StaleAfter, so another process may have removed it and
// pruned: the session must not write index files or snapshots.
var ErrLockLapsed = errors.New("the repository lock lapsed")

// lapsedErr reports whether the lock has lapsed, with why.
func (l *Lock) lapsedErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lapsed && elapsed(l.written, time.Now()) <= lapseAfter() {
		return nil
	}
	why := ""
	if l.lost != nil {
		why = fmt.Sprintf(" (last refresh: %v)", l.lost)
	}
	return fmt.Errorf("%w: not refreshed for more than %v%s, so another process may have pruned the data of this session; nothing more is written, run it again",
		ErrLockLapsed, StaleAfter, why)
}

// lapseAfter is how long a lock may go without a successful write before
// this session counts it as lapsed: StaleAfter less two refresh intervals,
// a margin for the clocks of other hosts and for an index write that is
// under way when the limit passes.
func lapseAfter() time.Duration {
	return max(StaleAfter-2*RefreshInterval, StaleAfter/2)
}

// elapsed is the time from a to b: the larger of the monotonic and the
// wall-clock difference.
func elapsed(a, b time.Time) time.Duration {
	return max(b.Sub(a), b.Round(0).Sub(a.Round(0)))
}

// checkLocks fails when a lock this repository handle holds has lapsed.
func (r *Repository) checkLocks() error {
	r.locksMu.Lock()
	held := make([]*Lock, 0, len(r.locks))
	for l := range r.locks {
		held = append(held, l)
	}
	r.locksMu.Unlock()
	for _, l := range held {
		if err := l.lapsedErr(); err != nil {
			return err
		}
	}
	return nil
}

// Stale reports whether a lock is stale at now.
func (l LockInfo) Stale(now time.Time) bool {
	if now.Sub(l.Time) > StaleAfter {
		return true
	}
	host, _ := os.Hostname()
	if l.Hostname == host && l.PID > 0 && !processAlive(l.PID) {
		return true
	}
	return false
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func (r *Repository) writeLock(ctx context.Context, info LockInfo) (string, error) {
	plain, err := json.Marshal(info)
	if err != nil {
		return "", err
	}
	data, err := r.sec.SealShared(lockAAD, plain)
	if err != nil {
		return "", err
	}
	name := Hex(sha256.Sum256(data))
	return name, r.be.Save(ctx, backend.Handle{Type: backend.LockFile, Name: name}, data)
}

// ListLocks returns every readable lock by name; unreadable ones are
// reported as errors in the map's value.
func (r *Repository) ListLocks(ctx context.Context) (map[string]LockInfo, map[string]error, error) {
	locks := map[string]LockInfo{}
	bad := map[string]error{}
	err := r.be.List(ctx, backend.LockFile, func(fi backend.FileInfo) error {
		data, err := r.be.Load(ctx, backend.Handle{Type: backend.LockFile, Name: fi.Name}, 0, 0)
		if errors.Is(err, backend.ErrNotExist) {
			return nil // released meanwhile
		}
		if err == nil {
			var plain []byte
			if plain, err = r.sec.OpenShared(lockAAD, data); err == nil {
				var li LockInfo
				if err = json.Unmarshal(plain, &li); err == nil {
					locks[fi.Name] = li
					return nil
				}
			}
		}
		bad[fi.Name] = err
		return nil
	})
	return locks, bad, err
}

// RemoveStaleLocks removes stale locks and returns how many.
func (r *Repository) RemoveStaleLocks(ctx context.Context) (int, error) {
	locks, _, err := r.ListLocks(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	now := r.Now()
	for name, li := range locks {
		if li.Stale(now) {
			if err := r.be.Remove(ctx, backend.Handle{Type: backend.LockFile, Name: name}); err == nil {
				n++
			}
		}
	}
	return n, nil
}

// Lock takes a lock, waiting up to wait for conflicting locks to go away.
// The lock refreshes itself until Unlock.
func (r *Repository) Lock(ctx context.Context, exclusive bool, wait time.Duration) (*Lock, error) {
	host, usr := hostUser()
	deadline := time.Now().Add(wait)
	for {
		if _, err := r.RemoveStaleLocks(ctx); err != nil {
			return nil, err
		}
		started := time.Now()
		info := LockInfo{Time: r.Now().UTC(), Exclusive: exclusive, Hostname: host, PID: os.Getpid(), Username: usr, Nonce: make([]byte, 8)}
		_, _ = rand.Read(info.Nonce)
		name, err := r.writeLock(ctx, info)
		if err != nil {
			return nil, fmt.Errorf("writing lock: %w", err)
		}
		locks, _, err := r.ListLocks(ctx)
		if err != nil {
			_ = r.be.Remove(context.WithoutCancel(ctx), backend.Handle{Type: backend.LockFile, Name: name})
			return nil, err
		}
		var conflict *LockInfo
		for n, li := range locks {
			if n == name || li.Stale(r.Now()) {
				continue
			}
			if exclusive || li.Exclusive {
				c := li
				conflict = &c
				break
			}
		}
		if conflict == nil {
			l := &Lock{r: r, name: name, info: info, stop: make(chan struct{}), done: make(chan struct{}), written: started}
			r.locksMu.Lock()
			if r.locks == nil {
				r.locks = map[*Lock]bool{}
			}
			r.locks[l] = true
			r.locksMu.Unlock()
			go l.refresh()
			return l, nil
		}
		_ = r.be.Remove(context.WithoutCancel(ctx), backend.Handle{Type: backend.LockFile, Name: name})
		if time.Now().After(deadline) {
			kind := "a shared"
			if conflict.Exclusive {
				kind = "an exclusive"
			}
			return nil, fmt.Errorf("%w: %s lock held by PID %d on %s since %s", ErrLocked, kind,
				conflict.PID, conflict.Hostname, conflict.Time.Local().Format(time.DateTime))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (l *Lock) refresh() {
	defer close(l.done)
	t := time.NewTicker(RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			started := time.Now()
			// Our lock file gone means another process removed it (found
			// it stale, or an operator unlocked): a prune may have run.
			l.mu.Lock()
			prev := l.name
			l.mu.Unlock()
			if _, err := l.r.be.Stat(ctx, backend.Handle{Type: backend.LockFile, Name: prev}); errors.Is(err, backend.ErrNotExist) {
				l.mu.Lock()
				l.lapsed = true
				l.lost = errors.New("the lock file was removed by another process")
				l.mu.Unlock()
			}
			info := l.info
			info.Time = l.r.Now().UTC()
			_, _ = rand.Read(info.Nonce)
			name, err := l.r.writeLock(ctx, info)
			l.mu.Lock()
			if err != nil {
				l.lost = err
			} else {
				if elapsed(l.written, started) > lapseAfter() {
					l.lapsed = true
				}
				old := l.name
				l.name, l.info, l.written = name, info, started
				// Gone already, though we have not removed it: another
				// process removed it after the Stat above.
				if err := l.r.be.Remove(ctx, backend.Handle{Type: backend.LockFile, Name: old}); errors.Is(err, backend.ErrNotExist) {
					l.lapsed = true
					l.lost = errors.New("the lock file was removed by another process")
				}
			}
			l.mu.Unlock()
			cancel()
		}
	}
}

// Unlock releases the lock.
func (l *Lock) Unlock() error {
	if l == nil {
		return nil
	}
	close(l.stop)
	<-l.done
	l.r.locksMu.Lock()
	delete(l.r.locks, l)
	l.r.locksMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.be.Remove(context.Background(), backend.Handle{Type: backend.LockFile, Name: l.name})
}
