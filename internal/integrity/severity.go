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
// says of a package file whose content changed.
func (g Grading) grade(f *Finding, kind string, base, cur *Entry) {
	f.Severity, f.Reasons = classify(g.Root, kind, f.Path, base, cur)
	if g.Packages == nil || cur == nil || cur.Type != TypeFile || !contentChanged(kind, base, cur) {
		return
	}
	sys := sysPath(g.Root, f.Path)
	if sys == "" {
		return
	}
	x, err := g.Packages.explain(f.Path, sys, g.Since)
	if err != nil || x.Package == "" {
		return
	}
	f.Package = x.Package
	if x.Expected {
		f.Expected = true
		f.Severity, f.Reasons = SeverityLow, []string{"expected: " + x.Note}
		return
	}
	f.Severity = SeverityHigh
	f.Reasons = append(f.Reasons, x.Note)
}

// classify grades a finding of kind about path (below root) whose entry
// was base and is now cur (either nil when absent), and says why.
func classify(root, kind, p string, base, cur *Entry) (string, []string) {
	sys := sysPath(root, p)
	var reasons []string
	high := func(r string) { reasons = append(reasons, r) }
	name := path.Base(sys)
	if authFiles[sys] || under(sys, authDirs) {
		high("authentication or privilege configuration " + kind)
	}
	if (name == "authorized_keys" || name == "authorized_keys2") && kind != KindRemoved {
		high("SSH authorized keys " + kind)
	}
	if cur != nil && cur.Type == TypeFile && cur.Attrs&AttrMode != 0 && cur.Mode&0o6000 != 0 &&
		(base == nil || base.Attrs&AttrMode == 0 || base.Mode&0o6000 != cur.Mode&0o6000 || base.Type != TypeFile) {
		high("new set-user-ID or set-group-ID file")
	}
	if cur != nil && cur.Attrs&AttrMode != 0 && cur.Type != TypeSymlink && cur.Mode&0o002 != 0 &&
		!(cur.Type == TypeDir && cur.Mode&0o1000 != 0) && under(sys, systemDirs) &&
		(base == nil || base.Attrs&AttrMode == 0 || base.Mode&0o002 == 0) {
		high("world-writable " + cur.Type.String() + " in a system directory")
	}
	if kind != KindRemoved && (cur == nil || cur.Type != TypeDir) && (under(sys, schedDirs) || sys == "/etc/crontab") {
		high("scheduled job or service unit " + kind)
	}
	if kind != KindRemoved && cur != nil && cur.Type == TypeFile && under(sys, binDirs) && contentChanged(kind, base, cur) {
		high("system binary " + kind)
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
