package integrity

// The watcher.
//
// Watch keeps an inotify watch on every directory its rules cover and
// compares what the kernel says changed with the baseline, so a change is
// reported a few tens of milliseconds after it happens instead of at the
// next scheduled check.
//
// Watches are added by the full scan itself, to each directory just before
// it is listed (Options.onDir): an entry created after the listing raises
// an event, one created before it is in the listing, so nothing falls
// between the two. A directory that appears later (created or moved in) is
// scanned the same way, watches and all; one that disappears has its
// watches dropped and every path known below it examined again.
//
// One goroutine reads the inotify descriptor into an unbounded queue, so
// the kernel's own queue (fs.inotify.max_queued_events) is drained as
// fast as events arrive; another takes what has gathered after a short
// settling time, turns the events into a set of paths, captures each
// path's entry as a scan would (in parallel for a burst) and compares it
// with the baseline. Each path's last reported state is kept, so a file
// written in pieces is reported once per distinct state, and a path that
// goes back to what the baseline holds is reported as restored. When the
// kernel's queue overflows anyway, events were lost: a full scan
// reconciles everything. A full scan also runs on a schedule.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxQueued bounds the events read and not yet examined; beyond it they
// are dropped and a full scan stands in for them, as for an overflow of
// the kernel's queue.
const maxQueued = 1 << 20

type watcher struct {
	ctx   context.Context
	p     *Policy
	o     WatchOptions
	base  []Entry
	in    *inotify
	roots map[string]*Rule

	wmu     sync.Mutex
	wds     map[int]string // watch descriptor -> directory
	dirs    map[string]int // directory -> watch descriptor
	limited bool           // the watch limit was hit (warned once)

	qmu      sync.Mutex
	queue    []rawEvent
	overflow bool
	warnings []string // from other goroutines, emitted by the watching one
	notify   chan struct{}

	// reported holds, for every path that differs from the baseline,
	// what was last reported of it (nil: reported removed).
	reported map[string]*Entry
	// links maps the inode of every baseline file with more than one
	// link to those files: adding or removing a hard link changes the
	// link count (and ctime) of the other names, which raises no event
	// in their directories.
	links   map[uint64][]int
	scan    *scanner // for capture: its policy, roots and counters
	grading Grading
	// globDirs are the directories a glob rule passes through, each with
	// the pattern of the names below it that matter.
	globDirs map[string]string
	// While dpkg runs, the states seen of package files wait in deferred
	// (nil: absent), judged in order once it is done (since
	// deferSince) for its checksums to be current.
	deferred   map[string][]*Entry
	deferSince time.Time
	workers    []*worker
}

// Watch reports, through o.Events, how the paths p's rules cover differ
// from baseline (sorted by path, as a Baseline holds them): first from a
// full scan, then as the kernel reports changes, until ctx ends. It returns
// nil then, or an error if watching cannot start.
func Watch(ctx context.Context, p Policy, baseline []Entry, o WatchOptions) error {
	p.Rules = slices.Clone(p.Rules)
	if err := p.Validate(); err != nil {
		return err
	}
	if o.Rescan == 0 {
		o.Rescan = DefaultRescan
	}
	if o.Settle <= 0 {
		o.Settle = 20 * time.Millisecond
	}
	if o.Workers <= 0 {
		o.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if o.Events == nil {
		o.Events = func(WatchEvent) {}
	}
	in, err := newInotify()
	if err != nil {
		return err
	}
	w := &watcher{ctx: ctx, p: &p, o: o, in: in, wds: map[int]string{}, dirs: map[string]int{},
		notify: make(chan struct{}, 1), reported: map[string]*Entry{},
		grading: Grading{Root: p.Root, Packages: o.Packages, Since: o.Since}, deferred: map[string][]*Entry{}}
	w.setBase(baseline)
	readerDone := make(chan struct{})
	go func() { defer close(readerDone); w.read() }()
	defer func() {
		in.close()
		<-readerDone
	}()

	if err := w.fullScan(ReasonStart); err != nil {
		return ignoreCanceled(err)
	}
	var tick <-chan time.Time
	if o.Rescan > 0 {
		t := time.NewTicker(o.Rescan)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			if err := w.fullScan(ReasonSchedule); err != nil {
				return ignoreCanceled(err)
			}
		case req := <-o.rebase:
			w.rebase(req.base, req.since)
			close(req.done)
		case <-w.notify:
			select {
			case <-time.After(o.Settle):
			case <-ctx.Done():
				return nil
			}
			if err := w.handle(); err != nil {
				return ignoreCanceled(err)
			}
		}
	}
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// read moves events from the kernel to w.queue until the descriptor is
// closed.
func (w *watcher) read() {
	buf := make([]byte, 256<<10)
	var evs []rawEvent
	if w.o.pauseRead != nil {
		<-w.o.pauseRead
	}
	for {
		n, err := w.in.read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			w.later(fmt.Sprintf("reading inotify events: %v; watching stops, scheduled scans go on", err))
			return
		}
		evs, err = parseEvents(evs[:0], buf[:n])
		w.qmu.Lock()
		switch {
		case err != nil:
			w.overflow = true // what the kernel said is lost: scan instead
		case len(w.queue)+len(evs) > maxQueued:
			w.overflow = true
			w.queue = w.queue[:0]
		default:
			w.queue = append(w.queue, evs...)
		}
		w.qmu.Unlock()
		w.wake()
	}
}

// wake tells the watching goroutine that there is something to examine.
func (w *watcher) wake() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// later queues a warning for the watching goroutine to emit.
func (w *watcher) later(msg string) {
	w.qmu.Lock()
	w.warnings = append(w.warnings, msg)
	w.qmu.Unlock()
	w.wake()
}

func (w *watcher) flushWarnings() {
	w.qmu.Lock()
	msgs := w.warnings
	w.warnings = nil
	w.qmu.Unlock()
	for _, m := range msgs {
		w.emit(WatchEvent{Kind: KindWarning, Message: m})
	}
}

func (w *watcher) emit(ev WatchEvent) {
	ev.Time = time.Now().UTC()
	w.o.Events(ev)
}

func (w *watcher) warn(path string, err error) {
	msg := err.Error()
	if path != "" {
		msg = path + ": " + msg
	}
	w.emit(WatchEvent{Kind: KindWarning, Message: msg})
}

// addWatch watches directory dir (called by scan workers).
func (w *watcher) addWatch(dir string) {
	wd, err := w.in.add(dir)
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if err != nil {
		if errors.Is(err, errWatchLimit) && !w.limited {
			w.limited = true
			w.later(fmt.Sprintf("%s: %v: from here on, changes below unwatched directories are found by the scheduled scans only", dir, err))
		}
		return // gone since the listing, or not a directory any more
	}
	if old, ok := w.wds[wd]; ok && old != dir {
		delete(w.dirs, old) // the same directory under a new name (moved)
	}
	w.wds[wd] = dir
	w.dirs[dir] = wd
}

// watchGlobs watches the directories a glob rule's pattern passes
// through ("/home" and every "/home/*" and "/home/*/.ssh" for
// /home/*/.ssh/authorized_keys), noting for each the pattern of the name
// that would make a new match there.
func (w *watcher) watchGlobs() {
	w.globDirs = map[string]string{}
	for _, r := range w.p.Rules {
		if !hasMeta(r.Path) {
			continue
		}
		parts := strings.Split(strings.TrimPrefix(r.Path, "/"), "/")
		levels := []string{"/"}
		for i, part := range parts[:len(parts)-1] {
			var next []string
			for _, d := range levels {
				w.globDirs[d] = parts[i]
				if d != "/" || i > 0 {
					w.addWatch(d)
				}
				if hasMeta(part) {
					m, _ := filepath.Glob(filepath.Join(d, part))
					next = append(next, m...)
				} else {
					next = append(next, filepath.Join(d, part))
				}
			}
			levels = levels[:0]
			for _, d := range next {
				if st, err := os.Stat(d); err == nil && st.IsDir() {
					levels = append(levels, d)
				}
			}
		}
		for _, d := range levels {
			w.globDirs[d] = parts[len(parts)-1]
			w.addWatch(d)
		}
	}
}

// unwatchTree drops the watches of dir and of every directory below it.
func (w *watcher) unwatchTree(dir string) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	for d, wd := range w.dirs {
		if d == dir || strings.HasPrefix(d, dir+"/") {
			w.in.remove(wd)
			delete(w.dirs, d)
			delete(w.wds, wd)
		}
	}
}

func (w *watcher) watches() int {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return len(w.dirs)
}

// fullScan scans everything, watching every directory on the way, and
// reconciles what was reported with what it found.
func (w *watcher) fullScan(reason string) error {
	w.roots = expandRoots(w.p)
	var tops []dirTask
	for q, r := range w.roots {
		tops = append(tops, dirTask{q, r})
	}
	res, err := scanFrom(w.ctx, w.p, w.roots, tops, Options{Workers: w.o.Workers, Expect: len(w.base), onDir: w.addWatch})
	if err != nil {
		return err
	}
	w.flushWarnings()
	// Every root's parent is watched too: a root that is a single file
	// (or does not exist yet) is seen only there, and a root directory
	// deleted and made again is seen there as new.
	for q := range w.roots {
		if parent := filepath.Dir(q); parent != q {
			w.addWatch(parent)
		}
	}
	w.watchGlobs()
	w.scan = &scanner{ctx: w.ctx, policy: w.p, roots: w.roots, prog: &Progress{}}
	w.workers = nil
	// Every path of the baseline, of the scan and of earlier reports.
	cur := res.Entries
	merge(w.base, cur, func(b, c *Entry) {
		if c == nil {
			w.evaluate(b.Path, nil, "scan")
		} else {
			w.evaluate(c.Path, c, "scan")
		}
	})
	// What was reported of paths neither holds (added, then gone).
	for _, p := range slices.Sorted(maps.Keys(w.reported)) {
		if w.baseEntry(p) == nil && findEntry(cur, p) == nil {
			w.evaluate(p, nil, "scan")
		}
	}
	w.emit(WatchEvent{Kind: KindScan, Scan: &ScanSummary{Reason: reason, Entries: len(cur), Errors: len(res.Errors),
		Seconds: res.Duration.Seconds(), Differences: len(w.reported), Watches: w.watches()}})
	return nil
}

// handle examines the events gathered so far.
func (w *watcher) handle() error {
	w.qmu.Lock()
	evs, overflow := w.queue, w.overflow
	w.queue, w.overflow = nil, false
	w.qmu.Unlock()
	w.flushWarnings()
	dirty := map[string]bool{}
	var newDirs, goneDirs []string
	reglob := false
	for _, ev := range evs {
		if ev.mask&unix.IN_Q_OVERFLOW != 0 {
			overflow = true
			continue
		}
		w.wmu.Lock()
		dir, ok := w.wds[ev.wd]
		if ev.mask&unix.IN_IGNORED != 0 && ok { // the kernel dropped the watch
			delete(w.wds, ev.wd)
			if w.dirs[dir] == ev.wd {
				delete(w.dirs, dir)
			}
		}
		w.wmu.Unlock()
		if !ok || ev.mask&unix.IN_IGNORED != 0 {
			continue
		}
		if ev.name == "" { // the directory itself
			dirty[dir] = true
			if ev.mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0 {
				goneDirs = append(goneDirs, dir)
			}
			continue
		}
		if strings.Contains(ev.name, "/") || ev.name == "." || ev.name == ".." {
			continue // not a name the kernel gives
		}
		p := dir + "/" + ev.name
		if dir == "/" {
			p = "/" + ev.name
		}
		dirty[p] = true
		if ev.mask&(unix.IN_CREATE|unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_MOVED_TO) != 0 {
			dirty[dir] = true // its mtime moved
			if next, ok := w.globDirs[dir]; ok {
				if m, _ := path.Match(next, ev.name); m {
					reglob = true
				}
			}
		}
		if ev.mask&unix.IN_ISDIR != 0 {
			if ev.mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0 {
				goneDirs = append(goneDirs, p)
			}
			if ev.mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
				newDirs = append(newDirs, p)
			}
		}
	}
	if overflow {
		w.warn("", errors.New("the kernel's inotify queue overflowed: events were lost, scanning everything"))
		return w.fullScan(ReasonOverflow)
	}
	if reglob {
		// A glob rule may match something new (a user's first
		// authorized_keys): expand the rules again, scan what is new.
		old := w.roots
		w.roots = expandRoots(w.p)
		w.scan.roots = w.roots
		for q := range w.roots {
			if _, ok := old[q]; ok {
				continue
			}
			if parent := filepath.Dir(q); parent != q {
				w.addWatch(parent)
			}
			newDirs = append(newDirs, q) // scanned as a new top: a file or a directory
			dirty[q] = true
		}
		// What the rules matched and no longer do is gone (a glob
		// matches only what exists).
		for q := range old {
			if _, ok := w.roots[q]; !ok {
				w.judge(q, nil)
				delete(dirty, q)
			}
		}
		w.watchGlobs()
	}
	// While dpkg runs, directories are still watched and scanned as they
	// come and go, but judging what changed waits for it.
	busy := w.dpkgBusy()
	for _, g := range goneDirs {
		w.unwatchTree(g)
		for _, p := range w.knownBelow(g) {
			dirty[p] = true
		}
	}
	for _, d := range newDirs {
		rule, ok := w.ruleFor(d)
		if !ok {
			continue
		}
		res, err := scanFrom(w.ctx, w.p, w.roots, []dirTask{{d, rule}}, Options{Workers: w.o.Workers, onDir: w.addWatch})
		if err != nil {
			return err
		}
		for k := range res.Entries {
			e := &res.Entries[k]
			if busy {
				w.judgeAfterDpkg(e.Path, e)
			} else {
				w.judge(e.Path, e)
			}
			delete(dirty, e.Path)
		}
	}
	if busy {
		// Each state is captured now (an attacker undoing a change
		// before dpkg is done does not hide it); package files are
		// judged once dpkg's checksums are current, the rest at once.
		w.examine(dirty, w.judgeAfterDpkg)
		if len(w.deferred) > 0 {
			time.AfterFunc(time.Second, w.wake)
		}
		return nil
	}
	for _, p := range slices.Sorted(maps.Keys(w.deferred)) {
		for _, e := range w.deferred[p] {
			w.judge(p, e)
		}
		dirty[p] = true // and as it is now
	}
	clear(w.deferred)
	// The other names of a file whose link count may have changed: those
	// of the baseline entries examined, then of the entries found.
	for p := range dirty {
		if b := w.baseEntry(p); b != nil && b.Links > 1 {
			w.linked(b.Inode, dirty)
		}
	}
	found := w.examine(dirty, w.judge)
	more := map[string]bool{}
	for _, e := range found {
		if e == nil || e.Type != TypeFile || e.Links < 2 || e.Attrs&AttrInode == 0 {
			continue
		}
		if b := w.baseEntry(e.Path); b != nil && b.Links == e.Links {
			continue
		}
		// A new link to a file the baseline knows with one link: not
		// in w.links, so looked for (rare: a hard link being made).
		if len(w.links[e.Inode]) == 0 {
			for i := range w.base {
				if b := &w.base[i]; b.Inode == e.Inode && b.Type == TypeFile {
					more[b.Path] = true
				}
			}
		}
		w.linked(e.Inode, more)
	}
	for p := range dirty {
		delete(more, p)
	}
	w.examine(more, w.judge)
	return nil
}

// examine captures the paths of set, in order, hands each that a rule
// covers to judge, and returns the entries it found.
func (w *watcher) examine(set map[string]bool, judge func(path string, e *Entry)) []*Entry {
	paths := slices.Sorted(maps.Keys(set))
	entries, covered := w.capture(paths)
	for k, p := range paths {
		if covered[k] {
			judge(p, entries[k])
		}
	}
	return entries
}

// judge evaluates what an inotify event led to.
func (w *watcher) judge(path string, e *Entry) { w.evaluate(path, e, "inotify") }

// judgeAfterDpkg is judge while dpkg runs: a package file's state is kept
// for when its checksums are current, anything else judged at once.
func (w *watcher) judgeAfterDpkg(path string, e *Entry) {
	if w.packageOwned(path) {
		w.deferState(path, e)
	} else {
		w.judge(path, e)
	}
}

// linked adds to set the baseline's names of inode.
func (w *watcher) linked(inode uint64, set map[string]bool) {
	for _, i := range w.links[inode] {
		set[w.base[i].Path] = true
	}
}

func (w *watcher) baseEntry(path string) *Entry { return findEntry(w.base, path) }

// setBase makes base the baseline compared with, and indexes its files
// with more than one link.
func (w *watcher) setBase(base []Entry) {
	w.base = base
	w.links = map[uint64][]int{}
	for i := range base {
		if e := &base[i]; e.Type == TypeFile && e.Links > 1 && e.Attrs&AttrInode != 0 {
			w.links[e.Inode] = append(w.links[e.Inode], i)
		}
	}
}

// rebase compares with base from now on (an accept wrote it; since is its
// time). Every reported path whose baseline entry the accept changed is
// examined again as it is now: one that no longer differs is reported
// accepted (not restored: it did not go back), one that still does is
// reported afresh against the new entry. The other reported paths are
// as they were: their baseline entry is the same.
func (w *watcher) rebase(base []Entry, since time.Time) {
	old := w.base
	w.setBase(base)
	w.grading.Since = since
	again := map[string]bool{}
	for p := range w.reported {
		ob, nb := findEntry(old, p), findEntry(base, p)
		if ob == nil && nb == nil || ob != nil && nb != nil && sameState(ob, nb) {
			continue
		}
		again[p] = true
	}
	if len(again) == 0 {
		return
	}
	prev := map[string]*Entry{}
	for p := range again {
		prev[p] = w.reported[p]
		delete(w.reported, p)
	}
	settle := func(path string, e *Entry) {
		delete(prev, path)
		if kind, _ := difference(w.baseEntry(path), e); kind != "" {
			w.evaluate(path, e, sourceAccept) // not reported any more: reported now
			return
		}
		f := &Finding{Path: path, Severity: SeverityLow}
		if e != nil {
			f.Type = typeName(e)
		}
		w.emit(WatchEvent{Kind: KindAccepted, Finding: f, Source: sourceAccept})
	}
	if w.scan != nil { // (requests are taken after the first scan)
		w.examine(again, settle)
	}
	// A path that could not be examined now is judged by what was last
	// reported of it (the next event or scan examines it again).
	for _, p := range slices.Sorted(maps.Keys(prev)) {
		settle(p, prev[p])
	}
}

// sourceAccept is the Source of what a rebase reports.
const sourceAccept = "accept"

// difference tells how cur (nil: absent) differs from the baseline's
// entry base (nil: none): the kind of finding ("" when it does not) and
// the changes.
func difference(base, cur *Entry) (string, []Change) {
	switch {
	case base == nil && cur == nil:
		return "", nil
	case base == nil:
		return KindAdded, nil
	case cur == nil:
		return KindRemoved, nil
	}
	if ch := compare(base, cur); len(ch) > 0 {
		return KindChanged, ch
	}
	return "", nil
}

// packageOwned reports whether dpkg owns path (a package's file, or its
// own database).
func (w *watcher) packageOwned(path string) bool {
	sys := sysPath(w.p.Root, path)
	return sys != "" && (strings.HasPrefix(sys, "/var/lib/dpkg/") || w.o.Packages.owns(sys))
}

// deferState keeps a state of path for when dpkg is done: the first and
// the latest few, enough to show what was there in between.
func (w *watcher) deferState(path string, e *Entry) {
	states := w.deferred[path]
	if len(states) >= 8 {
		states = append(states[:1], states[2:]...)
	}
	w.deferred[path] = append(states, e)
}

// dpkgBusy reports whether judging changes waits for a running dpkg (one
// second at a time, up to MaxPackageWait in a row).
func (w *watcher) dpkgBusy() bool {
	if w.o.Packages == nil || !w.o.Packages.Busy() {
		return false
	}
	if len(w.deferred) == 0 {
		w.deferSince = time.Now()
	}
	return time.Since(w.deferSince) < MaxPackageWait
}

// sameState reports whether two entries of one path are the same state.
// compare counts an unreadable entry as changed (so a check never passes
// it); here the same error with nothing else changed is the same state.
func sameState(a, b *Entry) bool {
	if ea, eb := a.rare().Error, b.rare().Error; ea != "" || eb != "" {
		return ea == eb && len(compareOnly(a, b, AllAttrs&^AttrHash)) == 0
	}
	return len(compare(a, b)) == 0
}

// knownBelow lists the paths below dir (and dir) that the baseline holds
// or that were reported.
func (w *watcher) knownBelow(dir string) []string {
	var out []string
	i, _ := slices.BinarySearchFunc(w.base, dir, func(e Entry, p string) int { return strings.Compare(e.Path, p) })
	for ; i < len(w.base); i++ {
		p := w.base[i].Path
		if p != dir && !strings.HasPrefix(p, dir+"/") {
			if p > dir+"/" {
				break
			}
			continue // a sibling sorting between dir and dir/ ("dir-x", "dir.d")
		}
		out = append(out, p)
	}
	for p := range w.reported {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	return out
}

// ruleFor finds the rule that covers p: the most specific root at or
// above p, with no excluded path between it and p.
func (w *watcher) ruleFor(p string) (*Rule, bool) {
	root := p
	var r *Rule
	for {
		if rr, ok := w.roots[root]; ok {
			r = rr
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return nil, false
		}
		root = parent
	}
	for a := p; a != root; a = filepath.Dir(a) {
		name := filepath.Base(a)
		if excluded(w.p.Exclude, a, name) || excluded(r.Exclude, a, name) {
			return nil, false
		}
	}
	return r, true
}

// capture records paths as a scan would: entries[k] is nil where paths[k]
// no longer exists, covered[k] false where no rule covers it or it could
// not be examined.
func (w *watcher) capture(paths []string) (entries []*Entry, covered []bool) {
	entries = make([]*Entry, len(paths))
	covered = make([]bool, len(paths))
	n := 1
	if len(paths) > 64 {
		n = w.o.Workers
	}
	for len(w.workers) < n {
		w.workers = append(w.workers, newWorker(w.scan))
	}
	var wg sync.WaitGroup
	for k := range n {
		wk := w.workers[k]
		wg.Go(func() {
			for i := k; i < len(paths); i += n {
				p := paths[i]
				rule, ok := w.ruleFor(p)
				if !ok {
					continue
				}
				var st syscall.Stat_t
				if err := syscall.Lstat(p, &st); err != nil {
					covered[i] = errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ENOTDIR)
					continue
				}
				e := wk.capture(p, &st, rule)
				entries[i], covered[i] = &e, true
			}
		})
	}
	wg.Wait()
	w.scan.errors = nil // unreadable entries carry their Error
	return entries, covered
}

// evaluate compares path's current entry (nil: absent) with the baseline
// and with what was last reported of it, and reports what is new.
func (w *watcher) evaluate(path string, cur *Entry, source string) {
	base := w.baseEntry(path)
	kind, changes := difference(base, cur)
	prev, had := w.reported[path]
	if kind == "" {
		if had {
			delete(w.reported, path)
			f := &Finding{Path: path, Severity: SeverityLow}
			if cur != nil {
				f.Type = typeName(cur)
			} else if base != nil {
				f.Type = typeName(base)
			}
			w.emit(WatchEvent{Kind: KindRestored, Finding: f, Source: source})
		}
		return
	}
	if had && (prev == nil) == (cur == nil) && (cur == nil || sameState(prev, cur)) {
		return // reported already
	}
	if cur != nil {
		c := *cur
		w.reported[path] = &c
	} else {
		w.reported[path] = nil
	}
	f := newFinding(w.grading, kind, base, cur, changes)
	ev := WatchEvent{Kind: kind, Finding: &f, Source: source, state: stateOf(kind, cur)}
	if cur != nil && source == "inotify" {
		at := cur.Ctime
		if cur.Attrs&AttrCtime == 0 {
			at = cur.Mtime
		}
		if at != 0 {
			d := float64(time.Now().UnixNano()-at) / 1e6
			ev.DelayMS = &d
		}
	}
	w.emit(ev)
}
