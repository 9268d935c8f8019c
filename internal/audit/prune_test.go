package audit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
	"github.com/google/go-cmp/cmp"
)

// prunedLog returns a log of 23 entries (checkpoints at 1, 5, 10, 15, 20)
// pruned before entry 12's time, so through checkpoint 10.
func prunedLog(t *testing.T, db *store.DB) (*Log, []Entry) {
	t.Helper()
	l, _ := newTestLog(db, 5)
	entries := fill(t, l, 23)
	n, err := l.Prune(context.Background(), entries[11].Time)
	if err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if n != 10 {
		t.Fatalf("Prune removed %d entries, want 10 (through checkpoint 10)", n)
	}
	return l, entries
}

func TestPrune(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l, entries := prunedLog(t, db)
		rep, err := l.Verify(ctx, VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Checkpoints: 10 (the start), 15, 20.
		want := Report{Entries: 13, Checkpoints: 3, FirstSeq: 11, LastSeq: 23, PrunedThrough: 10, OK: true}
		if diff := cmp.Diff(want, rep); diff != "" {
			t.Errorf("report after prune (-want +got):\n%s", diff)
		}
		if got, err := l.Query(ctx, Filter{}); err != nil || len(got) != 13 || got[0].Seq != 11 {
			t.Errorf("Query after prune: %d entries from %v, %v; want 13 from 11", len(got), got[0].Seq, err)
		}

		t.Run("again is a no-op", func(t *testing.T) {
			n, err := l.Prune(ctx, entries[11].Time)
			if err != nil || n != 0 {
				t.Errorf("second Prune = %d, %v; want 0", n, err)
			}
		})
		t.Run("nothing old enough", func(t *testing.T) {
			n, err := l.Prune(ctx, entries[0].Time)
			if err != nil || n != 0 {
				t.Errorf("Prune before the first entry = %d, %v; want 0", n, err)
			}
		})
		t.Run("appends continue and a later prune stacks", func(t *testing.T) {
			fill(t, l, 10)
			n, err := l.Prune(ctx, time.Now().Add(100*365*24*time.Hour))
			if err != nil || n != 20 {
				t.Fatalf("Prune everything = %d, %v; want 20 (11..30)", n, err)
			}
			rep, err := l.Verify(ctx, VerifyOptions{})
			if err != nil || !rep.OK || rep.FirstSeq != 31 || rep.PrunedThrough != 30 {
				t.Errorf("Verify = %+v, %v; want OK from 31", rep, err)
			}
		})
	}, Migrations)
}

func TestPruneAttacks(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, db *store.DB)
		want   Problem
	}{
		{"delete the first kept entry", func(t *testing.T, db *store.DB) {
			mustExec(t, db, `DELETE FROM audit_entries WHERE seq = 11`)
		}, Problem{Seq: 11, Kind: KindRemoved}},
		{"delete more up to the next checkpoint", func(t *testing.T, db *store.DB) {
			mustExec(t, db, `DELETE FROM audit_entries WHERE seq <= 15`)
			mustExec(t, db, `DELETE FROM audit_checkpoints WHERE seq < 15`)
		}, Problem{Seq: 10, Kind: KindBadCheckpoint}},
		{"delete more and the prune record", func(t *testing.T, db *store.DB) {
			mustExec(t, db, `DELETE FROM audit_entries WHERE seq <= 15`)
			mustExec(t, db, `DELETE FROM audit_prunes`)
		}, Problem{Seq: 1, Kind: KindRemoved}},
		{"forge a later prune record", func(t *testing.T, db *store.DB) {
			mustExec(t, db, `DELETE FROM audit_entries WHERE seq <= 15`)
			mustExec(t, db, `UPDATE audit_prunes SET through_seq = 15, hash = (SELECT hash FROM audit_checkpoints WHERE seq = 15)`)
		}, Problem{Seq: 15, Kind: KindBadCheckpoint}},
		{"alter the first kept entry", func(t *testing.T, db *store.DB) {
			mustExec(t, db, `UPDATE audit_entries SET actor = 'x' WHERE seq = 11`)
			rehashOne(t, db, 11)
		}, Problem{Seq: 11, Kind: KindAltered}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, db *store.DB) {
				l, _ := prunedLog(t, db)
				tt.mutate(t, db)
				rep, err := l.Verify(context.Background(), VerifyOptions{})
				if err != nil {
					t.Fatal(err)
				}
				var got Problem
				if rep.Problem != nil {
					got = Problem{Seq: rep.Problem.Seq, Kind: rep.Problem.Kind}
					t.Logf("problem: %s", rep.Problem)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("problem (-want +got):\n%s", diff)
				}
			}, Migrations)
		})
	}
}

func TestPruneRefusesTamperedStretch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l, _ := newTestLog(db, 5)
		entries := fill(t, l, 23)
		mustExec(t, db, `UPDATE audit_entries SET actor = 'x' WHERE seq = 3`)
		n, err := l.Prune(ctx, entries[11].Time)
		if !errors.Is(err, ErrTampered) {
			t.Fatalf("Prune over a tampered stretch = %d, %v; want ErrTampered", n, err)
		}
		var count int
		if err := db.QueryRow(`SELECT count(*) FROM audit_entries`).Scan(&count); err != nil {
			t.Fatal(err)
		}
		if count != 23 {
			t.Errorf("%d entries left after refused prune, want 23 (evidence kept)", count)
		}
	}, Migrations)
}

func TestAnchorOlderThanRetention(t *testing.T) {
	db := storetest.SQLite(t, Migrations)
	ctx := context.Background()
	l, _ := newTestLog(db, 5)
	fill(t, l, 3)
	old, err := l.Anchor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries := fill(t, l, 20)
	if _, err := l.Prune(ctx, entries[10].Time); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(ctx, VerifyOptions{Anchor: &old})
	if err != nil || !rep.OK || rep.AnchorChecked {
		t.Errorf("Verify with a pre-retention anchor = %+v, %v; want OK and AnchorChecked false", rep, err)
	}
	fresh, err := l.Anchor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = l.Verify(ctx, VerifyOptions{Anchor: &fresh})
	if err != nil || !rep.OK || !rep.AnchorChecked {
		t.Errorf("Verify with a fresh anchor = %+v, %v; want OK and AnchorChecked", rep, err)
	}
}
