package continuity

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity/dump"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/restorer"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
)

// RestoreTestEvidence is what a restore test proves: which snapshots were
// restored, how much was verified, how long it took (the measured
// recovery time) and how old the data was (the recovery point).
type RestoreTestEvidence struct {
	Policy     string         `json:"policy"`
	Repository string         `json:"repository"`
	Started    time.Time      `json:"started"`
	Duration   float64        `json:"duration_seconds"`
	Tests      []SnapshotTest `json:"tests"`
	Result     string         `json:"result"` // passed or failed
}

// SnapshotTest is the restore of one snapshot.
type SnapshotTest struct {
	Source          string    `json:"source"`
	Which           string    `json:"which"` // newest or older
	Snapshot        string    `json:"snapshot"`
	SnapshotTime    time.Time `json:"snapshot_time"`
	DataAge         float64   `json:"data_age_seconds"`
	Files           int64     `json:"files"`
	Bytes           int64     `json:"bytes"`
	FilesVerified   int64     `json:"files_verified"`
	MetadataChecked int64     `json:"metadata_checked"`
	Databases       []string  `json:"databases_restored,omitempty"`
	Command         string    `json:"command,omitempty"`
	Duration        float64   `json:"recovery_seconds"`
	Error           string    `json:"error,omitempty"`
}

// RestoreTest restores, for every source of the policy, the newest
// snapshot and a randomly chosen older one from the primary into a scratch
// location; verifies every file's content against its chunk ids and its
// metadata against the snapshot; restores database dumps into a scratch
// database when one is configured; runs the configured verification
// command; and removes everything it made. A failure raises an alert
// event.
func (s *Service) RestoreTest(ctx context.Context, name string) (*RestoreTestEvidence, error) {
	c, err := s.claim(ctx, name, KindRestoreTest)
	if err != nil {
		return nil, err
	}
	return s.runRestoreTest(ctx, c)
}

func (s *Service) runRestoreTest(ctx context.Context, c *claim) (*RestoreTestEvidence, error) {
	ctx = withPolicy(ctx, c.p)
	p := c.p
	ev, err := runClaimed(ctx, s, c, func(p config.Policy) (*RestoreTestEvidence, error) { return s.restoreTest(ctx, p) })
	if ev == nil {
		return nil, err
	}
	res := events.Event{Resource: "policy/" + p.Name}
	if err != nil {
		s.publish(ctx, withData(withMsg(res, events.TypeRestoreTestFailed, events.SeverityError, "restore test of %s failed: %v", p.Name, err),
			map[string]any{"evidence": ev}))
	} else {
		s.publish(ctx, withData(withMsg(res, events.TypeRestoreTestPassed, events.SeverityInfo, "restore test of %s passed: %d snapshots in %.1fs", p.Name, len(ev.Tests), ev.Duration),
			map[string]any{"evidence": ev}))
	}
	return ev, err
}

func (s *Service) restoreTest(ctx context.Context, p config.Policy) (*RestoreTestEvidence, error) {
	start := s.now()
	ev := &RestoreTestEvidence{Policy: p.Name, Repository: p.Repository, Started: start, Tests: []SnapshotTest{}, Result: "failed"}
	defer func() { ev.Duration = s.now().Sub(start).Seconds() }()
	r, err := s.openNamed(ctx, p.Repository)
	if err != nil {
		return ev, err
	}
	defer r.Close()
	if !r.CanRead() {
		return ev, errors.New("the primary repository's key is write-only: a restore test needs a full key")
	}
	l, err := readLock(ctx, r) // a concurrent prune would fail the test falsely
	if err != nil {
		return ev, err
	}
	defer l.Unlock()
	var failures []string
	for i, src := range p.Sources {
		sname := SourceName(src, i)
		snaps, err := snapshotsOf(ctx, r, p.Name, sname)
		if err != nil {
			return ev, err
		}
		if len(snaps) == 0 {
			failures = append(failures, fmt.Sprintf("source %s has no snapshot to test", sname))
			continue
		}
		picks := []*repo.Snapshot{snaps[len(snaps)-1]}
		if len(snaps) > 1 {
			picks = append(picks, snaps[rand.IntN(len(snaps)-1)])
		}
		for j, sn := range picks {
			st := s.testSnapshot(ctx, r, p, src, sname, sn)
			st.Which = "newest"
			if j == 1 {
				st.Which = "older"
			}
			ev.Tests = append(ev.Tests, st)
			if st.Error != "" {
				failures = append(failures, fmt.Sprintf("source %s snapshot %s: %s", sname, st.Snapshot[:8], st.Error))
			}
		}
	}
	if len(failures) > 0 {
		return ev, errors.New(strings.Join(failures, "; "))
	}
	ev.Result = "passed"
	return ev, nil
}

func (s *Service) testSnapshot(ctx context.Context, r *repo.Repository, p config.Policy, src config.Source, sname string, sn *repo.Snapshot) (st SnapshotTest) {
	st = SnapshotTest{Source: sname, Snapshot: repo.Hex(sn.ID), SnapshotTime: sn.Time, DataAge: s.now().Sub(sn.Time).Seconds()}
	start := s.now()
	defer func() { st.Duration = s.now().Sub(start).Seconds() }()
	fail := func(err error) SnapshotTest {
		st.Error = err.Error()
		return st
	}
	base := p.RestoreTest.Scratch
	if base == "" {
		base = os.TempDir()
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return fail(err)
	}
	dir, err := os.MkdirTemp(base, "bulwark-restore-test-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)

	stats, err := restorer.Restore(ctx, r, sn, dir, restorer.Options{Verify: true, NumericIDs: true})
	if err != nil {
		return fail(fmt.Errorf("restore: %w", err))
	}
	st.Files, st.Bytes, st.FilesVerified = stats.Files, stats.Bytes, stats.Verified
	n, err := verifyMetadata(ctx, r, sn.Tree, dir, os.Geteuid() == 0)
	st.MetadataChecked = n
	if err != nil {
		return fail(err)
	}

	// Database dumps also go into a scratch database when one is set.
	// With a verification command the scratch databases live until it
	// has run (BULWARK_SCRATCH_DATABASES names them), so it can check
	// them; they are dropped whatever happened.
	var scratchDBs []string
	var drops []func() error
	dropScratch := func() error {
		var errs []error
		for _, drop := range drops {
			errs = append(errs, drop())
		}
		drops = nil
		return errors.Join(errs...)
	}
	defer func() {
		if err := dropScratch(); err != nil {
			if st.Error != "" {
				st.Error += "; "
			}
			st.Error += err.Error()
		}
	}()
	var dsn config.Secret
	scratch, restore := dump.ScratchPostgres, dump.RestorePostgres
	switch {
	case src.Postgres.IsSet() && p.RestoreTest.Postgres.IsSet():
		dsn = p.RestoreTest.Postgres
	case src.MySQL.IsSet() && p.RestoreTest.MySQL.IsSet():
		dsn, scratch, restore = p.RestoreTest.MySQL, dump.ScratchMySQL, dump.RestoreMySQL
	}
	if dsn.IsSet() {
		server, err := s.secret(dsn)
		if err != nil {
			return fail(err)
		}
		dumpDir := dump.PGDir
		if src.MySQL.IsSet() {
			dumpDir = dump.MyDir
		}
		files, err := dump.ListFiles(ctx, r, sn, dumpDir)
		if err != nil {
			return fail(err)
		}
		for _, f := range files {
			if !strings.HasSuffix(f.Path, ".dump") && !(strings.HasSuffix(f.Path, ".sql") && src.MySQL.IsSet()) {
				continue // globals.sql and the like
			}
			if f.Path == "/"+dump.MyAllFile {
				// Its CREATE DATABASE and USE statements name the
				// original databases: replayed on the scratch server it
				// would overwrite them there, not fill a scratch database.
				return fail(fmt.Errorf("%s (an --all-databases dump) cannot be restored into a scratch database: it recreates every database under its original name; back up single databases (a DSN naming the database) for the restore test to restore them", f.Path))
			}
			db := "bulwark_restore_test_" + randomSuffix()
			target, drop, err := scratch(ctx, server, db, dump.Options{})
			if err != nil {
				return fail(fmt.Errorf("scratch database: %w", err))
			}
			drops = append(drops, func() error {
				if err := drop(context.WithoutCancel(ctx)); err != nil {
					return fmt.Errorf("dropping scratch database %s: %w", db, err)
				}
				return nil
			})
			if _, err := restore(ctx, r, sn, target, dump.RestoreOptions{Includes: []string{f.Path}}); err != nil {
				return fail(fmt.Errorf("restoring %s into a scratch database: %w", f.Path, err))
			}
			st.Databases = append(st.Databases, f.Path)
			scratchDBs = append(scratchDBs, db)
			if len(p.RestoreTest.Command) == 0 {
				if err := dropScratch(); err != nil {
					return fail(err)
				}
			}
		}
	}

	if cmd := p.RestoreTest.Command; len(cmd) > 0 {
		st.Command = strings.Join(cmd, " ")
		c := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
		c.Dir = dir
		c.Env = append(os.Environ(), "BULWARK_RESTORE_DIR="+dir, "BULWARK_SNAPSHOT="+st.Snapshot, "BULWARK_POLICY="+p.Name, "BULWARK_SOURCE="+sname,
			"BULWARK_SCRATCH_DATABASES="+strings.Join(scratchDBs, " "))
		if out, err := c.CombinedOutput(); err != nil {
			return fail(fmt.Errorf("verification command %q: %v: %s", st.Command, err, lastLine(out)))
		}
	}
	return st
}

func randomSuffix() string {
	var b [6]byte
	_, _ = cryptorand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// verifyMetadata compares what was restored below dir with the snapshot's
// trees: every entry exists with the recorded type, permission bits,
// modification time, size and symlink target (and owner when run as
// root). It returns how many entries it checked.
func verifyMetadata(ctx context.Context, r *repo.Repository, root repo.ID, dir string, asRoot bool) (int64, error) {
	var n int64
	var walk func(id repo.ID, path string) error
	walk = func(id repo.ID, path string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		t, err := r.LoadTree(ctx, id)
		if err != nil {
			return err
		}
		for i := range t.Nodes {
			nd := &t.Nodes[i]
			p := filepath.Join(path, nd.Name)
			if err := checkNode(p, nd, asRoot); err != nil {
				return err
			}
			n++
			if nd.Type == tree.TypeDir && nd.Subtree != nil {
				if err := walk(repo.ID(*nd.Subtree), p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return n, walk(root, dir)
}

func checkNode(p string, nd *tree.Node, asRoot bool) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	got, err := tree.NodeFromPath(p, nd.Name, fi, tree.CaptureOptions{NoXattrs: true})
	if err != nil && !tree.IsWarning(err) {
		return fmt.Errorf("metadata: %w", err)
	}
	bad := func(what string, want, have any) error {
		return fmt.Errorf("metadata of %s: %s is %v, the snapshot has %v", p, what, have, want)
	}
	switch {
	case got.Type != nd.Type:
		return bad("type", nd.Type, got.Type)
	case nd.Type == tree.TypeFile && got.Size != nd.Size:
		return bad("size", nd.Size, got.Size)
	case nd.Type == tree.TypeSymlink && got.Target != nd.Target:
		return bad("symlink target", nd.Target, got.Target)
	case nd.Type != tree.TypeSymlink && got.Mode != nd.Mode:
		return bad("mode", fmt.Sprintf("%#o", nd.Mode), fmt.Sprintf("%#o", got.Mode))
	case !got.ModTime.Equal(nd.ModTime):
		return bad("mtime", nd.ModTime, got.ModTime)
	case asRoot && (got.UID != nd.UID || got.GID != nd.GID):
		return bad("owner", fmt.Sprintf("%d:%d", nd.UID, nd.GID), fmt.Sprintf("%d:%d", got.UID, got.GID))
	}
	return nil
}
