package posture

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// ExpectedSetID lists the set-user-ID and set-group-ID programs a Debian
// or Ubuntu system installs on purpose (from its packages: shadow, util-
// linux, sudo, openssh, dbus, polkit, exim4, cron, fuse...). Anything else
// with those bits is reported.
var ExpectedSetID = []string{
	"/usr/bin/chage", "/usr/bin/chfn", "/usr/bin/chsh", "/usr/bin/crontab", "/usr/bin/dotlockfile", "/usr/bin/expiry",
	"/usr/bin/fusermount", "/usr/bin/fusermount3", "/usr/bin/gpasswd", "/usr/bin/mount", "/usr/bin/newgrp", "/usr/bin/passwd",
	"/usr/bin/pkexec", "/usr/bin/ssh-agent", "/usr/bin/su", "/usr/bin/sudo", "/usr/bin/umount", "/usr/bin/wall", "/usr/bin/write",
	"/usr/bin/write.ul", "/usr/bin/bsd-write", "/usr/bin/at", "/usr/bin/mlocate", "/usr/bin/plocate", "/usr/bin/ntfs-3g",
	"/usr/sbin/exim4", "/usr/sbin/unix_chkpwd", "/usr/sbin/pam_extrausers_chkpwd", "/usr/sbin/pppd", "/usr/sbin/postdrop", "/usr/sbin/postqueue",
	"/usr/lib/dbus-1.0/dbus-daemon-launch-helper", "/usr/lib/openssh/ssh-keysign", "/usr/lib/polkit-1/polkit-agent-helper-1",
	"/usr/libexec/polkit-agent-helper-1", "/usr/lib/x86_64-linux-gnu/utempter/utempter", "/usr/lib/aarch64-linux-gnu/utempter/utempter",
	"/usr/lib/eject/dmcrypt-get-device", "/usr/lib/snapd/snap-confine", "/usr/libexec/camel-lock-helper-1.2",
}

// setIDRoots and writableRoots are the trees scanned: where programs and
// system configuration live. /tmp, /var/tmp, /home and /proc are not.
// Every set-ID root is a writable root: one walk serves both checks.
var (
	setIDRoots    = []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/opt", "/etc", "/boot", "/srv", "/var/www"}
	writableRoots = []string{"/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/opt", "/srv", "/var/www", "/var/lib", "/var/spool/cron"}
)

// maxEvidence bounds the paths a finding lists.
const maxEvidence = 20

// walk visits everything below the roots but symlinks (not followed);
// unreadable parts are skipped and the rest still scanned.
func (a *Auditor) walk(roots []string, visit func(rel string, d fs.DirEntry, info fs.FileInfo)) {
	for _, r := range roots {
		base := a.path(r)
		filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // unreadable parts are skipped (and the rest scanned)
			}
			if d.Type()&fs.ModeSymlink != 0 {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			rel, _ := filepath.Rel(a.Root, p)
			visit("/"+filepath.ToSlash(rel), d, info)
			return nil
		})
	}
}

func capEvidence(list []string) []string {
	slices.Sort(list)
	if len(list) > maxEvidence {
		n := len(list)
		list = append(list[:maxEvidence], fmt.Sprintf("... and %d more", n-maxEvidence))
	}
	return list
}

// treeScan is the one walk of the system trees that both file checks
// read (setIDRoots are all within writableRoots), made by whichever runs
// first: walking /usr twice would double the audit's longest part.
type treeScan struct {
	once        sync.Once
	setIDFound  int
	badSetID    []string
	badWritable []string
}

func (a *Auditor) scanTrees() *treeScan {
	s := a.scan
	s.once.Do(func() {
		a.walk(writableRoots, func(rel string, d fs.DirEntry, info fs.FileInfo) {
			m := info.Mode()
			if m.Perm()&0o002 != 0 {
				switch {
				case m.IsRegular():
					s.badWritable = append(s.badWritable, fmt.Sprintf("%s (file, %s)", rel, m))
				case m.IsDir() && m&fs.ModeSticky == 0:
					s.badWritable = append(s.badWritable, fmt.Sprintf("%s (directory without the sticky bit, %s)", rel, m))
				}
			}
			if !m.IsRegular() || m&(fs.ModeSetuid|fs.ModeSetgid) == 0 || !below(rel, setIDRoots) {
				return
			}
			s.setIDFound++
			if slices.Contains(ExpectedSetID, rel) || slices.Contains(ExpectedSetID, strings.Replace(rel, "/bin/", "/usr/bin/", 1)) ||
				slices.Contains(ExpectedSetID, strings.Replace(rel, "/sbin/", "/usr/sbin/", 1)) {
				return
			}
			kind := "set-user-ID"
			if m&fs.ModeSetuid == 0 {
				kind = "set-group-ID"
			}
			s.badSetID = append(s.badSetID, fmt.Sprintf("%s (%s, %s)", rel, kind, m))
		})
	})
	return s
}

// below reports whether rel is one of roots or inside one.
func below(rel string, roots []string) bool {
	for _, r := range roots {
		if rel == r || strings.HasPrefix(rel, r+"/") {
			return true
		}
	}
	return false
}

func (a *Auditor) setIDFiles() (Status, []string) {
	s := a.scanTrees()
	if len(s.badSetID) > 0 {
		return Fail, capEvidence(slices.Clone(s.badSetID))
	}
	return Pass, []string{fmt.Sprintf("%d set-ID programs, all expected", s.setIDFound)}
}

func (a *Auditor) worldWritable() (Status, []string) {
	s := a.scanTrees()
	if len(s.badWritable) > 0 {
		return Fail, capEvidence(slices.Clone(s.badWritable))
	}
	return Pass, []string{"no world-writable file, nor directory without the sticky bit, in " + strings.Join(writableRoots, " ")}
}
