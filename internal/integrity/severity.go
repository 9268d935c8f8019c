package integrity

// Severity. A finding is graded so that the few changes an intruder makes
// stand out from the many an administrator makes: high for what grants
// or keeps access (authentication and privilege files, SSH keys, set-user-ID
// files, world-writable system files, new cron jobs and systemd units,
// system binaries), medium for other changes of content, ownership or
// mode and for removals, low for what only moves times (a directory whose
// entries changed). Paths are matched below Policy.Root, so a tree
// mounted elsewhere (an image, a container's root) is graded as the
// system it holds.

import (
	"bytes"
	"path"
	"strings"
	"time"
)

// The severities of a finding.
const (
	SeverityHigh   = "high"
	SeverityMedium = "medium"
	SeverityLow    = "low"
)

// authFiles are the files whose change alters who may log in or become
// root.
var authFiles = map[string]bool{
	"/etc/passwd": true, "/etc/shadow": true, "/etc/group": true, "/etc/gshadow": true,
	"/etc/sudoers": true, "/etc/ssh/sshd_config": true, "/etc/pam.conf": true, "/etc/security/access.conf": true,
}

// authDirs hold drop-ins of authFiles.
var authDirs = []string{"/etc/sudoers.d", "/etc/ssh/sshd_config.d", "/etc/pam.d"}

// schedDirs hold what runs on a schedule or at boot.
var schedDirs = []string{
	"/etc/cron.d", "/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly", "/var/spool/cron",
	"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system", "/etc/systemd/user", "/usr/lib/systemd/user",
	"/run/systemd/system", "/etc/init.d", "/etc/rc.local",
}

// binDirs hold the system's programs.
var binDirs = []string{"/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin", "/usr/local/sbin"}

// systemDirs are where a world-writable file is a hole.
var systemDirs = []string{"/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/boot", "/opt", "/root", "/var/spool/cron"}

func under(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// Grading is what grading findings needs besides the entries.
type Grading struct {
	// Root is where the watched system is mounted (Policy.Root).
	Root string
	// Packages, when set, explains changes of package files (dpkg.go).
	Packages *Packages
	// Since is the baseline's time: package upgrades after it explain
	// changes.
	Since time.Time
}

// sysPath is p as the system mounted at root sees it ("" when p is not
// below root).
func sysPath(root, p string) string {
	if root == "" || root == "/" {
		return p
	}
	rel, ok := strings.CutPrefix(p, root)
	if !ok || rel != "" && rel[0] != '/' {
		return ""
	}
	if rel == "" {
		return "/"
	}
	return rel
}

// grade sets f's severity and reasons: the built-in rules, then what dpkg
// says of a package file whose content changed. Only what a package's
// content explains is lowered by it: a binary or unit replaced by its
// package's new version, after that package's install or upgrade was
// logged. A new set-user-ID bit, an owner, capabilities, an authentication
// file or a new unit keep their grade whatever dpkg says.
func (g Grading) grade(f *Finding, kind string, base, cur *Entry) {
	var rs []reason
	f.Severity, rs = classify(g.Root, kind, f.Path, base, cur)
	f.Reasons = texts(rs)
	if g.Packages == nil || cur == nil {
		return
	}
	sys := sysPath(g.Root, f.Path)
	if sys == "" {
		return
	}
	if pkg, ok := strings.CutPrefix(sys, "/var/lib/dpkg/info/"); ok && !strings.Contains(pkg, "/") {
		g.gradeDpkgInfo(f, pkgName(strings.SplitN(pkg, ".", 2)[0]))
		return
	}
	if cur.Type != TypeFile || !contentChanged(kind, base, cur) {
		return
	}
	x, err := g.Packages.explain(f.Path, sys, g.Since, cur)
	if err != nil || x.Package == "" {
		return
	}
	f.Package = x.Package
	if !x.Matches {
		f.Severity = SeverityHigh
		f.Reasons = append(f.Reasons, x.Note)
		return
	}
	// The package's own content: what only that explains is lowered,
	// when its install or upgrade is logged since the baseline and
	// nothing but the content (and what replacing a file moves) changed.
	fixed := false
	for _, r := range rs {
		fixed = fixed || !r.content
	}
	switch {
	case fixed:
		f.Reasons = append(f.Reasons, x.Note)
	case x.Logged && contentOnly(base, cur):
		f.Expected = true
		f.Severity, f.Reasons = SeverityLow, []string{"expected: " + x.Note}
	default: // the package's content, but no install or upgrade logged
		f.Severity, f.Reasons = SeverityMedium, append(f.Reasons, x.Note)
	}
}

// gradeDpkgInfo grades a change in dpkg's own database (a package's file
// list, checksums, scripts): expected when that package's install or
// upgrade is logged since the baseline, high otherwise, since the
// checksums are what package awareness trusts.
func (g Grading) gradeDpkgInfo(f *Finding, pkg string) {
	f.Package = pkg
	if at, ok := g.Packages.changedSince(pkg, g.Since); ok {
		f.Expected = true
		f.Severity, f.Reasons = SeverityLow, []string{"expected: " + at}
		return
	}
	f.Severity = SeverityHigh
	f.Reasons = append(f.Reasons, "dpkg's database changed for "+pkg+" without an install or upgrade logged")
}

// contentOnly reports whether base and cur differ only in what replacing
// a file's content moves: hash, size, times, inode.
func contentOnly(base, cur *Entry) bool {
	return base == nil || len(compareOnly(base, cur, AllAttrs&^(AttrHash|AttrSize|AttrMtime|AttrCtime|AttrInode))) == 0
}

// reason is why a finding is high; content says a package's new version
// of the file explains it.
type reason struct {
	text    string
	content bool
}

func texts(rs []reason) []string {
	if len(rs) == 0 {
		return nil
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.text
	}
	return out
}

// loaderFiles configure what every program loads.
var loaderFiles = map[string]bool{"/etc/ld.so.preload": true, "/etc/ld.so.conf": true}

// moduleDirs hold code that PAM or the kernel loads.
func isModule(sys string) bool {
	if under(sys, []string{"/usr/lib/modules", "/lib/modules"}) {
		return true
	}
	return (strings.HasPrefix(sys, "/usr/lib/") || strings.HasPrefix(sys, "/lib")) && strings.Contains(sys, "/security/") && strings.HasSuffix(sys, ".so")
}

// classify grades a finding of kind about path (below root) whose entry
// was base and is now cur (either nil when absent), and says why.
func classify(root, kind, p string, base, cur *Entry) (string, []reason) {
	sys := sysPath(root, p)
	var reasons []reason
	high := func(r string) { reasons = append(reasons, reason{text: r}) }
	content := func(r string) { reasons = append(reasons, reason{text: r, content: true}) }
	name := path.Base(sys)
	changedContent := cur != nil && cur.Type == TypeFile && contentChanged(kind, base, cur)
	if authFiles[sys] || under(sys, authDirs) {
		high("authentication or privilege configuration " + kind)
	}
	if loaderFiles[sys] || under(sys, []string{"/etc/ld.so.conf.d"}) {
		high("dynamic loader configuration " + kind)
	}
	if (name == "authorized_keys" || name == "authorized_keys2") && kind != KindRemoved {
		high("SSH authorized keys " + kind)
	}
	if cur != nil && cur.Type == TypeFile && cur.Attrs&AttrMode != 0 && cur.Mode&0o6000 != 0 {
		switch {
		case base == nil || base.Attrs&AttrMode == 0 || base.Mode&0o6000 != cur.Mode&0o6000 || base.Type != TypeFile:
			high("new set-user-ID or set-group-ID file")
		case changedContent:
			content("set-user-ID or set-group-ID program changed")
		}
	}
	if cur != nil && cur.Attrs&AttrCaps != 0 && cur.rare().Caps != nil && (base == nil || !bytes.Equal(base.rare().Caps, cur.rare().Caps)) {
		high("file capabilities set")
	}
	if cur != nil && cur.Attrs&AttrMode != 0 && cur.Type != TypeSymlink && cur.Mode&0o002 != 0 &&
		!(cur.Type == TypeDir && cur.Mode&0o1000 != 0) && under(sys, systemDirs) &&
		(base == nil || base.Attrs&AttrMode == 0 || base.Mode&0o002 == 0) {
		high("world-writable " + cur.Type.String() + " in a system directory")
	}
	if base != nil && cur != nil && under(sys, systemDirs) &&
		(cur.Attrs&AttrOwner != 0 && base.Attrs&AttrOwner != 0 && cur.UID != base.UID && cur.UID != 0 ||
			cur.Attrs&AttrGroup != 0 && base.Attrs&AttrGroup != 0 && cur.GID != base.GID && cur.GID != 0) {
		high("owner or group changed to a non-root account in a system directory")
	}
	if kind != KindRemoved && (cur == nil || cur.Type != TypeDir) && (under(sys, schedDirs) || sys == "/etc/crontab") {
		if kind == KindChanged && changedContent {
			content("scheduled job or service unit changed")
		} else {
			high("scheduled job or service unit " + kind)
		}
	}
	if kind != KindRemoved && cur != nil && cur.Type != TypeDir && under(sys, binDirs) {
		switch {
		case cur.Type == TypeFile && changedContent:
			content("system binary " + kind)
		case cur.Type != TypeFile && (kind == KindAdded || len(compareOnly(base, cur, AttrType|AttrTarget)) > 0):
			high(cur.Type.String() + " " + kind + " in a program directory")
		}
	}
	if kind != KindRemoved && changedContent && isModule(sys) {
		content("PAM or kernel module " + kind)
	}
	if len(reasons) > 0 {
		return SeverityHigh, reasons
	}
	if kind == KindChanged && base != nil && cur != nil && onlyTimes(base, cur) {
		return SeverityLow, nil
	}
	return SeverityMedium, nil
}

// contentChanged reports whether a binary's bytes (or its existence) changed.
func contentChanged(kind string, base, cur *Entry) bool {
	if kind == KindAdded || base == nil {
		return true
	}
	return len(compareOnly(base, cur, AttrHash|AttrSize|AttrType)) > 0
}

// onlyTimes reports whether the only differences are times, inode-table
// bookkeeping a directory's changed entries cause (mtime, ctime, link count
// of a directory, size of a directory).
func onlyTimes(base, cur *Entry) bool {
	if base.Type == TypeFile && (base.Attrs&cur.Attrs)&AttrHash == 0 {
		return false // a rewrite of the same size would look like times only
	}
	ignore := AttrMtime | AttrCtime
	if base.Type == TypeDir && cur.Type == TypeDir {
		ignore |= AttrLinks | AttrSize
	}
	return len(compareOnly(base, cur, AllAttrs&^ignore)) == 0
}

// compareOnly is compare restricted to the attributes of a.
func compareOnly(base, cur *Entry, a Attr) []Change {
	b, c := *base, *cur
	b.Attrs &= a
	c.Attrs &= a
	return compare(&b, &c)
}
