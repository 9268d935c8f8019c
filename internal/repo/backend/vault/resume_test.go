package vault_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/retry"
	vclient "github.com/bulwarkhq/bulwark/internal/repo/backend/vault"
	"github.com/bulwarkhq/bulwark/internal/repo/copier"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/bulwarkhq/bulwark/internal/repo/restorer"
	"github.com/bulwarkhq/bulwark/internal/vault"
	"github.com/bulwarkhq/bulwark/internal/vault/vaulttest"
)

// resumeMiB is the corpus of the resume tests, in 1 MiB packs with a
// checkpoint every resumeEvery packs; the vault is killed once cutMiB have
// gone up.
const (
	resumeMiB   = 32
	resumeEvery = 4
	cutMiB      = 18
)

// killAfter makes p kill v (for good: the retries give up) once mib MiB
// have gone up through it. The channel is closed once v is dead.
func killAfter(p *proxy, v *vaulttest.Vault, mib int64) <-chan struct{} {
	var once sync.Once
	dead := make(chan struct{})
	p.setOnUp(func(total int64) {
		if total > mib<<20 {
			once.Do(func() {
				go func() {
					v.Kill()
					close(dead)
				}()
			})
		}
	})
	return dead
}

// giveUp retries briefly: the vault stays down longer than the back-off.
var giveUp = retry.Policy{Attempts: 2, Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond}

// restoreAndCompare restores snapshot id with a full token and compares
// it with src.
func restoreAndCompare(t *testing.T, v *vaulttest.Vault, tok, name string, id repo.ID, src string) {
	t.Helper()
	r := openRepo(t, v, v.URL, tok, name, fastRetry)
	s, err := r.LoadSnapshot(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if _, err := restorer.Restore(context.Background(), r, s, target, restorer.Options{Verify: true}); err != nil {
		t.Fatal(err)
	}
	repotest.CompareDirs(t, src, filepath.Join(target, src), repotest.CompareOptions{})
}

// TestInterruptedBackupResumes: a first backup to a vault that dies for
// good halfway fails; after the vault restarts, the next backup uploads
// only what the first had not checkpointed, the repository checks clean
// reading all data, and the snapshot restores equal to the source.
func TestInterruptedBackupResumes(t *testing.T) {
	v := vaulttest.Start(t, vault.Options{})
	tok := v.Token(t, vault.TokenSpec{Name: "client", Mode: vault.ModeAppendOnly})
	initRepo(t, v, tok, "web")
	src := randomTree(t, resumeMiB)
	p := startProxy(t, v.Addr, &proxy{})
	dead := killAfter(p, v, cutMiB)

	r := openRepo(t, v, "https://"+p.addr(), tok, "web", giveUp)
	r.CheckpointPacks = resumeEvery
	if err := backup(r, src); err == nil {
		t.Fatal("backup succeeded though the vault was killed")
	}
	// Whatever the dead session still had in flight fails too.
	if err := r.Flush(context.Background()); err == nil {
		t.Fatal("Flush succeeded though the vault was killed")
	}
	st1 := r.Stats()
	<-dead
	v.Restart(t)
	verifyClean(t, v, tok, "web", 0)
	files, err := openRepo(t, v, v.URL, tok, "web", fastRetry).LoadIndexFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 || int64(len(files)) != st1.Checkpoints.Load() {
		t.Fatalf("after the interrupted backup: %d index files, %d checkpoints; want the checkpoints stored", len(files), st1.Checkpoints.Load())
	}

	r2 := openRepo(t, v, v.URL, tok, "web", fastRetry)
	r2.CheckpointPacks = resumeEvery
	res, err := archiver.Backup(context.Background(), r2, []string{src}, archiver.Options{NoParent: true})
	if err != nil {
		t.Fatalf("backup after the vault came back: %v", err)
	}
	st2 := r2.Stats()
	total := int64(resumeMiB << 20)
	t.Logf("interrupted: %d packs, %d bytes uploaded, %d checkpoints; resumed: %d packs, %d bytes uploaded (corpus %d bytes)",
		st1.Packs.Load(), st1.BytesStored.Load(), st1.Checkpoints.Load(), st2.Packs.Load(), st2.BytesStored.Load(), total)
	// The first run stored about cutMiB before the kill; the checkpoints
	// cover all of it but the packs since the last one and those in flight
	// (and the last checkpoint may lose the race with the kill).
	if saved := cutMiB - 2*resumeEvery - 2; st2.BytesStored.Load() > total-int64(saved)<<20 {
		t.Errorf("resumed backup uploaded %d bytes of a %d-byte corpus: want at most %d (the first run's checkpoints not reused?)",
			st2.BytesStored.Load(), total, total-int64(saved)<<20)
	}
	verifyClean(t, v, tok, "web", 1)
	restoreAndCompare(t, v, tok, "web", res.Snapshot.ID, src)
}

// TestInterruptedCopyResumes: `bulwark copy` to an offsite vault with a
// write-only key, cut off for good halfway, resumes from its checkpoints
// (trusted because its cache records them as its own), and the resumed
// copy verifies and restores.
func TestInterruptedCopyResumes(t *testing.T) {
	ctx := context.Background()
	data := randomTree(t, resumeMiB)
	src, _ := repotest.New(t, repotest.Options{PackSize: 1 << 20})
	if _, err := archiver.Backup(ctx, src, []string{data}, archiver.Options{Host: "h"}); err != nil {
		t.Fatal(err)
	}
	snaps, _, err := src.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}

	v := vaulttest.Start(t, vault.Options{})
	tok := v.Token(t, vault.TokenSpec{Name: "offsite", Mode: vault.ModeAppendOnly})
	be, err := vclient.Create(ctx, v.URL+"/offsite", vclient.Options{Token: tok, CAFile: v.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	full, err := repo.Init(ctx, be, []byte(repotest.Password), repo.InitOptions{KDF: repotest.FastKDF, PackSize: 1 << 20, CopyFrom: src, CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := full.AddKey(ctx, []byte("write only"), true, repotest.FastKDF, crypto.KeyFile{}); err != nil {
		t.Fatal(err)
	}
	full.Close()

	cache := t.TempDir()
	openWO := func(base string, p retry.Policy) *repo.Repository {
		be, err := vclient.Open(base+"/offsite", vclient.Options{Token: tok, CAFile: v.CertFile, Retry: p})
		if err != nil {
			t.Fatal(err)
		}
		r, err := repo.Open(ctx, be, []byte("write only"), repo.OpenOptions{CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		if r.CanRead() {
			t.Fatal("the offsite key can read")
		}
		if err := r.LoadIndex(ctx); err != nil {
			t.Fatal(err)
		}
		r.CheckpointPacks = resumeEvery
		t.Cleanup(func() { r.Close() })
		return r
	}

	p := startProxy(t, v.Addr, &proxy{})
	dead := killAfter(p, v, cutMiB)
	dst := openWO("https://"+p.addr(), giveUp)
	if _, err := copier.Copy(ctx, src, dst, snaps, copier.Options{}); err == nil {
		t.Fatal("copy succeeded though the vault was killed")
	}
	if err := dst.Flush(ctx); err == nil {
		t.Fatal("Flush succeeded though the vault was killed")
	}
	st1 := dst.Stats()
	<-dead
	v.Restart(t)

	dst2 := openWO(v.URL, fastRetry)
	res, err := copier.Copy(ctx, src, dst2, snaps, copier.Options{})
	if err != nil {
		t.Fatalf("copy after the vault came back: %v", err)
	}
	st2 := dst2.Stats()
	total := int64(resumeMiB << 20)
	t.Logf("interrupted copy: %d bytes uploaded, %d checkpoints; resumed copy: %d blobs, %d bytes copied, %d bytes uploaded, verified %v (%d blobs)",
		st1.BytesStored.Load(), st1.Checkpoints.Load(), res.Blobs, res.Bytes, st2.BytesStored.Load(), res.Verified, res.BlobsNeeded)
	if !res.Verified || len(res.Copied) != 1 {
		t.Fatalf("resumed copy: %+v", res)
	}
	if saved := cutMiB - 2*resumeEvery - 2; st2.BytesStored.Load() > total-int64(saved)<<20 {
		t.Errorf("resumed copy uploaded %d bytes of %d: want at most %d", st2.BytesStored.Load(), total, total-int64(saved)<<20)
	}
	verifyClean(t, v, tok, "offsite", 1)
	id, err := repo.ParseID(res.Copied[0].Copy)
	if err != nil {
		t.Fatal(err)
	}
	restoreAndCompare(t, v, tok, "offsite", id, data)
}
