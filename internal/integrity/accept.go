package integrity

import (
	"context"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/signkey"
)

// Why an accept is refused before anything is written.
var (
	// ErrNotWatching: the service has no verified baseline (it is not
	// running, or refused the baseline: Status says why).
	ErrNotWatching = errors.New("file integrity is not watching: there is no verified baseline to accept changes into")
	// ErrOtherKey: the baseline was signed by another key than the one
	// that would sign the new one.
	ErrOtherKey = errors.New("the baseline was signed by another key than this data directory's integrity.key")
	// ErrNoKey: the data directory's integrity.key cannot be read.
	ErrNoKey = errors.New("this data directory's integrity.key cannot be read: nothing can be signed")
	// ErrBaselineChanged: the baseline file is not the one the service
	// verified and watches (replaced or edited since).
	ErrBaselineChanged = errors.New("the baseline file is not the one being watched (it changed since bulwark up verified it): restart bulwark up to verify it, or record a new one with bulwark integrity init")
)

// Limits of Service.Accept.
const (
	MaxAcceptPaths   = 100
	MaxAcceptComment = 1000 // bytes
)

// InvalidAcceptError is an accept refused for what was asked: Field is
// paths or comment.
type InvalidAcceptError struct {
	Field, Message string
}

func (e *InvalidAcceptError) Error() string { return e.Message }

// CheckAccept checks what Service.Accept is asked: at most
// MaxAcceptPaths paths, each absolute and clean (no "..", no trailing
// slash), and a comment that says why (one to MaxAcceptComment bytes of
// text: no control characters but newlines and tabs).
func CheckAccept(paths []string, comment string) error {
	if len(paths) > MaxAcceptPaths {
		return &InvalidAcceptError{"paths", fmt.Sprintf("at most %d paths at a time (none accepts every change), got %d", MaxAcceptPaths, len(paths))}
	}
	for i, p := range paths {
		switch {
		case p == "" || len(p) > maxPath || !utf8.ValidString(p) || strings.ContainsRune(p, 0):
			return &InvalidAcceptError{"paths", fmt.Sprintf("paths[%d]: want an absolute path of 1 to %d bytes of UTF-8", i, maxPath)}
		case !filepath.IsAbs(p):
			return &InvalidAcceptError{"paths", fmt.Sprintf("paths[%d] %q is not absolute", i, p)}
		case filepath.Clean(p) != p:
			return &InvalidAcceptError{"paths", fmt.Sprintf("paths[%d] %q is not clean (no \"..\", \".\", double or trailing slash): %q", i, p, filepath.Clean(p))}
		}
	}
	switch {
	case strings.TrimSpace(comment) == "":
		return &InvalidAcceptError{"comment", "comment is required: say why the changes are accepted (it is recorded in the baseline and the audit log)"}
	case len(comment) > MaxAcceptComment:
		return &InvalidAcceptError{"comment", fmt.Sprintf("comment of %d bytes, at most %d", len(comment), MaxAcceptComment)}
	case !utf8.ValidString(comment) || strings.ContainsFunc(comment, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }):
		return &InvalidAcceptError{"comment", "comment must be UTF-8 text without control characters (newlines and tabs are fine)"}
	}
	return nil
}

// AcceptOptions say what an accept folds in, and who asked.
type AcceptOptions struct {
	// Paths are absolute; each covers itself and everything below it.
	// None: every change.
	Paths   []string
	By      string
	Comment string
	// Time is the new baseline's (default now).
	Time time.Time
	// Scan scans with the baseline's policy, expect its number of
	// entries (default Scan with Options{Expect: expect}).
	Scan func(ctx context.Context, p Policy, expect int) (*Result, error)
}

// AcceptResult is what an accept did.
type AcceptResult struct {
	// Accepted is how many changes were folded in; Entries how many the
	// new baseline holds.
	Accepted       int    `json:"accepted"`
	Entries        int    `json:"entries"`
	Digest         string `json:"digest"`
	PreviousDigest string `json:"previous_digest"`
	// Baseline is the new baseline as written, and ScanErrors what its
	// scan could not read (recorded with the error).
	Baseline   *Baseline   `json:"-"`
	ScanErrors []ScanError `json:"-"`
}

// AcceptFile scans again with b's policy, folds the changes under
// o.Paths into b (Accept) and writes the result to path, signed with key,
// its header saying who accepted how many changes of which paths, when
// and why. It refuses a baseline key did not sign (ErrOtherKey). The
// command line's accept and Service.Accept both come here.
func AcceptFile(ctx context.Context, path string, b *Baseline, key ed25519.PrivateKey, o AcceptOptions) (*AcceptResult, error) {
	pub := key.Public().(ed25519.PublicKey)
	if signkey.ID(pub) != b.Header.KeyID {
		return nil, ErrOtherKey
	}
	scan := o.Scan
	if scan == nil {
		scan = func(ctx context.Context, p Policy, expect int) (*Result, error) {
			return Scan(ctx, p, Options{Expect: expect})
		}
	}
	res, err := scan(ctx, b.Header.Policy, len(b.Entries))
	if err != nil {
		return nil, err
	}
	next, n := Accept(b.Entries, res.Entries, o.Paths)
	at := o.Time
	if at.IsZero() {
		at = time.Now()
	}
	h := b.Header
	h.Created = at.UTC()
	h.Accepted = &Acceptance{By: o.By, Time: h.Created, Paths: o.Paths, Changes: n, Comment: o.Comment}
	digest, err := WriteFile(path, h, next, key)
	if err != nil {
		return nil, err
	}
	h.Version, h.KeyID, h.Entries = 1, signkey.ID(pub), len(next) // as Encode wrote them
	return &AcceptResult{Accepted: n, Entries: len(next), Digest: digest, PreviousDigest: b.Digest,
		Baseline: &Baseline{Header: h, Entries: next, Digest: digest}, ScanErrors: res.Errors}, nil
}

// Accept folds the changes under paths (every change when none) into the
// baseline being watched, as the command line's accept does (AcceptFile:
// a scan, a new baseline signed with DATA_DIR/integrity.key, its header
// recording by, the time, the paths, the number of changes and comment),
// and watches with it from then on: the paths that no longer differ leave
// the findings and Status at once. Accepts run one at a time; one waits
// for the watch's scan in progress before it takes the new baseline.
//
// It refuses (CheckAccept) bad paths or comments, a service that is not
// watching (ErrNotWatching), a baseline file that is no longer the one
// being watched (ErrBaselineChanged), and a baseline signed by another key
// than the data directory's (ErrOtherKey, ErrNoKey).
func (s *Service) Accept(ctx context.Context, paths []string, by, comment string) (*AcceptResult, error) {
	if err := CheckAccept(paths, comment); err != nil {
		return nil, err
	}
	s.acceptMu.Lock()
	defer s.acceptMu.Unlock()
	s.mu.Lock()
	b, rebase, done, why := s.base, s.rebase, s.watchDone, s.status.Error
	s.mu.Unlock()
	if b == nil {
		if why != "" {
			return nil, fmt.Errorf("%w (%s)", ErrNotWatching, why)
		}
		return nil, ErrNotWatching
	}
	path := s.BaselinePath()
	if d, err := fileDigest(path); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBaselineChanged, err)
	} else if d != b.Digest {
		return nil, fmt.Errorf("%w: digest %s, watching %s", ErrBaselineChanged, d, b.Digest)
	}
	key, err := signkey.Load(s.DataDir, "integrity")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoKey, err)
	}
	res, err := AcceptFile(ctx, path, b, key, AcceptOptions{Paths: paths, By: by, Comment: comment})
	if err != nil {
		return nil, err
	}
	// The file is written: the watch takes the new baseline whatever
	// becomes of the request.
	req := &rebaseRequest{base: res.Baseline.Entries, since: res.Baseline.Header.Created, done: make(chan struct{})}
	select {
	case rebase <- req:
		select {
		case <-req.done:
		case <-done:
		}
	case <-done:
	}
	s.mu.Lock()
	if s.base == b {
		s.base = res.Baseline
	}
	s.status.Entries, s.status.Digest = res.Entries, res.Digest
	s.mu.Unlock()
	if s.Logger != nil {
		s.Logger.Info("integrity: changes accepted", "by", by, "paths", paths, "changes", res.Accepted, "digest", res.Digest)
	}
	return res, nil
}

// fileDigest is the digest of the baseline file at path as Encode
// computed it (SHA-512 of what precedes the signature), without decoding
// it.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() || st.Size() < int64(len(magic))+1+ed25519.SignatureSize || st.Size() > MaxBaseline {
		return "", fmt.Errorf("%s: not a baseline file", path)
	}
	sum := sha512.New()
	if _, err := io.CopyN(sum, f, st.Size()-ed25519.SignatureSize); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}
