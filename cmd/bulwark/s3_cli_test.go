package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/s3/s3test"
)

// s3CLI is a CLI environment for a repository in a new bucket on a real
// versitygw (with object lock if locked).
func s3CLI(t *testing.T, locked bool) (*cliEnv, *s3test.Server, string) {
	s := s3test.Start(t)
	bucket := s.Bucket(t, locked)
	loc := "s3:http://" + s.Host + "/" + bucket + "/backups/host1"
	c := newCLI(t).with("BULWARK_REPO", loc).with("BULWARK_PASSWORD", "s3 cli password").
		with("BULWARK_CACHE_DIR", t.TempDir())
	for k, v := range s.Env() {
		c = c.with(k, v)
	}
	return c, s, bucket
}

// TestS3EndToEnd: init, backup, snapshots, restore and a full check
// against a real S3 server with object lock, through the command line.
func TestS3EndToEnd(t *testing.T) {
	c, _, _ := s3CLI(t, true)
	src := filepath.Join(t.TempDir(), "src")
	files := map[string]string{"a.txt": "alpha\n", "sub/b.txt": strings.Repeat("beta ", 100000)}
	for name, data := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Without --insecure, plain http is refused.
	if code, _, errOut := c.run("", "repo", "init"); code == 0 || !strings.Contains(errOut, "plain http:// is refused") {
		t.Fatalf("repo init over http without --insecure: exit %d, %s", code, errOut)
	}
	mustRun(t, c, "repo", "init", "--insecure")
	id := strings.TrimSpace(mustRun(t, c, "backup", "--insecure", src))
	if len(id) != 64 {
		t.Fatalf("backup printed %q, want a snapshot id", id)
	}
	if out := mustRun(t, c, "snapshots", "--insecure"); !strings.Contains(out, id[:8]) {
		t.Fatalf("snapshots does not list %s:\n%s", id[:8], out)
	}
	target := t.TempDir()
	mustRun(t, c, "restore", "--insecure", id, "--target", target, "--verify")
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(target, src, name))
		if err != nil || string(got) != data {
			t.Fatalf("restored %s: %d bytes, %v", name, len(got), err)
		}
	}
	mustRun(t, c, "repo", "check", "--insecure", "--read-data")

	// Every object but locks is under object lock for the default 40 days.
	ctx := context.Background()
	be, err := openS3(ctx, &Env{Getenv: func(k string) string { return c.vars[k] }}, &transportFlags{insecure: true}, c.vars["BULWARK_REPO"], false)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	r := be.(backend.Retainer)
	checked := 0
	for _, typ := range []backend.Type{backend.ConfigFile, backend.KeyFile, backend.SnapshotFile, backend.IndexFile, backend.PackFile} {
		err := be.List(ctx, typ, func(fi backend.FileInfo) error {
			until, err := r.RetainUntil(ctx, backend.Handle{Type: typ, Name: fi.Name})
			if err != nil {
				return err
			}
			if d := time.Until(until); d < 39*24*time.Hour || d > 41*24*time.Hour {
				t.Errorf("%s/%s locked until %v, want about 40 days from now", typ, fi.Name, until)
			}
			checked++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if checked < 5 {
		t.Fatalf("checked the locks of %d objects, want at least 5", checked)
	}
}

func TestS3CLIErrors(t *testing.T) {
	c, s, _ := s3CLI(t, false)
	// A missing bucket: the error says to create it.
	bad := c.with("BULWARK_REPO", "s3:http://"+s.Host+"/no-such-bucket/x")
	if code, _, errOut := bad.run("", "repo", "init", "--insecure"); code == 0 || !strings.Contains(errOut, "create it first") {
		t.Fatalf("init in a missing bucket: exit %d, %s", code, errOut)
	}
	// Wrong credentials: a clear error.
	wrong := c.with("AWS_SECRET_ACCESS_KEY", "wrong")
	if code, _, errOut := wrong.run("", "repo", "init", "--insecure"); code == 0 || !strings.Contains(errOut, "credentials") {
		t.Fatalf("init with a wrong secret: exit %d, %s", code, errOut)
	}
	// A bad location and bad settings are usage errors.
	if code, _, errOut := c.with("BULWARK_REPO", "s3:https://h/B").run("", "snapshots"); code != 2 || !strings.Contains(errOut, "bucket") {
		t.Fatalf("bad bucket name: exit %d, %s", code, errOut)
	}
	if code, _, errOut := c.with("BULWARK_S3_RETENTION", "forever").run("", "snapshots", "--insecure"); code != 2 || !strings.Contains(errOut, "BULWARK_S3_RETENTION") {
		t.Fatalf("bad retention: exit %d, %s", code, errOut)
	}
	// Opening a prefix with no repository.
	if code, _, errOut := c.run("", "snapshots", "--insecure"); code == 0 || !strings.Contains(errOut, "not a repository") {
		t.Fatalf("snapshots of an empty prefix: exit %d, %s", code, errOut)
	}
}

func TestParseDays(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "1d": 24 * time.Hour, "960h": 960 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := parseDays(in); err != nil || got != want {
			t.Errorf("parseDays(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "0d", "x", "-5h", "1.5d", "99999999d"} {
		if got, err := parseDays(in); err == nil {
			t.Errorf("parseDays(%q) = %v, want an error", in, got)
		}
	}
}
