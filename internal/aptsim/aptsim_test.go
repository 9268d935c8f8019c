package aptsim

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// sample is apt-get --just-print dist-upgrade from Debian 12, with an
// Ubuntu line, a new package and a multi-arch one.
const sample = `Reading package lists...
Building dependency tree...
Calculating upgrade...
The following packages will be upgraded:
  bash jq libgcrypt20
Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
Inst libgcrypt20-dev [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64]) []
Inst linux-image-6.1.0-40-amd64 (6.1.153-1 Debian-Security:12/oldstable-security [amd64])
Inst openssl [3.0.2-0ubuntu1.15] (3.0.2-0ubuntu1.18 Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security [amd64])
Inst libc6:i386 [2.36-9+deb12u9] (2.36-9+deb12u13 Debian:12.15/oldstable [i386])
Conf bash (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
Remv oldpkg [1.0]
Inst odd
Inst odd2 (1.0)
`

func TestParse(t *testing.T) {
	got := Parse([]byte(sample))
	want := []Upgrade{
		{Package: "bash", Installed: "5.2.15-2+b8", Version: "5.2.15-2+b13", Origin: "Debian:12.15/oldstable", Arch: "amd64"},
		{Package: "libgcrypt20-dev", Installed: "1.10.1-3", Version: "1.10.1-3+deb12u1", Origin: "Debian:12.15/oldstable,Debian-Security:12/oldstable-security", Arch: "amd64", Security: true},
		{Package: "linux-image-6.1.0-40-amd64", Version: "6.1.153-1", Origin: "Debian-Security:12/oldstable-security", Arch: "amd64", Security: true},
		{Package: "openssl", Installed: "3.0.2-0ubuntu1.15", Version: "3.0.2-0ubuntu1.18", Origin: "Ubuntu:22.04/jammy-updates,Ubuntu:22.04/jammy-security", Arch: "amd64", Security: true},
		{Package: "libc6:i386", Installed: "2.36-9+deb12u9", Version: "2.36-9+deb12u13", Origin: "Debian:12.15/oldstable", Arch: "i386"},
		{Package: "odd"},
		{Package: "odd2", Version: "1.0"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := Parse([]byte("Reading package lists...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n")); len(got) != 0 {
		t.Errorf("nothing to upgrade: %+v", got)
	}
}

// FuzzParse: apt's output is text from another program; nothing in it may
// panic, and every "Inst" line is one upgrade.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("Inst x [(] (] [ ("))
	f.Fuzz(func(t *testing.T, b []byte) {
		ups := Parse(b)
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "Inst ") {
				n++
			}
		}
		if len(ups) != n {
			t.Fatalf("%d upgrades for %d Inst lines in %q", len(ups), n, b)
		}
		for _, u := range ups {
			if u.Security != strings.Contains(strings.ToLower(u.Origin), "security") {
				t.Fatalf("security %v for origin %q", u.Security, u.Origin)
			}
		}
	})
}
