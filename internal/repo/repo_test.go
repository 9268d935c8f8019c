package repo_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/bulwarkhq/bulwark/internal/repo/prune"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/bulwarkhq/bulwark/internal/repo/restorer"
)

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sourceTree(t *testing.T) string {
	src := filepath.Join(t.TempDir(), "src")
	for i := 0; i < 50; i++ {
		p := filepath.Join(src, fmt.Sprintf("d%d", i%5), fmt.Sprintf("f%d", i))
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(strings.Repeat(fmt.Sprintf("line %d\n", i), 100+i)), 0o644))
	}
	big := make([]byte, 2<<20)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rnd.Uint32())
	}
	must(t, os.WriteFile(filepath.Join(src, "big"), big, 0o600))
	return src
}

func openWith(t *testing.T, dir, pw, cache string) (*repo.Repository, error) {
	be, err := local.Open(dir)
	must(t, err)
	r, err := repo.Open(ctx, be, []byte(pw), repo.OpenOptions{CacheDir: cache})
	if err != nil {
		return nil, err
	}
	return r, r.LoadIndex(ctx)
}

func TestWrongPasswordAndForeignKey(t *testing.T) {
	_, dir := repotest.New(t, repotest.Options{})
	if _, err := openWith(t, dir, "wrong password", "-"); !errors.Is(err, repo.ErrNoKey) {
		t.Fatalf("wrong password: %v", err)
	}
	// A key file from another repository opens with its password but the
	// config does not: a clear error, nothing changed.
	_, other := repotest.New(t, repotest.Options{})
	entries, _ := os.ReadDir(filepath.Join(other, "keys"))
	data, err := os.ReadFile(filepath.Join(other, "keys", entries[0].Name()))
	must(t, err)
	own, _ := os.ReadDir(filepath.Join(dir, "keys"))
	must(t, os.Remove(filepath.Join(dir, "keys", own[0].Name())))
	must(t, os.WriteFile(filepath.Join(dir, "keys", entries[0].Name()), data, 0o600))
	_, err = openWith(t, dir, repotest.Password, "-")
	if err == nil || !strings.Contains(err.Error(), "config") {
		t.Fatalf("foreign key: %v", err)
	}
}

func TestKeys(t *testing.T) {
	r, dir := repotest.New(t, repotest.Options{})
	id2, err := r.AddKey(ctx, []byte("second password"), false, repotest.FastKDF, crypto.KeyFile{})
	must(t, err)
	wo, err := r.AddKey(ctx, []byte("client password"), true, repotest.FastKDF, crypto.KeyFile{Host: "web1"})
	must(t, err)
	keys, err := r.ListKeys(ctx)
	must(t, err)
	if len(keys) != 3 {
		t.Fatalf("%d keys", len(keys))
	}
	kinds := map[string]crypto.Kind{}
	for _, k := range keys {
		kinds[k.ID] = k.Kind
	}
	if kinds[wo] != crypto.WriteOnly || kinds[id2] != crypto.Full {
		t.Fatalf("kinds: %v", kinds)
	}
	// The key in use cannot be removed; the others can, but never the last
	// full key.
	if err := r.RemoveKey(ctx, repo.Hex(r.KeyID())); err == nil {
		t.Fatal("removed the key in use")
	}
	r2, err := openWith(t, dir, "second password", "-")
	must(t, err)
	must(t, r2.RemoveKey(ctx, repo.Hex(r.KeyID())))
	if err := r2.RemoveKey(ctx, id2[:8]); err == nil {
		t.Fatal("removed the key in use (by prefix)")
	}
	// The write-only key cannot manage keys.
	w, err := openWith(t, dir, "client password", "-")
	must(t, err)
	if _, err := w.AddKey(ctx, []byte("x"), false, repotest.FastKDF, crypto.KeyFile{}); !errors.Is(err, crypto.ErrWriteOnly) {
		t.Fatalf("write-only AddKey: %v", err)
	}
	if err := w.RemoveKey(ctx, id2); !errors.Is(err, crypto.ErrWriteOnly) {
		t.Fatalf("write-only RemoveKey: %v", err)
	}
	// passwd: old password stops working, new one works, same secrets.
	newID, err := r2.ChangePassword(ctx, []byte("third password"), repotest.FastKDF)
	must(t, err)
	if _, err := openWith(t, dir, "second password", "-"); !errors.Is(err, repo.ErrNoKey) {
		t.Fatalf("old password still opens: %v", err)
	}
	r3, err := openWith(t, dir, "third password", "-")
	must(t, err)
	if repo.Hex(r3.KeyID()) != newID || r3.Config().ID != r.Config().ID {
		t.Fatal("passwd changed the repository")
	}
}

// TestWriteOnlyKey is the write-only credential end to end: it backs up
// (twice, the second time using its cached parent), cannot read anything
// back, and a full key restores what it wrote.
func TestWriteOnlyKey(t *testing.T) {
	full, dir := repotest.New(t, repotest.Options{})
	src := sourceTree(t)
	_, err := archiver.Backup(ctx, full, []string{src}, archiver.Options{Host: "h"})
	must(t, err)
	_, err = full.AddKey(ctx, []byte("client"), true, repotest.FastKDF, crypto.KeyFile{})
	must(t, err)

	cache := t.TempDir()
	w, err := openWith(t, dir, "client", cache)
	must(t, err)
	if w.CanRead() {
		t.Fatal("write-only key can read")
	}
	must(t, os.WriteFile(filepath.Join(src, "new-file"), []byte("added by the client"), 0o644))
	res, err := archiver.Backup(ctx, w, []string{src}, archiver.Options{Host: "h"})
	must(t, err)
	// It deduplicated against the full key's signed index: only the new
	// file and trees were stored.
	if res.Summary.BytesAdded > 64<<10 {
		t.Fatalf("write-only backup added %d bytes: no dedup against the signed index", res.Summary.BytesAdded)
	}
	if _, _, err := w.Snapshots(ctx); !errors.Is(err, crypto.ErrWriteOnly) {
		t.Fatalf("write-only listed snapshots: %v", err)
	}
	if _, err := w.LoadBlob(ctx, repo.DataBlob, repo.ID{}, nil); !errors.Is(err, crypto.ErrWriteOnly) {
		t.Fatalf("write-only read a blob: %v", err)
	}
	// Its own snapshot file cannot be opened either.
	if _, err := w.LoadSnapshot(ctx, res.Snapshot.ID); !errors.Is(err, crypto.ErrWriteOnly) {
		t.Fatalf("write-only opened its own snapshot: %v", err)
	}

	// Second run, new process: the parent comes from the cache.
	w2, err := openWith(t, dir, "client", cache)
	must(t, err)
	res2, err := archiver.Backup(ctx, w2, []string{src}, archiver.Options{Host: "h"})
	must(t, err)
	if res2.Summary.FilesUnmodified != res2.Summary.TotalFiles {
		t.Fatalf("write-only second run: %+v (parent from cache not used)", res2.Summary)
	}
	// Third run: the second one stored no tree (all were its parent's), and
	// still left them in the cache for this one.
	w3, err := openWith(t, dir, "client", cache)
	must(t, err)
	res3, err := archiver.Backup(ctx, w3, []string{src}, archiver.Options{Host: "h"})
	must(t, err)
	if res3.Summary.FilesUnmodified != res3.Summary.TotalFiles {
		t.Fatalf("write-only third run: %+v (parent's trees not kept in the cache)", res3.Summary)
	}

	// The full key reads what the write-only key wrote.
	r := repotest.Open(t, dir, repotest.Password)
	s, err := r.LoadSnapshot(ctx, res2.Snapshot.ID)
	must(t, err)
	dst := t.TempDir()
	_, err = restorer.Restore(ctx, r, s, dst, restorer.Options{Verify: true})
	must(t, err)
	repotest.CompareDirs(t, src, filepath.Join(dst, src), repotest.CompareOptions{})
}

// TestUnsignedIndexNotTrusted: entries from an index a write-only key
// wrote are not used by the full key to skip uploads.
func TestUnsignedIndexNotTrusted(t *testing.T) {
	full, dir := repotest.New(t, repotest.Options{})
	_, err := full.AddKey(ctx, []byte("client"), true, repotest.FastKDF, crypto.KeyFile{})
	must(t, err)
	src := sourceTree(t)
	w, err := openWith(t, dir, "client", "-")
	must(t, err)
	_, err = archiver.Backup(ctx, w, []string{src}, archiver.Options{})
	must(t, err)
	r := repotest.Open(t, dir, repotest.Password)
	res, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{NoParent: true})
	must(t, err)
	if res.Summary.BytesAdded < 1<<20 {
		t.Fatalf("full key deduplicated against unsigned entries (added %d bytes)", res.Summary.BytesAdded)
	}
}

func TestLocks(t *testing.T) {
	r, dir := repotest.New(t, repotest.Options{})
	shared, err := r.Lock(ctx, false, 0)
	must(t, err)
	r2 := repotest.Open(t, dir, repotest.Password)
	shared2, err := r2.Lock(ctx, false, 0)
	must(t, err)
	if _, err := r2.Lock(ctx, true, 0); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("exclusive lock beside shared ones: %v", err)
	}
	must(t, shared.Unlock())
	must(t, shared2.Unlock())
	ex, err := r.Lock(ctx, true, 0)
	must(t, err)
	if _, err := r2.Lock(ctx, false, 0); !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), "exclusive") {
		t.Fatalf("shared lock beside an exclusive one: %v", err)
	}
	must(t, ex.Unlock())

	// A lock left by a process that died on this host is stale.
	cmd := exec.Command("true")
	must(t, cmd.Run())
	deadPID := cmd.Process.Pid
	host, _ := os.Hostname()
	writeLock(t, r, repo.LockInfo{Time: time.Now(), Exclusive: true, Hostname: host, PID: deadPID})
	l, err := r2.Lock(ctx, true, 0)
	if err != nil {
		t.Fatalf("stale lock of a dead process not removed: %v", err)
	}
	must(t, l.Unlock())
	// An old lock from another host is stale after StaleAfter.
	writeLock(t, r, repo.LockInfo{Time: time.Now().Add(-2 * repo.StaleAfter), Exclusive: true, Hostname: "elsewhere", PID: 1})
	l, err = r2.Lock(ctx, false, 0)
	must(t, err)
	must(t, l.Unlock())
	// A fresh one from another host is not.
	writeLock(t, r, repo.LockInfo{Time: time.Now(), Exclusive: true, Hostname: "elsewhere", PID: 1})
	if _, err := r2.Lock(ctx, false, 0); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("live remote exclusive lock ignored: %v", err)
	}
	n, err := r2.RemoveStaleLocks(ctx)
	must(t, err)
	if n != 0 {
		t.Fatalf("removed %d live locks", n)
	}
	var names []string
	must(t, r.Backend().List(ctx, backend.LockFile, func(fi backend.FileInfo) error { names = append(names, fi.Name); return nil }))
	if len(names) != 1 {
		t.Fatalf("locks left: %v", names)
	}
}

func writeLock(t *testing.T, r *repo.Repository, li repo.LockInfo) {
	t.Helper()
	_, err := repo.WriteLockForTest(ctx, r, li)
	must(t, err)
}

func TestInitRefusesExisting(t *testing.T) {
	_, dir := repotest.New(t, repotest.Options{})
	be, err := local.Open(dir)
	must(t, err)
	if _, err := repo.Init(ctx, be, []byte("x"), repo.InitOptions{KDF: repotest.FastKDF}); err == nil {
		t.Fatal("init over an existing repository")
	}
}

func TestStdinBackup(t *testing.T) {
	r, _ := repotest.New(t, repotest.Options{})
	data := strings.Repeat("INSERT INTO t VALUES (1);\n", 200000)
	res, err := archiver.BackupReader(ctx, r, strings.NewReader(data), "app.sql", archiver.Options{Tags: []string{"db"}})
	must(t, err)
	dst := t.TempDir()
	_, err = restorer.Restore(ctx, r, res.Snapshot, dst, restorer.Options{Verify: true})
	must(t, err)
	got, err := os.ReadFile(filepath.Join(dst, "app.sql"))
	must(t, err)
	if string(got) != data {
		t.Fatal("stdin backup restored different bytes")
	}
	if res.Snapshot.Paths[0] != "/app.sql" || !res.Snapshot.HasTag("db") {
		t.Fatalf("snapshot: %+v", res.Snapshot)
	}
}

// TestConcurrentBackups: several hosts back up into one repository at the
// same time (shared locks); every snapshot restores.
func TestConcurrentBackups(t *testing.T) {
	_, dir := repotest.New(t, repotest.Options{PackSize: 1 << 20})
	srcs := make([]string, 3)
	for i := range srcs {
		srcs[i] = sourceTree(t)
		must(t, os.WriteFile(filepath.Join(srcs[i], "host"), []byte(fmt.Sprint("host ", i)), 0o644))
	}
	errs := make(chan error, len(srcs))
	ids := make([]repo.ID, len(srcs))
	for i := range srcs {
		go func() {
			r := repotest.Open(t, dir, repotest.Password)
			l, err := r.Lock(ctx, false, 0)
			if err != nil {
				errs <- err
				return
			}
			defer l.Unlock()
			res, err := archiver.Backup(ctx, r, []string{srcs[i]}, archiver.Options{Host: fmt.Sprint("host", i)})
			if err == nil {
				ids[i] = res.Snapshot.ID
			}
			errs <- err
		}()
	}
	for range srcs {
		must(t, <-errs)
	}
	r := repotest.Open(t, dir, repotest.Password)
	for i, id := range ids {
		s, err := r.LoadSnapshot(ctx, id)
		must(t, err)
		dst := t.TempDir()
		_, err = restorer.Restore(ctx, r, s, dst, restorer.Options{Verify: true})
		must(t, err)
		repotest.CompareDirs(t, srcs[i], filepath.Join(dst, srcs[i]), repotest.CompareOptions{})
	}
}

// TestFullDisk: a backup into a repository on a file system that fills up
// fails with a clear error, and the repository stays valid: the earlier
// snapshot restores and the next backup (with space) succeeds.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=10m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", mnt).Run() })
	dir := filepath.Join(mnt, "repo")
	be, err := local.Create(dir)
	must(t, err)
	r, err := repo.Init(ctx, be, []byte(repotest.Password), repo.InitOptions{KDF: repotest.FastKDF, PackSize: 1 << 20, CacheDir: "-"})
	must(t, err)
	small := sourceTree(t)
	first, err := archiver.Backup(ctx, r, []string{small}, archiver.Options{})
	must(t, err)

	big := filepath.Join(t.TempDir(), "big")
	must(t, os.MkdirAll(big, 0o755))
	data := make([]byte, 16<<20)
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range data {
		data[i] = byte(rnd.Uint32())
	}
	must(t, os.WriteFile(filepath.Join(big, "random"), data, 0o644))
	r2 := repotest.Open(t, dir, repotest.Password)
	_, err = archiver.Backup(ctx, r2, []string{big}, archiver.Options{})
	if err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("backup onto a full disk: %v", err)
	}

	// The repository is still valid: the first snapshot restores.
	r3 := repotest.Open(t, dir, repotest.Password)
	s, err := r3.LoadSnapshot(ctx, first.Snapshot.ID)
	must(t, err)
	dst := t.TempDir()
	_, err = restorer.Restore(ctx, r3, s, dst, restorer.Options{Verify: true})
	must(t, err)
	repotest.CompareDirs(t, small, filepath.Join(dst, small), repotest.CompareOptions{})
	snaps, bad, err := r3.Snapshots(ctx)
	must(t, err)
	if len(snaps) != 1 || len(bad) != 0 {
		t.Fatalf("after the failed backup: %d snapshots, %d unreadable", len(snaps), len(bad))
	}
	// The failed backup's packs are unreferenced: prune frees them, and
	// then a backup that fits succeeds.
	if _, err := prune.Prune(ctx, r3, prune.Options{}); err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(filepath.Join(big, "random"), data[:1<<20], 0o644))
	r4 := repotest.Open(t, dir, repotest.Password)
	_, err = archiver.Backup(ctx, r4, []string{big}, archiver.Options{})
	must(t, err)
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add([]byte(`{"version":1,"time":"2026-11-21T10:00:00Z","tree":"` + strings.Repeat("ab", 32) + `","paths":["/etc"],"hostname":"h"}`))
	f.Add([]byte(`{"version":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := repo.DecodeSnapshot(repo.ID{}, b)
		if err == nil && (s.Version != 1 || repo.Hex(s.Tree) != s.TreeHex) {
			t.Fatalf("decoded an invalid snapshot: %+v", s)
		}
	})
}

// TestPackBlobLimit: a pack is closed at the format's 131,072 blobs even
// when far from pack_size (many tiny blobs), and every blob reads back.
func TestPackBlobLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("saves 140,000 blobs")
	}
	r, dir := repotest.New(t, repotest.Options{})
	const n = 140000
	ids := make([]repo.ID, 0, n)
	for i := 0; i < n; i++ {
		id, _, err := r.SaveBlob(ctx, repo.DataBlob, []byte(fmt.Sprint("tiny blob ", i)))
		must(t, err)
		ids = append(ids, id)
	}
	must(t, r.Flush(ctx))
	r2 := repotest.Open(t, dir, repotest.Password)
	if len(r2.Index().Packs()) < 2 {
		t.Fatalf("%d blobs in %d pack(s)", n, len(r2.Index().Packs()))
	}
	for _, i := range []int{0, 131071, 131072, n - 1} {
		b, err := r2.LoadBlob(ctx, repo.DataBlob, ids[i], nil)
		must(t, err)
		if string(b) != fmt.Sprint("tiny blob ", i) {
			t.Fatalf("blob %d: %q", i, b)
		}
	}
}

// TestCancelledUploadIsSticky: once an upload could not be made, the
// repository refuses further saves instead of claiming the lost blobs.
func TestCancelledUploadIsSticky(t *testing.T) {
	r, _ := repotest.New(t, repotest.Options{PackSize: 1 << 20})
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	big := make([]byte, 900<<10)
	rnd := rand.New(rand.NewPCG(5, 6))
	var err error
	for i := 0; i < 20 && err == nil; i++ {
		for j := range big {
			big[j] = byte(rnd.Uint32())
		}
		if i == 3 {
			cancel()
		}
		_, _, err = r.SaveBlob(cctx, repo.DataBlob, big)
	}
	if err == nil {
		t.Fatal("saves after cancellation kept succeeding")
	}
	if _, _, err := r.SaveBlob(ctx, repo.DataBlob, []byte("after")); err == nil {
		t.Fatal("a save after a lost upload succeeded")
	}
	if err := r.Flush(ctx); err == nil {
		t.Fatal("Flush after a lost upload succeeded")
	}
}

// An index loaded before the lock can be stale: a prune between loading
// and locking removed data it lists. RefreshIndex, after the lock, sees
// the index files changed and reloads, so the backup uploads the data
// again instead of pointing a snapshot at deleted packs.
func TestRefreshIndexAfterPrune(t *testing.T) {
	r, dir := repotest.New(t, repotest.Options{})
	src := sourceTree(t)
	res, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{})
	must(t, err)

	stale := repotest.Open(t, dir, repotest.Password) // loads the index
	if changed, err := stale.RefreshIndex(ctx); err != nil || changed {
		t.Fatalf("refresh with nothing changed: %v %v", changed, err)
	}
	other := repotest.Open(t, dir, repotest.Password)
	must(t, other.RemoveSnapshot(ctx, res.Snapshot.ID))
	if _, err := prune.Prune(ctx, other, prune.Options{}); err != nil {
		t.Fatal(err)
	}

	l, err := stale.Lock(ctx, false, 0)
	must(t, err)
	defer l.Unlock()
	if changed, err := stale.RefreshIndex(ctx); err != nil || !changed {
		t.Fatalf("refresh after a prune: %v %v", changed, err)
	}
	res2, err := archiver.Backup(ctx, stale, []string{src}, archiver.Options{NoParent: true})
	must(t, err)
	if res2.Summary.BytesAdded < 2<<20 {
		t.Fatalf("backup after the prune added %d bytes: it deduplicated against pruned data", res2.Summary.BytesAdded)
	}
	// Its own index file does not count as a change.
	if changed, err := stale.RefreshIndex(ctx); err != nil || changed {
		t.Fatalf("refresh after writing its own index: %v %v", changed, err)
	}
	out := filepath.Join(t.TempDir(), "out")
	fresh := repotest.Open(t, dir, repotest.Password)
	sn, err := fresh.LoadSnapshot(ctx, res2.Snapshot.ID)
	must(t, err)
	if _, err := restorer.Restore(ctx, fresh, sn, out, restorer.Options{Verify: true}); err != nil {
		t.Fatalf("restore of the backup made after the prune: %v", err)
	}
}
