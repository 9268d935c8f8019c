package posture

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// checks are the audit's checks, in order.
var checks = []check{
	{id: "ssh.root_login", title: "SSH does not accept root logins with a password", severity: High,
		remediation: "Set PermitRootLogin no (or prohibit-password, keys only) in /etc/ssh/sshd_config and reload sshd; log in as a user and use sudo.",
		run: func(a *Auditor) (Status, []string) {
			return a.sshdValue("permitrootlogin", "prohibit-password", func(v string) bool {
				return v == "no" || v == "prohibit-password" || v == "without-password" || v == "forced-commands-only"
			})
		}},
	{id: "ssh.password_auth", title: "SSH accepts keys only, not passwords", severity: Medium,
		remediation: "Set PasswordAuthentication no and KbdInteractiveAuthentication no in /etc/ssh/sshd_config once every user has a key, and reload sshd.",
		run: func(a *Auditor) (Status, []string) {
			return a.sshdValue("passwordauthentication", "yes", func(v string) bool { return v == "no" })
		}},
	{id: "ssh.port", title: "SSH listens on a port other than 22 (fewer scans and guesses)", severity: Info,
		remediation: "Optionally set Port to another number in /etc/ssh/sshd_config (and open it in the firewall); it cuts log noise, not real attacks.",
		run: func(a *Auditor) (Status, []string) {
			return a.sshdValue("port", "22", func(v string) bool { return v != "22" })
		}},
	{id: "ssh.host_keys", title: "SSH host keys are of strong types (no DSA)", severity: Medium,
		remediation: "Remove ssh_host_dsa_key* and any HostKey line naming a DSA key; keep ed25519 and RSA of 3072 bits or more.",
		run:         (*Auditor).sshHostKeys},
	{id: "net.public_listeners", title: "Only expected services listen on public addresses", severity: Medium,
		remediation: "Bind internal services (databases, caches, admin panels) to 127.0.0.1 or a private address, or firewall them; list the ports meant to be public in the audit's allowed ports.",
		run:         (*Auditor).publicListeners},
	{id: "net.firewall_policy", title: "The firewall drops incoming traffic by default", severity: High,
		remediation: "Load a default-deny input policy: in /etc/nftables.conf, an inet filter table whose input chain has policy drop and accepts only loopback, established and related traffic, and the services meant to be public, with no rule (in it or a chain it jumps to) accepting every packet (systemctl enable --now nftables). Keep a second session open while testing, so a mistake does not lock you out.",
		run:         (*Auditor).firewallPolicy},
	{id: "fs.tmp_noexec", title: "/tmp and /dev/shm are mounted noexec,nosuid,nodev", severity: Medium,
		remediation: "Mount /tmp (tmpfs or its own partition) and /dev/shm with noexec,nosuid,nodev in /etc/fstab, so a dropped file cannot be run from there.",
		run:         (*Auditor).tmpMounts},
	{id: "os.end_of_life", title: "The operating system still receives security updates", severity: High,
		remediation: "Upgrade to a supported release before its end of life: security fixes stop at that date.",
		run:         (*Auditor).endOfLife},
	{id: "updates.security", title: "No security update is pending", severity: High,
		remediation: "Install them: apt-get update && apt-get upgrade (or run unattended-upgrade), then restart the services using upgraded libraries (needrestart lists them) or reboot for a new kernel.",
		run:         (*Auditor).securityUpdates},
	{id: "updates.automatic", title: "Security updates are installed automatically", severity: Medium,
		remediation: "apt-get install unattended-upgrades, then dpkg-reconfigure -plow unattended-upgrades: it writes /etc/apt/apt.conf.d/20auto-upgrades with APT::Periodic::Update-Package-Lists \"1\" and APT::Periodic::Unattended-Upgrade \"1\". Check no later file sets them, or APT::Periodic::Enable, to \"0\", and that apt-daily.timer and apt-daily-upgrade.timer are enabled and not masked (systemctl unmask apt-daily-upgrade.timer apt-daily-upgrade.service, systemctl enable --now apt-daily-upgrade.timer; the same for apt-daily).",
		run:         (*Auditor).automaticUpdates},
	{id: "accounts.uid0", title: "Only root has user ID 0", severity: High,
		remediation: "Give the extra account a normal UID, or remove it: a second UID 0 account is a classic backdoor.",
		run:         (*Auditor).uid0},
	{id: "accounts.empty_password", title: "No account has an empty password", severity: High,
		remediation: "Lock the account (passwd -l NAME) or set a password: an empty one lets anyone log in where passwords are accepted.",
		run:         (*Auditor).emptyPasswords},
	{id: "fs.setid", title: "No unexpected set-user-ID or set-group-ID programs", severity: Medium,
		remediation: "Check where each listed program comes from (dpkg -S PATH); remove the bit (chmod u-s,g-s PATH) or the file unless a package you trust installed it: a planted setuid binary is a classic way back to root.",
		run:         (*Auditor).setIDFiles},
	{id: "fs.world_writable", title: "No world-writable files or unprotected directories in system trees", severity: High,
		remediation: "chmod o-w each listed file; give listed directories the sticky bit (chmod +t) or remove their world write: anyone could replace what root runs or reads there.",
		run:         (*Auditor).worldWritable},
	{id: "time.sync", title: "The clock is synchronised (NTP)", severity: Medium,
		remediation: "Install and enable a time daemon (systemd-timesyncd, chrony): logs, TOTP codes and certificates need a correct clock.",
		run:         (*Auditor).timeSync},
}

// sshdConfig reads sshd_config as sshd does: the first value of a keyword
// wins, Include pulls files in where it stands (globs, relative to
// /etc/ssh), and settings inside Match blocks apply to some connections
// only, so they are not the default. It returns keyword -> value and
// where it was set.
func (a *Auditor) sshdConfig() (map[string][2]string, [][2]string, error) {
	out := map[string][2]string{}
	var hostKeys [][2]string
	var read func(file string, depth int) error
	read = func(file string, depth int) error {
		if depth > 8 {
			return fmt.Errorf("%s: Include nested too deep", file)
		}
		b, err := a.readFile(file)
		if err != nil {
			return err
		}
		inMatch := false
		for i, line := range lines(b) {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			// "Key value" or "Key=value": an '=' is the separator only
			// before the first blank.
			if eq, sp := strings.IndexByte(line, '='), strings.IndexAny(line, " \t"); eq >= 0 && (sp < 0 || eq < sp) {
				line = line[:eq] + " " + line[eq+1:]
			}
			key, val, _ := strings.Cut(strings.Join(strings.Fields(line), " "), " ")
			key = strings.ToLower(key)
			switch {
			case key == "match":
				inMatch = true
				continue
			case inMatch:
				continue
			case key == "include":
				for _, pat := range strings.Fields(val) {
					if !path.IsAbs(pat) {
						pat = path.Join("/etc/ssh", pat)
					}
					matches, _ := filepath.Glob(a.path(pat))
					slices.Sort(matches)
					for _, m := range matches {
						rel, _ := filepath.Rel(a.Root, m)
						if err := read("/"+filepath.ToSlash(rel), depth+1); err != nil && !errors.Is(err, errMissing) {
							return err
						}
					}
				}
				continue
			}
			where := fmt.Sprintf("%s:%d", file, i+1)
			if key == "hostkey" {
				// HostKey may be given many times: every one counts.
				hostKeys = append(hostKeys, [2]string{strings.Trim(val, `"`), where})
				continue
			}
			if _, set := out[key]; !set {
				out[key] = [2]string{strings.ToLower(strings.Trim(val, `"`)), where}
			}
		}
		return nil
	}
	err := read("/etc/ssh/sshd_config", 0)
	return out, hostKeys, err
}

// sshdValue judges one sshd keyword (def is sshd's default when unset).
func (a *Auditor) sshdValue(key, def string, ok func(string) bool) (Status, []string) {
	cfg, _, err := a.sshdConfig()
	if errors.Is(err, errMissing) {
		return Skipped, []string{"no /etc/ssh/sshd_config: OpenSSH's server is not installed"}
	}
	if err != nil {
		return Unknown, []string{err.Error()}
	}
	v, set := cfg[key]
	ev := fmt.Sprintf("%s %s (%s)", key, v[0], v[1])
	if !set {
		v[0] = def
		ev = fmt.Sprintf("%s not set: sshd's default, %s", key, def)
	}
	if ok(v[0]) {
		return Pass, []string{ev}
	}
	return Fail, []string{ev}
}

func (a *Auditor) sshHostKeys() (Status, []string) {
	_, hostKeys, err := a.sshdConfig()
	if errors.Is(err, errMissing) {
		return Skipped, []string{"no /etc/ssh/sshd_config: OpenSSH's server is not installed"}
	}
	if err != nil {
		return Unknown, []string{err.Error()}
	}
	var bad, ev []string
	for _, v := range hostKeys {
		if base := strings.ToLower(path.Base(v[0])); strings.Contains(base, "dsa") && !strings.Contains(base, "ecdsa") {
			bad = append(bad, fmt.Sprintf("HostKey %s (%s)", v[0], v[1]))
		}
	}
	dsa, _ := filepath.Glob(a.path("/etc/ssh/ssh_host_dsa_key*"))
	for _, f := range dsa {
		rel, _ := filepath.Rel(a.Root, f)
		bad = append(bad, "/"+filepath.ToSlash(rel)+" exists")
	}
	keys, _ := filepath.Glob(a.path("/etc/ssh/ssh_host_*_key.pub"))
	for _, k := range keys {
		ev = append(ev, filepath.Base(k))
	}
	if len(bad) > 0 {
		return Fail, bad
	}
	if len(ev) == 0 {
		return Pass, []string{"no DSA host key (and no host key files found)"}
	}
	return Pass, []string{"host keys: " + strings.Join(ev, ", ")}
}

// listener is a listening TCP socket.
type listener struct {
	addr netip.AddrPort
	uid  string
}

// parseProcNetTCP reads /proc/net/tcp or tcp6: the listening sockets.
func parseProcNetTCP(b []byte, v6 bool) ([]listener, error) {
	var out []listener
	sc := bufio.NewScanner(bytes.NewReader(b))
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 {
			continue
		}
		if f[3] != "0A" { // TCP_LISTEN
			continue
		}
		host, port, ok := strings.Cut(f[1], ":")
		if !ok {
			return nil, fmt.Errorf("bad address %q", f[1])
		}
		raw, err := hex.DecodeString(host)
		if err != nil || (v6 && len(raw) != 16) || (!v6 && len(raw) != 4) {
			return nil, fmt.Errorf("bad address %q", f[1])
		}
		// The kernel prints each 32-bit word in host order (little
		// endian here): reverse the bytes of each word.
		for i := 0; i+4 <= len(raw); i += 4 {
			raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
		}
		addr, _ := netip.AddrFromSlice(raw)
		p, err := strconv.ParseUint(port, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("bad port %q", port)
		}
		out = append(out, listener{addr: netip.AddrPortFrom(addr.Unmap(), uint16(p)), uid: f[7]})
	}
	return out, sc.Err()
}

func (a *Auditor) publicListeners() (Status, []string) {
	var all []listener
	read := 0
	for _, name := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join(a.Proc, "net", name))
		if err != nil {
			continue
		}
		read++
		ls, err := parseProcNetTCP(b, name == "tcp6")
		if err != nil {
			return Unknown, []string{fmt.Sprintf("%s/net/%s: %v", a.Proc, name, err)}
		}
		all = append(all, ls...)
	}
	if read == 0 {
		return Unknown, []string{"no " + a.Proc + "/net/tcp to read the listening sockets from"}
	}
	var bad, ok []string
	seen := map[string]bool{}
	for _, l := range all {
		ad := l.addr.Addr()
		if ad.IsLoopback() || seen[l.addr.String()] {
			continue
		}
		seen[l.addr.String()] = true
		where := l.addr.String()
		if ad.IsUnspecified() {
			where += " (every address)"
		}
		if slices.Contains(a.AllowedPorts, int(l.addr.Port())) {
			ok = append(ok, where)
			continue
		}
		bad = append(bad, fmt.Sprintf("%s, uid %s", where, l.uid))
	}
	slices.Sort(bad)
	slices.Sort(ok)
	if len(bad) > 0 {
		return Fail, bad
	}
	if len(ok) == 0 {
		return Pass, []string{"nothing listens on a public address"}
	}
	return Pass, []string{"expected: " + strings.Join(ok, ", ")}
}

func (a *Auditor) tmpMounts() (Status, []string) {
	b, err := os.ReadFile(filepath.Join(a.Proc, "self", "mounts"))
	if err != nil {
		b, err = os.ReadFile(filepath.Join(a.Proc, "mounts"))
	}
	if err != nil {
		return Unknown, []string{"cannot read the mount table: " + err.Error()}
	}
	opts := map[string]string{}
	for _, line := range lines(b) {
		f := strings.Fields(line)
		if len(f) >= 4 {
			opts[unescapeMount(f[1])] = f[3] // the last mount of a point wins
		}
	}
	var bad, ev []string
	for _, mp := range []string{"/tmp", "/dev/shm"} {
		o, ok := opts[mp]
		if !ok {
			bad = append(bad, mp+" is not a separate filesystem (it shares its parent's options)")
			continue
		}
		set := strings.Split(o, ",")
		var missing []string
		for _, want := range []string{"noexec", "nosuid", "nodev"} {
			if !slices.Contains(set, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) > 0 {
			bad = append(bad, fmt.Sprintf("%s is mounted %s, without %s", mp, o, strings.Join(missing, ",")))
		} else {
			ev = append(ev, mp+" "+o)
		}
	}
	if len(bad) > 0 {
		return Fail, bad
	}
	return Pass, ev
}

// unescapeMount undoes the octal escapes of /proc/mounts (\040 is a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// endOfLife is the shipped table of security support's end: distribution
// ID and VERSION_ID (os-release) to the last day of security updates
// (Debian's LTS end; Ubuntu's standard support, without Pro).
var endOfLife = map[string]string{
	"debian 9": "2022-06-30", "debian 10": "2024-06-30", "debian 11": "2026-08-31", "debian 12": "2028-06-30", "debian 13": "2030-06-30",
	"ubuntu 18.04": "2023-05-31", "ubuntu 20.04": "2025-05-31", "ubuntu 22.04": "2027-06-01", "ubuntu 24.04": "2029-05-31",
	"ubuntu 24.10": "2025-07-10", "ubuntu 25.04": "2026-01-15", "ubuntu 25.10": "2026-07-09",
}

// EOLWarning is how long before the end of life the check fails already
// (an upgrade takes planning).
const EOLWarning = 90 * 24 * time.Hour

func (a *Auditor) endOfLife() (Status, []string) {
	b, err := a.readFile("/etc/os-release")
	if errors.Is(err, errMissing) {
		b, err = a.readFile("/usr/lib/os-release")
	}
	if err != nil {
		return Unknown, []string{"os-release: " + err.Error()}
	}
	kv := map[string]string{}
	for _, line := range lines(b) {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = strings.Trim(v, `"'`)
		}
	}
	name := strings.TrimSpace(kv["ID"] + " " + kv["VERSION_ID"])
	if kv["ID"] == "debian" && kv["VERSION_ID"] == "" {
		return Unknown, []string{kv["PRETTY_NAME"] + ": a testing or unstable Debian has no end-of-life date"}
	}
	end, ok := endOfLife[name]
	if !ok {
		return Unknown, []string{fmt.Sprintf("%s (%s) is not in the shipped end-of-life table", kv["PRETTY_NAME"], name)}
	}
	t, _ := time.Parse(time.DateOnly, end)
	left := t.Add(24 * time.Hour).Sub(a.Now())
	ev := fmt.Sprintf("%s: security support ends %s", kv["PRETTY_NAME"], end)
	switch {
	case left <= 0:
		return Fail, []string{ev + " (past)"}
	case left < EOLWarning:
		return Fail, []string{fmt.Sprintf("%s (in %d days)", ev, int(left.Hours()/24))}
	}
	return Pass, []string{ev}
}

func (a *Auditor) uid0() (Status, []string) {
	b, err := a.readFile("/etc/passwd")
	if err != nil {
		return Unknown, []string{err.Error()}
	}
	var bad []string
	for i, line := range lines(b) {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[2] == "0" && f[0] != "root" {
			bad = append(bad, fmt.Sprintf("%s has UID 0 (/etc/passwd:%d)", f[0], i+1))
		}
	}
	if len(bad) > 0 {
		return Fail, bad
	}
	return Pass, []string{"only root"}
}

func (a *Auditor) emptyPasswords() (Status, []string) {
	b, err := a.readFile("/etc/shadow")
	if err != nil {
		return Unknown, []string{"/etc/shadow: " + err.Error() + " (the audit needs root)"}
	}
	var bad []string
	for i, line := range lines(b) {
		f := strings.Split(line, ":")
		if len(f) >= 2 && f[0] != "" && f[1] == "" {
			bad = append(bad, fmt.Sprintf("%s has an empty password (/etc/shadow:%d)", f[0], i+1))
		}
	}
	if len(bad) > 0 {
		return Fail, bad
	}
	return Pass, []string{"every account has a password or is locked"}
}

func (a *Auditor) timeSync() (Status, []string) {
	if a.ClockSynced == nil {
		return Skipped, []string{"not this host's clock (an audit of another root)"}
	}
	ok, err := a.ClockSynced()
	if err != nil {
		return Unknown, []string{"adjtimex: " + err.Error()}
	}
	if !ok {
		return Fail, []string{"the kernel reports the clock unsynchronised (adjtimex: TIME_ERROR)"}
	}
	return Pass, []string{"the kernel reports the clock synchronised"}
}
