package vault_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/archiver"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	vclient "github.com/bulwarkhq/bulwark/internal/repo/backend/vault"
	"github.com/bulwarkhq/bulwark/internal/repo/checker"
	"github.com/bulwarkhq/bulwark/internal/repo/prune"
	"github.com/bulwarkhq/bulwark/internal/repo/repotest"
	"github.com/bulwarkhq/bulwark/internal/vault"
	"github.com/bulwarkhq/bulwark/internal/vault/vaulttest"
)

// clock is an injectable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// TestRetentionByReceiptTime: a client that forges an old snapshot time
// cannot get that snapshot removed, and a snapshot the vault really
// received long ago is removed; the repository stays consistent.
func TestRetentionByReceiptTime(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	clk := &clock{t: now}
	v := vaulttest.Start(t, vault.Options{Now: clk.Now})
	tok := v.Token(t, vault.TokenSpec{Name: "client", Mode: vault.ModeAppendOnly})
	be, err := vclient.Create(ctx, v.URL+"/web", vclient.Options{Token: tok, CAFile: v.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, be, []byte(repotest.Password), repo.InitOptions{KDF: repotest.FastKDF, CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	backup := func(received, claimed time.Time, content string) repo.ID {
		t.Helper()
		clk.Set(received)
		if err := os.WriteFile(filepath.Join(src, "f"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{Time: claimed, NoParent: true})
		if err != nil {
			t.Fatal(err)
		}
		return res.Snapshot.ID
	}
	old := backup(now.AddDate(0, 0, -100), now.AddDate(0, 0, -100), "old")       // really received 100 days ago
	forged := backup(now, now.AddDate(-2, 0, 0), "forged")                       // received now, claims 2 years ago
	recent := backup(now.Add(-time.Hour), now.Add(-time.Hour), "recent")         // received an hour ago
	_ = backup(now.AddDate(0, 0, -29), now.AddDate(0, 0, -29), "inside window")  // 29 days: kept
	_ = backup(now.AddDate(0, 0, -31), now.AddDate(0, 0, -31), "outside window") // 31 days: removed

	// A torn receipt line (a crash mid-append) is skipped.
	f, err := os.OpenFile(filepath.Join(v.Data, "meta", "web", "received.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"name":"` + repo.Hex(recent) + `","rece`); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// A client-side policy on the snapshots' own times would remove the
	// forged one: that is what the attacker wanted.
	snaps, _, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, byClientTime := prune.Apply(snaps, prune.Policy{Within: prune.Duration{Days: 30}})
	forgedGone := false
	for _, d := range byClientTime {
		forgedGone = forgedGone || d.Snapshot.ID == forged
	}
	if !forgedGone {
		t.Fatal("test premise: a policy on client times should remove the forged snapshot")
	}

	dry, err := vault.Retention(ctx, v.Data, "web", vault.RetentionOptions{KeepWithin: prune.Duration{Days: 30}, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.Removed != 0 || len(dry.Remove) != 2 || len(list(t, v, "web")) != 5 {
		t.Fatalf("dry run: %+v", dry)
	}
	rep, err := vault.Retention(ctx, v.Data, "web", vault.RetentionOptions{KeepWithin: prune.Duration{Days: 30}})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Cutoff.Equal(now.AddDate(0, 0, -30)) {
		t.Errorf("cutoff %v, want newest receipt minus 30 days %v", rep.Cutoff, now.AddDate(0, 0, -30))
	}
	var removed []string
	for _, s := range rep.Remove {
		removed = append(removed, s.Name)
		if s.FromFile {
			t.Errorf("snapshot %s judged by file time though it has a receipt", s.Name)
		}
	}
	got := list(t, v, "web")
	if rep.Removed != 2 || len(got) != 3 || !contains(got, repo.Hex(forged)) || !contains(got, repo.Hex(recent)) || contains(got, repo.Hex(old)) {
		t.Fatalf("after retention: removed %v, left %v", removed, got)
	}
	// The repository is consistent: the removed snapshots' data is merely
	// unused until a full prune.
	full := v.Token(t, vault.TokenSpec{Name: "admin"})
	fb, err := vclient.Open(v.URL+"/web", vclient.Options{Token: full, CAFile: v.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	fr, err := repo.Open(ctx, fb, []byte(repotest.Password), repo.OpenOptions{CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if err := fr.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	crep, err := checker.Check(ctx, fr, checker.Options{ReadData: true})
	if err != nil || !crep.OK {
		t.Fatalf("check after retention: %v %+v", err, crep)
	}
	if crep.Stats.Snapshots != 3 {
		t.Errorf("check saw %d snapshots, want 3", crep.Stats.Snapshots)
	}
}

// TestRetentionFallsBackToFileTime: a snapshot without a receipt is judged
// by the time its file was written, and retention never deletes anything
// but snapshots, nor with no rule.
func TestRetentionFallsBackToFileTime(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	clk := &clock{t: now}
	v := vaulttest.Start(t, vault.Options{Now: clk.Now})
	tok := v.Token(t, vault.TokenSpec{Name: "admin"})
	v.Create(t, tok, "web")
	a := &attacker{t: t, v: v, c: v.HTTPClient(t), token: tok}
	var names []string
	for _, body := range []string{"one", "two", "three"} {
		h := backend.Handle{Type: backend.SnapshotFile, Name: sha([]byte(body))}
		if st, msg := a.do(http.MethodPut, vault.ObjectPath("web", h), "", []byte(body), nil); st != http.StatusCreated {
			t.Fatalf("PUT: %d %s", st, msg)
		}
		names = append(names, h.Name)
	}
	key := backend.Handle{Type: backend.KeyFile, Name: sha([]byte("k"))}
	a.do(http.MethodPut, vault.ObjectPath("web", key), "", []byte("k"), nil)
	if err := os.Remove(filepath.Join(v.Data, "meta", "web", "received.jsonl")); err != nil {
		t.Fatal(err)
	}
	oldTime := now.AddDate(0, -3, 0)
	if err := os.Chtimes(filepath.Join(v.Data, "repos", "web", "snapshots", names[0]), oldTime, oldTime); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.Retention(ctx, v.Data, "web", vault.RetentionOptions{}); err == nil {
		t.Fatal("retention without a rule ran")
	}
	rep, err := vault.Retention(ctx, v.Data, "web", vault.RetentionOptions{KeepWithin: prune.Duration{Days: 30}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Remove) != 1 || rep.Remove[0].Name != names[0] || !rep.Remove[0].FromFile {
		t.Fatalf("removed %+v, want only %s by file time", rep.Remove, names[0])
	}
	want := append([]string(nil), names[1:]...)
	sort.Strings(want)
	if diff := cmp.Diff(want, list(t, v, "web")); diff != "" {
		t.Errorf("snapshots left (-want +got):\n%s", diff)
	}
	if st, _ := a.do(http.MethodHead, vault.ObjectPath("web", key), "", nil, nil); st != http.StatusOK {
		t.Errorf("retention touched a key: HEAD %d", st)
	}
	// KeepLast alone keeps the newest N.
	rep, err = vault.Retention(ctx, v.Data, "web", vault.RetentionOptions{KeepLast: 1})
	if err != nil || rep.Removed != 1 || len(list(t, v, "web")) != 1 {
		t.Fatalf("keep-last 1: %+v %v", rep, err)
	}
}

func list(t *testing.T, v *vaulttest.Vault, name string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(v.Data, "repos", name, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
