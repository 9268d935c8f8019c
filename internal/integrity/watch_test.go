package integrity

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type watchRun struct {
	events chan WatchEvent
	seen   []WatchEvent
}

// startWatch runs Watch until the test ends and waits for its first scan.
func startWatch(t *testing.T, p Policy, base []Entry, o WatchOptions) *watchRun {
	t.Helper()
	r := &watchRun{events: make(chan WatchEvent, 1<<17)}
	o.Events = func(ev WatchEvent) { r.events <- ev }
	c, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Watch(c, p, base, o) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch returned %v", err)
		}
	})
	r.await(t, "the first scan", func(ev WatchEvent) bool { return ev.Kind == KindScan && ev.Scan.Reason == ReasonStart })
	return r
}

// await reads events until one satisfies ok, failing after 20 s.
func (r *watchRun) await(t *testing.T, what string, ok func(WatchEvent) bool) WatchEvent {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-r.events:
			r.seen = append(r.seen, ev)
			if ev.Kind == KindWarning {
				t.Logf("warning: %s", ev.Message)
			}
			if ok(ev) {
				return ev
			}
		case <-timeout:
			var b strings.Builder
			for _, ev := range r.seen[max(0, len(r.seen)-20):] {
				fmt.Fprintf(&b, "\n  %s %v", ev.Kind, ev.Finding)
			}
			t.Fatalf("no event for %s within 20 s; the last seen:%s", what, b.String())
		}
	}
}

// awaitAll reads events until each of oks has been satisfied, in any order.
func (r *watchRun) awaitAll(t *testing.T, what string, oks ...func(WatchEvent) bool) {
	t.Helper()
	met := make([]bool, len(oks))
	r.await(t, what, func(ev WatchEvent) bool {
		all := true
		for i, ok := range oks {
			met[i] = met[i] || ok(ev)
			all = all && met[i]
		}
		return all
	})
}

func isFinding(kind, path string, attrs ...string) func(WatchEvent) bool {
	return func(ev WatchEvent) bool {
		if ev.Kind != kind || ev.Finding == nil || ev.Path != path {
			return false
		}
		for _, a := range attrs {
			if !slices.Contains(ev.Attributes, a) {
				return false
			}
		}
		return true
	}
}

// TestWatchReportsEveryChange makes each kind of change under a watched
// tree and waits for its event: the same attributes a check compares.
func TestWatchReportsEveryChange(t *testing.T) {
	root := sampleTree(t)
	p := policyFor(root)
	base := scan(t, p).Entries
	w := startWatch(t, p, base, WatchOptions{})
	if ev := w.seen[len(w.seen)-1]; ev.Scan.Differences != 0 || ev.Scan.Watches < 6 {
		t.Fatalf("first scan of an unchanged tree: %+v", *ev.Scan)
	}

	// Content with the same size and the mtime put back.
	tool := root + "/usr/bin/tool"
	var st unix.Stat_t
	must(t, unix.Lstat(tool, &st))
	must(t, os.WriteFile(tool, []byte("#!/bin/sh\necho TOOL\n"), 0o644))
	must(t, unix.UtimesNano(tool, []unix.Timespec{st.Atim, st.Mtim}))
	ev := w.await(t, "a content change", isFinding(KindChanged, tool, "hash"))
	if slices.Contains(ev.Attributes, "size") || ev.DelayMS == nil || ev.Source != "inotify" {
		t.Errorf("content change: %+v (delay %v)", *ev.Finding, ev.DelayMS)
	}

	must(t, os.Chmod(root+"/etc/passwd", 0o600))
	w.await(t, "chmod", isFinding(KindChanged, root+"/etc/passwd", "mode"))

	if os.Geteuid() == 0 {
		must(t, os.Lchown(root+"/etc/ssh/sshd_config", 1234, 5678))
		w.await(t, "chown", isFinding(KindChanged, root+"/etc/ssh/sshd_config", "owner", "group"))
	}

	if err := unix.Lsetxattr(root+"/usr/bin/other", "user.planted", []byte("x"), 0); err == nil {
		w.await(t, "an extended attribute", isFinding(KindChanged, root+"/usr/bin/other", "xattrs"))
	} else {
		t.Logf("no user xattrs here: %v", err)
	}

	must(t, os.Remove(root+"/usr/bin/link"))
	must(t, os.Symlink("/tmp/evil", root+"/usr/bin/link"))
	w.await(t, "a symlink retarget", isFinding(KindChanged, root+"/usr/bin/link", "target"))

	must(t, os.Link(root+"/usr/bin/other", root+"/usr/bin/other-link"))
	w.awaitAll(t, "a new hard link and the link count of its other name",
		isFinding(KindAdded, root+"/usr/bin/other-link"), isFinding(KindChanged, root+"/usr/bin/other", "links"))

	// A new directory with a file written at once: the file may exist
	// before the directory's watch does, and is found either way.
	must(t, os.MkdirAll(root+"/etc/cron.d/deep", 0o755))
	must(t, os.WriteFile(root+"/etc/cron.d/deep/job", []byte("* * * * * root evil\n"), 0o644))
	w.await(t, "a new directory's file", isFinding(KindAdded, root+"/etc/cron.d/deep/job"))
	// ... and the directory is watched from then on.
	must(t, os.WriteFile(root+"/etc/cron.d/deep/job2", []byte("x"), 0o644))
	w.await(t, "a file added to the new directory", isFinding(KindAdded, root+"/etc/cron.d/deep/job2"))

	// File to directory.
	must(t, os.Remove(root+"/usr/bin/fifo"))
	must(t, os.Mkdir(root+"/usr/bin/fifo", 0o755))
	w.await(t, "a type change", isFinding(KindChanged, root+"/usr/bin/fifo", "type"))

	// A directory moved away: everything below it removed.
	must(t, os.Rename(root+"/etc/ssh", root+"/ssh-moved"))
	w.awaitAll(t, "a moved directory, its file, and their new place", isFinding(KindRemoved, root+"/etc/ssh/sshd_config"),
		isFinding(KindRemoved, root+"/etc/ssh"), isFinding(KindAdded, root+"/ssh-moved/sshd_config"))

	// Back as the baseline has it (a change of metadata cannot be undone:
	// the ctime moves on).
	writeFile(t, root+"/etc/dropped", "x")
	w.await(t, "a new file", isFinding(KindAdded, root+"/etc/dropped"))
	must(t, os.Remove(root+"/etc/dropped"))
	w.await(t, "the new file gone again", isFinding(KindRestored, root+"/etc/dropped"))

	for _, ev := range w.seen {
		if ev.Kind == KindWarning || ev.Kind == KindScan && ev.Scan.Reason != ReasonStart {
			t.Errorf("unexpected event %s: %s %+v", ev.Kind, ev.Message, ev.Scan)
		}
	}
}

// TestWatchBurst changes 10,000 files at once: every one is reported.
func TestWatchBurst(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 2000
	}
	root := t.TempDir()
	for i := range n {
		writeFile(t, filepath.Join(root, "d"+strconv.Itoa(i%10), "f"+strconv.Itoa(i)), "before")
	}
	p := policyFor(root)
	base := scan(t, p).Entries
	w := startWatch(t, p, base, WatchOptions{})
	start := time.Now()
	for i := range n {
		must(t, os.WriteFile(filepath.Join(root, "d"+strconv.Itoa(i%10), "f"+strconv.Itoa(i)), []byte("after!"), 0o644))
	}
	wrote := time.Since(start)
	changed := map[string]bool{}
	var delays []float64
	w.await(t, fmt.Sprintf("all %d changes", n), func(ev WatchEvent) bool {
		if ev.Kind == KindChanged && strings.Contains(ev.Path, "/f") && slices.Contains(ev.Attributes, "hash") && !changed[ev.Path] {
			changed[ev.Path] = true
			if ev.DelayMS != nil {
				delays = append(delays, *ev.DelayMS)
			}
		}
		return len(changed) == n
	})
	slices.Sort(delays)
	overflows := 0
	for _, ev := range w.seen {
		if ev.Kind == KindScan && ev.Scan.Reason == ReasonOverflow {
			overflows++
		}
	}
	if len(delays) > 0 {
		t.Logf("%d files written in %v; all reported after %v; delay p50 %.0f ms, p99 %.0f ms; %d overflow scans",
			n, wrote, time.Since(start), delays[len(delays)/2], delays[len(delays)*99/100], overflows)
	}
}

// TestWatchOverflow holds back the reader while more events happen than
// the kernel queues: the overflow is reported and a full scan finds every
// change anyway.
func TestWatchOverflow(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	must(t, err)
	queued, err := strconv.Atoi(strings.TrimSpace(string(b)))
	must(t, err)
	if queued > 100000 {
		t.Skipf("fs.inotify.max_queued_events is %d: too many files to make", queued)
	}
	n := queued/2 + 1000 // a new file raises IN_CREATE, IN_MODIFY and IN_CLOSE_WRITE
	root := t.TempDir()
	writeFile(t, root+"/new/keep", "x") // watched from the start
	p := policyFor(root)
	base := scan(t, p).Entries
	gate := make(chan struct{})
	w := startWatch(t, p, base, WatchOptions{pauseRead: gate})
	for i := range n {
		writeFile(t, filepath.Join(root, "new", "f"+strconv.Itoa(i)), "x")
	}
	close(gate)
	w.await(t, "an overflow scan", func(ev WatchEvent) bool { return ev.Kind == KindScan && ev.Scan.Reason == ReasonOverflow })
	added := map[string]bool{}
	for _, ev := range w.seen {
		if ev.Kind == KindAdded && strings.HasPrefix(ev.Path, root+"/new/f") {
			added[ev.Path] = true
		}
	}
	if len(added) != n {
		t.Fatalf("%d of %d new files reported by the time the overflow scan ended", len(added), n)
	}
	// Watching goes on after the scan.
	writeFile(t, root+"/new/after", "y")
	w.await(t, "a file added after the overflow", isFinding(KindAdded, root+"/new/after"))
}

func TestWatchRuleFor(t *testing.T) {
	p := Policy{Hash: SHA256, Exclude: []string{"*.swp", "/srv/etc/cache"}, Rules: []Rule{
		{Path: "/srv/etc", Attrs: AllAttrs, Exclude: []string{"tmp"}},
		{Path: "/srv/etc/ssh", Attrs: AttrHash},
		{Path: "/srv/keys/authorized_keys", Attrs: AttrMode},
	}}
	must(t, p.Validate())
	w := &watcher{p: &p, roots: expandRoots(&p)}
	for _, c := range []struct {
		path string
		rule string // "" when not covered
	}{
		{"/srv/etc", "/srv/etc"},
		{"/srv/etc/passwd", "/srv/etc"},
		{"/srv/etc/ssh", "/srv/etc/ssh"},
		{"/srv/etc/ssh/sshd_config", "/srv/etc/ssh"},
		{"/srv/etc/sshd", "/srv/etc"},
		{"/srv/etc/x.swp", ""},
		{"/srv/etc/tmp", ""},
		{"/srv/etc/tmp/below", ""},
		{"/srv/etc/cache/below", ""},
		{"/srv/etc-other", ""},
		{"/srv", ""},
		{"/srv/keys/authorized_keys", "/srv/keys/authorized_keys"},
		{"/srv/keys/other", ""},
	} {
		r, ok := w.ruleFor(c.path)
		got := ""
		if ok {
			got = r.Path
		}
		if got != c.rule {
			t.Errorf("ruleFor(%s) = %q, want %q", c.path, got, c.rule)
		}
	}
}

func inotifyRecord(wd int32, mask, cookie uint32, name string, pad int) []byte {
	b := binary.NativeEndian.AppendUint32(nil, uint32(wd))
	b = binary.NativeEndian.AppendUint32(b, mask)
	b = binary.NativeEndian.AppendUint32(b, cookie)
	n := len(name)
	if name != "" {
		n += pad
	}
	b = binary.NativeEndian.AppendUint32(b, uint32(n))
	b = append(b, name...)
	return append(b, make([]byte, n-len(name))...)
}

func TestParseEvents(t *testing.T) {
	b := inotifyRecord(3, unix.IN_CREATE|unix.IN_ISDIR, 0, "dir", 13)
	b = append(b, inotifyRecord(4, unix.IN_ATTRIB, 0, "", 0)...)
	b = append(b, inotifyRecord(-1, unix.IN_Q_OVERFLOW, 0, "", 0)...)
	b = append(b, inotifyRecord(3, unix.IN_MOVED_TO, 77, "f\xffname", 1)...)
	got, err := parseEvents(nil, b)
	must(t, err)
	want := []rawEvent{{3, unix.IN_CREATE | unix.IN_ISDIR, 0, "dir"}, {4, unix.IN_ATTRIB, 0, ""},
		{-1, unix.IN_Q_OVERFLOW, 0, ""}, {3, unix.IN_MOVED_TO, 77, "f\xffname"}}
	if !slices.Equal(got, want) {
		t.Fatalf("parseEvents = %+v, want %+v", got, want)
	}
	for _, bad := range [][]byte{b[:10], b[:len(b)-1], inotifyRecord(1, 0, 0, "xy", 0)[:17]} {
		if _, err := parseEvents(nil, bad); err == nil {
			t.Errorf("parseEvents accepted %d truncated bytes", len(bad))
		}
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add(inotifyRecord(3, unix.IN_CREATE, 0, "name", 3))
	f.Add(append(inotifyRecord(1, unix.IN_DELETE, 0, "", 0), 1, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := parseEvents(nil, b)
		if err != nil {
			return
		}
		size := 0
		for _, ev := range evs {
			if strings.HasSuffix(ev.name, "\x00") {
				t.Fatalf("name %q keeps its padding", ev.name)
			}
			size += unix.SizeofInotifyEvent + len(ev.name)
		}
		if size > len(b) {
			t.Fatalf("%d events of %d bytes from %d bytes", len(evs), size, len(b))
		}
	})
}

// TestWatchGlobRule: a glob rule (every home's authorized_keys) catches a
// key file that did not exist at the start, in a home whose .ssh did not
// exist either, and one made again after its .ssh was deleted.
func TestWatchGlobRule(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root+"/home/bob/.ssh/authorized_keys", "ssh-ed25519 AAAA bob\n")
	must(t, os.MkdirAll(root+"/home/alice", 0o755))
	p := Policy{Hash: SHA256, Root: root, Rules: []Rule{{Path: root + "/home/*/.ssh/authorized_keys", Attrs: AllAttrs}}}
	base := scan(t, p).Entries
	if len(base) != 1 {
		t.Fatalf("baseline: %d entries", len(base))
	}
	w := startWatch(t, p, base, WatchOptions{})

	must(t, os.Mkdir(root+"/home/alice/.ssh", 0o700))
	writeFile(t, root+"/home/alice/.ssh/authorized_keys", "ssh-ed25519 EVIL attacker\n")
	ev := w.await(t, "a first authorized_keys", isFinding(KindAdded, root+"/home/alice/.ssh/authorized_keys"))
	if ev.Severity != SeverityHigh {
		t.Errorf("new authorized_keys: %s %q", ev.Severity, ev.Reasons)
	}

	must(t, os.RemoveAll(root+"/home/bob/.ssh"))
	w.await(t, "bob's keys gone", isFinding(KindRemoved, root+"/home/bob/.ssh/authorized_keys"))
	writeFile(t, root+"/home/bob/.ssh/authorized_keys", "ssh-ed25519 EVIL attacker\n")
	w.await(t, "bob's keys made again", func(ev WatchEvent) bool {
		return ev.Finding != nil && ev.Path == root+"/home/bob/.ssh/authorized_keys" && (ev.Kind == KindChanged || ev.Kind == KindAdded)
	})
	// A new home.
	writeFile(t, root+"/home/carol/.ssh/authorized_keys", "ssh-ed25519 EVIL attacker\n")
	w.await(t, "a new home's keys", isFinding(KindAdded, root+"/home/carol/.ssh/authorized_keys"))
}
