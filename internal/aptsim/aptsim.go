// Package aptsim reads the simulated upgrade `apt-get --just-print
// dist-upgrade` prints on Debian and Ubuntu: one Upgrade per "Inst" line,
// with its origins and whether one of them is a security archive. It is
// pure (no command is run here), shared by the host metrics
// (internal/monitor/host counts pending upgrades by origin) and the
// hardening audit (internal/posture names pending security upgrades).
package aptsim

import (
	"bytes"
	"strings"
)

// Upgrade is one package a dist-upgrade would install or upgrade.
type Upgrade struct {
	// Package is the package's name, with its architecture when apt
	// gives one ("libc6:i386").
	Package string
	// Installed is the version installed now, "" for a new package.
	Installed string
	// Version is the version that would be installed.
	Version string
	// Origin lists the archives offering Version, without spaces:
	// "Debian:12.15/oldstable,Debian-Security:12/oldstable-security".
	Origin string
	// Arch is the package's architecture ("amd64", "all").
	Arch string
	// Security is set when an origin is a security archive.
	Security bool
}

// Parse reads the "Inst" lines of apt-get --just-print:
//
//	Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
//	Inst jq [1.6-2.1] (1.6-2.1+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64]) []
//	Inst linux-image-6.1.0-40-amd64 (6.1.153-1 Debian-Security:12/oldstable-security [amd64])
//
// The origin is what follows the new version inside the parentheses, with
// spaces removed; the architecture is in brackets. A line it does not
// understand is still one upgrade, with an empty origin, as node_exporter's
// apt.sh counts it. Other lines ("Conf", "Remv", messages) are skipped.
func Parse(data []byte) []Upgrade {
	var out []Upgrade
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if !bytes.HasPrefix(line, []byte("Inst ")) {
			continue
		}
		out = append(out, parseInst(line))
	}
	return out
}

func parseInst(line []byte) Upgrade {
	var u Upgrade
	f := strings.Fields(string(line[len("Inst "):]))
	if len(f) > 0 {
		u.Package = f[0]
	}
	if len(f) > 1 && strings.HasPrefix(f[1], "[") && strings.HasSuffix(f[1], "]") {
		u.Installed = f[1][1 : len(f[1])-1]
	}
	open := bytes.IndexByte(line, '(')
	if open < 0 {
		return u
	}
	inner := line[open+1:]
	if end := bytes.IndexAny(inner, "()"); end >= 0 {
		inner = inner[:end]
	}
	// The version, then the origins and the architecture.
	sp := bytes.IndexByte(inner, ' ')
	if sp < 0 {
		u.Version = string(inner)
		return u
	}
	u.Version = string(inner[:sp])
	s := strings.ReplaceAll(string(inner[sp+1:]), " ", "")
	if lb := strings.IndexByte(s, '['); lb >= 0 {
		u.Origin = s[:lb]
		u.Arch = strings.TrimSuffix(s[lb+1:], "]")
		if rb := strings.IndexByte(u.Arch, ']'); rb >= 0 {
			u.Arch = u.Arch[:rb]
		}
	} else {
		u.Origin = s
	}
	u.Security = strings.Contains(strings.ToLower(u.Origin), "security")
	return u
}
