package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestS3ObjectLockRetention: on a bucket with object lock, forget leaves
// snapshots whose lock has not expired (and says so), prune removes
// nothing locked and checks clean, and a prune with a longer retention
// extends the locks of everything the kept snapshots need.
func TestS3ObjectLockRetention(t *testing.T) {
	c, _, _ := s3CLI(t, true)
	c = c.with("BULWARK_S3_RETENTION", "2d")
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, c, "repo", "init", "--insecure")
	for i := range 3 {
		if err := os.WriteFile(filepath.Join(src, "f"), []byte(strings.Repeat("version ", 1000*(i+1))), 0o644); err != nil {
			t.Fatal(err)
		}
		mustRun(t, c, "backup", "--insecure", src)
	}

	var fr struct {
		Removed int `json:"removed"`
		Locked  []struct {
			ID string `json:"id"`
		} `json:"locked"`
	}
	out := mustRun(t, c, "forget", "--insecure", "--json", "--keep-last", "1")
	if err := json.Unmarshal([]byte(out), &fr); err != nil {
		t.Fatalf("forget --json: %v\n%s", err, out)
	}
	if fr.Removed != 0 || len(fr.Locked) != 2 {
		t.Fatalf("forget under a 2-day lock: removed %d, locked %d; want 0 and 2", fr.Removed, len(fr.Locked))
	}
	var snaps []json.RawMessage
	if err := json.Unmarshal([]byte(mustRun(t, c, "snapshots", "--insecure", "--json")), &snaps); err != nil || len(snaps) != 3 {
		t.Fatalf("snapshots after forget: %d, %v", len(snaps), err)
	}

	type pruneReport struct {
		Remove        struct{ Packs int } `json:"remove"`
		Repack        struct{ Packs int } `json:"repack"`
		LocksExtended int                 `json:"locks_extended"`
	}
	var pr pruneReport
	if err := json.Unmarshal([]byte(mustRun(t, c, "repo", "prune", "--insecure", "--json")), &pr); err != nil {
		t.Fatal(err)
	}
	if pr.Remove.Packs != 0 || pr.Repack.Packs != 0 || pr.LocksExtended != 0 {
		t.Fatalf("prune with fresh 2-day locks: %+v; want nothing removed and nothing extended", pr)
	}
	// With a 6-day retention the 2-day locks are within half of it: extended.
	c3 := c.with("BULWARK_S3_RETENTION", "6d")
	if err := json.Unmarshal([]byte(mustRun(t, c3, "repo", "prune", "--insecure", "--json")), &pr); err != nil {
		t.Fatal(err)
	}
	// config, key, 3 snapshots, index file(s), pack(s): at least 6.
	if pr.LocksExtended < 6 {
		t.Fatalf("prune with a 6-day retention extended %d locks, want every object the snapshots need", pr.LocksExtended)
	}
	if err := json.Unmarshal([]byte(mustRun(t, c3, "repo", "prune", "--insecure", "--json")), &pr); err != nil || pr.LocksExtended != 0 {
		t.Fatalf("a second prune extended %d locks (%v), want 0", pr.LocksExtended, err)
	}
	mustRun(t, c, "repo", "check", "--insecure", "--read-data")
}
