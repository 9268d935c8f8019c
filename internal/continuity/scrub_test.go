package continuity

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/config"
)

// Scrubs rotate through the groups so that a full pass takes the period.
func TestScrubRotation(t *testing.T) {
	f := newFixture(t, config.Policy{Name: "web", Sources: []config.Source{{Command: []string{"seq", "1", "100000"}}},
		Scrub: config.Scrub{Schedule: "every 1d", Period: config.Duration(3 * 24 * 3600e9)}})
	if _, err := f.svc.RunBackup(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	var groups []string
	read := 0
	for range 4 {
		rep, err := f.svc.Scrub(ctx, "web")
		if err != nil || !rep.OK {
			t.Fatalf("scrub: %+v %v", rep, err)
		}
		groups = append(groups, rep.Group)
		read += rep.Packs
	}
	if groups[0] != "1/3" || groups[1] != "2/3" || groups[2] != "3/3" || groups[3] != "1/3" {
		t.Errorf("groups %v, want 1/3 2/3 3/3 1/3", groups)
	}
	if read == 0 {
		t.Error("no pack read in four scrubs")
	}
}

// A corrupted primary without parity is healed from the offsite copy: the
// damaged blobs come back, the check passes again, and a restore test of
// the original snapshots passes.
func TestScrubHealsFromOffsite(t *testing.T) {
	f := newFixture(t, config.Policy{Name: "web", Sources: []config.Source{{Name: "files"}}, Offsite: []string{"offsite"}})
	f.svc.Config.Policies[0].Sources[0].Paths = []string{f.data}
	if _, err := f.svc.RunBackup(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	packs, _ := filepath.Glob(filepath.Join(f.dirs["primary"], "data", "*", "*"))
	if len(packs) == 0 {
		t.Fatal("no packs")
	}
	for _, p := range packs {
		b, err := os.ReadFile(p)
		must(t, err)
		b[len(b)/2] ^= 1
		must(t, os.Chmod(p, 0o600))
		must(t, os.WriteFile(p, b, 0o600))
	}
	rep, err := f.svc.Scrub(ctx, "web")
	if err != nil {
		t.Fatalf("scrub: %v (%+v)", err, rep)
	}
	if !rep.OK || len(rep.Problems) == 0 || rep.Repair == nil || len(rep.Healed) != 1 || rep.Healed[0].Blobs == 0 || len(rep.Recheck) != 0 {
		t.Fatalf("scrub report: %+v", rep)
	}
	if _, err := f.svc.RestoreTest(ctx, "web"); err != nil {
		t.Errorf("restore test after healing: %v", err)
	}
}
