package posture

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// debian is the part of a Debian tree the update checks look at.
var debian = map[string]string{
	"usr/bin/apt-get": "",
	"var/lib/apt/lists/deb.debian.org_debian-security_dists_bookworm-security_InRelease": "",
}

func with(base map[string]string, extra map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

func TestSecurityUpdates(t *testing.T) {
	sample, err := os.ReadFile(filepath.Join("testdata", "apt-dist-upgrade.txt")) // Debian 12, 111 upgrades, 64 of them security
	if err != nil {
		t.Fatal(err)
	}
	fromApt := func(out string, err error) func(context.Context) ([]byte, error) {
		return func(context.Context) ([]byte, error) { return []byte(out), err }
	}
	run := func(files map[string]string, apt func(context.Context) ([]byte, error)) Finding {
		t.Helper()
		return finding(t, Auditor{Root: tree(t, files), AptSimulation: apt}.Audit(), "updates.security")
	}

	f := run(debian, fromApt(string(sample), nil))
	expectEvidence(t, f, Fail, []string{
		"64 security updates pending, of 111 upgrades (apt-get --just-print dist-upgrade)",
		"libgcrypt20 1.10.1-3 -> 1.10.1-3+deb12u1 (Debian-Security:12/oldstable-security)",
		"apt 2.6.1 -> 2.6.2 (Debian-Security:12/oldstable-security)",
	}, "bash ", "base-files") // upgrades from the point release only
	if len(f.Evidence) != 1+maxEvidence+1 || f.Evidence[len(f.Evidence)-1] != "... and 44 more" {
		t.Errorf("evidence not capped: %d lines, last %q", len(f.Evidence), f.Evidence[len(f.Evidence)-1])
	}

	// A new package (a kernel) from an Ubuntu security pocket.
	ubuntu := "Inst linux-image-6.8.0-90-generic (6.8.0-90.91 Ubuntu:24.04/noble-updates, Ubuntu:24.04/noble-security [amd64])\nInst vim [2:9.1.0016-1ubuntu7.8] (2:9.1.0016-1ubuntu7.9 Ubuntu:24.04/noble-updates [amd64])\n"
	expectEvidence(t, run(debian, fromApt(ubuntu, nil)), Fail, []string{
		"1 security updates pending, of 2 upgrades", "linux-image-6.8.0-90-generic new -> 6.8.0-90.91 (Ubuntu:24.04/noble-security)",
	}, "vim")

	nonSecurity := "Reading package lists...\nInst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])\nConf bash (5.2.15-2+b13 Debian:12.15/oldstable [amd64])\n"
	expectEvidence(t, run(debian, fromApt(nonSecurity, nil)), Pass, []string{"no security update pending (apt-get --just-print dist-upgrade: 1 other upgrades)"})
	expectEvidence(t, run(debian, fromApt("Reading package lists...\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n", nil)), Pass, []string{"0 other upgrades"})

	// apt fails: unknown, never a pass.
	expectEvidence(t, run(debian, fromApt("", errors.New("exit status 100: E: The package lists or status file could not be parsed or opened."))), Unknown,
		[]string{"apt-get --just-print dist-upgrade: exit status 100: E: The package lists"})
	// No package lists: apt knows of no update, which proves nothing.
	called := false
	expectEvidence(t, run(map[string]string{"usr/bin/apt-get": ""}, func(context.Context) ([]byte, error) { called = true; return nil, nil }), Unknown,
		[]string{"no package lists in /var/lib/apt/lists"})
	// Not Debian: skipped, and apt is not asked.
	expectEvidence(t, run(map[string]string{"etc/os-release": "ID=fedora\n"}, func(context.Context) ([]byte, error) { called = true; return nil, nil }), Skipped,
		[]string{"not a Debian or Ubuntu system"})
	if called {
		t.Error("apt was run without package lists or apt-get")
	}
	// An image under --root: apt cannot be run there.
	expectEvidence(t, run(debian, nil), Skipped, []string{"apt cannot be run in the system under"})
}

func TestAutomaticUpdates(t *testing.T) {
	const (
		auto = "APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n"
		uu   = "usr/bin/unattended-upgrade"
		d    = "etc/apt/apt.conf.d/"
	)
	for _, tt := range []struct {
		name     string
		files    map[string]string
		st       Status
		want     []string
		unwanted []string
	}{
		{"dpkg-reconfigure's file", map[string]string{uu: "", d + "20auto-upgrades": auto}, Pass,
			[]string{"unattended-upgrades is installed", `APT::Periodic::Update-Package-Lists "1" (/etc/apt/apt.conf.d/20auto-upgrades:1)`,
				`APT::Periodic::Unattended-Upgrade "1" (/etc/apt/apt.conf.d/20auto-upgrades:2)`}, []string{"off"}},
		{"not installed", map[string]string{d + "20auto-upgrades": auto}, Fail,
			[]string{"unattended-upgrades is not installed (no /usr/bin/unattended-upgrade)", `Unattended-Upgrade "1"`}, nil},
		{"nothing configured", map[string]string{uu: "", d + "50unattended-upgrades": "Unattended-Upgrade::Origins-Pattern { \"origin=Debian\"; };\n"}, Fail,
			[]string{"APT::Periodic::Update-Package-Lists is not set (apt's default: off)", "APT::Periodic::Unattended-Upgrade is not set"}, nil},
		{"a later file disables it", map[string]string{uu: "", d + "20auto-upgrades": auto, d + "99local": "APT::Periodic::Unattended-Upgrade \"0\";\n"}, Fail,
			[]string{`APT::Periodic::Unattended-Upgrade "0" (/etc/apt/apt.conf.d/99local:1): off`, `Update-Package-Lists "1"`}, nil},
		{"an earlier file is overridden", map[string]string{uu: "", d + "10off": "APT::Periodic::Unattended-Upgrade \"false\";\n", d + "20auto-upgrades": auto}, Pass,
			[]string{`APT::Periodic::Unattended-Upgrade "1" (/etc/apt/apt.conf.d/20auto-upgrades:2)`}, []string{"10off"}},
		{"apt.conf is read last", map[string]string{uu: "", d + "20auto-upgrades": auto, "etc/apt/apt.conf": "// local\nAPT::Periodic::Update-Package-Lists \"0\";\n"}, Fail,
			[]string{`APT::Periodic::Update-Package-Lists "0" (/etc/apt/apt.conf:2): off`}, nil},
		{"files apt ignores", map[string]string{uu: "", d + "20auto-upgrades": auto, d + "99off.dpkg-old": "APT::Periodic::Unattended-Upgrade \"0\";\n",
			d + "99off.bak": "APT::Periodic::Unattended-Upgrade \"0\";\n", d + "99off~": "APT::Periodic::Unattended-Upgrade \"0\";\n", d + "99 off": "APT::Periodic::Unattended-Upgrade \"0\";\n"}, Pass,
			[]string{`Unattended-Upgrade "1" (/etc/apt/apt.conf.d/20auto-upgrades:2)`}, nil},
		{"only a .dpkg-dist copy", map[string]string{uu: "", d + "20auto-upgrades.ucf-dist": auto}, Fail, []string{"is not set"}, nil},
		{"a .conf file is read", map[string]string{uu: "", d + "20auto-upgrades": auto, d + "99off.conf": "APT::Periodic::Unattended-Upgrade \"0\";\n"}, Fail,
			[]string{`"0" (/etc/apt/apt.conf.d/99off.conf:1): off`}, nil},
		{"scopes, comments, days, case", map[string]string{uu: "", d + "20auto": `# hash comment
/* a comment
   over lines */
apt {
  periodic {
    Update-Package-Lists "7"; // weekly
    unattended-upgrade always;
  };
};
`}, Pass, []string{`APT::Periodic::Update-Package-Lists "7" (/etc/apt/apt.conf.d/20auto:6)`, `APT::Periodic::Unattended-Upgrade "always" (/etc/apt/apt.conf.d/20auto:7)`}, nil},
		{"#clear", map[string]string{uu: "", d + "20auto-upgrades": auto, d + "30clear": "#clear APT::Periodic;\nAPT::Periodic::Update-Package-Lists 1;\n"}, Fail,
			[]string{"APT::Periodic::Unattended-Upgrade is not set", `Update-Package-Lists "1" (/etc/apt/apt.conf.d/30clear:2)`}, nil},
		{"#clear a key", map[string]string{uu: "", d + "20auto-upgrades": auto, d + "30clear": "#clear APT::Periodic::Unattended-Upgrade;\n"}, Fail,
			[]string{"APT::Periodic::Unattended-Upgrade is cleared (#clear, /etc/apt/apt.conf.d/30clear:1): off"}, nil},
		{"#include", map[string]string{uu: "", "etc/apt/apt.conf": "#include \"auto.inc\";\n", "etc/apt/auto.inc": auto}, Pass,
			[]string{`Unattended-Upgrade "1" (/etc/apt/auto.inc:2)`}, nil},
		{"syntax error", map[string]string{uu: "", d + "20auto-upgrades": "APT::Periodic::Unattended-Upgrade \"1;\n"}, Unknown,
			[]string{"/etc/apt/apt.conf.d/20auto-upgrades:1: unterminated quote"}, nil},
		{"unbalanced", map[string]string{uu: "", d + "20auto-upgrades": "APT { Periodic::Unattended-Upgrade \"1\";\n"}, Unknown,
			[]string{"{ APT not closed"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			files := with(map[string]string{"usr/bin/apt-get": ""}, tt.files)
			f := finding(t, Auditor{Root: tree(t, files)}.Audit(), "updates.automatic")
			expectEvidence(t, f, tt.st, tt.want, tt.unwanted...)
		})
	}
	f := finding(t, Auditor{Root: tree(t, map[string]string{"etc/apt/apt.conf.d/20auto-upgrades": auto})}.Audit(), "updates.automatic")
	expectEvidence(t, f, Skipped, []string{"not a Debian or Ubuntu system"})
}

// linkTree is tree with symbolic links (path -> target, written as is).
func linkTree(t *testing.T, files, links map[string]string) string {
	t.Helper()
	root := tree(t, files)
	for p, target := range links {
		l := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(l), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, l); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestAutomaticUpdatesDisabled: apt's daily job switched off by
// APT::Periodic::Enable, or its systemd timers masked or not enabled.
func TestAutomaticUpdatesDisabled(t *testing.T) {
	const (
		auto  = "APT::Periodic::Update-Package-Lists \"1\";\nAPT::Periodic::Unattended-Upgrade \"1\";\n"
		d     = "etc/apt/apt.conf.d/"
		lib   = "usr/lib/systemd/system/"
		etc   = "etc/systemd/system/"
		wants = "etc/systemd/system/timers.target.wants/"
		unit  = "[Unit]\nDescription=Daily apt upgrade and clean activities\n\n[Timer]\nOnCalendar=*-*-* 6:00\n\n[Install]\nWantedBy=timers.target\n"
	)
	// Debian 12 as installed: merged /usr (lib -> usr/lib), apt's units
	// in /usr/lib/systemd/system, enabled by absolute links in
	// timers.target.wants (pointing into the image, not this host).
	base := map[string]string{
		"usr/bin/apt-get": "", "usr/bin/unattended-upgrade": "", d + "20auto-upgrades": auto,
		lib + "apt-daily.timer": unit, lib + "apt-daily.service": unit, lib + "apt-daily-upgrade.timer": unit, lib + "apt-daily-upgrade.service": unit,
	}
	enabled := map[string]string{
		"lib":                             "usr/lib",
		wants + "apt-daily.timer":         "/lib/systemd/system/apt-daily.timer",
		wants + "apt-daily-upgrade.timer": "/lib/systemd/system/apt-daily-upgrade.timer",
	}
	without := func(m map[string]string, keys ...string) map[string]string {
		out := with(m, nil)
		for _, k := range keys {
			delete(out, k)
		}
		return out
	}
	for _, tt := range []struct {
		name     string
		files    map[string]string
		links    map[string]string
		st       Status
		want     []string
		unwanted []string
	}{
		{"enabled", base, enabled, Pass,
			[]string{"apt-daily-upgrade.timer is enabled (/etc/systemd/system/timers.target.wants/apt-daily-upgrade.timer)",
				"apt-daily.timer is enabled (/etc/systemd/system/timers.target.wants/apt-daily.timer)",
				"APT::Periodic::Enable is not set (apt's default: on)"}, []string{"masked", "not enabled", "no systemd", "off"}},
		{"APT::Periodic::Enable 0", with(base, map[string]string{d + "99disable": "APT::Periodic::Enable \"0\";\n"}), enabled, Fail,
			[]string{`APT::Periodic::Enable "0" (/etc/apt/apt.conf.d/99disable:1): apt's daily job is disabled, apt.systemd.daily exits at once`,
				`APT::Periodic::Unattended-Upgrade "1"`}, nil},
		{"APT::Periodic::Enable in a scope", with(base, map[string]string{"etc/apt/apt.conf": "APT {\n  Periodic {\n    enable 00;\n  };\n};\n"}), enabled, Fail,
			[]string{`APT::Periodic::Enable "00" (/etc/apt/apt.conf:3): apt's daily job is disabled`}, nil},
		{"APT::Periodic::Enable 1", with(base, map[string]string{d + "10periodic": "APT::Periodic::Enable \"1\";\n"}), enabled, Pass,
			[]string{`APT::Periodic::Enable "1" (/etc/apt/apt.conf.d/10periodic:1)`}, nil},
		// A later file turns it back on; #clear makes it apt's default.
		{"APT::Periodic::Enable overridden", with(base, map[string]string{d + "10off": "APT::Periodic::Enable \"0\";\n", d + "99on": "APT::Periodic::Enable \"1\";\n"}), enabled, Pass,
			[]string{`APT::Periodic::Enable "1" (/etc/apt/apt.conf.d/99on:1)`}, []string{"10off"}},
		{"APT::Periodic::Enable cleared", with(base, map[string]string{d + "10off": "APT::Periodic::Enable \"0\";\n", d + "99clear": "#clear APT::Periodic::Enable;\n"}), enabled, Pass,
			[]string{"APT::Periodic::Enable is cleared (#clear, /etc/apt/apt.conf.d/99clear:1): apt's default, on"}, nil},
		{"timer masked", base, with(enabled, map[string]string{etc + "apt-daily-upgrade.timer": "/dev/null"}), Fail,
			[]string{"apt-daily-upgrade.timer is masked (/etc/systemd/system/apt-daily-upgrade.timer is a link to /dev/null or empty): it never runs",
				"apt-daily.timer is enabled"}, []string{"apt-daily-upgrade.timer is enabled"}},
		{"service masked at runtime", base, with(enabled, map[string]string{"run/systemd/system/apt-daily-upgrade.service": "/dev/null"}), Fail,
			[]string{"apt-daily-upgrade.service is masked (/run/systemd/system/apt-daily-upgrade.service is a link to /dev/null or empty): apt-daily-upgrade.timer starts nothing"}, nil},
		{"timer masked by an empty file", with(base, map[string]string{etc + "apt-daily.timer": ""}), enabled, Fail,
			[]string{"apt-daily.timer is masked (/etc/systemd/system/apt-daily.timer is a link to /dev/null or empty)"}, nil},
		{"timer not enabled", base, without(enabled, wants+"apt-daily-upgrade.timer"), Fail,
			[]string{"apt-daily-upgrade.timer (/usr/lib/systemd/system/apt-daily-upgrade.timer) is not enabled: no link in /etc/systemd/system/timers.target.wants",
				"apt-daily.timer is enabled"}, nil},
		// An edited copy in /etc overrides the packaged unit.
		{"a local unit", with(base, map[string]string{etc + "apt-daily-upgrade.timer": unit}), without(enabled, wants+"apt-daily-upgrade.timer"), Fail,
			[]string{"apt-daily-upgrade.timer (/etc/systemd/system/apt-daily-upgrade.timer) is not enabled"}, nil},
		// Enabled by the distribution: the link ships with the unit.
		{"enabled by a packaged link", base, with(without(enabled, wants+"apt-daily-upgrade.timer"), map[string]string{lib + "timers.target.wants/apt-daily-upgrade.timer": "../apt-daily-upgrade.timer"}), Pass,
			[]string{"apt-daily-upgrade.timer is enabled (/usr/lib/systemd/system/timers.target.wants/apt-daily-upgrade.timer)"}, nil},
		{"no timer unit", without(base, lib+"apt-daily-upgrade.timer"), without(enabled, wants+"apt-daily-upgrade.timer"), Fail,
			[]string{"apt-daily-upgrade.timer: no unit file in /etc/systemd/system, /run/systemd/system, /usr/lib/systemd/system, /lib/systemd/system: nothing runs apt's daily job"}, nil},
		// Not merged /usr: units in /lib/systemd/system.
		{"units in /lib", map[string]string{"usr/bin/apt-get": "", "usr/bin/unattended-upgrade": "", d + "20auto-upgrades": auto,
			"lib/systemd/system/apt-daily.timer": unit, "lib/systemd/system/apt-daily-upgrade.timer": unit},
			map[string]string{wants + "apt-daily.timer": "/lib/systemd/system/apt-daily.timer"}, Fail,
			[]string{"apt-daily-upgrade.timer (/lib/systemd/system/apt-daily-upgrade.timer) is not enabled", "apt-daily.timer is enabled"}, nil},
		// No systemd (a container): cron runs apt's daily job.
		{"no systemd", map[string]string{"usr/bin/apt-get": "", "usr/bin/unattended-upgrade": "", d + "20auto-upgrades": auto}, nil, Pass,
			[]string{"no systemd (no /lib/systemd/system): apt's timers are not checked"}, nil},
		// The configuration cannot be read, but a masked timer fails.
		{"masked and unreadable", with(base, map[string]string{d + "99broken": "APT::Periodic::Enable \"0;\n"}), with(enabled, map[string]string{etc + "apt-daily.timer": "/dev/null"}), Fail,
			[]string{"apt-daily.timer is masked", "apt's configuration: /etc/apt/apt.conf.d/99broken:1: unterminated quote"}, nil},
		{"unreadable", with(base, map[string]string{d + "99broken": "APT::Periodic::Enable \"0;\n"}), enabled, Unknown,
			[]string{"apt-daily.timer is enabled", "unterminated quote"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := finding(t, Auditor{Root: linkTree(t, tt.files, tt.links)}.Audit(), "updates.automatic")
			expectEvidence(t, f, tt.st, tt.want, tt.unwanted...)
		})
	}
}

func TestPeriodicDisabled(t *testing.T) {
	for v, want := range map[string]bool{
		"0": true, "00": true, " 0 ": true, "-0": true,
		"1": false, "2": false, "": false, "false": false, "no": false, "0x0": false, "0 1": false, "always": false,
	} {
		if got := periodicDisabled(v); got != want {
			t.Errorf("periodicDisabled(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestPeriodicOn(t *testing.T) {
	for v, want := range map[string]bool{
		"1": true, "7": true, "true": true, "TRUE": true, "always": true, "1d": true, "12h": true, "30m": true, " 2 ": true,
		"0": false, "false": false, "": false, "0d": false, "-1": false, "off": false, "d": false, "weekly": false,
	} {
		if got := periodicOn(v); got != want {
			t.Errorf("periodicOn(%q) = %v, want %v", v, got, want)
		}
	}
}

// FuzzAptConf: an audited image's apt configuration is untrusted text.
func FuzzAptConf(f *testing.F) {
	f.Add([]byte("APT::Periodic::Unattended-Upgrade \"1\";\n"))
	f.Add([]byte("APT { Periodic { Update-Package-Lists \"1\"; }; };\n#clear APT;\n/* x */ // y\n#include \"x\";\n"))
	f.Add([]byte("}{;;\"#clear\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		conf := map[string]aptSetting{}
		includes := 0
		if err := parseAptConf(conf, "/etc/apt/apt.conf", b, func(string) error { includes++; return nil }); err != nil {
			return
		}
		if includes > strings.Count(string(b), "#include") {
			t.Fatalf("%d includes from %q", includes, b)
		}
		last := strings.Count(string(b), "\n") + 1
		for k, s := range conf {
			n, err := strconv.Atoi(strings.TrimPrefix(s.where, "/etc/apt/apt.conf:"))
			if k != strings.ToLower(k) || err != nil || n < 1 || n > last {
				t.Fatalf("%q: %+v from %q", k, s, b)
			}
		}
	})
}
