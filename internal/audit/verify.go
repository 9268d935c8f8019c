// Verification walks the chain in seq order, in batches (so no two queries
// are ever open at once, which lets the same walker run inside a
// transaction for Prune), and for every entry checks, in this order:
//
//  1. its seq is the next one expected (a gap means entries were removed);
//  2. its stored prev hash is the previous entry's hash (the chain's start
//     is 32 zero bytes, or the checkpoint retention cut the log at);
//  3. SHA-256(prev || canonical encoding) equals its stored hash;
//  4. a checkpoint at its seq, if any, names its hash, carries a valid
//     signature by the expected key and promises the next checkpoint later;
//     and a checkpoint is present where the previous one promised it.
//
// The first failure stops the walk and is classified by what it looks like:
// a row that hashes correctly but links to another predecessor means the
// predecessor was rewritten with a recomputed hash; a row that neither links
// nor hashes while the real successor of the previous entry sits at another
// seq means entries were reordered. After the walk, the head row, the
// anchor and any checkpoint past the last entry tell whether the newest
// entries were cut off.

package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
)

// Problem kinds reported by Verify.
const (
	KindAltered       = "altered"        // an entry's content or hash was changed
	KindRemoved       = "removed"        // entries are missing inside the chain or at its start
	KindReordered     = "reordered"      // entries were moved to other seqs
	KindTruncated     = "truncated"      // the newest entries are missing
	KindBadCheckpoint = "bad-checkpoint" // a checkpoint or prune record is missing, wrong or badly signed
	KindBadAnchor     = "bad-anchor"     // the anchor is not signed by the key
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Anchor, if set, is an anchor exported earlier (ReadAnchor): entries up
	// to its seq must still exist with its hash.
	Anchor *Anchor
	// PublicKey verifies checkpoints and the anchor; nil means the Log's own
	// key. Pass a key kept apart from the data directory to notice a
	// replaced audit.key.
	PublicKey ed25519.PublicKey
	// Progress, if set, is called with the number of entries checked so
	// far, every few thousand entries and at the end.
	Progress func(done int64)
}

// Report is the outcome of Verify.
type Report struct {
	// Entries and Checkpoints count what was checked.
	Entries, Checkpoints int64
	// FirstSeq and LastSeq are the first and last entries checked (0 when
	// none).
	FirstSeq, LastSeq int64
	// PrunedThrough is the seq retention removed entries up to (0 if never).
	PrunedThrough int64
	// AnchorChecked is false when an anchor was given but is older than
	// the retained log, so it could not be compared.
	AnchorChecked bool
	// OK is true when nothing was found wrong.
	OK bool
	// Problem is the first problem found, nil when OK.
	Problem *Problem
}

// Problem names the first entry found wrong.
type Problem struct {
	Seq     int64
	Kind    string
	Message string
}

// String formats the problem for people: "entry 7: altered: ...".
func (p *Problem) String() string {
	return fmt.Sprintf("entry %d: %s: %s", p.Seq, p.Kind, p.Message)
}

// querier is what the walker reads through: *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// verifyBatch is how many entries the walker reads per query.
const verifyBatch = 8192

// progressEvery is how often (in entries) Progress is called.
const progressEvery = 16384

type row struct {
	seq, at                                          int64
	actor, source, action, resource, result, details []byte
	prev, hash                                       []byte
}

type checkpointRow struct {
	seq, next, at int64
	hash          []byte
	keyID         string
	sig           []byte
}

// walker verifies a stretch of the chain; see the file comment.
type walker struct {
	q     querier
	pub   ed25519.PublicKey
	keyID string
	end   int64 // last seq to read; 0 reads to the end

	expSeq   int64  // next seq expected
	prev     []byte // hash the next entry must link to
	nextCP   int64  // seq the next checkpoint is due at
	cpSigned int64  // newest seq whose hash a verified checkpoint confirmed

	entries, checkpoints int64
	firstSeq, lastSeq    int64
	lastHash             []byte

	onEntry  func(seq int64, hash []byte) *Problem
	progress func(int64)
}

func (w *walker) walk(ctx context.Context) (*Problem, error) {
	var (
		canon []byte
		sum   = make([]byte, 0, HashSize)
		h     = sha256.New()
		batch = make([]row, 0, verifyBatch)
	)
	for {
		after := w.expSeq - 1
		var err error
		batch, err = w.readBatch(ctx, after, batch[:0])
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			break
		}
		cps, err := readCheckpoints(ctx, w.q, after, batch[len(batch)-1].seq)
		if err != nil {
			return nil, err
		}
		ci := 0
		for i := range batch {
			r := &batch[i]
			if r.seq != w.expSeq {
				msg := fmt.Sprintf("entries %d to %d are missing", w.expSeq, r.seq-1)
				if r.seq-1 == w.expSeq {
					msg = fmt.Sprintf("entry %d is missing", w.expSeq)
				}
				return &Problem{Seq: w.expSeq, Kind: KindRemoved, Message: msg}, nil
			}
			// Hash with the prev hash the chain expects: a match proves the
			// stored prev hash too, so it is read only when explaining a
			// failure (one column less per row keeps the walk fast).
			canon = appendCanonical(canon[:0], r.seq, r.at, r.actor, r.source, r.action, r.resource, r.result, r.details)
			h.Reset()
			h.Write(w.prev)
			h.Write(canon)
			sum = h.Sum(sum[:0])
			if !bytes.Equal(sum, r.hash) {
				if err := w.q.QueryRowContext(ctx, `SELECT prev_hash FROM audit_entries WHERE seq = $1`, r.seq).Scan(&r.prev); err != nil {
					return nil, fmt.Errorf("audit: verify: read entry %d: %w", r.seq, err)
				}
				self := entryHash(r.prev, canon)
				return w.classify(ctx, r, bytes.Equal(self, r.hash))
			}
			for ci < len(cps) && cps[ci].seq < r.seq {
				ci++ // cannot happen while seqs are contiguous; kept for safety
			}
			if ci < len(cps) && cps[ci].seq == r.seq {
				if p := w.checkpoint(&cps[ci], r.hash); p != nil {
					return p, nil
				}
				ci++
			} else if r.seq >= w.nextCP {
				return &Problem{Seq: r.seq, Kind: KindBadCheckpoint,
					Message: fmt.Sprintf("the checkpoint due at entry %d is missing", r.seq)}, nil
			}
			if w.onEntry != nil {
				if p := w.onEntry(r.seq, r.hash); p != nil {
					return p, nil
				}
			}
			if w.entries == 0 {
				w.firstSeq = r.seq
			}
			w.entries++
			w.lastSeq = r.seq
			w.lastHash = r.hash
			w.prev = r.hash
			w.expSeq++
			if w.progress != nil && w.entries%progressEvery == 0 {
				w.progress(w.entries)
			}
		}
		if len(batch) < verifyBatch {
			break
		}
	}
	if w.progress != nil {
		w.progress(w.entries)
	}
	return nil, nil
}

func (w *walker) readBatch(ctx context.Context, after int64, batch []row) ([]row, error) {
	const cols = `seq, at, actor, source, action, resource, result, details, hash`
	q := `SELECT ` + cols + ` FROM audit_entries WHERE seq > $1 ORDER BY seq LIMIT $2`
	args := []any{after, verifyBatch}
	if w.end > 0 {
		q = `SELECT ` + cols + ` FROM audit_entries WHERE seq > $1 AND seq <= $3 ORDER BY seq LIMIT $2`
		args = append(args, w.end)
	}
	rows, err := w.q.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: read entries after %d: %w", after, err)
	}
	defer rows.Close()
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.at, &r.actor, &r.source, &r.action, &r.resource, &r.result, &r.details, &r.hash); err != nil {
			return nil, fmt.Errorf("audit: verify: read entry after %d: %w", after, err)
		}
		batch = append(batch, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: verify: read entries after %d: %w", after, err)
	}
	return batch, nil
}

func readCheckpoints(ctx context.Context, q querier, after, through int64) ([]checkpointRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, next_seq, at, hash, key_id, signature FROM audit_checkpoints
		WHERE seq > $1 AND seq <= $2 ORDER BY seq`, after, through)
	if err != nil {
		return nil, fmt.Errorf("audit: verify: read checkpoints: %w", err)
	}
	defer rows.Close()
	var out []checkpointRow
	for rows.Next() {
		var c checkpointRow
		if err := rows.Scan(&c.seq, &c.next, &c.at, &c.hash, &c.keyID, &c.sig); err != nil {
			return nil, fmt.Errorf("audit: verify: read checkpoint: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: verify: read checkpoints: %w", err)
	}
	return out, nil
}

// checkpoint verifies c against the entry hash it must name.
func (w *walker) checkpoint(c *checkpointRow, entryHash []byte) *Problem {
	if p := checkCheckpoint(c, w.pub, w.keyID); p != nil {
		return p
	}
	if !bytes.Equal(c.hash, entryHash) {
		return &Problem{Seq: c.seq, Kind: KindBadCheckpoint,
			Message: fmt.Sprintf("the signed checkpoint names a different hash than entry %d has: the chain up to here was rewritten", c.seq)}
	}
	w.nextCP = c.next
	w.cpSigned = c.seq
	w.checkpoints++
	return nil
}

// checkCheckpoint checks c's key, signature and promise.
func checkCheckpoint(c *checkpointRow, pub ed25519.PublicKey, keyID string) *Problem {
	if c.keyID != keyID {
		return &Problem{Seq: c.seq, Kind: KindBadCheckpoint,
			Message: fmt.Sprintf("checkpoint is signed by key %s, but the log is verified with key %s (was audit.key replaced?)", c.keyID, keyID)}
	}
	if !ed25519.Verify(pub, checkpointMessage(c.seq, c.next, c.at, c.hash), c.sig) {
		return &Problem{Seq: c.seq, Kind: KindBadCheckpoint, Message: "checkpoint signature is invalid"}
	}
	if c.next <= c.seq {
		return &Problem{Seq: c.seq, Kind: KindBadCheckpoint, Message: "checkpoint promises its successor at an earlier seq"}
	}
	return nil
}

// classify explains the first entry r that does not continue the chain.
// selfConsistent says whether r's stored hash matches its own content and
// stored prev hash.
func (w *walker) classify(ctx context.Context, r *row, selfConsistent bool) (*Problem, error) {
	first := r.seq == w.firstSeqOrStart()
	if bytes.Equal(r.prev, w.prev) {
		return &Problem{Seq: r.seq, Kind: KindAltered, Message: "the entry's content does not match its hash"}, nil
	}
	if selfConsistent {
		if !first && w.cpSigned != r.seq-1 {
			// The predecessor's hash was recomputed after editing it; only
			// the link held by this entry still remembers the original.
			return &Problem{Seq: r.seq - 1, Kind: KindAltered,
				Message: fmt.Sprintf("entry %d records a different hash for its predecessor: entry %d was altered and its hash recomputed", r.seq, r.seq-1)}, nil
		}
		return &Problem{Seq: r.seq, Kind: KindAltered,
			Message: "the entry matches its own hash but does not continue the chain: it was replaced"}, nil
	}
	// Does the genuine successor of the previous entry live elsewhere?
	var at int64
	err := w.q.QueryRowContext(ctx, `SELECT seq FROM audit_entries WHERE prev_hash = $1 AND seq <> $2 LIMIT 1`, w.prev, r.seq).Scan(&at)
	switch {
	case err == nil:
		return &Problem{Seq: r.seq, Kind: KindReordered,
			Message: fmt.Sprintf("the entry that belongs at %d is stored at %d", r.seq, at)}, nil
	case errors.Is(err, sql.ErrNoRows):
	default:
		return nil, fmt.Errorf("audit: verify: look for entry %d: %w", r.seq, err)
	}
	if first {
		return &Problem{Seq: r.seq, Kind: KindAltered,
			Message: "the first entry does not continue from the start of the chain (genesis or the retention checkpoint)"}, nil
	}
	return &Problem{Seq: r.seq, Kind: KindAltered,
		Message: fmt.Sprintf("the entry neither matches its hash nor links to entry %d", r.seq-1)}, nil
}

// firstSeqOrStart is the seq the walk began at.
func (w *walker) firstSeqOrStart() int64 {
	return w.expSeq - w.entries
}

type pruneRow struct {
	through, at, removed int64
	hash                 []byte
	keyID                string
	sig                  []byte
}

func latestPrune(ctx context.Context, q querier) (*pruneRow, error) {
	var p pruneRow
	err := q.QueryRowContext(ctx, `SELECT through_seq, at, removed, hash, key_id, signature FROM audit_prunes
		ORDER BY through_seq DESC LIMIT 1`).Scan(&p.through, &p.at, &p.removed, &p.hash, &p.keyID, &p.sig)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read prune record: %w", err)
	}
	return &p, nil
}

func readCheckpoint(ctx context.Context, q querier, seq int64) (*checkpointRow, error) {
	c := checkpointRow{seq: seq}
	err := q.QueryRowContext(ctx, `SELECT next_seq, at, hash, key_id, signature FROM audit_checkpoints WHERE seq = $1`, seq).
		Scan(&c.next, &c.at, &c.hash, &c.keyID, &c.sig)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: read checkpoint %d: %w", seq, err)
	}
	return &c, nil
}

// start positions w at the beginning of the retained chain: genesis, or the
// checkpoint the latest prune record names. A Problem means the start
// itself is not trustworthy.
func (w *walker) start(ctx context.Context, pr *pruneRow) (*Problem, error) {
	w.expSeq, w.prev, w.nextCP = 1, genesis, 1
	if pr == nil {
		return nil, nil
	}
	if pr.keyID != w.keyID || !ed25519.Verify(w.pub, pruneMessage(pr.through, pr.at, pr.removed, pr.hash), pr.sig) {
		return &Problem{Seq: pr.through, Kind: KindBadCheckpoint,
			Message: fmt.Sprintf("the record of retention up to entry %d is not signed by key %s", pr.through, w.keyID)}, nil
	}
	c, err := readCheckpoint(ctx, w.q, pr.through)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return &Problem{Seq: pr.through, Kind: KindBadCheckpoint,
			Message: fmt.Sprintf("the checkpoint at entry %d, where retention cut the log, is missing", pr.through)}, nil
	}
	if p := checkCheckpoint(c, w.pub, w.keyID); p != nil {
		return p, nil
	}
	if !bytes.Equal(c.hash, pr.hash) {
		return &Problem{Seq: pr.through, Kind: KindBadCheckpoint,
			Message: "the retention checkpoint's hash differs from the signed prune record"}, nil
	}
	w.expSeq, w.prev, w.nextCP, w.cpSigned = pr.through+1, c.hash, c.next, pr.through
	w.checkpoints++
	return nil, nil
}

// Verify checks the whole retained chain and reports the first problem
// (Report.OK false, Report.Problem set). The error is only for failures to
// read the database. Verify may run while entries are appended; run it
// apart from Prune (a prune racing it is noticed and the walk retried).
func (l *Log) Verify(ctx context.Context, o VerifyOptions) (Report, error) {
	for attempt := 0; ; attempt++ {
		rep, pr, err := l.verifyOnce(ctx, o)
		if err != nil || rep.OK || attempt == 2 {
			return rep, err
		}
		// If retention moved the start while we walked, walk again.
		now, err := latestPrune(ctx, l.db)
		if err != nil {
			return rep, err
		}
		if pruneThrough(now) == pruneThrough(pr) {
			return rep, nil
		}
	}
}

func pruneThrough(p *pruneRow) int64 {
	if p == nil {
		return 0
	}
	return p.through
}

func (l *Log) verifyOnce(ctx context.Context, o VerifyOptions) (Report, *pruneRow, error) {
	pub := o.PublicKey
	if pub == nil {
		pub = l.pub
	}
	if len(pub) != ed25519.PublicKeySize {
		return Report{}, nil, fmt.Errorf("audit: verify needs the public key: %w", ErrNoKey)
	}
	var rep Report
	fail := func(p *Problem) Report {
		rep.Problem = p
		return rep
	}
	a := o.Anchor
	if a != nil {
		if err := verifyAnchor(*a, pub); err != nil {
			return fail(&Problem{Seq: a.Seq, Kind: KindBadAnchor, Message: err.Error()}), nil, nil
		}
	}
	// Read the head before the entries: entries only grow, so a head
	// beyond the last entry read later means entries were cut off.
	headSeq, headHash, err := l.Head(ctx)
	if err != nil {
		return Report{}, nil, err
	}
	pr, err := latestPrune(ctx, l.db)
	if err != nil {
		return Report{}, nil, err
	}
	rep.PrunedThrough = pruneThrough(pr)
	w := &walker{q: l.db, pub: pub, keyID: KeyID(pub), progress: o.Progress}
	if p, err := w.start(ctx, pr); err != nil || p != nil {
		if err != nil {
			return Report{}, nil, err
		}
		return fail(p), pr, nil
	}
	w.onEntry = func(seq int64, hash []byte) *Problem {
		if a != nil && seq == a.Seq {
			rep.AnchorChecked = true
			if !bytes.Equal(hash, a.Hash) {
				return &Problem{Seq: seq, Kind: KindAltered,
					Message: "the entry's hash differs from the anchor: the log up to here was rewritten by someone holding the signing key"}
			}
		}
		if seq == headSeq && !bytes.Equal(hash, headHash) {
			return &Problem{Seq: seq, Kind: KindAltered, Message: "the entry's hash differs from the head row: it was replaced"}
		}
		return nil
	}
	p, err := w.walk(ctx)
	rep.Entries, rep.Checkpoints, rep.FirstSeq, rep.LastSeq = w.entries, w.checkpoints, w.firstSeq, w.lastSeq
	if err != nil {
		return Report{}, nil, err
	}
	if p != nil {
		return fail(p), pr, nil
	}
	last := w.expSeq - 1 // the last entry present (or the prune point)
	if a != nil {
		switch {
		case a.Seq > last:
			return fail(&Problem{Seq: last + 1, Kind: KindTruncated,
				Message: fmt.Sprintf("the log ends at entry %d, but the anchor of %s proves entries up to %d", last, a.Time.Format("2006-01-02 15:04:05Z07:00"), a.Seq)}), pr, nil
		case a.Seq == 0:
			rep.AnchorChecked = bytes.Equal(a.Hash, genesis)
		case a.Seq == rep.PrunedThrough:
			rep.AnchorChecked = true
			if !bytes.Equal(a.Hash, pr.hash) {
				return fail(&Problem{Seq: a.Seq, Kind: KindAltered, Message: "the retention checkpoint's hash differs from the anchor"}), pr, nil
			}
		}
	}
	var beyond int64
	err = l.db.QueryRowContext(ctx, `SELECT seq FROM audit_checkpoints WHERE seq > $1 ORDER BY seq LIMIT 1`, last).Scan(&beyond)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return Report{}, nil, fmt.Errorf("audit: verify: read checkpoints: %w", err)
	default:
		// A checkpoint commits with its entry, so an entry appended after
		// the walk explains it; otherwise entries were cut off.
		var n int
		if err := l.db.QueryRowContext(ctx, `SELECT count(*) FROM audit_entries WHERE seq = $1`, beyond).Scan(&n); err != nil {
			return Report{}, nil, fmt.Errorf("audit: verify: %w", err)
		}
		if n == 0 {
			return fail(&Problem{Seq: last + 1, Kind: KindTruncated,
				Message: fmt.Sprintf("the log ends at entry %d, but a checkpoint exists for entry %d", last, beyond)}), pr, nil
		}
	}
	if headSeq > last {
		return fail(&Problem{Seq: last + 1, Kind: KindTruncated,
			Message: fmt.Sprintf("the log ends at entry %d, but its head row records entry %d", last, headSeq)}), pr, nil
	}
	rep.OK = true
	return rep, pr, nil
}

var _ querier = (*sql.DB)(nil)
var _ querier = (*sql.Tx)(nil)
