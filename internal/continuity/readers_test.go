package continuity

import (
	"context"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/repo"
)

// A policy's snapshot list goes through one open reader: the repository
// is opened once, a new backup's snapshot appears at the next listing and
// a forgotten one disappears, and CloseReaders closes it.
func TestReaderListsFresh(t *testing.T) {
	f := newFixture(t, config.Policy{Name: "web", Sources: []config.Source{{Paths: []string{"DATA"}}}, RPO: config.Duration(3600e9)})
	f.svc.Config.Policies[0].Sources[0].Paths = []string{f.data}
	opens := 0
	open := f.svc.Open
	f.svc.OpenList = func(ctx context.Context, rc config.Repository) (*repo.Repository, error) {
		opens++
		return open(ctx, rc)
	}
	list := func() []SnapshotInfo {
		t.Helper()
		l, err := f.svc.Snapshots(ctx, "web", "")
		must(t, err)
		return l
	}
	if l := list(); len(l) != 0 {
		t.Fatalf("before any backup: %+v", l)
	}
	for range 2 {
		if _, err := f.svc.RunBackup(ctx, "web"); err != nil {
			t.Fatal(err)
		}
	}
	l := list()
	if len(l) != 2 || !l[0].Time.After(l[1].Time) && !l[0].Time.Equal(l[1].Time) {
		t.Fatalf("after two backups: %+v", l)
	}
	st, err := f.svc.CheckRPO(ctx, "web")
	if err != nil || len(st) != 1 || st[0].Breached || !st[0].Newest.Equal(l[0].Time) {
		t.Fatalf("rpo through the reader: %v %+v", err, st)
	}
	// Forget the newest behind the reader's back (another process).
	r, err := f.svc.Open(ctx, f.svc.Config.Repositories[0])
	must(t, err)
	defer r.Close()
	id, err := repo.ParseID(l[0].ID)
	must(t, err)
	must(t, r.RemoveSnapshot(ctx, id))
	if l2 := list(); len(l2) != 1 || l2[0].ID != l[1].ID {
		t.Fatalf("after forgetting %s: %+v", l[0].ShortID, l2)
	}
	if opens != 1 {
		t.Errorf("the repository was opened %d times for 4 listings, want 1", opens)
	}
	f.svc.CloseReaders()
	list()
	if opens != 2 {
		t.Errorf("after CloseReaders: %d opens, want 2", opens)
	}
	// An idle reader closes on its own; the next listing opens again.
	f.svc.ReaderIdle = 50 * time.Millisecond
	f.svc.CloseReaders()
	list()
	for i := 0; ; i++ {
		f.svc.readers.mu.Lock()
		n := len(f.svc.readers.m)
		f.svc.readers.mu.Unlock()
		if n == 0 {
			break
		}
		if i == 100 {
			t.Fatal("the idle reader is still open after 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	list()
	if opens != 4 {
		t.Errorf("after the idle reader closed: %d opens, want 4", opens)
	}
}
