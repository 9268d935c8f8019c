package host

// Pending package updates on Debian and Ubuntu, counted from the simulated
// upgrade `apt-get --just-print dist-upgrade` prints, as node_exporter's
// apt textfile script (apt.sh) does: every "Inst" line is one package to
// upgrade or install, grouped by its origins and architecture. The
// simulation reads the package lists as they are (it does not run apt-get
// update) and takes a second or two, hence the cache.

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"time"
)

// Updates is the host's pending package updates.
type Updates struct {
	// Available is false when apt could not be asked; Reason says why.
	Available bool      `json:"available"`
	Reason    string    `json:"reason,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
	// Upgradable counts the packages a dist-upgrade would install or
	// upgrade; Security those of them coming from a security archive.
	Upgradable int `json:"upgradable"`
	Security   int `json:"security"`
	// ByOrigin groups them as apt_upgrades_pending does.
	ByOrigin []UpgradeOrigin `json:"by_origin"`
}

// UpgradeOrigin counts the pending upgrades from one set of origins for
// one architecture, e.g. "Debian:12.5/stable,Debian-Security:12/stable-security"
// and amd64.
type UpgradeOrigin struct {
	Origin string `json:"origin"`
	Arch   string `json:"arch"`
	Count  int    `json:"count"`
}

// aptNotInstalled is the reason given when apt-get is missing.
const aptNotInstalled = "apt-get is not installed (pending updates are counted on Debian and Ubuntu only)"

func (c *Collector) checkUpdates(ctx context.Context) *Updates {
	out := &Updates{CheckedAt: c.o.Now(), ByOrigin: []UpgradeOrigin{}}
	path, err := c.lookPath("apt-get")
	if err != nil {
		out.Reason = aptNotInstalled
		return out
	}
	data, err := c.runTimed(ctx, path, "--just-print", "dist-upgrade")
	if err != nil {
		out.Reason = err.Error()
		return out
	}
	parsed := parseAptSimulation(data)
	parsed.CheckedAt = out.CheckedAt
	parsed.Available = true
	return &parsed
}

// parseAptSimulation counts the "Inst" lines of apt-get --just-print:
//
//	Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
//	Inst jq [1.6-2.1] (1.6-2.1+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64]) []
//
// The origin is what follows the new version inside the parentheses, with
// spaces removed; the architecture is in brackets. Lines it does not
// understand are counted under an empty origin, as apt.sh would.
func parseAptSimulation(data []byte) Updates {
	counts := map[[2]string]int{}
	u := Updates{ByOrigin: []UpgradeOrigin{}}
	lr := lineReader{rest: data}
	for {
		line, ok := lr.next()
		if !ok {
			break
		}
		if !bytes.HasPrefix(line, []byte("Inst ")) {
			continue
		}
		var origin, arch string
		if open := bytes.IndexByte(line, '('); open >= 0 {
			inner := line[open+1:]
			if end := bytes.IndexAny(inner, "()"); end >= 0 {
				inner = inner[:end]
			}
			// Drop the version, then the spaces between origins.
			if sp := bytes.IndexByte(inner, ' '); sp >= 0 {
				inner = inner[sp+1:]
			} else {
				inner = nil
			}
			s := strings.ReplaceAll(string(inner), " ", "")
			if lb := strings.IndexByte(s, '['); lb >= 0 {
				origin = s[:lb]
				arch = strings.TrimSuffix(s[lb+1:], "]")
				if rb := strings.IndexByte(arch, ']'); rb >= 0 {
					arch = arch[:rb]
				}
			} else {
				origin = s
			}
		}
		counts[[2]string{origin, arch}]++
		u.Upgradable++
		if strings.Contains(strings.ToLower(origin), "security") {
			u.Security++
		}
	}
	for k, n := range counts {
		u.ByOrigin = append(u.ByOrigin, UpgradeOrigin{Origin: k[0], Arch: k[1], Count: n})
	}
	sort.Slice(u.ByOrigin, func(i, j int) bool {
		a, b := u.ByOrigin[i], u.ByOrigin[j]
		if a.Origin != b.Origin {
			return a.Origin < b.Origin
		}
		return a.Arch < b.Arch
	})
	return u
}
