package config

import (
	"fmt"
	"path"
	"time"
)

// Integrity configures file-integrity monitoring (internal/integrity): the
// rules of what is recorded, the signed baseline, and watching inside
// `bulwark up`. See docs/integrity.md.
type Integrity struct {
	// Enabled watches the rules' paths inside `bulwark up`: inotify on
	// every covered directory, a full scan every Rescan, each finding an
	// event. The baseline is recorded on the first start when missing.
	Enabled bool `yaml:"enabled"`
	// Baseline is the signed baseline file; empty means
	// DATA_DIR/integrity.baseline.
	Baseline string `yaml:"baseline"`
	// PublicKey verifies the baseline; empty means DATA_DIR/integrity.pub.
	// Keep a copy off the host and point here to it.
	PublicKey string `yaml:"public_key"`
	// Rules replace the built-in policy for a Debian or Ubuntu server when
	// set.
	Rules []IntegrityRule `yaml:"rules"`
	// Exclude lists patterns left out under every rule, as backup's
	// --exclude: with a "/" whole paths, without one names anywhere.
	Exclude []string `yaml:"exclude"`
	// DefaultExcludes keeps the built-in exclusions of volatile files
	// (/etc/mtab, /etc/adjtime, __pycache__, editor files, ...).
	DefaultExcludes bool `yaml:"default_excludes"`
	// Hash is the content hash: sha256 or blake3.
	Hash string `yaml:"hash"`
	// Root is where the watched system is mounted ("/" for this host):
	// findings are graded by their path below it.
	Root string `yaml:"root"`
	// Rescan is the period of full scans while watching (0: only at the
	// start and after an event-queue overflow).
	Rescan Duration `yaml:"rescan"`
	// AuthLogs are the authentication logs (auth.log, or journald text
	// written to a file) whose logins, sudo and su uses and account
	// changes become events while watching.
	AuthLogs []string `yaml:"auth_logs"`
}

// IntegrityRule is one watched path.
type IntegrityRule struct {
	// Path is a directory (with everything below it) or a file; glob
	// characters are expanded at each scan.
	Path string `yaml:"path"`
	// Attrs are the attributes recorded: names (type, mode, owner,
	// group, size, mtime, ctime, inode, links, target, xattrs, acl, caps,
	// hash) or AIDE's letters (p, u, g, s, m, c, i, n, sha256); empty
	// means all.
	Attrs []string `yaml:"attrs"`
	// Exclude lists patterns left out below this path.
	Exclude []string `yaml:"exclude"`
}

func defaultIntegrity() Integrity {
	return Integrity{DefaultExcludes: true, Hash: "sha256", Root: "/", Rescan: Duration(6 * time.Hour), AuthLogs: []string{"/var/log/auth.log"}}
}

func (in Integrity) validate(c *checker) {
	c.oneOf("hash", in.Hash, "sha256", "blake3")
	if in.Baseline != "" {
		c.absPath("baseline", in.Baseline)
	}
	if in.PublicKey != "" {
		c.absPath("public_key", in.PublicKey)
	}
	if in.Root == "" {
		c.errorf("root", "required: where the watched system is mounted, / for this host")
	}
	c.absPath("root", in.Root)
	if in.Rescan != 0 {
		c.durRange("rescan", in.Rescan, Duration(time.Minute), Duration(30*day))
	}
	patterns(c, "exclude", in.Exclude)
	for i, l := range in.AuthLogs {
		c.absPath(fmt.Sprintf("auth_logs[%d]", i), l)
	}
	seen := map[string]bool{}
	for i, r := range in.Rules {
		f := fmt.Sprintf("rules[%d]", i)
		if r.Path == "" {
			c.errorf(f+".path", "required: a directory or file to watch, e.g. /etc")
		}
		c.absPath(f+".path", r.Path)
		if _, err := path.Match(r.Path, ""); err != nil {
			c.errorf(f+".path", "%q: %v", r.Path, err)
		}
		if seen[path.Clean(r.Path)] {
			c.errorf(f+".path", "%q is listed twice", r.Path)
		}
		seen[path.Clean(r.Path)] = true
		patterns(c, f+".exclude", r.Exclude)
	}
}

// patterns checks that every glob pattern compiles.
func patterns(c *checker, field string, pats []string) {
	for i, p := range pats {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			c.errorf(fmt.Sprintf("%s[%d]", field, i), "%q is not a glob pattern (path.Match syntax)", p)
		}
	}
}
