package integrity

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/signkey"
)

// coarse is longer than the file systems' clock tick: a directory changed
// twice this far apart has two different modification times.
const coarse = 20 * time.Millisecond

// reviewedOf is what a reviewer saw of the differences between base and
// cur: every finding with its kind and state.
func reviewedOf(base, cur []Entry) []Reviewed {
	rep := Diff(base, cur, Grading{})
	var out []Reviewed
	for kind, fs := range map[string][]Finding{KindAdded: rep.Added, KindRemoved: rep.Removed, KindChanged: rep.Changed} {
		for _, f := range fs {
			out = append(out, Reviewed{Path: f.Path, Kind: kind, State: stateOf(kind, findEntry(cur, f.Path))})
		}
	}
	return out
}

// TestAcceptExact, with an attacker's eye: an exact accept folds each
// reviewed path itself, in the state reviewed, and nothing else. A file
// added below a reviewed directory after the review is not folded, nor
// is a path changed again since (its entry stays the baseline's), nor
// one whose kind changed; a path that no longer differs folds nothing.
func TestAcceptExact(t *testing.T) {
	root := sampleTree(t)
	p := policyFor(root)
	base := scan(t, p)
	time.Sleep(coarse)

	// What the reviewer saw: an edited passwd, a new program, a removed
	// sshd_config (and the times of /etc/ssh and /usr/bin).
	writeFile(t, root+"/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nops:x:1000:1000::/home/ops:/bin/sh\n")
	writeFile(t, root+"/usr/bin/new", "#!/bin/sh\necho new\n")
	must(t, os.Remove(root+"/etc/ssh/sshd_config"))
	seen := scan(t, p)
	reviewed := reviewedOf(base.Entries, seen.Entries)
	if len(reviewed) != 5 {
		t.Fatalf("reviewed %+v", reviewed)
	}
	time.Sleep(coarse)

	// After the review: a key added below /etc/ssh (whose times change
	// again), and the new program rewritten.
	writeFile(t, root+"/etc/ssh/authorized_keys", "ssh-ed25519 AAAA mallory\n")
	writeFile(t, root+"/usr/bin/new", "#!/bin/sh\necho trojan\n")
	cur := scan(t, p)
	// Asked for as well: paths whose finding does not match the scan.
	reviewed = append(reviewed,
		Reviewed{Path: root + "/etc/ssh/authorized_keys", Kind: KindChanged, State: stateOf(KindChanged, findEntry(cur.Entries, root+"/etc/ssh/authorized_keys"))},
		Reviewed{Path: root + "/usr/bin/tool", Kind: KindChanged, State: stateOf(KindChanged, findEntry(cur.Entries, root+"/usr/bin/tool"))},
		Reviewed{Path: root + "/gone", Kind: KindAdded, State: stateOf(KindAdded, nil)},
	)
	next, n, skipped := AcceptExact(base.Entries, cur.Entries, reviewed, cur.Errors)

	if n != 3 {
		t.Errorf("folded %d, want passwd, sshd_config's removal and /usr/bin", n)
	}
	if e := find(next, root+"/etc/passwd"); e == nil || !sameState(e, find(cur.Entries, root+"/etc/passwd")) {
		t.Errorf("the reviewed passwd is not folded: %+v", e)
	}
	if find(next, root+"/etc/ssh/sshd_config") != nil {
		t.Error("the reviewed removal of sshd_config is not folded")
	}
	if e := find(next, root+"/usr/bin"); e == nil || !sameState(e, find(cur.Entries, root+"/usr/bin")) {
		t.Errorf("/usr/bin (its times, as reviewed) is not folded: %+v", e)
	}
	if find(next, root+"/etc/ssh/authorized_keys") != nil {
		t.Error("a key added below a reviewed directory after the review is folded")
	}
	if e := find(next, root+"/usr/bin/new"); e != nil {
		t.Errorf("a program rewritten after its review is folded: %+v", e)
	}
	if e := find(next, root+"/etc/ssh"); e == nil || !sameState(e, find(base.Entries, root+"/etc/ssh")) {
		t.Errorf("/etc/ssh, changed again after its review, is not the baseline's: %+v", e)
	}
	want := []Skipped{
		{root + "/etc/ssh", "changed again since the finding was reported"},
		{root + "/etc/ssh/authorized_keys", "changed again since the finding: now added, reported changed"},
		{root + "/gone", "no longer differs from the baseline"},
		{root + "/usr/bin/new", "changed again since the finding was reported"},
		{root + "/usr/bin/tool", "no longer differs from the baseline"},
	}
	if !slices.Equal(skipped, want) {
		t.Errorf("skipped:\n%+v\nwant\n%+v", skipped, want)
	}
	// What still differs: exactly what was not folded.
	rep := Diff(next, cur.Entries, Grading{})
	var left []string
	for _, fs := range [][]Finding{rep.Added, rep.Removed, rep.Changed} {
		for _, f := range fs {
			left = append(left, f.Path)
		}
	}
	slices.Sort(left)
	if !slices.Equal(left, []string{root + "/etc/ssh", root + "/etc/ssh/authorized_keys", root + "/usr/bin/new"}) {
		t.Errorf("left differing: %q", left)
	}

	// The recursive fold is as before: everything below, as it is now.
	all, _ := Accept(base.Entries, cur.Entries, []string{root + "/etc/ssh"}, nil)
	if find(all, root+"/etc/ssh/authorized_keys") == nil {
		t.Error("a recursive accept of /etc/ssh leaves out what is below it")
	}
}

// unreadableDirScan is a scan that cannot open dir: just before the scan
// lists it, the directory is swapped for a symlink, so the scanner's open
// (O_DIRECTORY|O_NOFOLLOW) really fails (ENOTDIR) as an EMFILE, EACCES or
// EIO would, leaving everything below it out; it is put back when the scan
// ends. last is the result of the last scan.
func unreadableDirScan(t *testing.T, dir string) (scan func(context.Context, Policy, int) (*Result, error), last func() *Result) {
	aside := filepath.Join(t.TempDir(), "aside")
	var res *Result
	scan = func(ctx context.Context, p Policy, expect int) (*Result, error) {
		var once sync.Once
		var swapErr error
		r, err := Scan(ctx, p, Options{Expect: expect, onDir: func(d string) {
			if d == dir {
				once.Do(func() { swapErr = errors.Join(os.Rename(dir, aside), os.Symlink("nowhere", dir)) })
			}
		}})
		if swapErr != nil {
			return nil, swapErr
		}
		if err := errors.Join(os.Remove(dir), os.Rename(aside, dir)); err != nil {
			return nil, err
		}
		res = r
		return r, err
	}
	return scan, func() *Result { return res }
}

// TestAcceptKeepsUnreadable: a directory the accept's scan cannot open
// is not taken as removed. Its entry and everything below it stay in the
// new baseline as they were, recursive (with a path above it, or none)
// or exact; the other changes are folded; the result says what could not
// be read.
func TestAcceptKeepsUnreadable(t *testing.T) {
	root := sampleTree(t)
	ssh := root + "/etc/ssh"
	writeFile(t, ssh+"/moduli", "2048\n")
	writeFile(t, ssh+"/keys.d/host", "key\n")
	p := policyFor(root)
	key, err := signkey.LoadOrCreate(t.TempDir(), "integrity")
	must(t, err)
	bpath := filepath.Join(t.TempDir(), "integrity.baseline")
	first := scan(t, p)
	_, err = WriteFile(bpath, NewHeader(p), first.Entries, key)
	must(t, err)
	b, err := ReadFile(bpath, key.Public().(ed25519.PublicKey))
	must(t, err)
	below := func(entries []Entry) []Entry {
		var out []Entry
		for _, e := range entries {
			if e.Path == ssh || strings.HasPrefix(e.Path, ssh+"/") {
				out = append(out, e)
			}
		}
		return out
	}
	if len(below(b.Entries)) != 5 {
		t.Fatalf("below %s: %+v", ssh, below(b.Entries))
	}

	// Changes: a program (readable, to fold) and moduli (unreadable now).
	writeFile(t, root+"/usr/bin/tool", "#!/bin/sh\necho changed\n")
	writeFile(t, ssh+"/moduli", "4096\n")
	reviewed := reviewedOf(b.Entries, scan(t, p).Entries)
	unreadable, last := unreadableDirScan(t, ssh)

	for _, c := range []struct {
		name string
		o    AcceptOptions
	}{
		{"every change", AcceptOptions{}},
		{"a path above", AcceptOptions{Paths: []string{root + "/etc"}}},
		{"the directory itself", AcceptOptions{Paths: []string{ssh}}},
		{"every finding exactly", AcceptOptions{Exact: true, Reviewed: reviewed}},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := c.o
			o.By, o.Comment, o.Scan = "user:t", "reviewed", unreadable
			res, err := AcceptFile(context.Background(), bpath, b, key, o)
			must(t, err)
			// The scan really left the directory's entries out: the fold
			// without its errors would drop them.
			if got := below(last().Entries); len(got) != 1 || got[0].Path != ssh {
				t.Fatalf("the scan read below %s: %+v", ssh, got)
			}
			if dropped, _ := Accept(b.Entries, last().Entries, o.Paths, nil); !o.Exact && len(below(dropped)) != 1 {
				t.Fatalf("without the scan's errors the entries below would be kept anyway: the test does not test (%+v)", below(dropped))
			}
			if res.ScanErrorsTotal != 1 || len(res.ScanErrors) != 1 || res.ScanErrors[0].Path != ssh ||
				res.ScanErrors[0].Error != "open: not a directory" {
				t.Errorf("scan errors: %d %+v", res.ScanErrorsTotal, res.ScanErrors)
			}
			if got, want := below(res.Baseline.Entries), below(b.Entries); !slices.EqualFunc(got, want, func(a, b Entry) bool { return a.Path == b.Path && sameState(&a, &b) }) {
				t.Errorf("below the unreadable directory:\n%+v\nwant the baseline's\n%+v", got, want)
			}
			folded := find(res.Baseline.Entries, root+"/usr/bin/tool")
			if wantTool := !slices.Equal(o.Paths, []string{ssh}) && !slices.Equal(o.Paths, []string{root + "/etc"}); wantTool != sameState(folded, find(last().Entries, root+"/usr/bin/tool")) {
				t.Errorf("the readable change folded: %v, want %v", !wantTool, wantTool)
			}
			if o.Exact {
				want := []Skipped{{ssh + "/moduli", "below " + ssh + ", which could not be read: " + res.ScanErrors[0].Error}}
				if res.Accepted != 1 || !slices.Equal(res.Skipped, want) || res.SkippedTotal != 1 || res.Recursive || !res.Baseline.Header.Accepted.Exact {
					t.Errorf("exact: %d accepted, skipped %+v, want %+v", res.Accepted, res.Skipped, want)
				}
			}
			back, err := ReadFile(bpath, key.Public().(ed25519.PublicKey))
			must(t, err)
			if len(below(back.Entries)) != 5 {
				t.Errorf("the baseline written lost entries below %s: %+v", ssh, below(back.Entries))
			}
		})
	}
}

// TestServiceAcceptExact: through the running service, an exact accept
// folds each path as its current finding reports it, and nothing below
// it. After the review an attacker adds a key below the reviewed
// directory (reported) and rewrites passwd through a hard link from
// outside the watched tree (inotify does not see it: never reported).
// Pinned to the states reviewed, neither path is folded; without them the
// directory is (its current finding is what is there), the new key is not,
// and passwd is skipped as changed since its finding. No paths: every
// current finding, each as reported. Recursive folds the rest as before.
func TestServiceAcceptExact(t *testing.T) {
	root := sampleTree(t)
	cfg := config.Integrity{Enabled: true, DefaultExcludes: true, Hash: "sha256", Root: root,
		Rules: []config.IntegrityRule{{Path: root + "/etc"}, {Path: root + "/usr"}}}
	svc := &Service{Config: cfg, DataDir: t.TempDir()}
	runService(t, svc)
	ctx := context.Background()
	p, err := PolicyFromConfig(cfg)
	must(t, err)
	ssh, passwd, keys := root+"/etc/ssh", root+"/etc/passwd", root+"/etc/ssh/authorized_keys"
	// reported waits until the finding of each path reports what is
	// there now, and returns their states.
	reported := func(kinds map[string]string) map[string]string {
		t.Helper()
		states := map[string]string{}
		waitUntil(t, "the findings", func() bool {
			cur := scan(t, p)
			fs, _ := svc.Findings("", 0)
			for path, kind := range kinds {
				f := findingOf(fs, path)
				if f == nil || f.Kind != kind || f.State != stateOf(kind, findEntry(cur.Entries, path)) {
					return false
				}
				states[path] = f.State
			}
			return true
		})
		return states
	}

	// Reviewed: /etc/ssh's mode (harmless), an edit of passwd.
	must(t, os.Chmod(ssh, 0o750))
	writeFile(t, passwd, "root:x:0:0:root:/root:/bin/bash\nops:x:1000:1000::/home/ops:/bin/sh\n")
	seen := reported(map[string]string{ssh: KindChanged, passwd: KindChanged})

	// After the review.
	outside := filepath.Join(t.TempDir(), "passwd")
	must(t, os.Link(passwd, outside))
	must(t, os.WriteFile(outside, []byte("root::0:0:root:/root:/bin/bash\n"), 0o644))
	writeFile(t, keys, "ssh-ed25519 AAAA mallory\n")
	now := reported(map[string]string{ssh: KindChanged, keys: KindAdded})
	if now[ssh] == seen[ssh] {
		t.Fatal("the key did not change /etc/ssh")
	}
	if fs, _ := svc.Findings("", 0); findingOf(fs, passwd).State != seen[passwd] {
		t.Fatal("the write through the hard link was reported: the test does not test an unreported change")
	}
	pub, err := svc.publicKey()
	must(t, err)
	baseline := func() *Baseline {
		b, err := ReadFile(svc.BaselinePath(), pub)
		must(t, err)
		return b
	}
	original := baseline()

	// Pinned to what was reviewed: nothing is folded.
	res, err := svc.Accept(ctx, AcceptRequest{Paths: []string{ssh, passwd}, States: seen, By: "user:alice", Comment: "ssh mode and ops account"})
	must(t, err)
	if res.Accepted != 0 || res.SkippedTotal != 2 || len(res.Skipped) != 2 ||
		res.Skipped[0].Path != passwd || res.Skipped[0].Reason != "changed again since the finding was reported" ||
		res.Skipped[1].Path != ssh || !strings.HasPrefix(res.Skipped[1].Reason, "changed again since it was reviewed") {
		t.Errorf("pinned accept: %+v", res)
	}

	// As reported: the directory (reported again with the key) is folded,
	// the key below it is not, passwd is skipped.
	res, err = svc.Accept(ctx, AcceptRequest{Paths: []string{ssh, passwd, root + "/usr/bin/tool"}, By: "user:alice", Comment: "ssh mode and ops account"})
	must(t, err)
	want := []Skipped{{passwd, "changed again since the finding was reported"},
		{root + "/usr/bin/tool", "no current finding: it does not differ from the baseline as last reported"}}
	if res.Accepted != 1 || !slices.Equal(res.Skipped, want) || res.Recursive {
		t.Errorf("exact accept: %+v", res)
	}
	fs, _ := svc.Findings("", 0)
	if findingOf(fs, ssh) != nil || findingOf(fs, keys) == nil || findingOf(fs, keys).Severity != SeverityHigh || findingOf(fs, passwd) == nil {
		t.Errorf("findings after the exact accept: %+v", fs)
	}
	b := baseline()
	if find(b.Entries, keys) != nil || !sameState(find(b.Entries, passwd), find(original.Entries, passwd)) {
		t.Error("the new baseline holds the key, or passwd as the attacker left it")
	}
	if a := b.Header.Accepted; a == nil || !a.Exact || a.Changes != 1 || !slices.Equal(a.Paths, []string{ssh, passwd, root + "/usr/bin/tool"}) {
		t.Errorf("header: %+v", a)
	}

	// No paths: every current finding as reported (the key now, and a
	// new program); passwd is still skipped.
	writeFile(t, root+"/usr/bin/new", "#!/bin/sh\n")
	reported(map[string]string{keys: KindAdded, root + "/usr/bin/new": KindAdded})
	res, err = svc.Accept(ctx, AcceptRequest{By: "user:alice", Comment: "all reviewed"})
	must(t, err)
	if res.Accepted < 3 || !slices.Equal(res.Skipped, want[:1]) {
		t.Errorf("accept of every finding: %+v", res)
	}
	fs, _ = svc.Findings("", 0)
	if len(fs) != 1 || fs[0].Path != passwd {
		t.Errorf("findings after accepting every finding: %+v", fs)
	}

	// Recursive: as it is now, whatever was reported.
	res, err = svc.Accept(ctx, AcceptRequest{Paths: []string{root + "/etc"}, Recursive: true, By: "user:alice", Comment: "passwd too"})
	must(t, err)
	if res.Accepted < 1 || len(res.Skipped) != 0 || !res.Recursive {
		t.Errorf("recursive accept: %+v", res)
	}
	if fs, _ = svc.Findings("", 0); len(fs) != 0 {
		t.Errorf("findings after the recursive accept: %+v", fs)
	}
	if e := find(baseline().Entries, passwd); sameState(e, find(original.Entries, passwd)) {
		t.Error("the recursive accept did not fold passwd as it is now")
	}
}
