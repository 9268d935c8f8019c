package integrity

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/config"
)

// Rule watches one path: a directory with everything below it, or a single
// file. Path may hold glob characters ("/home/*/.ssh/authorized_keys"),
// expanded at each scan. Exclude patterns follow backup's --exclude: with a
// "/" they match whole paths, without one entry names anywhere below.
type Rule struct {
	Path    string   `json:"path"`
	Attrs   Attr     `json:"attrs"`
	Exclude []string `json:"exclude,omitempty"`
}

// Policy is what a scan records: its rules, the content hash, and
// exclusions common to every rule.
type Policy struct {
	Rules   []Rule   `json:"rules"`
	Hash    HashAlg  `json:"hash"`
	Exclude []string `json:"exclude,omitempty"`
	// Root is where the system the rules watch is mounted: "/" (or empty)
	// for this host, a directory for an image or a container's root.
	// Findings are graded by their path below it (see severity.go).
	Root string `json:"root,omitempty"`
}

// HashAlg names a content hash.
type HashAlg string

// The content hashes: SHA-256 (the default, what dpkg, AIDE and most
// tooling compare against) and BLAKE3 (faster where SHA-NI is missing).
const (
	SHA256 HashAlg = "sha256"
	BLAKE3 HashAlg = "blake3"
)

// volatile is what the default policy leaves out: files rewritten in normal
// operation, whose every change would be noise.
var volatile = []string{
	"/etc/mtab", "/etc/adjtime", "/etc/resolv.conf", "/etc/.pwd.lock", "/etc/ld.so.cache",
	"/etc/lvm/archive", "/etc/lvm/backup", "/etc/lvm/cache", "/boot/grub/grubenv",
	"__pycache__", "*.swp", "*~",
}

// DefaultPolicy is the built-in policy for a Debian or Ubuntu server: the
// configuration, the system's programs and libraries, the boot files,
// root's and every user's SSH keys, and cron and systemd units (in /etc and
// /usr/lib, plus the crontab spool), every attribute recorded, SHA-256.
func DefaultPolicy() Policy {
	return Policy{
		Hash:    SHA256,
		Exclude: slices.Clone(volatile),
		Rules: []Rule{
			{Path: "/etc", Attrs: AllAttrs},
			{Path: "/usr/bin", Attrs: AllAttrs},
			{Path: "/usr/sbin", Attrs: AllAttrs},
			{Path: "/usr/lib", Attrs: AllAttrs},
			{Path: "/usr/local/bin", Attrs: AllAttrs},
			{Path: "/usr/local/sbin", Attrs: AllAttrs},
			{Path: "/boot", Attrs: AllAttrs},
			{Path: "/root/.ssh", Attrs: AllAttrs},
			{Path: "/home/*/.ssh/authorized_keys", Attrs: AllAttrs},
			{Path: "/home/*/.ssh/authorized_keys2", Attrs: AllAttrs},
			{Path: "/var/spool/cron/crontabs", Attrs: AllAttrs},
			// dpkg's checksums are what package awareness trusts.
			{Path: "/var/lib/dpkg/info", Attrs: AllAttrs},
		},
	}
}

// WithPaths returns p with its rules replaced by one per path (every
// attribute), keeping the hash and the common exclusions: `integrity init
// --path DIR`.
func (p Policy) WithPaths(paths []string) Policy {
	out := Policy{Hash: p.Hash, Exclude: slices.Clone(p.Exclude), Root: p.Root}
	for _, d := range paths {
		out.Rules = append(out.Rules, Rule{Path: d, Attrs: AllAttrs})
	}
	return out
}

// Validate checks a policy before a scan: absolute, clean paths, known
// attributes and hash, patterns that compile.
func (p *Policy) Validate() error {
	switch p.Hash {
	case "":
		p.Hash = SHA256
	case SHA256, BLAKE3:
	default:
		return fmt.Errorf("hash %q: want sha256 or blake3", p.Hash)
	}
	if len(p.Rules) == 0 {
		return fmt.Errorf("no paths to watch")
	}
	if p.Root != "" {
		if !filepath.IsAbs(p.Root) {
			return fmt.Errorf("root %q: not absolute", p.Root)
		}
		p.Root = filepath.Clean(p.Root)
	}
	for _, pat := range p.Exclude {
		if _, err := path.Match(pat, ""); err != nil {
			return fmt.Errorf("exclude %q: %w", pat, err)
		}
	}
	seen := map[string]bool{}
	for i := range p.Rules {
		r := &p.Rules[i]
		if !filepath.IsAbs(r.Path) {
			return fmt.Errorf("path %q: not absolute", r.Path)
		}
		r.Path = filepath.Clean(r.Path)
		if seen[r.Path] {
			return fmt.Errorf("path %q: listed twice", r.Path)
		}
		seen[r.Path] = true
		if _, err := path.Match(r.Path, ""); err != nil {
			return fmt.Errorf("path %q: %w", r.Path, err)
		}
		if r.Attrs == 0 {
			r.Attrs = AllAttrs
		}
		if r.Attrs&^AllAttrs != 0 {
			return fmt.Errorf("path %q: unknown attribute bits %#x", r.Path, uint32(r.Attrs&^AllAttrs))
		}
		for _, pat := range r.Exclude {
			if _, err := path.Match(pat, ""); err != nil {
				return fmt.Errorf("path %q: exclude %q: %w", r.Path, pat, err)
			}
		}
	}
	return nil
}

// excluded reports whether p (an entry called name) matches one of the
// patterns.
func excluded(patterns []string, p, name string) bool {
	for _, pat := range patterns {
		target := name
		if strings.Contains(pat, "/") {
			target = p
			// A directory pattern also covers what is below it.
			if strings.HasPrefix(p, pat+"/") {
				return true
			}
		}
		if ok, _ := path.Match(pat, target); ok {
			return true
		}
	}
	return false
}

// hasMeta reports whether a rule path holds glob characters.
func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// PolicyFromConfig is the policy the configuration describes: its rules
// (the built-in policy's when it has none), its exclusions (after the
// built-in volatile files unless default_excludes is off), hash and root.
func PolicyFromConfig(c config.Integrity) (Policy, error) {
	p := DefaultPolicy()
	if !c.DefaultExcludes {
		p.Exclude = nil
	}
	p.Exclude = append(p.Exclude, c.Exclude...)
	p.Hash = HashAlg(c.Hash)
	p.Root = c.Root
	if len(c.Rules) > 0 {
		p.Rules = nil
		for i, r := range c.Rules {
			a := AllAttrs
			if len(r.Attrs) > 0 {
				var err error
				if a, err = ParseAttrs(r.Attrs); err != nil {
					return Policy{}, fmt.Errorf("integrity.rules[%d].attrs: %w", i, err)
				}
			}
			p.Rules = append(p.Rules, Rule{Path: r.Path, Attrs: a, Exclude: slices.Clone(r.Exclude)})
		}
	}
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("integrity: %w", err)
	}
	return p, nil
}
