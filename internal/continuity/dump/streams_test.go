package dump

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
	"github.com/google/go-cmp/cmp"
)

var bg = context.Background()

func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func bytesStream(name string, data []byte) archiver.Stream {
	return archiver.Stream{Name: name, Open: func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

// readFile reads a file of a snapshot through NewFileReader.
func readFile(t *testing.T, r *repo.Repository, s *repo.Snapshot, dir, name string) []byte {
	t.Helper()
	files, err := ListFiles(bg, r, s, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Path == "/"+dir+"/"+name {
			rd := NewFileReader(bg, r, &f.Node)
			b, err := io.ReadAll(rd)
			if err != nil {
				t.Fatalf("reading %s: %v", f.Path, err)
			}
			if err := rd.Close(); err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("no /%s/%s in snapshot", dir, name)
	return nil
}

func snapshotCount(t *testing.T, r *repo.Repository) int {
	t.Helper()
	snaps, _, err := r.Snapshots(bg)
	if err != nil {
		t.Fatal(err)
	}
	return len(snaps)
}

func TestBackupStreamsRoundTrip(t *testing.T) {
	r, dir := repotest.New(t, repotest.Options{})
	big := randomBytes(9<<20, 1) // several chunks
	small := []byte("-- globals\nCREATE ROLE x;\n")
	when := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	res, err := archiver.BackupStreams(bg, r, []archiver.Stream{
		bytesStream("postgres/globals.sql", small),
		bytesStream("postgres/app.dump", big),
		bytesStream("postgres/empty.dump", nil),
		bytesStream("top.txt", []byte("top")),
	}, archiver.Options{Tags: []string{"db"}, Host: "dbhost", Time: when})
	if err != nil {
		t.Fatal(err)
	}
	s := res.Snapshot
	if diff := cmp.Diff([]string{"/postgres/app.dump", "/postgres/empty.dump", "/postgres/globals.sql", "/top.txt"}, s.Paths); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
	if s.Hostname != "dbhost" || !s.HasTag("db") || !s.Time.Equal(when) {
		t.Errorf("snapshot host %q tags %v time %v", s.Hostname, s.Tags, s.Time)
	}
	wantSum := repo.Summary{FilesNew: 4, TotalFiles: 4, Dirs: 1, TotalBytes: int64(len(big) + len(small) + 3), BytesProcessed: int64(len(big) + len(small) + 3)}
	got := res.Summary
	got.BytesAdded, got.Duration = 0, 0
	if diff := cmp.Diff(wantSum, got); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if res.Summary.BytesAdded <= 0 {
		t.Errorf("BytesAdded = %d", res.Summary.BytesAdded)
	}

	// Read back from a fresh process's view of the repository.
	r2 := repotest.Open(t, dir, repotest.Password)
	s2, err := r2.FindSnapshot(bg, "latest", repo.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, r2, s2, "postgres", "app.dump"); !bytes.Equal(got, big) {
		t.Errorf("app.dump: %d bytes back, want %d equal bytes", len(got), len(big))
	}
	if got := readFile(t, r2, s2, "postgres", "globals.sql"); !bytes.Equal(got, small) {
		t.Errorf("globals.sql = %q", got)
	}
	if got := readFile(t, r2, s2, "postgres", "empty.dump"); len(got) != 0 {
		t.Errorf("empty.dump = %q", got)
	}
	files, err := ListFiles(bg, r2, s2, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		n := f.Node
		if n.Type != tree.TypeFile || n.Mode != 0o600 || !n.ModTime.Equal(when) || n.UID != uint32(os.Getuid()) {
			t.Errorf("%s: type %s mode %o mtime %v uid %d", f.Path, n.Type, n.Mode, n.ModTime, n.UID)
		}
	}
	root, err := r2.LoadTree(bg, s2.Tree)
	if err != nil {
		t.Fatal(err)
	}
	if len(root.Nodes) != 2 || root.Nodes[0].Name != "postgres" || root.Nodes[0].Type != tree.TypeDir || root.Nodes[0].Mode != 0o700 {
		t.Errorf("root tree: %+v", root.Nodes)
	}
	// The same content again adds (almost) nothing: dedup across snapshots.
	res2, err := archiver.BackupStreams(bg, r, []archiver.Stream{bytesStream("postgres/app.dump", big)}, archiver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Summary.BytesAdded > 64<<10 {
		t.Errorf("unchanged stream added %d bytes", res2.Summary.BytesAdded)
	}
}

// failingReader yields n bytes, then an error.
type failingReader struct {
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	k := min(len(p), f.n)
	for i := range p[:k] {
		p[i] = byte(i)
	}
	f.n -= k
	return k, nil
}

type closeFunc struct {
	io.Reader
	close func() error
}

func (c closeFunc) Close() error { return c.close() }

func TestBackupStreamsFailuresLeaveNoSnapshot(t *testing.T) {
	boom := errors.New("boom")
	var closedEarly bool
	tests := []struct {
		name    string
		streams []archiver.Stream
		wantErr string
		check   func(t *testing.T)
	}{
		{name: "open fails", wantErr: "stream db/b.sql: boom", streams: []archiver.Stream{
			bytesStream("db/a.sql", []byte("a")),
			{Name: "db/b.sql", Open: func(context.Context) (io.ReadCloser, error) { return nil, boom }}}},
		{name: "read fails mid-stream", wantErr: "stream db/a.sql: reading: chunker: read at byte 5242880: boom", streams: []archiver.Stream{
			{Name: "db/a.sql", Open: func(context.Context) (io.ReadCloser, error) {
				return io.NopCloser(&failingReader{n: 5 << 20, err: boom}), nil
			}}}},
		{name: "close reports failure after all data", wantErr: "stream db/a.sql: exit status 1", streams: []archiver.Stream{
			{Name: "db/a.sql", Open: func(context.Context) (io.ReadCloser, error) {
				return closeFunc{strings.NewReader("complete-looking data"), func() error { return errors.New("exit status 1") }}, nil
			}}}},
		{name: "later stream fails, earlier closed", wantErr: "stream z/b: boom", streams: []archiver.Stream{
			{Name: "a", Open: func(context.Context) (io.ReadCloser, error) {
				return closeFunc{strings.NewReader("x"), func() error { closedEarly = true; return nil }}, nil
			}},
			{Name: "z/b", Open: func(context.Context) (io.ReadCloser, error) { return nil, boom }}},
			check: func(t *testing.T) {
				if !closedEarly {
					t.Error("the first stream was not closed")
				}
			}},
		{name: "duplicate name", wantErr: "given twice", streams: []archiver.Stream{bytesStream("a", nil), bytesStream("a", nil)}},
		{name: "file and dir", wantErr: "cannot be a directory", streams: []archiver.Stream{bytesStream("a", nil), bytesStream("a/b", nil)}},
		{name: "dot-dot", wantErr: "not a valid file name", streams: []archiver.Stream{bytesStream("a/../b", nil)}},
		{name: "absolute", wantErr: "relative path", streams: []archiver.Stream{bytesStream("/etc/x", nil)}},
		{name: "empty element", wantErr: "not a valid file name", streams: []archiver.Stream{bytesStream("a//b", nil)}},
		{name: "none", wantErr: "no streams"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := repotest.New(t, repotest.Options{})
			_, err := archiver.BackupStreams(bg, r, tt.streams, archiver.Options{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("BackupStreams error = %v, want one containing %q", err, tt.wantErr)
			}
			if n := snapshotCount(t, r); n != 0 {
				t.Errorf("%d snapshots after a failed backup, want 0", n)
			}
			if tt.check != nil {
				tt.check(t)
			}
		})
	}
}

// TestProcessStreamFailsMidway runs a real program that writes megabytes
// and then exits 3: the snapshot must not be saved and the error must
// carry the program's stderr.
func TestProcessStreamFailsMidway(t *testing.T) {
	r, _ := repotest.New(t, repotest.Options{})
	st := archiver.Stream{Name: "x.dump", Open: func(ctx context.Context) (io.ReadCloser, error) {
		return startReader(ctx, "fake dump", "/bin/sh", []string{"-c", "head -c 5000000 /dev/zero; echo 'FATAL: disk on fire' >&2; exit 3"}, nil, nil)
	}}
	_, err := archiver.BackupStreams(bg, r, []archiver.Stream{st}, archiver.Options{})
	if err == nil || !strings.Contains(err.Error(), "fake dump: exit status 3: FATAL: disk on fire") {
		t.Fatalf("error = %v", err)
	}
	if n := snapshotCount(t, r); n != 0 {
		t.Errorf("%d snapshots, want 0", n)
	}
	// A process killed because the backup stopped early is reaped.
	cleaned := false
	pr, err := startReader(bg, "endless", "/bin/sh", []string{"-c", "exec cat /dev/zero"}, nil, func() { cleaned = true })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(pr, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := pr.Close(); err == nil || !strings.Contains(err.Error(), "stopped before the end") {
		t.Errorf("early Close = %v", err)
	}
	if !cleaned || pr.cmd.ProcessState == nil {
		t.Errorf("cleanup ran %v, process reaped %v", cleaned, pr.cmd.ProcessState != nil)
	}
}

func TestToolMissing(t *testing.T) {
	empty := t.TempDir()
	o := Options{Path: empty}
	r, _ := repotest.New(t, repotest.Options{})
	_, err := BackupPostgres(bg, r, "host=127.0.0.1 dbname=test", PGOptions{Options: o}, archiver.Options{})
	if !errors.Is(err, ErrToolMissing) || !strings.Contains(err.Error(), "apt-get install postgresql-client") {
		t.Errorf("postgres without tools: %v", err)
	}
	_, err = BackupMySQL(bg, r, "mysql://root@127.0.0.1/test", o, archiver.Options{})
	if !errors.Is(err, ErrToolMissing) || !strings.Contains(err.Error(), "mariadb-dump or mysqldump") || !strings.Contains(err.Error(), "apt-get install mariadb-client") {
		t.Errorf("mysql without tools: %v", err)
	}
	if n := snapshotCount(t, r); n != 0 {
		t.Errorf("%d snapshots, want 0", n)
	}
}

func TestEscapeName(t *testing.T) {
	for _, db := range []string{"app", "my db", "a/b", "50%", "@all", "ünï", "x\ny", "..", "-x"} {
		esc := escapeName(db)
		if strings.ContainsAny(esc, "/@\n") || esc == "" {
			t.Errorf("escapeName(%q) = %q", db, esc)
		}
		if err := archiver.ValidateStreamName("mysql/" + esc + ".sql"); err != nil {
			t.Errorf("escapeName(%q): %v", db, err)
		}
		back, err := unescapeName(esc)
		if err != nil || back != db {
			t.Errorf("unescapeName(%q) = %q, %v; want %q", esc, back, err, db)
		}
	}
	if MyDumpFileName("@all") == MyAllFile {
		t.Error("a database called @all collides with the all-databases dump")
	}
}
