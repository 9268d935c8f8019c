package audit

import (
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
	"github.com/google/go-cmp/cmp"
)

// rehashOne recomputes only entry seq's hash, as an attacker who edits an
// entry and "fixes" its hash would, leaving its successor's link alone.
func rehashOne(t testing.TB, db *store.DB, seq int64) {
	t.Helper()
	var r row
	err := db.QueryRow(`SELECT `+entryColumns+` FROM audit_entries WHERE seq = $1`, seq).
		Scan(&r.seq, &r.at, &r.actor, &r.source, &r.action, &r.resource, &r.result, &r.details, &r.prev, &r.hash)
	if err != nil {
		t.Fatal(err)
	}
	h := entryHash(r.prev, appendCanonical(nil, r.seq, r.at, r.actor, r.source, r.action, r.resource, r.result, r.details))
	mustExec(t, db, `UPDATE audit_entries SET hash = $1 WHERE seq = $2`, h, seq)
}

func swapSeqs(t testing.TB, db *store.DB, a, b int64) {
	t.Helper()
	mustExec(t, db, `UPDATE audit_entries SET seq = -1 WHERE seq = $1`, a)
	mustExec(t, db, `UPDATE audit_entries SET seq = $1 WHERE seq = $2`, a, b)
	mustExec(t, db, `UPDATE audit_entries SET seq = $1 WHERE seq = -1`, b)
}

func rewindHead(t testing.TB, db *store.DB, seq int64) {
	t.Helper()
	mustExec(t, db, `UPDATE audit_head SET seq = $1, hash = (SELECT hash FROM audit_entries WHERE seq = $1) WHERE id = 1`, seq)
}

// TestAttacks edits the database behind the Log's back, as someone with
// write access to it would, and checks Verify names the first bad entry.
// The log has 23 entries with checkpoints at 1, 5, 10, 15 and 20; the
// anchor, when used, was taken at entry 23 before the attack.
func TestAttacks(t *testing.T) {
	attacker := testKey(66)
	tests := []struct {
		name   string
		mutate func(t *testing.T, db *store.DB)
		// useAnchor verifies with the anchor taken before the attack,
		// edited by editAnchor if set.
		useAnchor  bool
		editAnchor func(a *Anchor)
		// verifyKey, if set, is the key of the Log that verifies (the
		// data-directory key after it was replaced).
		verifyKey ed25519.PrivateKey
		want      *Problem // nil: the attack is not detectable this way
	}{
		{name: "untouched log", mutate: func(*testing.T, *store.DB) {}, useAnchor: true},
		{name: "change the actor of an entry", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_entries SET actor = 'user:mallory' WHERE seq = 7`)
		}, want: &Problem{Seq: 7, Kind: KindAltered}},
		{name: "change the time of an entry", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_entries SET at = at - 1 WHERE seq = 7`)
		}, want: &Problem{Seq: 7, Kind: KindAltered}},
		{name: "change the details of an entry", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_entries SET details = '{}' WHERE seq = 7`)
		}, want: &Problem{Seq: 7, Kind: KindAltered}},
		{name: "change an entry and recompute its hash", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_entries SET result = 'ok' WHERE seq = 7`)
			rehashOne(t, db, 7)
		}, want: &Problem{Seq: 7, Kind: KindAltered}},
		{name: "change the newest entry and recompute its hash", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_entries SET actor = 'user:mallory' WHERE seq = 23`)
			rehashOne(t, db, 23)
		}, want: &Problem{Seq: 23, Kind: KindAltered}},
		{name: "delete an entry", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `DELETE FROM audit_entries WHERE seq = 7`)
		}, want: &Problem{Seq: 7, Kind: KindRemoved}},
		{name: "delete the first entry", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `DELETE FROM audit_entries WHERE seq = 1`)
		}, want: &Problem{Seq: 1, Kind: KindRemoved}},
		{name: "swap two entries", mutate: func(t *testing.T, db *store.DB) {
			swapSeqs(t, db, 7, 12)
		}, want: &Problem{Seq: 7, Kind: KindReordered}},
		{name: "swap adjacent entries", mutate: func(t *testing.T, db *store.DB) {
			swapSeqs(t, db, 8, 9)
		}, want: &Problem{Seq: 8, Kind: KindReordered}},
		{name: "delete the newest entries", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `DELETE FROM audit_entries WHERE seq > 18`)
		}, want: &Problem{Seq: 19, Kind: KindTruncated}},
		{name: "delete the newest entries and rewind the head", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `DELETE FROM audit_entries WHERE seq > 18`)
			rewindHead(t, db, 18)
		}, want: &Problem{Seq: 19, Kind: KindTruncated}}, // checkpoint 20 is beyond the end
		{name: "delete the newest entries, their checkpoints, rewind the head; anchor", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `DELETE FROM audit_entries WHERE seq > 18`)
			mustExec(t, db, `DELETE FROM audit_checkpoints WHERE seq > 18`)
			rewindHead(t, db, 18)
		}, useAnchor: true, want: &Problem{Seq: 19, Kind: KindTruncated}},
		{name: "delete the newest entries, their checkpoints, rewind the head; no anchor", mutate: func(t *testing.T, db *store.DB) {
			// Documented limit: without an anchor a tidy truncation after
			// the last checkpoint left is invisible.
			mustExec(t, db, `DELETE FROM audit_entries WHERE seq > 18`)
			mustExec(t, db, `DELETE FROM audit_checkpoints WHERE seq > 18`)
			rewindHead(t, db, 18)
		}, want: nil},
		{name: "forge a checkpoint signature", mutate: func(t *testing.T, db *store.DB) {
			var sig []byte
			if err := db.QueryRow(`SELECT signature FROM audit_checkpoints WHERE seq = 10`).Scan(&sig); err != nil {
				t.Fatal(err)
			}
			sig[0] ^= 1
			mustExec(t, db, `UPDATE audit_checkpoints SET signature = $1 WHERE seq = 10`, sig)
		}, want: &Problem{Seq: 10, Kind: KindBadCheckpoint}},
		{name: "move a checkpoint's promise", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_checkpoints SET next_seq = 1000 WHERE seq = 10`)
		}, want: &Problem{Seq: 10, Kind: KindBadCheckpoint}},
		{name: "recompute the chain after an edit, without the key", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_entries SET actor = 'user:mallory' WHERE seq = 7`)
			rehash(t, db, 7, nil)
		}, want: &Problem{Seq: 10, Kind: KindBadCheckpoint}},
		{name: "recompute the chain and the checkpoint hashes, without the key", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_entries SET actor = 'user:mallory' WHERE seq = 7`)
			rehash(t, db, 7, nil)
			mustExec(t, db, `UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_entries e WHERE e.seq = audit_checkpoints.seq)`)
		}, want: &Problem{Seq: 10, Kind: KindBadCheckpoint}},
		{name: "recompute the chain and delete every checkpoint", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_entries SET actor = 'user:mallory' WHERE seq = 7`)
			rehash(t, db, 7, nil)
			mustExec(t, db, `DELETE FROM audit_checkpoints`)
		}, want: &Problem{Seq: 1, Kind: KindBadCheckpoint}},
		{name: "recompute the chain and delete the checkpoints after the edit", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_entries SET actor = 'user:mallory' WHERE seq = 7`)
			rehash(t, db, 7, nil)
			mustExec(t, db, `DELETE FROM audit_checkpoints WHERE seq > 7`)
		}, want: &Problem{Seq: 10, Kind: KindBadCheckpoint}},
		{name: "key holder rewrites the chain; anchor", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_entries SET actor = 'user:mallory' WHERE seq = 7`)
			rehash(t, db, 7, testKey(1))
		}, useAnchor: true, want: &Problem{Seq: 23, Kind: KindAltered}},
		{name: "key holder rewrites the chain; no anchor", mutate: func(t *testing.T, db *store.DB) {
			// Documented limit: whoever holds audit.key and the database
			// can rewrite everything after the last anchor.
			mustExec(t, db, `UPDATE audit_entries SET actor = 'user:mallory' WHERE seq = 7`)
			rehash(t, db, 7, testKey(1))
		}, want: nil},
		{name: "audit.key replaced", mutate: func(*testing.T, *store.DB) {},
			verifyKey: attacker, want: &Problem{Seq: 1, Kind: KindBadCheckpoint}},
		{name: "audit.key replaced and the whole chain re-signed; anchor", mutate: func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_entries SET actor = 'user:mallory' WHERE seq = 7`)
			rehash(t, db, 1, attacker)
		}, verifyKey: attacker, useAnchor: true, want: &Problem{Seq: 23, Kind: KindBadAnchor}},
		{name: "anchor edited", mutate: func(*testing.T, *store.DB) {},
			useAnchor: true, editAnchor: func(a *Anchor) { a.Seq = 30 }, want: &Problem{Seq: 30, Kind: KindBadAnchor}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				l, _ := newTestLog(db, 5)
				fill(t, l, 23)
				anchor, err := l.Anchor(ctx)
				if err != nil {
					t.Fatal(err)
				}
				tt.mutate(t, db)
				v := l
				if tt.verifyKey != nil {
					v = New(db, tt.verifyKey, Options{CheckpointEvery: 5})
				}
				var o VerifyOptions
				if tt.useAnchor {
					if tt.editAnchor != nil {
						tt.editAnchor(&anchor)
					}
					o.Anchor = &anchor
				}
				rep, err := v.Verify(ctx, o)
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				var got *Problem
				if rep.Problem != nil {
					got = &Problem{Seq: rep.Problem.Seq, Kind: rep.Problem.Kind}
					t.Logf("problem: %s", rep.Problem)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("problem (-want +got):\n%s", diff)
				}
				if rep.OK != (tt.want == nil) {
					t.Errorf("OK = %v, want %v", rep.OK, tt.want == nil)
				}
			}, Migrations)
		})
	}
}
