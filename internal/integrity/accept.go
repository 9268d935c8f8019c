package integrity

import (
	"context"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
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

// Limits of Service.Accept, and of what its result lists.
const (
	MaxAcceptPaths   = 100
	MaxAcceptComment = 1000 // bytes
	// MaxAcceptScanErrors and MaxAcceptSkipped bound the lists of an
	// AcceptResult (their totals count them all).
	MaxAcceptScanErrors = 20
	MaxAcceptSkipped    = 100
)

// InvalidAcceptError is an accept refused for what was asked: Field is
// paths, states or comment.
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

// AcceptRequest is what Service.Accept is asked.
type AcceptRequest struct {
	// Paths are absolute and clean. By default each is accepted exactly:
	// the path itself (nothing below it), and only in the state its
	// current finding reports; none: every current finding, each as
	// reported. With Recursive each covers itself and everything below
	// it as the new scan finds it (the command line's accept); none:
	// every change.
	Paths     []string
	Recursive bool
	// States optionally pins paths (each one of Paths; exact accepts
	// only) to the state they were reviewed in (CurrentFinding.State): a
	// path whose finding was reported again since is not folded.
	States  map[string]string
	By      string
	Comment string
}

// Check checks the request (CheckAccept, and States).
func (r *AcceptRequest) Check() error {
	if err := CheckAccept(r.Paths, r.Comment); err != nil {
		return err
	}
	if len(r.States) == 0 {
		return nil
	}
	if r.Recursive {
		return &InvalidAcceptError{"states", "states pin exact paths to the state reviewed: not with recursive"}
	}
	for _, p := range slices.Sorted(maps.Keys(r.States)) {
		v := r.States[p]
		if !slices.Contains(r.Paths, p) {
			return &InvalidAcceptError{"states", fmt.Sprintf("states names %q, which is not one of paths", p)}
		}
		if _, err := hex.DecodeString(v); err != nil || len(v) != 32 || strings.ToLower(v) != v {
			return &InvalidAcceptError{"states", fmt.Sprintf("states[%q]: want the state of the path's finding (32 hex digits), got %q", p, v)}
		}
	}
	return nil
}

// AcceptOptions say what an accept folds in, and who asked.
type AcceptOptions struct {
	// Paths are absolute; each covers itself and everything below it.
	// None: every change. With Exact they are only recorded in the
	// header, and Reviewed says what is folded.
	Paths []string
	// Exact folds exactly the paths of Reviewed, each in the state
	// reviewed (AcceptExact); Skipped are requested paths the caller has
	// refused already, reported with those AcceptExact skips.
	Exact    bool
	Reviewed []Reviewed
	Skipped  []Skipped
	By       string
	Comment  string
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
	// Recursive tells whether each path covered everything below it.
	Recursive bool `json:"recursive"`
	// Skipped lists (the first MaxAcceptSkipped of) the paths asked for
	// exactly that were not folded, and why; SkippedTotal counts them.
	Skipped      []Skipped `json:"skipped"`
	SkippedTotal int       `json:"skipped_total"`
	// ScanErrors lists (the first MaxAcceptScanErrors of) the paths the
	// scan could not read, whose entries (and everything below them) the
	// new baseline keeps as the old one had them; ScanErrorsTotal counts
	// them.
	ScanErrors      []ScanError `json:"scan_errors"`
	ScanErrorsTotal int         `json:"scan_errors_total"`
	// Baseline is the new baseline as written.
	Baseline *Baseline `json:"-"`
}

// AcceptFile scans again with b's policy, folds the changes under
// o.Paths into b (Accept; with o.Exact, those of o.Reviewed: AcceptExact)
// and writes the result to path, signed with key, its header saying who
// accepted how many changes of which paths, when and why. What the scan
// could not read is never folded (its entries stay as b has them). It
// refuses a baseline key did not sign (ErrOtherKey). The command line's
// accept and Service.Accept both come here.
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
	var next []Entry
	var n int
	skipped := o.Skipped
	if o.Exact {
		var more []Skipped
		next, n, more = AcceptExact(b.Entries, res.Entries, o.Reviewed, res.Errors)
		skipped = append(slices.Clip(skipped), more...)
		slices.SortFunc(skipped, func(a, b Skipped) int { return strings.Compare(a.Path, b.Path) })
	} else {
		next, n = Accept(b.Entries, res.Entries, o.Paths, res.Errors)
	}
	at := o.Time
	if at.IsZero() {
		at = time.Now()
	}
	h := b.Header
	h.Created = at.UTC()
	h.Accepted = &Acceptance{By: o.By, Time: h.Created, Paths: o.Paths, Exact: o.Exact, Changes: n, Comment: o.Comment}
	digest, err := WriteFile(path, h, next, key)
	if err != nil {
		return nil, err
	}
	h.Version, h.KeyID, h.Entries = 1, signkey.ID(pub), len(next) // as Encode wrote them
	return &AcceptResult{Accepted: n, Entries: len(next), Digest: digest, PreviousDigest: b.Digest, Recursive: !o.Exact,
		Skipped: firstOf(skipped, MaxAcceptSkipped), SkippedTotal: len(skipped),
		ScanErrors: firstOf(res.Errors, MaxAcceptScanErrors), ScanErrorsTotal: len(res.Errors),
		Baseline: &Baseline{Header: h, Entries: next, Digest: digest}}, nil
}

// firstOf is a copy of the first n of s, never nil.
func firstOf[T any](s []T, n int) []T {
	return append(make([]T, 0, min(len(s), n)), s[:min(len(s), n)]...)
}

// Accept folds reviewed changes into the baseline being watched, as the
// command line's accept does (AcceptFile: a scan, a new baseline signed
// with DATA_DIR/integrity.key, its header recording by, the time, the
// paths, the number of changes and comment), and watches with it from
// then on: the paths that no longer differ leave the findings and Status
// at once. Accepts run one at a time; one waits for the watch's scan in
// progress before it takes the new baseline.
//
// By default (not r.Recursive) each path is accepted exactly: itself
// only, and only when the new scan finds it as its current finding
// reported it (and as r.States pins it); every current finding when there
// are no paths. Anything else (no finding, changed again since, could not
// be read) is not folded and is listed in the result's Skipped. With
// r.Recursive each path covers everything below it as it is now (every
// change without paths). Either way what the scan could not read keeps its
// entries.
//
// It refuses (r.Check) bad paths, states or comments, a service that is
// not watching (ErrNotWatching), a baseline file that is no longer the
// one being watched (ErrBaselineChanged), and a baseline signed by
// another key than the data directory's (ErrOtherKey, ErrNoKey).
func (s *Service) Accept(ctx context.Context, r AcceptRequest) (*AcceptResult, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	s.acceptMu.Lock()
	defer s.acceptMu.Unlock()
	s.mu.Lock()
	b, rebase, done, why := s.base, s.rebase, s.watchDone, s.status.Error
	var reviewed []Reviewed
	var skipped []Skipped
	if b != nil && !r.Recursive {
		// What was reported, against this baseline (the watch takes
		// another only from an accept, and accepts wait for each other).
		reviewed, skipped = s.reviewed(r.Paths, r.States)
	}
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
	res, err := AcceptFile(ctx, path, b, key, AcceptOptions{Paths: r.Paths, Exact: !r.Recursive, Reviewed: reviewed, Skipped: skipped,
		By: r.By, Comment: r.Comment})
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
		s.Logger.Info("integrity: changes accepted", "by", r.By, "paths", r.Paths, "recursive", r.Recursive, "changes", res.Accepted,
			"skipped", res.SkippedTotal, "digest", res.Digest)
		if res.ScanErrorsTotal > 0 {
			first := res.ScanErrors[0]
			s.Logger.Warn("integrity: the accept's scan could not read some paths; their baseline entries, and those below them, are kept",
				"errors", res.ScanErrorsTotal, "path", first.Path, "err", first.Error)
		}
	}
	return res, nil
}

// reviewed is what an exact accept of paths (none: every current finding)
// folds: each path with the kind and state of its current finding, and
// the paths refused at once (no current finding, or one reported again
// since the state states pins). s.mu is held.
func (s *Service) reviewed(paths []string, states map[string]string) ([]Reviewed, []Skipped) {
	var out []Reviewed
	var skipped []Skipped
	if len(paths) == 0 {
		out = make([]Reviewed, 0, len(s.differ))
		for p, d := range s.differ {
			out = append(out, Reviewed{Path: p, Kind: d.kind, State: d.state})
		}
		return out, nil
	}
	seen := make(map[string]bool, len(paths))
	for _, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		d := s.differ[p]
		switch {
		case d == nil:
			skipped = append(skipped, Skipped{Path: p, Reason: "no current finding: it does not differ from the baseline as last reported"})
		case states[p] != "" && states[p] != d.state:
			skipped = append(skipped, Skipped{Path: p, Reason: "changed again since it was reviewed: its finding was reported again at " +
				d.time.UTC().Format(time.RFC3339Nano)})
		default:
			out = append(out, Reviewed{Path: p, Kind: d.kind, State: d.state})
		}
	}
	return out, skipped
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
