// Package backendtest is the conformance suite for backend.Backend: every
// backend runs it from its own tests,
//
//	func TestConformance(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T) backend.Backend { ... })
//	}
//
// and so proves that it keeps the contract written in package backend. The
// suite needs a read-write backend (Replace and Remove work); an
// append-only mode is tested by the backend that has one.
//
// What the suite cannot do through the interface, a backend tests itself:
// foreign entries in the data and parity directories (List reports them),
// crashes, and a full disk.
package backendtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
)

// LargeSize is the size of the large object the suite stores: the largest
// object a repository writes (a 16 MiB pack plus slack).
const LargeSize = 20 << 20

// Run runs the conformance suite. newBackend must return a new, empty
// backend for each call (a fresh repository); Run closes each one at the end
// of its subtest.
func Run(t *testing.T, newBackend func(t *testing.T) backend.Backend) {
	open := func(t *testing.T) backend.Backend {
		t.Helper()
		b := newBackend(t)
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return b
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend.Backend)
	}{
		{"Location", testLocation},
		{"SaveLoadEveryType", testSaveLoadEveryType},
		{"LoadRange", testLoadRange},
		{"LoadInto", testLoadInto},
		{"Missing", testMissing},
		{"SaveExisting", testSaveExisting},
		{"ConcurrentSave", testConcurrentSave},
		{"Ownership", testOwnership},
		{"SaveEarly", testSaveEarly},
		{"Stage", testStage},
		{"Replace", testReplace},
		{"Stat", testStat},
		{"Remove", testRemove},
		{"List", testList},
		{"ListStops", testListStops},
		{"InvalidNames", testInvalidNames},
		{"EmptyObject", testEmptyObject},
		{"LargeObject", testLargeObject},
		{"ContextCancelled", testContextCancelled},
		{"ListContextCancelled", testListContextCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// content returns n deterministic pseudo-random bytes derived from seed.
func content(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	buf := make([]byte, n+7)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], r.Uint64())
	}
	return buf[:n]
}

// id returns the hex SHA-256 of data, the name repositories give objects.
func id(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// handle returns the handle the repository would use for data of type t.
func handle(t backend.Type, data []byte) backend.Handle {
	if t == backend.ConfigFile {
		return backend.Handle{Type: t}
	}
	return backend.Handle{Type: t, Name: id(data)}
}

func save(t *testing.T, b backend.Backend, h backend.Handle, data []byte) {
	t.Helper()
	if err := b.Save(context.Background(), h, data); err != nil {
		t.Fatalf("Save(%v): %v", h, err)
	}
}

// wantContent fails unless h holds exactly want.
func wantContent(t *testing.T, b backend.Backend, h backend.Handle, want []byte) {
	t.Helper()
	got, err := b.Load(context.Background(), h, 0, 0)
	if err != nil {
		t.Fatalf("Load(%v): %v", h, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Load(%v): got %d bytes (sha256 %.12s), want %d bytes (sha256 %.12s)",
			h, len(got), id(got), len(want), id(want))
	}
}

// wantMissing fails unless Stat and Load report h as missing.
func wantMissing(t *testing.T, b backend.Backend, h backend.Handle) {
	t.Helper()
	ctx := context.Background()
	if _, err := b.Stat(ctx, h); !errors.Is(err, backend.ErrNotExist) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(%v) of a missing object: err = %v, want ErrNotExist and fs.ErrNotExist", h, err)
	}
	if _, err := b.Load(ctx, h, 0, 0); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("Load(%v) of a missing object: err = %v, want ErrNotExist", h, err)
	}
}

// list returns name -> size for the objects of type t, failing on
// duplicates.
func list(t *testing.T, b backend.Backend, typ backend.Type) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	err := b.List(context.Background(), typ, func(fi backend.FileInfo) error {
		if _, dup := got[fi.Name]; dup {
			return fmt.Errorf("name %q listed twice", fi.Name)
		}
		got[fi.Name] = fi.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List(%s): %v", typ, err)
	}
	return got
}

func testLocation(t *testing.T, b backend.Backend) {
	if b.Location() == "" {
		t.Fatal("Location() is empty")
	}
}

func testSaveLoadEveryType(t *testing.T, b backend.Backend) {
	for i, typ := range backend.Types() {
		data := content(uint64(i), 1000+i)
		h := handle(typ, data)
		save(t, b, h, data)
		wantContent(t, b, h, data)
	}
}

// loadFunc reads a range of an object: Backend.Load, or backend.LoadInto
// with some buffer.
type loadFunc func(ctx context.Context, h backend.Handle, offset int64, length int) ([]byte, error)

func testLoadRange(t *testing.T, b backend.Backend) {
	checkLoadRange(t, b, b.Load, "Load")
}

// testLoadInto checks backend.LoadInto (the backend's own LoadInto when it
// is a LoaderInto) as testLoadRange checks Load, with buffers too small,
// large enough and dirty from earlier reads; and that a LoaderInto reads
// into a buffer that has room instead of allocating.
func testLoadInto(t *testing.T, b backend.Backend) {
	for _, bufCap := range []int{0, 10, 4096, 1 << 16} {
		buf := bytes.Repeat([]byte{0xAA}, bufCap)
		checkLoadRange(t, b, func(ctx context.Context, h backend.Handle, offset int64, length int) ([]byte, error) {
			got, err := backend.LoadInto(ctx, b, h, offset, length, buf)
			if _, ok := b.(backend.LoaderInto); ok && err == nil && length > 0 && length <= cap(buf) &&
				(len(got) == 0 || &got[0] != &buf[:1][0]) {
				t.Errorf("LoadInto(offset %d, length %d) with a buffer of capacity %d: result not read into the buffer", offset, length, cap(buf))
			}
			return got, err
		}, fmt.Sprintf("LoadInto with a buffer of capacity %d", bufCap))
	}
	if _, err := backend.LoadInto(context.Background(), b, handle(backend.PackFile, []byte("never saved")), 0, 5, make([]byte, 16)); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("LoadInto of a missing object: err = %v, want ErrNotExist", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	data := content(2, 100)
	h := handle(backend.PackFile, data)
	save(t, b, h, data)
	if _, err := backend.LoadInto(ctx, b, h, 0, 10, make([]byte, 16)); !errors.Is(err, context.Canceled) {
		t.Errorf("LoadInto with a cancelled context: err = %v, want context.Canceled", err)
	}
}

func checkLoadRange(t *testing.T, b backend.Backend, load loadFunc, name string) {
	const size = 4096
	data := content(1, size)
	h := handle(backend.PackFile, data)
	if err := b.Save(context.Background(), h, data); err != nil && !errors.Is(err, backend.ErrExists) {
		t.Fatalf("Save(%v): %v", h, err) // ErrExists: saved for an earlier call
	}
	tests := []struct {
		offset int64
		length int
		want   []byte // nil: an error is expected
		eof    bool   // the error must match io.ErrUnexpectedEOF
	}{
		{0, 0, data, false},
		{0, size, data, false},
		{0, 1, data[:1], false},
		{100, 0, data[100:], false},
		{100, 200, data[100:300], false},
		{size - 1, 0, data[size-1:], false},
		{size - 1, 1, data[size-1:], false},
		{size, 0, []byte{}, false},
		{0, size + 1, nil, true},
		{size - 10, 11, nil, true},
		{size, 1, nil, true},
		{size + 1, 0, nil, true},
		{1 << 40, 1, nil, true},
		{-1, 0, nil, false},
		{0, -1, nil, false},
	}
	for _, tc := range tests {
		got, err := load(context.Background(), h, tc.offset, tc.length)
		if tc.want == nil {
			if err == nil {
				t.Errorf("%s(offset %d, length %d) of %d bytes: got %d bytes, want an error", name, tc.offset, tc.length, size, len(got))
			} else if tc.eof && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%s(offset %d, length %d) of %d bytes: err = %v, want io.ErrUnexpectedEOF", name, tc.offset, tc.length, size, err)
			} else if errors.Is(err, backend.ErrNotExist) {
				t.Errorf("%s(offset %d, length %d): err = %v, must not claim the object is missing", name, tc.offset, tc.length, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s(offset %d, length %d): %v", name, tc.offset, tc.length, err)
			continue
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s(offset %d, length %d): got %d bytes, want %d bytes from offset %d of the object",
				name, tc.offset, tc.length, len(got), len(tc.want), tc.offset)
		}
	}
}

func testMissing(t *testing.T, b backend.Backend) {
	for _, typ := range backend.Types() {
		h := handle(typ, []byte("never saved"))
		wantMissing(t, b, h)
		if _, err := b.Load(context.Background(), h, 10, 5); !errors.Is(err, backend.ErrNotExist) {
			t.Errorf("ranged Load(%v) of a missing object: err = %v, want ErrNotExist", h, err)
		}
		if got := list(t, b, typ); len(got) != 0 {
			t.Errorf("List(%s) of an empty repository: %v", typ, got)
		}
	}
}

func testSaveExisting(t *testing.T, b backend.Backend) {
	for i, typ := range backend.Types() {
		orig := content(uint64(10+i), 300)
		h := handle(typ, orig)
		save(t, b, h, orig)
		for _, other := range [][]byte{content(99, 300), content(98, 5000), {}} {
			err := b.Save(context.Background(), h, other)
			if !errors.Is(err, backend.ErrExists) || !errors.Is(err, fs.ErrExist) {
				t.Fatalf("Save(%v) over an existing object: err = %v, want ErrExists and fs.ErrExist", h, err)
			}
		}
		wantContent(t, b, h, orig)
		if got := list(t, b, typ); len(got) != 1 {
			t.Fatalf("List(%s) after refused Saves: %v, want one object", typ, got)
		}
	}
}

func testConcurrentSave(t *testing.T, b backend.Backend) {
	const writers = 8
	for _, typ := range []backend.Type{backend.ConfigFile, backend.PackFile, backend.LockFile} {
		h := backend.Handle{Type: typ}
		if typ != backend.ConfigFile {
			h.Name = id([]byte("contended " + string(typ)))
		}
		datas := make([][]byte, writers)
		errs := make([]error, writers)
		for i := range datas {
			datas[i] = content(uint64(100+i), 64<<10+i)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range writers {
			wg.Go(func() {
				<-start
				errs[i] = b.Save(context.Background(), h, datas[i])
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("Save(%v): writers %d and %d both succeeded", h, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, backend.ErrExists):
				t.Fatalf("Save(%v) by writer %d: err = %v, want nil or ErrExists", h, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("Save(%v): no writer succeeded", h)
		}
		wantContent(t, b, h, datas[winner])
		if got := list(t, b, typ); len(got) != 1 || got[h.Name] != int64(len(datas[winner])) {
			t.Fatalf("List(%s) = %v, want only %q with size %d", typ, got, h.Name, len(datas[winner]))
		}
	}
}

func testOwnership(t *testing.T, b backend.Backend) {
	data := content(3, 1000)
	orig := bytes.Clone(data)
	h := handle(backend.IndexFile, data)
	save(t, b, h, data)
	for i := range data {
		data[i] ^= 0xff
	}
	wantContent(t, b, h, orig)
	got, err := b.Load(context.Background(), h, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got[0] ^= 0xff
	wantContent(t, b, h, orig)
}

// testSaveEarly checks backend.SaveEarly (the backend's own SaveEarly when
// it is an EarlySaver): done is called exactly once, before SaveEarly
// returns, on success and on every failure, and data changed from the
// moment done is called does not change the stored object.
func testSaveEarly(t *testing.T, b backend.Backend) {
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	saveEarly := func(ctx context.Context, h backend.Handle, data []byte) error {
		t.Helper()
		calls := 0
		err := backend.SaveEarly(ctx, b, h, data, func() {
			calls++
			for i := range data {
				data[i] ^= 0xff // the caller reuses its buffer at once
			}
		})
		if calls != 1 {
			t.Fatalf("SaveEarly(%v) called done %d times, want 1 (err %v)", h, calls, err)
		}
		return err
	}
	for _, size := range []int{0, 1000, 3 << 20} {
		orig := content(uint64(40+size), size)
		data := bytes.Clone(orig)
		h := handle(backend.PackFile, orig)
		if err := saveEarly(ctx, h, data); err != nil {
			t.Fatalf("SaveEarly(%v): %v", h, err)
		}
		wantContent(t, b, h, orig)
		if err := saveEarly(ctx, h, content(7, 10)); !errors.Is(err, backend.ErrExists) {
			t.Fatalf("SaveEarly(%v) over an existing object: err = %v, want ErrExists", h, err)
		}
		wantContent(t, b, h, orig)
	}
	other := content(8, 5000)
	h := handle(backend.PackFile, other)
	if err := saveEarly(cancelled, h, bytes.Clone(other)); !errors.Is(err, context.Canceled) {
		t.Errorf("SaveEarly with a cancelled context: err = %v, want context.Canceled", err)
	}
	wantMissing(t, b, h)
	bad := backend.Handle{Type: backend.PackFile, Name: "../x"}
	if err := saveEarly(ctx, bad, bytes.Clone(other)); !errors.Is(err, backend.ErrInvalidName) {
		t.Errorf("SaveEarly(%v): err = %v, want ErrInvalidName", bad, err)
	}
}

// testStage checks a Stager (skipped for other backends): an object
// written in pieces of any size and committed reads back whole, under its
// name and nowhere else; Commit never replaces an existing object; Abort,
// a cancelled context and an invalid name store nothing; a finished Staged
// takes no more writes; several objects stage at once.
func testStage(t *testing.T, b backend.Backend) {
	sb, ok := b.(backend.Stager)
	if !ok {
		t.Skip("not a backend.Stager")
	}
	ctx := context.Background()
	stage := func(ctx context.Context, typ backend.Type, data []byte, piece int) backend.Staged {
		t.Helper()
		s, err := sb.Stage(ctx, typ)
		if err != nil {
			t.Fatalf("Stage(%s): %v", typ, err)
		}
		for rest := data; len(rest) > 0; {
			n := min(piece, len(rest))
			if m, err := s.Write(rest[:n]); err != nil || m != n {
				t.Fatalf("Staged.Write of %d bytes: %d, %v", n, m, err)
			}
			rest = rest[n:]
		}
		return s
	}
	for i, typ := range backend.Types() {
		for _, tc := range []struct{ size, piece int }{{0, 1}, {1000, 7}, {3 << 20, 1 << 20}, {3<<20 + 5, 64<<10 + 1}} {
			data := content(uint64(100+i*10+tc.piece), tc.size)
			h := handle(typ, data)
			if typ == backend.ConfigFile {
				if err := b.Remove(ctx, h); err != nil && !errors.Is(err, backend.ErrNotExist) {
					t.Fatalf("Remove(%v): %v", h, err)
				}
			}
			if err := stage(ctx, typ, data, tc.piece).Commit(ctx, h.Name); err != nil {
				t.Fatalf("Commit(%v) of %d bytes: %v", h, tc.size, err)
			}
			wantContent(t, b, h, data)
			// The same name again: refused, the stored object unchanged.
			err := stage(ctx, typ, content(9, 100), 30).Commit(ctx, h.Name)
			if !errors.Is(err, backend.ErrExists) {
				t.Fatalf("Commit(%v) over an existing object: err = %v, want ErrExists", h, err)
			}
			wantContent(t, b, h, data)
		}
	}
	before := list(t, b, backend.PackFile)

	// Abort, cancellation and a bad name leave nothing behind.
	data := content(11, 5000)
	h := handle(backend.PackFile, data)
	s := stage(ctx, backend.PackFile, data, 1000)
	s.Abort()
	s.Abort()
	if _, err := s.Write([]byte("x")); err == nil {
		t.Error("Write after Abort: no error")
	}
	if err := s.Commit(ctx, h.Name); err == nil {
		t.Fatal("Commit after Abort: no error")
	}
	wantMissing(t, b, h)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := stage(ctx, backend.PackFile, data, 1000).Commit(cancelled, h.Name); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with a cancelled context: err = %v, want context.Canceled", err)
	}
	wantMissing(t, b, h)
	if _, err := sb.Stage(cancelled, backend.PackFile); !errors.Is(err, context.Canceled) {
		t.Errorf("Stage with a cancelled context: err = %v, want context.Canceled", err)
	}
	for _, bad := range []string{"../x", "", strings.Repeat("g", 64)} {
		if err := stage(ctx, backend.PackFile, data, 1000).Commit(ctx, bad); !errors.Is(err, backend.ErrInvalidName) {
			t.Errorf("Commit(%q): err = %v, want ErrInvalidName", bad, err)
		}
	}
	if _, err := sb.Stage(ctx, backend.Type("bogus")); !errors.Is(err, backend.ErrInvalidName) {
		t.Errorf("Stage of an unknown type: err = %v, want ErrInvalidName", err)
	}

	// A committed Staged takes no more writes and cannot commit again.
	s = stage(ctx, backend.PackFile, data, 1000)
	if err := s.Commit(ctx, h.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Error("Write after Commit: no error")
	}
	if err := s.Commit(ctx, id([]byte("other"))); err == nil {
		t.Error("second Commit: no error")
	}
	s.Abort() // does nothing now
	wantContent(t, b, h, data)

	// Interleaved stages keep their bytes apart.
	a, c := content(12, 300<<10), content(13, 200<<10)
	sa, err := sb.Stage(ctx, backend.PackFile)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := sb.Stage(ctx, backend.PackFile)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(a); off += 10 << 10 {
		if _, err := sa.Write(a[off:min(off+10<<10, len(a))]); err != nil {
			t.Fatal(err)
		}
		if off < len(c) {
			if _, err := sc.Write(c[off:min(off+10<<10, len(c))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := sc.Commit(ctx, id(c)); err != nil {
		t.Fatal(err)
	}
	if err := sa.Commit(ctx, id(a)); err != nil {
		t.Fatal(err)
	}
	wantContent(t, b, handle(backend.PackFile, a), a)
	wantContent(t, b, handle(backend.PackFile, c), c)
	after := list(t, b, backend.PackFile)
	before[h.Name], before[id(a)], before[id(c)] = int64(len(data)), int64(len(a)), int64(len(c))
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("List(data) = %v, want %v", after, before)
	}
}

func testReplace(t *testing.T, b backend.Backend) {
	ctx := context.Background()
	for i, typ := range backend.Types() {
		orig := content(uint64(20+i), 2000)
		h := handle(typ, orig)
		// Replace creates a missing object.
		if err := b.Replace(ctx, h, orig); err != nil {
			t.Fatalf("Replace(%v) of a missing object: %v", h, err)
		}
		wantContent(t, b, h, orig)
		// And overwrites an existing one, longer or shorter.
		for _, n := range []int{5000, 10, 0} {
			repl := content(uint64(30+i), n)
			if err := b.Replace(ctx, h, repl); err != nil {
				t.Fatalf("Replace(%v) with %d bytes: %v", h, n, err)
			}
			wantContent(t, b, h, repl)
		}
		if got := list(t, b, typ); len(got) != 1 || got[h.Name] != 0 {
			t.Fatalf("List(%s) after Replace = %v, want only %q with size 0", typ, got, h.Name)
		}
	}
}

func testStat(t *testing.T, b backend.Backend) {
	for i, typ := range backend.Types() {
		data := content(uint64(40+i), 777*(i+1))
		h := handle(typ, data)
		save(t, b, h, data)
		fi, err := b.Stat(context.Background(), h)
		if err != nil {
			t.Fatalf("Stat(%v): %v", h, err)
		}
		if fi != (backend.FileInfo{Name: h.Name, Size: int64(len(data))}) {
			t.Fatalf("Stat(%v) = %+v, want name %q size %d", h, fi, h.Name, len(data))
		}
	}
}

func testRemove(t *testing.T, b backend.Backend) {
	ctx := context.Background()
	for i, typ := range backend.Types() {
		data := content(uint64(50+i), 100)
		h := handle(typ, data)
		keep := content(uint64(60+i), 100)
		hk := handle(typ, keep)
		save(t, b, h, data)
		if typ != backend.ConfigFile {
			save(t, b, hk, keep)
		}
		if err := b.Remove(ctx, h); err != nil {
			t.Fatalf("Remove(%v): %v", h, err)
		}
		wantMissing(t, b, h)
		if _, listed := list(t, b, typ)[h.Name]; listed {
			t.Fatalf("List(%s) reports removed %q", typ, h.Name)
		}
		if err := b.Remove(ctx, h); !errors.Is(err, backend.ErrNotExist) || !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("second Remove(%v): err = %v, want ErrNotExist", h, err)
		}
		if typ != backend.ConfigFile {
			wantContent(t, b, hk, keep) // removing one object leaves the others
		}
		// The name can be saved again.
		save(t, b, h, data)
		wantContent(t, b, h, data)
	}
}

func testList(t *testing.T, b backend.Backend) {
	want := map[backend.Type]map[string]int64{}
	for i, typ := range backend.Types() {
		want[typ] = map[string]int64{}
		n := 1
		if typ != backend.ConfigFile {
			n = 20 // several objects, several shards
		}
		for j := range n {
			data := content(uint64(1000*i+j), 10*i+j)
			h := handle(typ, data)
			save(t, b, h, data)
			want[typ][h.Name] = int64(len(data))
		}
	}
	// Types that accept any valid name: names that are not ids are listed
	// as they are (the repository layer reports them as foreign).
	for _, typ := range []backend.Type{backend.KeyFile, backend.IndexFile, backend.SnapshotFile, backend.LockFile} {
		for _, name := range []string{"README", "notes.txt", strings.Repeat("A", 64), "x"} {
			save(t, b, backend.Handle{Type: typ, Name: name}, []byte(name))
			want[typ][name] = int64(len(name))
		}
	}
	for _, typ := range backend.Types() {
		got := list(t, b, typ)
		if !equalMaps(got, want[typ]) {
			t.Errorf("List(%s):\n got %v\nwant %v", typ, sortedKeys(got), sortedKeys(want[typ]))
		}
	}
}

func equalMaps(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]int64) []string {
	var keys []string
	for k, v := range m {
		keys = append(keys, fmt.Sprintf("%s:%d", k, v))
	}
	sort.Strings(keys)
	return keys
}

func testListStops(t *testing.T, b backend.Backend) {
	for i := range 5 {
		save(t, b, handle(backend.SnapshotFile, content(uint64(70+i), 10)), content(uint64(70+i), 10))
	}
	stop := errors.New("stop here")
	calls := 0
	err := b.List(context.Background(), backend.SnapshotFile, func(backend.FileInfo) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Fatalf("List: err = %v, want fn's error", err)
	}
	if calls != 1 {
		t.Fatalf("List called fn %d times after it returned an error, want 1", calls)
	}
}

func testInvalidNames(t *testing.T, b backend.Backend) {
	ctx := context.Background()
	okID := id([]byte("x"))
	invalid := []backend.Handle{
		{Type: "", Name: okID},
		{Type: "other", Name: okID},
		{Type: "data/..", Name: okID},
		{Type: backend.ConfigFile, Name: "x"},
		{Type: backend.PackFile, Name: ""},
		{Type: backend.PackFile, Name: "README"},
		{Type: backend.PackFile, Name: strings.ToUpper(okID)},
		{Type: backend.PackFile, Name: okID[:63]},
		{Type: backend.PackFile, Name: okID + "0"},
		{Type: backend.ParityFile, Name: "../" + okID[3:]},
		{Type: backend.KeyFile, Name: ""},
		{Type: backend.KeyFile, Name: "."},
		{Type: backend.KeyFile, Name: ".."},
		{Type: backend.KeyFile, Name: "../config"},
		{Type: backend.IndexFile, Name: "a/b"},
		{Type: backend.IndexFile, Name: `a\b`},
		{Type: backend.SnapshotFile, Name: ".hidden"},
		{Type: backend.SnapshotFile, Name: ".tmp-123"},
		{Type: backend.LockFile, Name: "a\x00b"},
		{Type: backend.LockFile, Name: "a\nb"},
		{Type: backend.LockFile, Name: "\xff\xfe"},
		{Type: backend.LockFile, Name: strings.Repeat("a", backend.MaxNameLen+1)},
	}
	data := []byte("payload")
	for _, h := range invalid {
		wantInvalid := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, backend.ErrInvalidName) {
				t.Errorf("%s(%q): err = %v, want ErrInvalidName", op, h, err)
			}
		}
		wantInvalid("Save", b.Save(ctx, h, data))
		wantInvalid("Replace", b.Replace(ctx, h, data))
		_, err := b.Load(ctx, h, 0, 0)
		wantInvalid("Load", err)
		_, err = b.Stat(ctx, h)
		wantInvalid("Stat", err)
		wantInvalid("Remove", b.Remove(ctx, h))
	}
	for _, typ := range []backend.Type{"", "other", "data/00", "../data"} {
		err := b.List(ctx, typ, func(backend.FileInfo) error { return nil })
		if !errors.Is(err, backend.ErrInvalidName) {
			t.Errorf("List(%q): err = %v, want ErrInvalidName", typ, err)
		}
	}
	// Nothing was stored anywhere.
	for _, typ := range backend.Types() {
		if got := list(t, b, typ); len(got) != 0 {
			t.Errorf("List(%s) after invalid operations: %v", typ, got)
		}
	}
}

func testEmptyObject(t *testing.T, b backend.Backend) {
	for _, typ := range backend.Types() {
		h := handle(typ, nil)
		save(t, b, h, nil)
		wantContent(t, b, h, []byte{})
		fi, err := b.Stat(context.Background(), h)
		if err != nil || fi.Size != 0 {
			t.Fatalf("Stat(%v) = %+v, %v; want size 0", h, fi, err)
		}
		if got := list(t, b, typ); len(got) != 1 || got[h.Name] != 0 {
			t.Fatalf("List(%s) = %v, want %q with size 0", typ, got, h.Name)
		}
		if _, err := b.Load(context.Background(), h, 0, 1); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("Load(%v, 0, 1) of an empty object: err = %v, want io.ErrUnexpectedEOF", h, err)
		}
		if err := b.Save(context.Background(), h, nil); !errors.Is(err, backend.ErrExists) {
			t.Fatalf("second Save(%v) of an empty object: err = %v, want ErrExists", h, err)
		}
	}
}

func testLargeObject(t *testing.T, b backend.Backend) {
	data := content(4, LargeSize)
	h := handle(backend.PackFile, data)
	save(t, b, h, data)
	wantContent(t, b, h, data)
	tail, err := b.Load(context.Background(), h, LargeSize-100, 100)
	if err != nil || !bytes.Equal(tail, data[LargeSize-100:]) {
		t.Fatalf("Load of the last 100 bytes: %d bytes, %v", len(tail), err)
	}
	mid, err := b.Load(context.Background(), h, 7<<20, 3<<20)
	if err != nil || !bytes.Equal(mid, data[7<<20:10<<20]) {
		t.Fatalf("Load of 3 MiB at 7 MiB: %d bytes, %v", len(mid), err)
	}
	ph := backend.Handle{Type: backend.ParityFile, Name: h.Name}
	if err := b.Replace(context.Background(), ph, data); err != nil {
		t.Fatalf("Replace(%v) with %d bytes: %v", ph, LargeSize, err)
	}
	wantContent(t, b, ph, data)
}

func testContextCancelled(t *testing.T, b backend.Backend) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stored := content(5, 100)
	hs := handle(backend.IndexFile, stored)
	save(t, b, hs, stored)

	wantCancelled := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v, want context.Canceled", op, err)
		}
	}
	for _, size := range []int{0, 100, 3 << 20} {
		data := content(6, size)
		h := handle(backend.PackFile, data)
		wantCancelled("Save", b.Save(ctx, h, data))
		wantCancelled("Replace", b.Replace(ctx, h, data))
		wantMissing(t, b, h)
	}
	wantCancelled("Replace of an existing object", b.Replace(ctx, hs, []byte("new")))
	_, err := b.Load(ctx, hs, 0, 0)
	wantCancelled("Load", err)
	_, err = b.Stat(ctx, hs)
	wantCancelled("Stat", err)
	wantCancelled("Remove", b.Remove(ctx, hs))
	wantCancelled("List", b.List(ctx, backend.IndexFile, func(backend.FileInfo) error {
		t.Error("List called fn with a cancelled context")
		return nil
	}))
	// Nothing changed.
	wantContent(t, b, hs, stored)
	for _, typ := range backend.Types() {
		want := 0
		if typ == backend.IndexFile {
			want = 1
		}
		if got := list(t, b, typ); len(got) != want {
			t.Errorf("List(%s) after cancelled operations: %v", typ, got)
		}
	}
}

func testListContextCancelled(t *testing.T, b backend.Backend) {
	for _, typ := range []backend.Type{backend.PackFile, backend.SnapshotFile} {
		for i := range 10 {
			data := content(uint64(80+i), 10)
			save(t, b, handle(typ, data), data)
		}
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		err := b.List(ctx, typ, func(backend.FileInfo) error {
			calls++
			cancel()
			return nil
		})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("List(%s) cancelled by fn: err = %v, want context.Canceled", typ, err)
		}
		if calls != 1 {
			t.Fatalf("List(%s) called fn %d times, want 1 (it must check ctx before each call)", typ, calls)
		}
	}
}
