package host

// Pending package updates on Debian and Ubuntu, counted from the simulated
// upgrade `apt-get --just-print dist-upgrade` prints, as node_exporter's
// apt textfile script (apt.sh) does: every "Inst" line is one package to
// upgrade or install, grouped by its origins and architecture. The
// simulation reads the package lists as they are (it does not run apt-get
// update) and takes a second or two, hence the cache.

import (
	"context"
	"sort"
	"time"

	"github.com/bulwarkhq/bulwark/internal/aptsim"
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

// parseAptSimulation counts the upgrades of apt-get --just-print, read by
// aptsim.Parse (shared with the hardening audit), by origin and
// architecture. Lines aptsim does not understand are counted under an
// empty origin, as apt.sh would.
func parseAptSimulation(data []byte) Updates {
	counts := map[[2]string]int{}
	u := Updates{ByOrigin: []UpgradeOrigin{}}
	for _, up := range aptsim.Parse(data) {
		counts[[2]string{up.Origin, up.Arch}]++
		u.Upgradable++
		if up.Security {
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
