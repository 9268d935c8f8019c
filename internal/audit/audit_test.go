package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
	"github.com/google/go-cmp/cmp"
)

func TestCanonicalKnownAnswer(t *testing.T) {
	data, err := os.ReadFile("testdata/canonical_v1.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		want[k] = v
	}
	when := time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)
	if got := strconv.FormatInt(store.Micros(when), 10); got != want["micros"] {
		t.Errorf("micros = %s, want %s", got, want["micros"])
	}
	details, err := canonicalDetails(map[string]any{"n": 3, "mfa": true, "method": "password"})
	if err != nil {
		t.Fatal(err)
	}
	canon := appendCanonical(nil, 42, store.Micros(when), []byte("user:alice"), []byte("192.0.2.7"),
		[]byte("user.login"), []byte("user:alice"), []byte("ok"), details)
	if got := hex.EncodeToString(canon); got != want["canonical"] {
		t.Errorf("canonical =\n%s\nwant\n%s", got, want["canonical"])
	}
	prev, err := hex.DecodeString(want["prev"])
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(entryHash(prev, canon)); got != want["hash"] {
		t.Errorf("hash = %s, want %s", got, want["hash"])
	}
}

func TestCanonicalDetails(t *testing.T) {
	type point struct {
		Y int `json:"y"`
		X int `json:"x"`
	}
	tests := []struct {
		name string
		in   map[string]any
		want string
	}{
		{"nil", nil, `{}`},
		{"empty", map[string]any{}, `{}`},
		{"sorted keys", map[string]any{"b": 1, "a": 2}, `{"a":2,"b":1}`},
		{"nested and struct sorted", map[string]any{"p": point{Y: 1, X: 2}, "m": map[string]any{"z": true, "a": nil}}, `{"m":{"a":null,"z":true},"p":{"x":2,"y":1}}`},
		{"no html escaping", map[string]any{"s": "<a>&"}, `{"s":"<a>&"}`},
		{"large integer exact", map[string]any{"n": int64(1) << 62}, `{"n":4611686018427387904}`},
		{"float", map[string]any{"f": 0.5}, `{"f":0.5}`},
		{"control chars escaped", map[string]any{"s": "a\x00b\n"}, `{"s":"a\u0000b\n"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := canonicalDetails(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	if _, err := canonicalDetails(map[string]any{"c": make(chan int)}); err == nil {
		t.Error("a channel in details was accepted, want an error")
	}
}

func TestAppendRejectsInvalid(t *testing.T) {
	db := storetest.SQLite(t, Migrations)
	l, _ := newTestLog(db, 10)
	ok := Entry{Actor: "a", Action: "x.y", Result: ResultOK}
	tests := []struct {
		name string
		edit func(*Entry)
	}{
		{"empty action", func(e *Entry) { e.Action = "" }},
		{"unknown result", func(e *Entry) { e.Result = "maybe" }},
		{"oversized actor", func(e *Entry) { e.Actor = strings.Repeat("a", MaxFieldBytes+1) }},
		{"NUL in resource", func(e *Entry) { e.Resource = "a\x00b" }},
		{"invalid UTF-8 source", func(e *Entry) { e.Source = "\xff" }},
		{"oversized details", func(e *Entry) { e.Details = map[string]any{"x": strings.Repeat("a", MaxDetailsBytes)} }},
		{"time before 1970", func(e *Entry) { e.Time = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok
			tt.edit(&e)
			if _, err := l.Append(context.Background(), e); !errors.Is(err, ErrInvalidEntry) {
				t.Errorf("Append error = %v, want ErrInvalidEntry", err)
			}
		})
	}
	seq, _, err := l.Head(context.Background())
	if err != nil || seq != 0 {
		t.Errorf("head after rejected appends = %d, %v; want 0", seq, err)
	}
}

func TestAppendQueryExport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l, clk := newTestLog(db, 4)
		start := clk.Now()
		want := fill(t, l, 12)
		for i, e := range want {
			if e.Seq != int64(i+1) {
				t.Fatalf("entry %d got seq %d", i, e.Seq)
			}
			prev := genesis
			if i > 0 {
				prev = want[i-1].Hash
			}
			if !bytes.Equal(e.PrevHash, prev) {
				t.Errorf("entry %d prev hash does not link to entry %d", e.Seq, e.Seq-1)
			}
		}
		seq, hash, err := l.Head(ctx)
		if err != nil || seq != 12 || !bytes.Equal(hash, want[11].Hash) {
			t.Errorf("Head = %d %x %v, want 12 %x", seq, hash, err, want[11].Hash)
		}

		// The fake clock gives every entry a distinct, increasing time.
		all, err := l.Query(ctx, Filter{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, all); diff != "" {
			t.Fatalf("Query all (-appended +queried):\n%s", diff)
		}
		seqs := func(es []Entry) []int64 {
			var s []int64
			for _, e := range es {
				s = append(s, e.Seq)
			}
			return s
		}
		pick := func(keep func(Entry) bool) []int64 {
			var s []int64
			for _, e := range want {
				if keep(e) {
					s = append(s, e.Seq)
				}
			}
			return s
		}
		mid := want[5].Time
		tests := []struct {
			name string
			f    Filter
			want []int64
		}{
			{"actor", Filter{Actor: "user:bob"}, pick(func(e Entry) bool { return e.Actor == "user:bob" })},
			{"action prefix", Filter{Action: "user."}, pick(func(e Entry) bool { return strings.HasPrefix(e.Action, "user.") })},
			{"action prefix is literal", Filter{Action: "user_"}, nil},
			{"resource", Filter{Resource: "user:3"}, pick(func(e Entry) bool { return e.Resource == "user:3" })},
			{"result", Filter{Result: ResultDenied}, pick(func(e Entry) bool { return e.Result == ResultDenied })},
			{"since", Filter{Since: mid}, pick(func(e Entry) bool { return !e.Time.Before(mid) })},
			{"until", Filter{Until: mid}, pick(func(e Entry) bool { return e.Time.Before(mid) })},
			{"after seq", Filter{AfterSeq: 10}, []int64{11, 12}},
			{"desc with limit", Filter{Desc: true, Limit: 3}, []int64{12, 11, 10}},
			{"desc after seq", Filter{Desc: true, AfterSeq: 3}, []int64{2, 1}},
			{"combined", Filter{Action: "user.", Result: ResultOK}, pick(func(e Entry) bool {
				return strings.HasPrefix(e.Action, "user.") && e.Result == ResultOK
			})},
		}
		for _, tt := range tests {
			t.Run("query "+tt.name, func(t *testing.T) {
				got, err := l.Query(ctx, tt.f)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, seqs(got)); diff != "" {
					t.Errorf("seqs (-want +got):\n%s", diff)
				}
			})
		}

		exports := []struct {
			name         string
			since, until time.Time
			want         []int64
		}{
			{"everything", time.Time{}, time.Time{}, pick(func(Entry) bool { return true })},
			{"since", mid, time.Time{}, pick(func(e Entry) bool { return !e.Time.Before(mid) })},
			{"window", want[2].Time, want[4].Time, []int64{3, 4}},
			{"before start", time.Time{}, start, nil},
		}
		for _, tt := range exports {
			t.Run("export "+tt.name, func(t *testing.T) {
				var buf bytes.Buffer
				n, err := l.Export(ctx, &buf, tt.since, tt.until)
				if err != nil {
					t.Fatal(err)
				}
				var got []int64
				sc := bufio.NewScanner(&buf)
				for sc.Scan() {
					var line ExportLine
					if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
						t.Fatalf("line %q: %v", sc.Text(), err)
					}
					e := want[line.Seq-1]
					wantLine := ExportLine{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Source: e.Source, Action: e.Action,
						Resource: e.Resource, Result: e.Result, PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)}
					d, _ := canonicalDetails(e.Details)
					wantLine.Details = d
					if diff := cmp.Diff(wantLine, line); diff != "" {
						t.Errorf("line %d (-want +got):\n%s", line.Seq, diff)
					}
					got = append(got, line.Seq)
				}
				if n != int64(len(got)) {
					t.Errorf("Export returned %d, wrote %d lines", n, len(got))
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("exported seqs (-want +got):\n%s", diff)
				}
			})
		}

		rep, err := l.Verify(ctx, VerifyOptions{})
		if err != nil || !rep.OK {
			t.Fatalf("Verify = %+v, %v; want OK", rep, err)
		}
		// Checkpoints at 1 (always), then every 4: 4, 8, 12.
		if diff := cmp.Diff(Report{Entries: 12, Checkpoints: 4, FirstSeq: 1, LastSeq: 12, OK: true}, rep); diff != "" {
			t.Errorf("report (-want +got):\n%s", diff)
		}
	}, Migrations)
}

func TestExportIsValidAgainstChain(t *testing.T) {
	// The export alone suffices to recompute every hash.
	db := storetest.SQLite(t, Migrations)
	l, _ := newTestLog(db, 3)
	fill(t, l, 7)
	var buf bytes.Buffer
	if _, err := l.Export(context.Background(), &buf, time.Time{}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	prev := genesis
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var line ExportLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		canon := appendCanonical(nil, line.Seq, store.Micros(line.Time), []byte(line.Actor), []byte(line.Source),
			[]byte(line.Action), []byte(line.Resource), []byte(line.Result), line.Details)
		if got := hex.EncodeToString(entryHash(prev, canon)); got != line.Hash {
			t.Fatalf("entry %d: recomputed hash %s, exported %s", line.Seq, got, line.Hash)
		}
		prev, _ = hex.DecodeString(line.Hash)
	}
}

func TestAppendTx(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l, _ := newTestLog(db, 10)
		boom := errors.New("boom")
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := l.AppendTx(ctx, tx, Entry{Actor: "a", Action: "user.create", Result: ResultOK}); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Tx = %v, want boom", err)
		}
		if seq, _, _ := l.Head(ctx); seq != 0 {
			t.Errorf("head after rollback = %d, want 0", seq)
		}
		var got Entry
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			got, err = l.AppendTx(ctx, tx, Entry{Actor: "a", Action: "user.create", Result: ResultOK})
			return err
		})
		if err != nil || got.Seq != 1 {
			t.Fatalf("AppendTx = seq %d, %v; want seq 1", got.Seq, err)
		}
		if rep, err := l.Verify(ctx, VerifyOptions{}); err != nil || !rep.OK {
			t.Errorf("Verify = %+v, %v", rep, err)
		}
	}, Migrations)
}

// appendConcurrently runs workers goroutines, each appending `each`
// entries through its own Log, and returns every seq handed out.
func appendConcurrently(t *testing.T, logs []*Log, each int) []int64 {
	t.Helper()
	var (
		mu   sync.Mutex
		seqs []int64
		wg   sync.WaitGroup
	)
	errs := make(chan error, len(logs))
	for w, l := range logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e, err := l.Append(context.Background(), Entry{Actor: "worker:" + strconv.Itoa(w), Action: "test.append",
					Result: ResultOK, Details: map[string]any{"i": i}})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				seqs = append(seqs, e.Seq)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("append: %v", err)
	}
	return seqs
}

func checkSeqs(t *testing.T, seqs []int64, n int) {
	t.Helper()
	seen := map[int64]bool{}
	for _, s := range seqs {
		if seen[s] {
			t.Errorf("seq %d handed out twice", s)
		}
		seen[s] = true
	}
	for s := int64(1); s <= int64(n); s++ {
		if !seen[s] {
			t.Errorf("seq %d never handed out", s)
		}
	}
}

func TestConcurrentAppend(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l, _ := newTestLog(db, 7)
		const workers, each = 4, 40
		seqs := appendConcurrently(t, []*Log{l, l, l, l}, each)
		checkSeqs(t, seqs, workers*each)
		rep, err := l.Verify(context.Background(), VerifyOptions{})
		if err != nil || !rep.OK || rep.Entries != workers*each {
			t.Errorf("Verify = %+v, %v; want OK with %d entries", rep, err, workers*each)
		}
	}, Migrations)
}

func TestReplicasPostgres(t *testing.T) {
	// Two control-plane replicas: separate connection pools, one schema.
	ctx := context.Background()
	dsn, cleanup := storetest.FreshSchema(t)
	t.Cleanup(cleanup)
	var logs []*Log
	for range 2 {
		db, err := store.OpenPostgres(ctx, dsn, 4)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx, Migrations); err != nil {
			t.Fatal(err)
		}
		l, _ := newTestLog(db, 5)
		logs = append(logs, l, l)
	}
	const each = 30
	seqs := appendConcurrently(t, logs, each)
	checkSeqs(t, seqs, len(logs)*each)
	rep, err := logs[0].Verify(ctx, VerifyOptions{})
	if err != nil || !rep.OK || rep.Entries != int64(len(logs)*each) {
		t.Errorf("Verify = %+v, %v; want OK with %d entries", rep, err, len(logs)*each)
	}
}

func TestVerifyWhileAppending(t *testing.T) {
	// Entries and checkpoints appended during a walk must not look like
	// tampering.
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		l, _ := newTestLog(db, 2)
		fill(t, l, 20)
		done := make(chan struct{})
		go func() {
			defer close(done)
			fill(t, l, 40)
		}()
		for range 5 {
			rep, err := l.Verify(context.Background(), VerifyOptions{})
			if err != nil || !rep.OK {
				t.Errorf("Verify during appends = %+v, %v", rep, err)
			}
		}
		<-done
	}, Migrations)
}

func TestNoKey(t *testing.T) {
	db := storetest.SQLite(t, Migrations)
	l := New(db, nil, Options{})
	ctx := context.Background()
	if _, err := l.Append(ctx, Entry{Action: "a.b", Result: ResultOK}); !errors.Is(err, ErrNoKey) {
		t.Errorf("Append without key = %v, want ErrNoKey (checkpoint due at entry 1)", err)
	}
	if _, err := l.Anchor(ctx); !errors.Is(err, ErrNoKey) {
		t.Errorf("Anchor without key = %v, want ErrNoKey", err)
	}
	if _, err := l.Verify(ctx, VerifyOptions{}); !errors.Is(err, ErrNoKey) {
		t.Errorf("Verify without any key = %v, want ErrNoKey", err)
	}
	// A read-only verifier with only the public key works.
	w, _ := newTestLog(db, 3)
	fill(t, w, 5)
	rep, err := l.Verify(ctx, VerifyOptions{PublicKey: testKey(1).Public().(ed25519.PublicKey)})
	if err != nil || !rep.OK {
		t.Errorf("Verify with public key only = %+v, %v", rep, err)
	}
}

func TestVerifyEmptyAndProgress(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l, _ := newTestLog(db, 3)
		a, err := l.Anchor(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if a.Seq != 0 || !bytes.Equal(a.Hash, genesis) {
			t.Errorf("anchor of an empty log = seq %d hash %x, want 0 and zeros", a.Seq, a.Hash)
		}
		rep, err := l.Verify(ctx, VerifyOptions{Anchor: &a})
		if err != nil || !rep.OK || !rep.AnchorChecked || rep.Entries != 0 {
			t.Errorf("Verify of an empty log = %+v, %v; want OK, anchor checked", rep, err)
		}
		fill(t, l, 10)
		var calls []int64
		rep, err = l.Verify(ctx, VerifyOptions{Anchor: &a, Progress: func(n int64) { calls = append(calls, n) }})
		if err != nil || !rep.OK {
			t.Fatalf("Verify = %+v, %v", rep, err)
		}
		if len(calls) == 0 || calls[len(calls)-1] != 10 {
			t.Errorf("Progress calls = %v, want the last to be 10", calls)
		}
	}, Migrations)
}
