package main

// Crash tests of the backup repository, against the real binary: backups
// and prunes are killed with SIGKILL at random moments; after each kill
// `repo check --read-data` passes, every snapshot a finished backup
// reported restores byte for byte, and the next backup succeeds (the dead
// process's lock is recognised as stale). Plus the command-line contract
// of forget and repo prune.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
	"github.com/bulwarkhq/bulwark/internal/repo/parity"
)

const crashPassword = "crash-test-password"

// crashEnv runs the binary against one repository.
type crashEnv struct {
	t     *testing.T
	repo  string
	cache string
}

func (c *crashEnv) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "BULWARK_PASSWORD="+crashPassword, "BULWARK_REPO="+c.repo,
		"XDG_CACHE_HOME="+c.cache, "BULWARK_CPUPROFILE=")
	return cmd
}

// run runs a command to completion.
func (c *crashEnv) run(args ...string) (int, string, string) {
	c.t.Helper()
	cmd := c.cmd(args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return code, so.String(), se.String()
}

// mustRun runs a command that has to succeed.
func (c *crashEnv) mustRun(args ...string) string {
	c.t.Helper()
	code, so, se := c.run(args...)
	if code != 0 {
		c.t.Fatalf("bulwark %s: exit %d\n%s%s", strings.Join(args, " "), code, so, se)
	}
	return so
}

// killAfter starts a command and kills it with SIGKILL after d, unless it
// finished first. It returns whether it finished, its exit code and stdout.
func (c *crashEnv) killAfter(d time.Duration, args ...string) (finished bool, code int, stdout, stderr string) {
	c.t.Helper()
	cmd := c.cmd(args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			c.t.Fatal(err)
		}
		return true, code, so.String(), se.String()
	case <-time.After(d):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := <-done // reaped: the PID is gone, so its lock is stale
		if err == nil {
			return true, 0, so.String(), se.String() // exited just before the signal
		}
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() >= 0 {
			return true, ee.ExitCode(), so.String(), se.String()
		}
		return false, -1, so.String(), se.String()
	}
}

// manifest describes a tree by content: path -> kind, mode and SHA-256.
func manifest(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			m[rel] = "symlink " + target
		case d.IsDir():
			m[rel] = fmt.Sprintf("dir %o", fi.Mode().Perm())
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			m[rel] = fmt.Sprintf("file %o %d %s", fi.Mode().Perm(), len(b), hex.EncodeToString(sum[:8]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func diffManifest(want, got map[string]string) []string {
	var d []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			d = append(d, p+": missing from restore")
		} else if g != w {
			d = append(d, fmt.Sprintf("%s: %s, want %s", p, g, w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			d = append(d, p+": restored but not in the source")
		}
	}
	sort.Strings(d)
	return d
}

// crashSource writes the tree to back up: small files in many directories,
// a few 5 MB files and some symlinks; random (incompressible) content.
func crashSource(t *testing.T, rng *rand.Rand, dir string, small, big int) {
	t.Helper()
	for i := 0; i < small; i++ {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i%40), fmt.Sprintf("f%04d.txt", i))
		writeRandom(t, rng, p, 200+rng.IntN(12000))
	}
	for i := 0; i < big; i++ {
		writeRandom(t, rng, filepath.Join(dir, "big", fmt.Sprintf("big%d.bin", i)), 5<<20)
	}
	for i := 0; i < 5; i++ {
		if err := os.Symlink(fmt.Sprintf("../d%02d/f%04d.txt", i, i), filepath.Join(dir, "d00", fmt.Sprintf("link%d", i))); err != nil {
			t.Fatal(err)
		}
	}
}

func writeRandom(t *testing.T, rng *rand.Rand, p string, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// mutate changes the source between backups: rewrites some small files
// and a part of one big file, adds and removes a few.
func mutate(t *testing.T, rng *rand.Rand, dir string, step, small, big int) {
	t.Helper()
	for i := 0; i < small/25; i++ {
		n := rng.IntN(small)
		writeRandom(t, rng, filepath.Join(dir, fmt.Sprintf("d%02d", n%40), fmt.Sprintf("f%04d.txt", n)), 200+rng.IntN(12000))
	}
	// 1 MiB somewhere in one big file: a chunk or two change, the rest
	// deduplicates.
	f, err := os.OpenFile(filepath.Join(dir, "big", fmt.Sprintf("big%d.bin", rng.IntN(big))), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	region := make([]byte, 1<<20)
	for i := range region {
		region[i] = byte(rng.Uint32())
	}
	if _, err := f.WriteAt(region, rng.Int64N(4<<20)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		writeRandom(t, rng, filepath.Join(dir, "new", fmt.Sprintf("s%03d-%d", step, i)), 1000+rng.IntN(50000))
	}
	if step >= 3 {
		_ = os.Remove(filepath.Join(dir, "new", fmt.Sprintf("s%03d-0", step-3)))
	}
}

var snapID = regexp.MustCompile(`(?m)^([0-9a-f]{64})$`)

// TestCrashBackupAndPrune kills backups and prunes at random moments.
// Set BULWARK_CRASH_SEED to replay a run.
func TestCrashBackupAndPrune(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BULWARK_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (BULWARK_CRASH_SEED to replay)", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	kills, small, big := 26, 3000, 5
	if testing.Short() {
		kills, small, big = 8, 1000, 2
	}
	base := t.TempDir()
	c := &crashEnv{t: t, repo: filepath.Join(base, "repo"), cache: filepath.Join(base, "cache")}
	src := filepath.Join(base, "src")
	// Restores go to memory when there is a tmpfs: they are compared and
	// thrown away, and the disk is the slow part of this test.
	restoreDir := filepath.Join(base, "restore")
	if shm, err := os.MkdirTemp("/dev/shm", "bulwark-crash-"); err == nil {
		restoreDir = filepath.Join(shm, "restore")
		t.Cleanup(func() { os.RemoveAll(shm) })
	}

	// The repository: 1 MiB packs (many pack boundaries to crash at) and
	// parity; quick key derivation so every command opens fast.
	be, err := local.Create(c.repo)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(context.Background(), be, []byte(crashPassword), repo.InitOptions{
		KDF: crypto.KDFParams{Time: 1, MemoryKiB: 19 * 1024, Threads: 1}, PackSize: 1 << 20,
		Parity: &parity.Params{DataShards: 32, ParityShards: 2}, CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	crashSource(t, rng, src, small, big)

	// Snapshots reported complete: id -> manifest of the source then.
	reported := map[string]map[string]string{}
	var order []string         // reported ids, oldest first
	mayGo := map[string]bool{} // ids a forget was allowed to remove
	step := 0
	// backup runs a backup that must succeed; want is the manifest of src.
	backup := func(want map[string]string) time.Duration {
		start := time.Now()
		so := c.mustRun("backup", src)
		m := snapID.FindStringSubmatch(so)
		if m == nil {
			t.Fatalf("backup printed no snapshot id: %q", so)
		}
		reported[m[1]], order = want, append(order, m[1])
		return time.Since(start)
	}
	type listed struct {
		ID   string    `json:"id"`
		Time time.Time `json:"time"`
	}
	list := func() []listed {
		var l []listed
		if err := json.Unmarshal([]byte(c.mustRun("snapshots", "--json")), &l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	existing := func() map[string]bool {
		out := map[string]bool{}
		for _, s := range list() {
			out[s.ID] = true
		}
		return out
	}
	// allowForget marks every snapshot but the newest n in the repository
	// (killed backups may have left snapshots nobody reported) as one a
	// forget --keep-last n may remove.
	allowForget := func(n int) {
		l := list()
		sort.Slice(l, func(i, j int) bool {
			if !l[i].Time.Equal(l[j].Time) {
				return l[i].Time.After(l[j].Time)
			}
			return l[i].ID > l[j].ID
		})
		for _, s := range l[min(n, len(l)):] {
			mayGo[s.ID] = true
		}
	}
	restores := 0
	leftovers := map[string]int{}
	var tCheck, tRestore, tRestoreCmd, tBackup, tKilled time.Duration
	verify := func(what string, all bool) {
		t.Helper()
		t0 := time.Now()
		code, so, se := c.run("repo", "check", "--read-data", "--json")
		tCheck += time.Since(t0)
		var chk struct {
			Warnings []struct{ Object, Message string } `json:"warnings"`
		}
		if err := json.Unmarshal([]byte(so), &chk); err != nil {
			t.Fatalf("after %s: repo check --json: %v\n%s%s", what, err, so, se)
		}
		// What the interrupted run left behind shows where it stopped.
		for _, k := range []string{"not referenced by any index", "orphaned", "stale", "temporary file"} {
			for _, w := range chk.Warnings {
				if strings.Contains(w.Message, k) {
					leftovers[k]++
					break
				}
			}
		}
		t0 = time.Now()
		defer func() { tRestore += time.Since(t0) }()
		if code != 0 {
			t.Fatalf("after %s: repo check --read-data: exit %d\n%s%s", what, code, so, se)
		}
		have := existing()
		var toRestore []string
		for i, id := range order {
			if !have[id] {
				if !mayGo[id] {
					t.Fatalf("after %s: snapshot %s (reported complete) is gone, and no forget could remove it", what, id[:8])
				}
				continue
			}
			// Every snapshot at the end; after each kill the newest and
			// one other at random (check --read-data above has verified
			// every blob of every snapshot).
			if all || i == len(order)-1 || rng.IntN(len(order)) == 0 {
				toRestore = append(toRestore, id)
			}
		}
		for _, id := range toRestore {
			_ = os.RemoveAll(restoreDir)
			t1 := time.Now()
			c.mustRun("restore", id, "--target", restoreDir)
			tRestoreCmd += time.Since(t1)
			restores++
			if d := diffManifest(reported[id], manifest(t, filepath.Join(restoreDir, src))); len(d) > 0 {
				t.Fatalf("after %s: snapshot %s restores differently (%d differences), first: %s", what, id[:8], len(d), strings.Join(d[:min(5, len(d))], "; "))
			}
		}
	}

	backupTime := backup(manifest(t, src)) // the first, full backup
	t.Logf("first backup %v", backupTime)
	pruneTime := 500 * time.Millisecond
	kinds := map[string]int{}
	killed, finished := 0, 0
	for k := 0; k < kills; k++ {
		step++
		mutate(t, rng, src, step, small, big)
		var args []string
		var limit time.Duration
		switch {
		case k%5 == 1 || k%5 == 3:
			// forget + prune, or prune alone, repacking every partly used pack.
			if rng.IntN(2) == 0 {
				args = []string{"forget", "--keep-last", "3", "--prune", "--max-unused-percent", "0"}
				allowForget(3) // all snapshots are in one group (host and path)
			} else {
				args = []string{"repo", "prune", "--max-unused-percent", "0"}
			}
			limit = pruneTime
		default:
			args = []string{"backup", src}
			if rng.IntN(3) == 0 {
				args = append(args, "--force") // read every file
			}
			limit = backupTime
		}
		kinds[args[0]]++
		// Mostly within the expected duration, sometimes beyond it (then
		// the run usually finishes, which must be fine too).
		span := limit
		if rng.IntN(5) == 0 {
			span += limit / 2
		}
		delay := 10*time.Millisecond + time.Duration(rng.Int64N(int64(span)))
		want := manifest(t, src)
		start := time.Now()
		done, code, so, se := c.killAfter(delay, args...)
		what := fmt.Sprintf("%q killed at %v", strings.Join(args, " "), delay)
		if done {
			finished++
			what = fmt.Sprintf("%q (finished in %v)", strings.Join(args, " "), time.Since(start))
			if code != 0 {
				t.Fatalf("%s: exit %d\n%s%s", what, code, so, se)
			}
			if args[0] == "backup" {
				m := snapID.FindStringSubmatch(so)
				if m == nil {
					t.Fatalf("backup printed no snapshot id: %q", so)
				}
				reported[m[1]], order = want, append(order, m[1])
				backupTime = (backupTime + time.Since(start)) / 2
			} else {
				pruneTime = (pruneTime + time.Since(start)) / 2
			}
		} else {
			killed++
		}
		tKilled += time.Since(start)
		verify(what, false)
		// The next backup succeeds: the killed process's lock is stale.
		tBackup += backup(want)
	}
	// Finally: forget and prune to the end, then everything once more.
	allowForget(2)
	c.mustRun("forget", "--keep-last", "2", "--prune")
	verify("the final forget --prune", true)
	code, so, se := c.run("repo", "check", "--read-data", "--json")
	if code != 0 || !strings.Contains(so, `"ok": true`) {
		t.Fatalf("final check: exit %d\n%s%s", code, so, se)
	}
	if strings.Contains(so, "no index lists") || strings.Contains(so, "unreferenced") {
		t.Errorf("leftovers after the final prune:\n%s", so)
	}
	t.Logf("%d interruptions (%d killed, %d finished first: %v), %d restores compared, %d snapshots reported",
		kills, killed, finished, kinds, restores, len(order))
	t.Logf("checks after an interruption that found leftovers, by kind: %v", leftovers)
	t.Logf("time: interrupted runs %v, check --read-data %v, restores %v (of which the command %v), backups after a kill %v",
		tKilled.Round(time.Millisecond), tCheck.Round(time.Millisecond), tRestore.Round(time.Millisecond), tRestoreCmd.Round(time.Millisecond), tBackup.Round(time.Millisecond))
}

// TestForgetAndPruneCommands: the command-line contract of forget and
// repo prune (policy, reasons, --dry-run, --json, refusals).
func TestForgetAndPruneCommands(t *testing.T) {
	base := t.TempDir()
	c := &crashEnv{t: t, repo: filepath.Join(base, "repo"), cache: filepath.Join(base, "cache")}
	be, err := local.Create(c.repo)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(context.Background(), be, []byte(crashPassword), repo.InitOptions{
		KDF: crypto.KDFParams{Time: 1, MemoryKiB: 19 * 1024, Threads: 1}, PackSize: 1 << 20, CacheDir: "-"})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	src := filepath.Join(base, "src")
	var ids []string
	for i := 0; i < 4; i++ {
		writeRandom(t, rng, filepath.Join(src, fmt.Sprintf("f%d", i)), 300<<10)
		tag := "plain"
		if i == 1 {
			tag = "db"
		}
		so := c.mustRun("backup", "--tag", tag, src)
		ids = append(ids, snapID.FindStringSubmatch(so)[1])
	}

	// An empty policy is refused: it would delete everything.
	code, _, se := c.run("forget")
	if code != 2 || !strings.Contains(se, "would remove every snapshot") {
		t.Errorf("empty policy: exit %d %s", code, se)
	}
	if code, _, se := c.run("forget", "--keep-within", "3x"); code != 2 || !strings.Contains(se, "--keep-within") {
		t.Errorf("bad duration: exit %d %s", code, se)
	}
	// --dry-run changes nothing and says what it would do, with reasons.
	so := c.mustRun("forget", "--keep-last", "1", "--keep-tag", "db", "--dry-run")
	if !strings.Contains(so, "would remove 2 snapshots") || !strings.Contains(so, "tag db") || !strings.Contains(so, ids[3][:8]) {
		t.Errorf("dry run output:\n%s", so)
	}
	var list []map[string]any
	json.Unmarshal([]byte(c.mustRun("snapshots", "--json")), &list)
	if len(list) != 4 {
		t.Fatalf("dry run removed snapshots: %d left", len(list))
	}
	// --tag restricts forget to matching snapshots: keep-last 1 among
	// "plain" keeps ids[3] and removes ids[0], ids[2]; ids[1] ("db") is
	// not considered. --json gives the decisions.
	so = c.mustRun("forget", "--keep-last", "1", "--tag", "plain", "--json")
	var out struct {
		DryRun  bool `json:"dry_run"`
		Removed int  `json:"removed"`
		Groups  []struct {
			Keep []struct {
				ID      string   `json:"id"`
				Reasons []string `json:"reasons"`
			} `json:"keep"`
			Remove []struct {
				ID string `json:"id"`
			} `json:"remove"`
		} `json:"groups"`
	}
	if err := json.Unmarshal([]byte(so), &out); err != nil {
		t.Fatalf("forget --json: %v\n%s", err, so)
	}
	if out.Removed != 2 || len(out.Groups) != 1 || len(out.Groups[0].Keep) != 1 || out.Groups[0].Keep[0].ID != ids[3] ||
		strings.Join(out.Groups[0].Keep[0].Reasons, ",") != "last" || len(out.Groups[0].Remove) != 2 {
		t.Errorf("forget --json: %+v", out)
	}
	list = nil
	json.Unmarshal([]byte(c.mustRun("snapshots", "--json")), &list)
	if len(list) != 2 {
		t.Errorf("%d snapshots left, want 2 (the db one and the newest)", len(list))
	}

	// repo prune --dry-run, then for real with --json.
	so = c.mustRun("repo", "prune", "--dry-run")
	if !strings.Contains(so, "would free") {
		t.Errorf("prune --dry-run:\n%s", so)
	}
	var rep struct {
		BytesFreed int64 `json:"bytes_freed"`
		Remove     struct {
			Packs int `json:"packs"`
		} `json:"remove"`
	}
	so = c.mustRun("repo", "prune", "--json")
	if err := json.Unmarshal([]byte(so), &rep); err != nil || rep.BytesFreed <= 0 || rep.Remove.Packs == 0 {
		t.Errorf("prune --json: %v %+v\n%s", err, rep, so)
	}
	if code, so, se := c.run("repo", "check", "--read-data"); code != 0 {
		t.Errorf("check after prune: %d\n%s%s", code, so, se)
	}

	// A write-only key can neither forget nor prune.
	pw := filepath.Join(base, "wo.pw")
	os.WriteFile(pw, []byte("write-only-password\n"), 0o600)
	c.mustRun("repo", "key", "add", "--write-only", "--new-password-file", pw)
	for _, args := range [][]string{{"forget", "--keep-last", "1"}, {"repo", "prune"}} {
		code, _, se := c.run(append(args, "--password-file", pw)...)
		if code == 0 || !strings.Contains(se, "write-only") {
			t.Errorf("%v with a write-only key: exit %d %s", args, code, se)
		}
	}

	// Prune while a backup holds its shared lock: a clear "locked" error.
	cmd := c.cmd("backup", "--stdin", "--stdin-name", "slow")
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		entries, _ := os.ReadDir(filepath.Join(c.repo, "locks"))
		if len(entries) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the backup took no lock")
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, _, se = c.run("repo", "prune")
	if code == 0 || !strings.Contains(se, "locked") || !strings.Contains(se, "shared lock") {
		t.Errorf("prune during a backup: exit %d %s", code, se)
	}
	code, _, se = c.run("forget", "--keep-last", "1")
	if code == 0 || !strings.Contains(se, "locked") {
		t.Errorf("forget during a backup: exit %d %s", code, se)
	}
}
