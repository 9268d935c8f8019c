package tail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// migrations are the detect migrations (this package's table is in
// 00002_log_offsets.sql), read from the folder rather than through package
// detect so that detect may import tail.
var migrations = store.Migrations{Name: "detect", FS: os.DirFS(".."), Dir: "migrations"}

// waitLimit bounds every wait; tests never assert on timing, this only
// keeps a broken follower from hanging the run.
const waitLimit = 30 * time.Second

// run is one Follow running in the background, recording the lines it
// delivers and the messages it logs.
type run struct {
	t       *testing.T
	cancel  context.CancelFunc
	done    chan error
	stats   *Stats
	started time.Time

	mu    sync.Mutex
	lines []string
	logs  []string
}

func follow(t *testing.T, opt Options) *run {
	return followFn(t, opt, nil)
}

// followFn starts Follow; fail, if not nil, is asked whether to fail a line.
func followFn(t *testing.T, opt Options, fail func(string) error) *run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{t: t, cancel: cancel, done: make(chan error, 1), stats: new(Stats)}
	if opt.Poll == 0 {
		opt.Poll = 5 * time.Millisecond
	}
	if opt.SaveEvery == 0 {
		opt.SaveEvery = time.Hour // tests rely on the save at return
	}
	opt.Stats = r.stats
	opt.Logger = slog.New(&recordHandler{r: r})
	go func() {
		r.done <- Follow(ctx, opt, func(line []byte) error {
			if fail != nil {
				if err := fail(string(line)); err != nil {
					return err
				}
			}
			r.mu.Lock()
			r.lines = append(r.lines, string(line))
			r.mu.Unlock()
			return nil
		})
	}()
	r.started = time.Now()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// waitLines waits until n lines were delivered and returns them.
func (r *run) waitLines(n int) []string {
	r.t.Helper()
	r.waitUntil(fmt.Sprintf("%d lines", n), func() bool { return len(r.lines) >= n })
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// waitLog waits until a message containing s was logged.
func (r *run) waitLog(s string) {
	r.t.Helper()
	r.waitUntil("log "+s, func() bool {
		for _, l := range r.logs {
			if strings.Contains(l, s) {
				return true
			}
		}
		return false
	})
}

func (r *run) waitUntil(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		r.mu.Lock()
		ok := cond()
		lines, logs := r.lines, r.logs
		r.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("gave up waiting for %s; lines so far %q, logs %q", what, lines, logs)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// stop ends Follow and returns every delivered line.
func (r *run) stop() []string {
	r.t.Helper()
	r.cancel()
	if err := <-r.done; !errors.Is(err, context.Canceled) {
		r.t.Errorf("Follow returned %v, want context.Canceled", err)
	}
	r.done <- context.Canceled // for the cleanup
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t.Logf("follower ran %v, delivered %d lines", time.Since(r.started), len(r.lines))
	return append([]string(nil), r.lines...)
}

type recordHandler struct{ r *run }

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, rec slog.Record) error {
	h.r.mu.Lock()
	h.r.logs = append(h.r.logs, rec.Message)
	h.r.mu.Unlock()
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func checkLines(t *testing.T, got, want []string) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delivered lines mismatch (-want +got):\n%s", diff)
	}
}

func TestAppendAndPartialLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	writeFile(t, path, "a\nb\npar")
	r := follow(t, Options{Path: path})
	r.waitLines(2)
	appendFile(t, path, "tial\nc\n")
	r.waitLines(4)
	appendFile(t, path, "\n\nd\r\n")
	r.waitLines(7)
	checkLines(t, r.stop(), []string{"a", "b", "partial", "c", "", "", "d\r"})
}

func TestRenameRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "auth.log")
	writeFile(t, path, "a\nb\n")
	r := follow(t, Options{Path: path})
	r.waitLines(2)
	// logrotate: rename, the daemon writes on to the old file (it still
	// has it open), the new file is created, the daemon reopens.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path+".1", "c\nd\nunterminated")
	writeFile(t, path, "") // logrotate's create
	appendFile(t, path+".1", " line\ne\nlast")
	appendFile(t, path, "f\ng\n")
	r.waitLines(9)
	appendFile(t, path, "h\n")
	r.waitLines(10)
	checkLines(t, r.stop(), []string{"a", "b", "c", "d", "unterminated line", "e", "last", "f", "g", "h"})
	if got := r.stats.Rotations.Load(); got != 1 {
		t.Errorf("Rotations = %d, want 1", got)
	}
}

func TestCopyTruncate(t *testing.T) {
	tests := []struct {
		name  string
		after string // written over the truncated file
	}{
		{"shorter", "c\n"},
		{"regrown longer", "a much longer first line after the truncation\nd\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			writeFile(t, path, "a\nb\n")
			r := follow(t, Options{Path: path})
			r.waitLines(2)
			old, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, path+".1", string(old)) // the copy
			// Truncate and rewrite the same inode (O_TRUNC keeps it).
			writeFile(t, path, tc.after)
			want := append([]string{"a", "b"}, strings.Split(strings.TrimSuffix(tc.after, "\n"), "\n")...)
			r.waitLines(len(want))
			checkLines(t, r.stop(), want)
			if got := r.stats.Truncations.Load(); got != 1 {
				t.Errorf("Truncations = %d, want 1", got)
			}
		})
	}
}

func TestDeleteAndRecreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	writeFile(t, path, "a\nb\n")
	r := follow(t, Options{Path: path})
	r.waitLines(2)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "c\n")
	r.waitLines(3)
	appendFile(t, path, "d\n")
	r.waitLines(4)
	checkLines(t, r.stop(), []string{"a", "b", "c", "d"})
}

func TestMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "later.log")
	// StartAtEnd skips history, but a file created after Follow started
	// is all new.
	r := follow(t, Options{Path: path, StartAtEnd: true, Offsets: NewMemOffsets()})
	r.waitLog("does not exist yet")
	writeFile(t, path, "a\nb\n")
	r.waitLines(2)
	checkLines(t, r.stop(), []string{"a", "b"})
}

func TestMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nodir", "app.log")
	err := Follow(context.Background(), Options{Path: path}, func([]byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), filepath.Dir(path)) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Follow = %v, want an error naming the missing directory", err)
	}
}

func TestStartAtEnd(t *testing.T) {
	tests := []struct {
		name     string
		existing string
		maxLine  int
		appended string
		want     []string
	}{
		{"history skipped", "old1\nold2\n", 0, "new\n", []string{"new"}},
		{"unterminated last line kept", "old1\nold2\npart", 0, "ial\nnew\n", []string{"partial", "new"}},
		{"one unterminated line", "part", 0, "ial\n", []string{"partial"}},
		{"empty file", "", 0, "new\n", []string{"new"}},
		{"unterminated line beyond MaxLine dropped", "old\n" + strings.Repeat("z", 20), 8, "zz\nnew\n", []string{"new"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			writeFile(t, path, tc.existing)
			offs := NewMemOffsets()
			r := follow(t, Options{Path: path, StartAtEnd: true, Offsets: offs, MaxLine: tc.maxLine, SaveEvery: time.Nanosecond})
			// The first save comes after the start position is set.
			r.waitUntil("first save", func() bool { _, ok, _ := offs.Load(context.Background(), path); return ok })
			appendFile(t, path, tc.appended)
			r.waitLines(len(tc.want))
			checkLines(t, r.stop(), tc.want)
		})
	}
}

func TestLongLineCut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	long := strings.Repeat("z", 100)
	writeFile(t, path, "short1\n"+long+"\nshort2\n"+strings.Repeat("y", 17)+"\n"+strings.Repeat("x", 16)+"\n")
	offs := NewMemOffsets()
	r := follow(t, Options{Path: path, MaxLine: 16, Offsets: offs})
	r.waitLines(5)
	checkLines(t, r.stop(), []string{"short1", long[:16], "short2", strings.Repeat("y", 16), strings.Repeat("x", 16)})
	if got := r.stats.CutLines.Load(); got != 2 {
		t.Errorf("CutLines = %d, want 2", got)
	}
	// The saved offset is past the cut lines.
	appendFile(t, path, "after\n")
	r2 := follow(t, Options{Path: path, MaxLine: 16, Offsets: offs})
	r2.waitLines(1)
	checkLines(t, r2.stop(), []string{"after"})
}

func TestCallbackError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	writeFile(t, path, "a\nb\nc\n")
	offs := NewMemOffsets()
	errBoom := errors.New("boom")
	var got []string
	err := Follow(context.Background(), Options{Path: path, Offsets: offs, Poll: time.Millisecond}, func(line []byte) error {
		if string(line) == "b" {
			return errBoom
		}
		got = append(got, string(line))
		return nil
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Follow = %v, want the callback's error", err)
	}
	checkLines(t, got, []string{"a"})
	// The failed line is delivered again.
	r := follow(t, Options{Path: path, Offsets: offs})
	r.waitLines(2)
	checkLines(t, r.stop(), []string{"b", "c"})
}

// offsetImpls runs f once per Offsets implementation.
func offsetImpls(t *testing.T, f func(t *testing.T, o Offsets)) {
	t.Run("memory", func(t *testing.T) { f(t, NewMemOffsets()) })
	storetest.Each(t, func(t *testing.T, db *store.DB) { f(t, NewStoreOffsets(db)) }, migrations)
}

func TestOffsets(t *testing.T) {
	offsetImpls(t, func(t *testing.T, o Offsets) {
		ctx := context.Background()
		if _, ok, err := o.Load(ctx, "/var/log/none"); ok || err != nil {
			t.Fatalf("Load of an unsaved path = %v, %v; want false, nil", ok, err)
		}
		positions := []Position{
			{Dev: 2049, Inode: 131, Offset: 4096, Head: strings.Repeat("ab", 32)},
			{Dev: 1<<64 - 1, Inode: 1<<63 + 7, Offset: 1<<62 + 3, Head: ""}, // full unsigned range
			{Dev: 0, Inode: 1, Offset: 0, Head: "x"},
		}
		for _, p := range positions {
			if err := o.Save(ctx, "/var/log/auth.log", p); err != nil {
				t.Fatal(err)
			}
			got, ok, err := o.Load(ctx, "/var/log/auth.log")
			if err != nil || !ok {
				t.Fatalf("Load = %v, %v", ok, err)
			}
			if diff := cmp.Diff(p, got); diff != "" {
				t.Errorf("Load after Save mismatch (-want +got):\n%s", diff)
			}
		}
		other := Position{Dev: 1, Inode: 2, Offset: 3, Head: "h"}
		if err := o.Save(ctx, "/var/log/nginx/access.log", other); err != nil {
			t.Fatal(err)
		}
		got, _, _ := o.Load(ctx, "/var/log/auth.log")
		if diff := cmp.Diff(positions[len(positions)-1], got); diff != "" {
			t.Errorf("paths not independent (-want +got):\n%s", diff)
		}
	})
}

// TestRestart stops and restarts Follow around appends and rotations, with
// every Offsets implementation: each line is delivered exactly once.
func TestRestart(t *testing.T) {
	offsetImpls(t, func(t *testing.T, offs Offsets) {
		dir := t.TempDir()
		path := filepath.Join(dir, "auth.log")
		opt := Options{Path: path, Offsets: offs, StartAtEnd: true}

		// First run ever: history skipped.
		writeFile(t, path, "history\n")
		r := follow(t, Options{Path: path, Offsets: offs, StartAtEnd: true, SaveEvery: time.Nanosecond})
		r.waitUntil("first save", func() bool { _, ok, _ := offs.Load(context.Background(), path); return ok })
		appendFile(t, path, "a\nb\npar")
		r.waitLines(2)
		checkLines(t, r.stop(), []string{"a", "b"})

		// Appended while stopped: exactly the new lines, including the
		// completed partial one.
		appendFile(t, path, "tial\nc\n")
		r = follow(t, opt)
		r.waitLines(2)
		checkLines(t, r.stop(), []string{"partial", "c"})

		// Nothing new: nothing delivered.
		r = follow(t, opt)
		appendFile(t, path, "d\n")
		r.waitLines(1)
		checkLines(t, r.stop(), []string{"d"})

		// Rotated while stopped, after more lines went to the old file;
		// compressed older generations sharing the prefix are skipped.
		appendFile(t, path, "e\nf\n")
		writeFile(t, path+".2.gz", "not a log")
		if err := os.Rename(path, path+".1"); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, "g\n")
		r = follow(t, opt)
		r.waitLines(3)
		appendFile(t, path, "h\n")
		r.waitLines(4)
		checkLines(t, r.stop(), []string{"e", "f", "g", "h"})

		// Rotated while stopped with a date suffix and an empty new file,
		// the daemon still writing to the old one.
		if err := os.Rename(path, path+"-20261121"); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, "")
		appendFile(t, path+"-20261121", "i\n")
		r = follow(t, opt)
		r.waitLines(1)
		appendFile(t, path+"-20261121", "j\n")
		appendFile(t, path, "k\n")
		r.waitLines(3)
		checkLines(t, r.stop(), []string{"i", "j", "k"})

		// Truncated while stopped: the new content from the start.
		writeFile(t, path, "l\n")
		r = follow(t, opt)
		r.waitLines(1)
		checkLines(t, r.stop(), []string{"l"})

		// Rotated while stopped and the old file gone (compressed): its
		// unread lines are lost (logged), the new file is read whole.
		appendFile(t, path, "lost\n")
		if err := os.Rename(path, path+".1"); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(path + ".1"); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path, "m\n")
		r = follow(t, opt)
		r.waitLines(1)
		// The new file often gets the freed inode number: then it is told
		// apart by its head instead.
		r.waitUntil("a log of the loss", func() bool {
			return slices.ContainsFunc(r.logs, func(l string) bool {
				return strings.Contains(l, "old file is gone") || strings.Contains(l, "replaced while not followed")
			})
		})
		checkLines(t, r.stop(), []string{"m"})
	})
}

// TestRecycledInode: a saved position naming the inode now at the path but
// with other first bytes is a different file; read it from the start.
func TestRecycledInode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	writeFile(t, path, "abc\ndef\n")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	dev, ino := fileID(fi)
	offs := NewMemOffsets()
	if err := offs.Save(context.Background(), path, Position{Dev: dev, Inode: ino, Offset: 4, Head: "0000"}); err != nil {
		t.Fatal(err)
	}
	r := follow(t, Options{Path: path, Offsets: offs})
	r.waitLines(2)
	checkLines(t, r.stop(), []string{"abc", "def"})
}

// TestConsume splits the same input at every chunk boundary: lines, cuts
// and the offset must not depend on how reads fall.
func TestConsume(t *testing.T) {
	const input = "one\n\nthree is long\nfour\nfive is longer still\nsix"
	want := []string{"one", "", "three is", "four", "five is ", "six"}
	for split := 1; split <= len(input); split++ {
		var got []string
		fl := &follower{opt: Options{MaxLine: 8, Stats: new(Stats)}, log: slog.New(slog.DiscardHandler),
			fn: func(l []byte) error { got = append(got, string(l)); return nil }}
		for i := 0; i < len(input); i += split {
			if err := fl.consume([]byte(input[i:min(i+split, len(input))])); err != nil {
				t.Fatal(err)
			}
		}
		if want := int64(strings.LastIndexByte(input, '\n') + 1); fl.offset != want {
			t.Errorf("split %d: offset = %d, want %d", split, fl.offset, want)
		}
		if err := fl.flushPartial(); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("split %d: lines mismatch (-want +got):\n%s", split, diff)
		}
		if fl.offset != int64(len(input)) || fl.readOff != int64(len(input)) {
			t.Errorf("split %d: offset %d, read %d; want %d", split, fl.offset, fl.readOff, len(input))
		}
		if string(fl.head) != input {
			t.Errorf("split %d: head %q, want the input", split, fl.head)
		}
		if c := fl.opt.Stats.CutLines.Load(); c != 2 {
			t.Errorf("split %d: CutLines = %d, want 2", split, c)
		}
	}
}

// BenchmarkFollow measures reading a file of 100k syslog-sized lines.
func BenchmarkFollow(b *testing.B) {
	path := filepath.Join(b.TempDir(), "big.log")
	line := "Nov 21 10:00:00 host sshd[123]: Failed password for root from 203.0.113.5 port 52144 ssh2\n"
	const n = 100000
	if err := os.WriteFile(path, []byte(strings.Repeat(line, n)), 0o600); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(line) * n))
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		count := 0
		err := Follow(ctx, Options{Path: path, Poll: time.Millisecond}, func([]byte) error {
			if count++; count == n {
				cancel()
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) || count != n {
			b.Fatalf("Follow = %v after %d lines", err, count)
		}
	}
}
