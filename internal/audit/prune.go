// Retention cuts the chain only at a checkpoint, so that the oldest kept
// entry still links to a signed hash, and leaves a signed prune record so
// that verification can tell retention from deletion; see Prune.

package audit

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// ErrTampered is returned (wrapped) by Prune when the stretch it would
// delete does not verify: deleting it would destroy the evidence.
var ErrTampered = errors.New("audit log failed verification")

// Prune applies retention: it deletes the entries up to the newest
// checkpoint whose entry is older than before, so the chain stays verifiable
// from that checkpoint, and keeps newer entries even if some are older than
// before. Before deleting it verifies the stretch it deletes (and refuses
// with ErrTampered if that fails, rather than destroy evidence), then
// records a signed prune record that Verify starts from. It returns the
// number of entries deleted; 0 when no checkpoint is old enough.
//
// On SQLite the write lock is held while the stretch is verified, so
// appends wait; prune often (daily) to keep each stretch small.
func (l *Log) Prune(ctx context.Context, before time.Time) (removed int64, err error) {
	if l.key == nil {
		return 0, ErrNoKey
	}
	err = l.db.Tx(ctx, func(tx *sql.Tx) error {
		removed = 0
		lock := ""
		if l.db.Dialect == store.Postgres {
			lock = " FOR UPDATE"
		}
		// Lock the head so appends and other replicas' prunes wait.
		var headSeq int64
		if err := tx.QueryRowContext(ctx, `SELECT seq FROM audit_head WHERE id = 1`+lock).Scan(&headSeq); err != nil {
			return fmt.Errorf("audit: prune: read head: %w", err)
		}
		var cut int64
		err := tx.QueryRowContext(ctx, `SELECT c.seq FROM audit_checkpoints c JOIN audit_entries e ON e.seq = c.seq
			WHERE e.at < $1 ORDER BY c.seq DESC LIMIT 1`, store.Micros(before)).Scan(&cut)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: prune: find checkpoint: %w", err)
		}
		pr, err := latestPrune(ctx, tx)
		if err != nil {
			return err
		}
		if cut <= pruneThrough(pr) {
			return nil
		}
		w := &walker{q: tx, pub: l.pub, keyID: l.keyID, end: cut}
		p, err := w.start(ctx, pr)
		if err == nil && p == nil {
			p, err = w.walk(ctx)
		}
		if err != nil {
			return err
		}
		if p == nil && w.lastSeq != cut {
			p = &Problem{Seq: w.expSeq, Kind: KindRemoved, Message: "entries are missing before the retention checkpoint"}
		}
		if p != nil {
			return fmt.Errorf("audit: prune up to entry %d refused, %s: %w; run bulwark audit verify", cut, p, ErrTampered)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM audit_entries WHERE seq <= $1`, cut)
		if err != nil {
			return fmt.Errorf("audit: prune entries: %w", err)
		}
		if removed, err = res.RowsAffected(); err != nil {
			return fmt.Errorf("audit: prune entries: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM audit_checkpoints WHERE seq < $1`, cut); err != nil {
			return fmt.Errorf("audit: prune checkpoints: %w", err)
		}
		at := store.Micros(l.now())
		sig := ed25519.Sign(l.key, pruneMessage(cut, at, removed, w.lastHash))
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_prunes (through_seq, hash, at, removed, key_id, signature)
			VALUES ($1, $2, $3, $4, $5, $6)`, cut, w.lastHash, at, removed, l.keyID, sig); err != nil {
			return fmt.Errorf("audit: record prune: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return removed, nil
}
