package vault

// Quota accounting. A token's usage is the total size of the objects
// stored through it. Counting it durably after every upload cost two
// fsyncs per PUT (file and directory), serialised across all uploads; the
// vault instead keeps a durable upper bound ahead of the count:
//
//	DATA/usage/HASH        the exact count, "N\n", rewritten (temporary file
//	                       and rename, no fsync) after every stored object;
//	                       what `vault token list` shows
//	DATA/usage/HASH.bound  a bound B >= every byte that may be stored through
//	                       the token, "B\n", fsynced (file and directory)
//	                       before an upload may take the count past it
//
// Before an upload of n bytes starts, reserve checks the quota against the
// count plus the uploads in flight plus n; if that sum exceeds B, it first
// raises B to the sum plus a step (64 MiB, or a sixteenth of the token's
// quota if that is less; never past the quota) and makes the new B
// durable. So B is raised, with one fsync, about once per step stored
// rather than once per object, and B always covers everything stored,
// whatever moment the vault dies at.
//
// On start, a token's count is its bound when one exists (else the exact
// file, for data directories from before bounds). A vault that stopped
// cleanly (Close) wrote the exact count as the bound, so nothing is
// overcharged; after a crash a token is charged at most one step above
// what it really stored: 64 MiB, or 1/16 of its quota. The quota itself
// is never exceeded: an upload is refused unless count + in flight + n <=
// quota, and a crash can only make the count larger.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// boundStep is how far ahead of the count the durable bound is raised
// (less for small quotas, see boundStepFor): the most a token can be
// overcharged after a crash.
const boundStep = 64 << 20

// boundStepFor returns the step for a token with quota q (0: none).
func boundStepFor(q int64) int64 {
	if q > 0 {
		return min(boundStep, q/16)
	}
	return boundStep
}

// tokenUsage is the in-memory accounting of one token.
type tokenUsage struct {
	used     int64 // bytes stored
	reserved int64 // bytes of uploads in progress
	bound    int64 // durable bound (DATA/usage/HASH.bound)
}

// usageFile is where the exact count of the token with hash h is kept.
func (s *Server) usageFile(hash string) string { return filepath.Join(s.data, "usage", hash) }

// usageLocked returns the accounting of the token with hash h, loading it
// on first use; s.usageMu is held.
func (s *Server) usageLocked(hash string) (*tokenUsage, error) {
	if u := s.usage[hash]; u != nil {
		return u, nil
	}
	n, err := loadUsage(s.usageFile(hash))
	if err != nil {
		return nil, err
	}
	u := &tokenUsage{used: n, bound: n}
	s.usage[hash] = u
	return u, nil
}

// loadUsage returns the count a starting vault charges: the bound if there
// is one, else the exact count, else 0.
func loadUsage(path string) (int64, error) {
	n, err := readUsage(path + ".bound")
	if errors.Is(err, fs.ErrNotExist) {
		n, err = readUsage(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		// Unreadable accounting: refuse uploads rather than count from 0.
		return 0, fmt.Errorf("usage %s: %w (fix or remove the file)", path, err)
	}
	return n, nil
}

func readUsage(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err == nil && n < 0 {
		err = errors.New("negative count")
	}
	return n, err
}

// errQuota: an upload would take its token past its quota.
var errQuota = errors.New("quota exceeded")

// reserve claims n bytes of tok's quota for an upload: errQuota if that
// would pass it, or the error of making the bound durable (the upload must
// then be refused: it would not be accounted for after a crash).
func (s *Server) reserve(tok Token, n int64) error {
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	u, err := s.usageLocked(tok.SHA256)
	if err != nil {
		return err
	}
	need := u.used + u.reserved + n
	if tok.Quota > 0 && need > tok.Quota {
		return errQuota
	}
	if need > u.bound {
		// Held under usageMu: this fsync happens about once per boundStep
		// bytes, and uploads must not start until it is done anyway.
		b := need + boundStepFor(tok.Quota)
		if tok.Quota > 0 {
			b = min(b, tok.Quota)
		}
		if err := writeFileAtomic(s.usageFile(tok.SHA256)+".bound", []byte(strconv.FormatInt(b, 10)+"\n")); err != nil {
			return err
		}
		u.bound = b
	}
	u.reserved += n
	return nil
}

// release ends an upload's claim of n bytes; a stored object's bytes are
// counted, and the exact count rewritten (not fsynced: the bound is what
// a crash falls back to).
func (s *Server) release(tok Token, n int64, stored bool) {
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	u := s.usage[tok.SHA256] // loaded by reserve
	u.reserved -= n
	if !stored {
		return
	}
	u.used += n
	if err := writeFileFast(s.usageFile(tok.SHA256), []byte(strconv.FormatInt(u.used, 10)+"\n")); err != nil {
		s.log.Error("usage not recorded", "token", tok.Name, "err", err.Error())
	}
}

// Close writes every token's exact count as its bound, so that a restart
// charges exactly what was stored. Call it when no request is in flight
// (Serve does, after shutting down); the Server must not be used after.
func (s *Server) Close() error {
	s.usageMu.Lock()
	defer s.usageMu.Unlock()
	var errs []error
	for hash, u := range s.usage {
		if u.reserved != 0 || u.bound == u.used {
			continue // an upload still running keeps its bound
		}
		if err := writeFileAtomic(s.usageFile(hash)+".bound", []byte(strconv.FormatInt(u.used, 10)+"\n")); err != nil {
			errs = append(errs, err)
			continue
		}
		u.bound = u.used
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("vault: record usage: %w", err)
	}
	return nil
}

// writeFileFast replaces path with b through a temporary file and a
// rename, without fsync: a reader sees the old or the new content, and a
// crash may lose the change.
func writeFileFast(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// TokenUsage returns the bytes stored through token t, as last recorded
// by the vault (exact while it runs; after a crash the vault charges up to
// one bound step more, see the top of usage.go).
func TokenUsage(data string, t Token) int64 {
	n, _ := readUsage(filepath.Join(data, "usage", t.SHA256))
	return n
}
