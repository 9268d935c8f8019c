package integrity

// Package awareness (Debian's dpkg).
//
// dpkg keeps, for every installed package, the MD5 of each file it
// shipped (/var/lib/dpkg/info/PKG.md5sums, paths relative to /; conffiles
// apart, in /var/lib/dpkg/status) and logs every install and upgrade with
// its time (/var/log/dpkg.log, rotated to .1 and .N.gz). With both, a
// changed file of a package can be told apart:
//
//   - its content is the package's own and the package was installed or
//     upgraded since the baseline: expected (an upgrade), graded low;
//   - its content is the package's own, no upgrade logged: expected too
//     (reinstalled, or put back), graded low;
//   - its content differs from the package's: nothing dpkg did explains
//     it, graded high whatever the path.
//
// On a merged-/usr system dpkg lists /bin/ls where the file is
// /usr/bin/ls; both names are indexed. Everything is read below the
// grading root, so a mounted image is judged by its own dpkg database.
// Nothing is read until a finding needs it: a clean check pays nothing.

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Packages answers which package owns a path and what dpkg did recently.
type Packages struct {
	root string

	mu      sync.Mutex
	loaded  bool
	stamp   [3]time.Time // mtimes of the info directory, dpkg's status and its log when read
	err     error
	files   map[string]pkgFile    // system path -> package and MD5
	changes map[string][]pkgEvent // package (without :arch) -> installs and upgrades, oldest first
}

type pkgFile struct {
	pkg      string
	md5      [md5.Size]byte
	alias    bool // the merged-/usr name of a file dpkg lists under /bin, /lib, ...
	conflict bool // two packages list it with different checksums: trust neither
}

type pkgEvent struct {
	at       time.Time
	action   string // install or upgrade
	from, to string
}

// NewPackages reads the dpkg database below root ("/" for this host) when
// first asked.
func NewPackages(root string) *Packages {
	if root == "" {
		root = "/"
	}
	return &Packages{root: root}
}

// DpkgPresent reports whether root has a dpkg database.
func DpkgPresent(root string) bool {
	st, err := os.Stat(filepath.Join(root, "var/lib/dpkg/info"))
	return err == nil && st.IsDir()
}

// load reads the database, again when dpkg changed it since. p.mu is held.
func (p *Packages) load() error {
	stamp := p.dbStamp()
	if p.loaded && stamp == p.stamp {
		return p.err
	}
	p.loaded, p.stamp = true, stamp
	p.err = p.read()
	return p.err
}

func (p *Packages) dbStamp() [3]time.Time {
	var out [3]time.Time
	for i, f := range []string{"var/lib/dpkg/info", "var/lib/dpkg/status", "var/log/dpkg.log"} {
		if st, err := os.Stat(filepath.Join(p.root, f)); err == nil {
			out[i] = st.ModTime()
		}
	}
	return out
}

// Busy reports whether dpkg is running (it holds its database lock): a
// package file changed now may not be in its checksums yet.
func (p *Packages) Busy() bool {
	for _, name := range []string{"lock", "lock-frontend"} { // dpkg's, and apt's for its whole run
		f, err := os.Open(filepath.Join(p.root, "var/lib/dpkg", name))
		if err != nil {
			continue
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		err = unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk)
		f.Close()
		if err == nil && lk.Type != unix.F_UNLCK {
			return true
		}
	}
	return false
}

func (p *Packages) read() error {
	info := filepath.Join(p.root, "var/lib/dpkg/info")
	sums, err := filepath.Glob(filepath.Join(info, "*.md5sums"))
	if err != nil {
		return err
	}
	if len(sums) == 0 {
		return fmt.Errorf("no dpkg checksums in %s", info)
	}
	// Top-level directories that are symlinks into /usr (merged /usr).
	alias := map[string]string{}
	for _, d := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		if t, err := os.Readlink(filepath.Join(p.root, d)); err == nil && strings.TrimPrefix(t, "/") == "usr/"+d {
			alias["/"+d+"/"] = "/usr/" + d + "/"
		}
	}
	p.files = make(map[string]pkgFile, 64<<10)
	for _, f := range sums {
		pkg := pkgName(strings.TrimSuffix(filepath.Base(f), ".md5sums"))
		if err := p.readSums(f, pkg, alias); err != nil {
			return err
		}
	}
	p.changes = map[string][]pkgEvent{}
	logs, _ := filepath.Glob(filepath.Join(p.root, "var/log/dpkg.log*"))
	for _, l := range logs {
		_ = p.readLog(l) // what a damaged log held before the damage counts; the rest is lost either way
	}
	for _, evs := range p.changes {
		sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	}
	return nil
}

// pkgName drops the architecture qualifier: "libc6:amd64" -> "libc6".
func pkgName(s string) string {
	name, _, _ := strings.Cut(s, ":")
	return name
}

// readSums reads one PKG.md5sums: "<32 hex digits>  <path without the
// leading slash>" per line.
func (p *Packages) readSums(file, pkg string, alias map[string]string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		sum, path, ok := parseSumLine(sc.Text())
		if !ok {
			continue // not a checksum line: dpkg writes none such, skip it
		}
		p.add(path, pkgFile{pkg: pkg, md5: sum})
		for from, to := range alias {
			if rest, ok := strings.CutPrefix(path, from); ok {
				p.add(to+rest, pkgFile{pkg: pkg, md5: sum, alias: true})
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// add records what a package says of path. A listed name wins over an
// alias; two packages giving different checksums leave a conflict (a
// forged .md5sums cannot quietly replace the real one).
func (p *Packages) add(path string, f pkgFile) {
	old, ok := p.files[path]
	switch {
	case !ok || old.alias && !f.alias:
		p.files[path] = f
	case f.alias && !old.alias:
	case old.md5 != f.md5:
		old.conflict = true
		p.files[path] = old
	}
}

// parseSumLine parses "<32 hex digits>  <path without the leading slash>"
// into the MD5 and the absolute path.
func parseSumLine(line string) (sum [md5.Size]byte, path string, ok bool) {
	if len(line) < 35 || line[32] != ' ' || line[33] != ' ' {
		return sum, "", false
	}
	if _, err := hex.Decode(sum[:], []byte(line[:32])); err != nil {
		return sum, "", false
	}
	return sum, "/" + strings.TrimPrefix(line[34:], "/"), true
}

// parseLogLine parses an install or upgrade line of dpkg's log:
// "DATE TIME install|upgrade PKG:ARCH OLD NEW".
func parseLogLine(line string) (pkg string, ev pkgEvent, ok bool) {
	fields := strings.Fields(line)
	if len(fields) != 6 || fields[2] != "install" && fields[2] != "upgrade" {
		return "", ev, false
	}
	at, err := time.ParseInLocation("2006-01-02 15:04:05", fields[0]+" "+fields[1], time.Local)
	if err != nil {
		return "", ev, false
	}
	return pkgName(fields[3]), pkgEvent{at: at, action: fields[2], from: fields[4], to: fields[5]}, true
}

// readLog reads the installs and upgrades of one dpkg log (gzip when its
// name ends in .gz): "DATE TIME install|upgrade PKG:ARCH OLD NEW".
func (p *Packages) readLog(file string) error {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(file, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		defer gz.Close()
		r = gz
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if pkg, ev, ok := parseLogLine(sc.Text()); ok {
			p.changes[pkg] = append(p.changes[pkg], ev)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// Explanation is what dpkg says of a changed file.
type Explanation struct {
	Package string // the owning package, "" when none
	Matches bool   // the file's content is the package's own
	Logged  bool   // and the package's install or upgrade is logged since the baseline
	Note    string // for the finding's reasons
}

// explain judges the file at path (sys: its path below the root) whose
// new entry is cur, found after since (the baseline's time). The MD5 is
// read from the same file the scan saw (its inode and ctime), or nothing
// is explained.
func (p *Packages) explain(path, sys string, since time.Time, cur *Entry) (Explanation, error) {
	p.mu.Lock()
	err := p.load()
	pf, ok := p.files[sys]
	p.mu.Unlock()
	if err != nil || !ok {
		return Explanation{}, err
	}
	x := Explanation{Package: pf.pkg}
	if pf.conflict {
		x.Note = "packages disagree on the checksum of this file (a forged .md5sums?)"
		return x, nil
	}
	sum, err := md5File(path, cur)
	if err != nil {
		return x, err
	}
	x.Matches = sum == pf.md5
	if !x.Matches {
		x.Note = "content differs from package " + pf.pkg + "'s checksum (dpkg did not put it there)"
		return x, nil
	}
	x.Note = "content is package " + pf.pkg + "'s own, but no install or upgrade of it is logged since the baseline"
	if at, ok := p.changedSince(pf.pkg, since); ok {
		x.Logged, x.Note = true, at
	}
	return x, nil
}

// owns reports whether dpkg lists the file at sys.
func (p *Packages) owns(sys string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.load() != nil {
		return false
	}
	_, ok := p.files[sys]
	return ok
}

// changedSince describes the last install or upgrade of pkg logged at or
// after since.
func (p *Packages) changedSince(pkg string, since time.Time) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.load() != nil {
		return "", false
	}
	evs := p.changes[pkg]
	for i := len(evs) - 1; i >= 0; i-- {
		if e := evs[i]; !e.at.Before(since) {
			return fmt.Sprintf("package %s %s %s -> %s at %s", pkg, e.action, e.from, e.to, e.at.Format(time.RFC3339)), true
		}
	}
	return "", false
}

// md5File hashes path; when cur is set, only if the file is still the one
// cur describes (inode and ctime, as recorded).
func md5File(path string, cur *Entry) ([md5.Size]byte, error) {
	var sum [md5.Size]byte
	fd, err := openNoatime(path)
	if err != nil {
		return sum, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if cur != nil {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return sum, err
		}
		if cur.Attrs&AttrInode != 0 && st.Ino != cur.Inode || cur.Attrs&AttrCtime != 0 && st.Ctim.Nano() != cur.Ctime {
			return sum, errors.New("replaced since it was scanned")
		}
	}
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// Grading is how b's findings are graded: below its policy's root, with
// dpkg's database there when it has one, upgrades counted from b's time.
func (b *Baseline) Grading() Grading {
	g := Grading{Root: b.Header.Policy.Root, Since: b.Header.Created}
	root := g.Root
	if root == "" {
		root = "/"
	}
	if DpkgPresent(root) {
		g.Packages = NewPackages(root)
	}
	return g
}

// PackageProblem is a package file that is not as dpkg installed it.
type PackageProblem struct {
	Path    string `json:"path"`
	Package string `json:"package"`
	Problem string `json:"problem"` // "checksum" (content differs), "missing", "not a regular file", "conflicting checksums" (two packages disagree), or why it could not be read
}

// PackageReport is what Verify found.
type PackageReport struct {
	Packages int              `json:"packages"`
	Files    int              `json:"files"`
	Problems []PackageProblem `json:"problems"`
	Seconds  float64          `json:"seconds"`
}

// Verify reads every file dpkg has a checksum for (as debsums does) on
// workers goroutines and lists those whose content differs, or that are
// missing. Conffiles (in /etc) have no such checksum: their edits are an
// administrator's business, and the integrity baseline's.
func (p *Packages) Verify(ctx context.Context, workers int, progress *atomic.Int64) (*PackageReport, error) {
	start := time.Now()
	p.mu.Lock()
	err := p.load()
	paths := make([]string, 0, len(p.files))
	pkgs := map[string]bool{}
	for path, f := range p.files {
		if !f.alias {
			paths = append(paths, path)
			pkgs[f.pkg] = true
		}
	}
	files := p.files
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	if workers <= 0 {
		workers = 2 * runtime.GOMAXPROCS(0)
	}
	problems := make([]string, len(paths))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(paths) && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				full := filepath.Join(p.root, paths[i])
				var st unix.Stat_t
				if err := unix.Lstat(full, &st); err != nil {
					if errors.Is(err, unix.ENOENT) {
						problems[i] = "missing"
					} else {
						problems[i] = err.Error()
					}
				} else if files[paths[i]].conflict {
					problems[i] = "conflicting checksums"
				} else if st.Mode&unix.S_IFMT != unix.S_IFREG {
					problems[i] = "not a regular file"
				} else if sum, err := md5File(full, nil); err != nil {
					problems[i] = err.Error()
				} else if sum != files[paths[i]].md5 {
					problems[i] = "checksum"
				}
				if progress != nil {
					progress.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rep := &PackageReport{Packages: len(pkgs), Files: len(paths), Problems: []PackageProblem{}}
	for i, pr := range problems {
		if pr != "" {
			rep.Problems = append(rep.Problems, PackageProblem{Path: paths[i], Package: files[paths[i]].pkg, Problem: pr})
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}
