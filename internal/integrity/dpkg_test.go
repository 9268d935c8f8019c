package integrity

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func md5hex(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }

// dpkgRoot makes a chroot-like system with a dpkg database: packages tool,
// other and legacy (listed as /bin/legacy, /bin being a symlink to usr/bin
// as on a merged-/usr system), an upgrade of tool logged in a rotated,
// gzipped dpkg log.
func dpkgRoot(t *testing.T) string {
	root := t.TempDir()
	writeFile(t, root+"/usr/bin/tool", "tool v1")
	writeFile(t, root+"/usr/bin/other", "other v1")
	writeFile(t, root+"/usr/bin/legacy", "legacy v1")
	writeFile(t, root+"/usr/bin/unpackaged", "mine")
	must(t, os.Symlink("usr/bin", root+"/bin"))
	writeFile(t, root+"/var/lib/dpkg/info/tool:amd64.md5sums", md5hex("tool v2")+"  usr/bin/tool\n")
	writeFile(t, root+"/var/lib/dpkg/info/other.md5sums", md5hex("other v1")+"  usr/bin/other\nnot a checksum line\n")
	writeFile(t, root+"/var/lib/dpkg/info/legacy.md5sums", md5hex("legacy v2")+"  bin/legacy\n")
	writeFile(t, root+"/var/lib/dpkg/status", "Package: tool\n")
	writeFile(t, root+"/var/lib/dpkg/lock", "")
	writeFile(t, root+"/var/log/dpkg.log", "2026-01-02 10:00:00 status installed other:amd64 1.0\n")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	fmt.Fprintf(zw, "2026-01-01 09:00:00 startup archives unpack\n2026-01-01 09:00:01 upgrade tool:amd64 1.0 2.0\n")
	must(t, zw.Close())
	must(t, os.WriteFile(root+"/var/log/dpkg.log.2.gz", gz.Bytes(), 0o644))
	return root
}

// TestPackageAwareness: a file changed to its package's own content after
// the package's upgrade is expected (low); one that differs from its
// package's checksum is high wherever it is; the merged-/usr alias and a
// gzipped rotated log are read.
func TestPackageAwareness(t *testing.T) {
	root := dpkgRoot(t)
	p := Policy{Hash: SHA256, Root: root, Rules: []Rule{{Path: root + "/usr", Attrs: AllAttrs}}}
	base := scan(t, p).Entries
	writeFile(t, root+"/usr/bin/tool", "tool v2")           // the upgrade's content
	writeFile(t, root+"/usr/bin/other", "other trojan")     // not the package's
	writeFile(t, root+"/usr/bin/legacy", "legacy v2")       // the package's, no upgrade logged
	writeFile(t, root+"/usr/bin/unpackaged", "mine, again") // no package
	since := time.Date(2025, 12, 31, 0, 0, 0, 0, time.Local)
	rep := Diff(base, scan(t, p).Entries, Grading{Root: root, Packages: NewPackages(root), Since: since})
	got := map[string]Finding{}
	for _, f := range rep.Changed {
		got[strings.TrimPrefix(f.Path, root)] = f
	}
	for _, c := range []struct {
		path, pkg, severity, reason string
		expected                    bool
	}{
		{"/usr/bin/tool", "tool", SeverityLow, "expected: package tool upgrade 1.0 -> 2.0 at 2026-01-01T09:00:01", true},
		{"/usr/bin/other", "other", SeverityHigh, "content differs from package other's checksum", false},
		{"/usr/bin/legacy", "legacy", SeverityMedium, "content is package legacy's own, but no install or upgrade", false},
		{"/usr/bin/unpackaged", "", SeverityHigh, "system binary changed", false},
	} {
		f := got[c.path]
		if f.Package != c.pkg || f.Severity != c.severity || f.Expected != c.expected ||
			!slices.ContainsFunc(f.Reasons, func(r string) bool { return strings.HasPrefix(r, c.reason) }) {
			t.Errorf("%s: package %q, %s, expected %v, reasons %q; want %q, %s, %v, %q", c.path, f.Package, f.Severity, f.Expected, f.Reasons, c.pkg, c.severity, c.expected, c.reason)
		}
	}
	// An upgrade before the baseline explains nothing.
	rep = Diff(base, scan(t, p).Entries, Grading{Root: root, Packages: NewPackages(root), Since: time.Now()})
	for _, f := range rep.Changed {
		if strings.HasSuffix(f.Path, "/usr/bin/tool") && (f.Expected || f.Severity != SeverityMedium) {
			t.Errorf("tool with the upgrade before the baseline: %s %q", f.Severity, f.Reasons)
		}
	}

	// The upgrade's content does not explain a set-user-ID bit added to
	// it, and a forged .md5sums that lists another package's file with
	// the trojan's checksum explains nothing.
	must(t, syscall.Chmod(root+"/usr/bin/tool", 0o4755))
	writeFile(t, root+"/var/lib/dpkg/info/zz-forged.md5sums", md5hex("other trojan")+"  usr/bin/other\n")
	rep = Diff(base, scan(t, p).Entries, Grading{Root: root, Packages: NewPackages(root), Since: since})
	for _, f := range rep.Changed {
		switch strings.TrimPrefix(f.Path, root) {
		case "/usr/bin/tool":
			if f.Severity != SeverityHigh || f.Expected || !slices.Contains(f.Reasons, "new set-user-ID or set-group-ID file") {
				t.Errorf("setuid upgrade: %s %v %q", f.Severity, f.Expected, f.Reasons)
			}
		case "/usr/bin/other":
			if f.Severity != SeverityHigh || f.Expected || !slices.ContainsFunc(f.Reasons, func(r string) bool { return strings.Contains(r, "disagree") }) {
				t.Errorf("forged checksum: %s %v %q", f.Severity, f.Expected, f.Reasons)
			}
		}
	}
}

// TestHelperHoldDpkgLock is not a test: TestWatchWaitsForDpkg runs the
// test binary as a process holding dpkg's lock (fcntl locks of one's own
// process never conflict), until its standard input closes.
func TestHelperHoldDpkgLock(t *testing.T) {
	lock := os.Getenv("BULWARK_TEST_HOLD_LOCK")
	if lock == "" {
		t.Skip("helper process only")
	}
	f, err := os.OpenFile(lock, os.O_RDWR, 0)
	must(t, err)
	must(t, unix.FcntlFlock(f.Fd(), unix.F_SETLK, &unix.Flock_t{Type: unix.F_WRLCK}))
	fmt.Println("locked")
	var b [1]byte
	os.Stdin.Read(b[:])
}

// TestWatchWaitsForDpkg: while dpkg holds its lock, a package file's new
// content is not judged (its checksums may not be written yet); once dpkg
// is done, the change is reported as the package's own.
func TestWatchWaitsForDpkg(t *testing.T) {
	root := dpkgRoot(t)
	p := Policy{Hash: SHA256, Root: root, Rules: []Rule{{Path: root + "/usr", Attrs: AllAttrs}}}
	base := scan(t, p).Entries
	pk := NewPackages(root)
	if pk.Busy() {
		t.Fatal("busy without a lock holder")
	}
	holder := exec.Command(os.Args[0], "-test.run=^TestHelperHoldDpkgLock$")
	holder.Env = append(os.Environ(), "BULWARK_TEST_HOLD_LOCK="+root+"/var/lib/dpkg/lock")
	stdin, err := holder.StdinPipe()
	must(t, err)
	out, err := holder.StdoutPipe()
	must(t, err)
	must(t, holder.Start())
	t.Cleanup(func() { stdin.Close(); holder.Wait() })
	var line [7]byte
	if _, err := out.Read(line[:]); err != nil || string(line[:6]) != "locked" {
		t.Fatalf("lock holder: %q %v", line, err)
	}
	if !pk.Busy() {
		t.Fatal("not busy while another process holds dpkg's lock")
	}
	w := startWatch(t, p, base, WatchOptions{Packages: pk, Since: time.Date(2025, 12, 31, 0, 0, 0, 0, time.Local)})
	// dpkg unpacks other 2.0 before it writes the new checksums; someone
	// else puts a trojan in place of tool and back again meanwhile.
	writeFile(t, root+"/usr/bin/other", "other v2")
	writeFile(t, root+"/usr/bin/tool", "tool TROJAN")
	time.Sleep(300 * time.Millisecond)
	writeFile(t, root+"/usr/bin/tool", "tool v1")
	time.Sleep(1200 * time.Millisecond)
	for _, ev := range drain(w) {
		if ev.Finding != nil && strings.HasSuffix(ev.Path, "/usr/bin/other") {
			t.Fatalf("judged while dpkg runs: %+v", *ev.Finding)
		}
	}
	writeFile(t, root+"/var/lib/dpkg/info/other.md5sums", md5hex("other v2")+"  usr/bin/other\n")
	writeFile(t, root+"/var/log/dpkg.log", "2026-01-02 10:00:00 upgrade other:amd64 1.0 2.0\n")
	stdin.Close() // dpkg is done
	ev := w.await(t, "the upgraded file, judged after dpkg", isFinding(KindChanged, root+"/usr/bin/other", "hash"))
	if !ev.Expected || ev.Package != "other" || ev.Severity != SeverityLow {
		t.Errorf("after dpkg: %+v", *ev.Finding)
	}
	w.awaitAll(t, "the trojan put back while dpkg ran", func(ev WatchEvent) bool {
		// Gone by the time dpkg is done: no checksum can be read of it,
		// and it stays high.
		return ev.Finding != nil && ev.Path == root+"/usr/bin/tool" && ev.Severity == SeverityHigh && slices.Contains(ev.Attributes, "hash")
	})
}

// drain returns the events received so far.
func drain(w *watchRun) []WatchEvent {
	for {
		select {
		case ev := <-w.events:
			w.seen = append(w.seen, ev)
		default:
			return w.seen
		}
	}
}

// TestVerifyPackages checks every file dpkg has a checksum for: content
// that differs, a missing file, a file replaced by a symlink; a name listed
// under /bin of a merged-/usr system is read through the symlink, once.
func TestVerifyPackages(t *testing.T) {
	root := dpkgRoot(t) // tool and legacy hold their old content
	must(t, os.Remove(root+"/usr/bin/other"))
	must(t, os.Symlink("tool", root+"/usr/bin/other"))
	rep, err := NewPackages(root).Verify(ctx, 2, nil)
	must(t, err)
	want := []PackageProblem{{"/bin/legacy", "legacy", "checksum"}, {"/usr/bin/other", "other", "not a regular file"}, {"/usr/bin/tool", "tool", "checksum"}}
	if rep.Files != 3 || rep.Packages != 3 || !slices.Equal(rep.Problems, want) {
		t.Fatalf("verify: %+v", rep)
	}
	must(t, os.Remove(root+"/usr/bin/other"))
	writeFile(t, root+"/usr/bin/tool", "tool v2")
	writeFile(t, root+"/usr/bin/legacy", "legacy v2")
	rep, err = NewPackages(root).Verify(ctx, 2, nil)
	must(t, err)
	if want := []PackageProblem{{"/usr/bin/other", "other", "missing"}}; !slices.Equal(rep.Problems, want) {
		t.Fatalf("verify after fixing: %+v", rep.Problems)
	}
	if _, err := NewPackages(t.TempDir()).Verify(ctx, 2, nil); err == nil {
		t.Error("verify without a dpkg database succeeded")
	}
}

// FuzzDpkgLines: the parsers of md5sums and dpkg.log lines (a mounted
// image's database is anyone's bytes) never panic, and what they accept is
// well formed.
func FuzzDpkgLines(f *testing.F) {
	f.Add(md5hex("x") + "  usr/bin/x")
	f.Add("2026-01-01 09:00:01 upgrade tool:amd64 1.0 2.0")
	f.Add("2026-01-01 09:00:01 install a <none> 1")
	f.Fuzz(func(t *testing.T, line string) {
		if _, path, ok := parseSumLine(line); ok && (!strings.HasPrefix(path, "/") || len(path) > len(line)) {
			t.Fatalf("sum line %q: path %q", line, path)
		}
		if pkg, ev, ok := parseLogLine(line); ok && (strings.Contains(pkg, ":") || ev.at.IsZero() || ev.action != "install" && ev.action != "upgrade") {
			t.Fatalf("log line %q: %q %+v", line, pkg, ev)
		}
	})
}
