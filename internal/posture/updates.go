package posture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/aptsim"
)

// Pending security updates (apt's simulated dist-upgrade, read by
// internal/aptsim like the host metrics read it) and automatic updates
// (unattended-upgrades and the APT::Periodic settings that run it).

// notDebian is the reason the update checks are skipped.
const notDebian = "no /usr/bin/apt-get: not a Debian or Ubuntu system"

// exists reports whether a file of the audited system exists.
func (a *Auditor) exists(p string) bool {
	_, err := os.Stat(a.path(p))
	return err == nil
}

func (a *Auditor) securityUpdates() (Status, []string) {
	if !a.exists("/usr/bin/apt-get") {
		return Skipped, []string{notDebian}
	}
	if a.AptSimulation == nil {
		return Skipped, []string{"apt cannot be run in the system under " + a.Root + ": audit it where it runs"}
	}
	// Without package lists apt knows of no update at all.
	if lists, _ := filepath.Glob(a.path("/var/lib/apt/lists/*Release")); len(lists) == 0 {
		return Unknown, []string{"no package lists in /var/lib/apt/lists: apt knows of no update until apt-get update runs"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), aptTimeout)
	defer cancel()
	out, err := a.AptSimulation(ctx)
	if err != nil {
		return Unknown, []string{"apt-get --just-print dist-upgrade: " + err.Error()}
	}
	ups := aptsim.Parse(out)
	var sec []string
	for _, u := range ups {
		if !u.Security {
			continue
		}
		from := u.Installed
		if from == "" {
			from = "new"
		}
		origin := u.Origin
		for _, o := range strings.Split(u.Origin, ",") {
			if strings.Contains(strings.ToLower(o), "security") {
				origin = o
				break
			}
		}
		sec = append(sec, fmt.Sprintf("%s %s -> %s (%s)", u.Package, from, u.Version, origin))
	}
	if len(sec) == 0 {
		return Pass, []string{fmt.Sprintf("no security update pending (apt-get --just-print dist-upgrade: %d other upgrades)", len(ups))}
	}
	head := fmt.Sprintf("%d security updates pending, of %d upgrades (apt-get --just-print dist-upgrade)", len(sec), len(ups))
	return Fail, append([]string{head}, capEvidence(sec)...)
}

// The APT::Periodic settings that make apt's daily timer refresh the
// package lists and run unattended-upgrade.
var periodicKeys = []string{"APT::Periodic::Update-Package-Lists", "APT::Periodic::Unattended-Upgrade"}

// aptTimers are the systemd timers that run apt.systemd.daily: apt-daily
// refreshes the package lists (Update-Package-Lists), apt-daily-upgrade
// runs unattended-upgrade (Unattended-Upgrade).
var aptTimers = []string{"apt-daily.timer", "apt-daily-upgrade.timer"}

func (a *Auditor) automaticUpdates() (Status, []string) {
	if !a.exists("/usr/bin/apt-get") {
		return Skipped, []string{notDebian}
	}
	var ev []string
	ok := true
	if a.exists("/usr/bin/unattended-upgrade") {
		ev = append(ev, "unattended-upgrades is installed (/usr/bin/unattended-upgrade)")
	} else {
		ok = false
		ev = append(ev, "unattended-upgrades is not installed (no /usr/bin/unattended-upgrade)")
	}
	timersOK, timersEv := a.aptTimers()
	ok = ok && timersOK
	conf, err := a.aptConf()
	if err != nil {
		ev = append(append(ev, timersEv...), "apt's configuration: "+err.Error())
		if !ok { // a failure stands even when the configuration cannot be read
			return Fail, ev
		}
		return Unknown, ev
	}
	// apt.systemd.daily exits at once when APT::Periodic::Enable is 0
	// (`[ $AutoAptEnable -eq 0 ]`; unset, it is 1).
	const enable = "APT::Periodic::Enable"
	switch s, set := conf[strings.ToLower(enable)]; {
	case !set:
		ev = append(ev, enable+" is not set (apt's default: on)")
	case s.cleared:
		ev = append(ev, fmt.Sprintf("%s is cleared (#clear, %s): apt's default, on", enable, s.where))
	case periodicDisabled(s.value):
		ok = false
		ev = append(ev, fmt.Sprintf("%s %q (%s): apt's daily job is disabled, apt.systemd.daily exits at once", enable, s.value, s.where))
	default:
		ev = append(ev, fmt.Sprintf("%s %q (%s)", enable, s.value, s.where))
	}
	for _, k := range periodicKeys {
		s, set := conf[strings.ToLower(k)]
		switch {
		case !set:
			ok = false
			ev = append(ev, k+" is not set (apt's default: off)")
		case s.cleared:
			ok = false
			ev = append(ev, fmt.Sprintf("%s is cleared (#clear, %s): off", k, s.where))
		case periodicOn(s.value):
			ev = append(ev, fmt.Sprintf("%s %q (%s)", k, s.value, s.where))
		default:
			ok = false
			ev = append(ev, fmt.Sprintf("%s %q (%s): off", k, s.value, s.where))
		}
	}
	ev = append(ev, timersEv...)
	if ok {
		return Pass, ev
	}
	return Fail, ev
}

// periodicDisabled reports whether APT::Periodic::Enable turns apt's
// daily job off: apt.systemd.daily tests it with `[ $AutoAptEnable -eq 0
// ]`, so an integer 0 does ("0", "00", " 0 "); anything else, "false"
// included, makes that test fail and the job run.
func periodicDisabled(v string) bool {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	return err == nil && n == 0
}

// Where systemd finds unit files, in its order of precedence, and the
// directories that hold its own units: without them the system has no
// systemd.
var (
	unitDirs    = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}
	systemdDirs = []string{"/usr/lib/systemd/system", "/lib/systemd/system"}
)

// aptTimers checks that apt's timers are enabled and that neither they
// nor their services are masked. Without systemd (a container, an image
// without it) apt's daily job is cron's: the timers are not checked.
func (a *Auditor) aptTimers() (bool, []string) {
	systemd := false
	for _, d := range systemdDirs {
		if fi, err := os.Stat(a.path(d)); err == nil && fi.IsDir() {
			systemd = true
		}
	}
	if !systemd {
		return true, []string{"no systemd (no /lib/systemd/system): apt's timers are not checked"}
	}
	ok := true
	var ev []string
	for _, timer := range aptTimers {
		service := strings.TrimSuffix(timer, ".timer") + ".service"
		file, masked := a.unitFile(timer)
		if masked {
			ok = false
			ev = append(ev, fmt.Sprintf("%s is masked (%s is a link to /dev/null or empty): it never runs", timer, file))
			continue
		}
		if sf, smasked := a.unitFile(service); smasked {
			ok = false
			ev = append(ev, fmt.Sprintf("%s is masked (%s is a link to /dev/null or empty): %s starts nothing", service, sf, timer))
			continue
		}
		if file == "" {
			ok = false
			ev = append(ev, fmt.Sprintf("%s: no unit file in %s: nothing runs apt's daily job", timer, strings.Join(unitDirs, ", ")))
			continue
		}
		if link := a.wantedBy("timers.target", timer); link != "" {
			ev = append(ev, fmt.Sprintf("%s is enabled (%s)", timer, link))
			continue
		}
		ok = false
		ev = append(ev, fmt.Sprintf("%s (%s) is not enabled: no link in /etc/systemd/system/timers.target.wants", timer, file))
	}
	return ok, ev
}

// unitFile finds a unit the way systemd does: the first of unitDirs that
// has it. A unit linked to /dev/null, or an empty file, is masked.
// Links are read, not followed: an audited image's absolute links point
// into the image, not this host.
func (a *Auditor) unitFile(unit string) (string, bool) {
	for _, d := range unitDirs {
		p := d + "/" + unit
		fi, err := os.Lstat(a.path(p))
		if err != nil {
			continue
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(a.path(p))
			return p, err == nil && target == "/dev/null"
		}
		return p, fi.Mode().IsRegular() && fi.Size() == 0
	}
	return "", false
}

// wantedBy returns the link that enables unit for target (in
// TARGET.wants of a unit directory), or "".
func (a *Auditor) wantedBy(target, unit string) string {
	for _, d := range unitDirs {
		p := d + "/" + target + ".wants/" + unit
		if _, err := os.Lstat(a.path(p)); err == nil {
			return p
		}
	}
	return ""
}

// periodicOn reports whether an APT::Periodic interval runs its job:
// a number of days above 0 (or of seconds, minutes, hours, days with an
// s, m, h or d suffix), "always", or a boolean true. "0" and "false" are
// off, as is anything apt.systemd.daily would not understand.
func periodicOn(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	switch v {
	case "always", "true", "yes", "on":
		return true
	}
	if n := len(v); n > 1 && strings.ContainsRune("smhd", rune(v[n-1])) {
		v = v[:n-1]
	}
	n, err := strconv.Atoi(v)
	return err == nil && n > 0
}

// aptSetting is the value of one key of apt's configuration, and where it
// was set ("/etc/apt/apt.conf.d/20auto-upgrades:2").
type aptSetting struct {
	value, where string
	cleared      bool
}

// aptConfPart reports whether apt reads a file of apt.conf.d: names of
// letters, digits, "_", "-", ":" and ".", without an extension or ending
// in ".conf" (20auto-upgrades, 50unattended-upgrades.conf; not
// 20auto-upgrades.dpkg-old, x.bak, x~).
func aptConfPart(name string) bool {
	if name == "" || strings.HasSuffix(name, ".") {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-:.", c)) {
			return false
		}
	}
	dot := strings.LastIndexByte(name, '.')
	return dot < 0 || name[dot+1:] == "conf"
}

// aptConf reads apt's configuration as apt does: the files of
// /etc/apt/apt.conf.d in lexical order, then /etc/apt/apt.conf, a later
// setting overriding an earlier one. It returns the settings by key, in
// lower case (apt's keys ignore case).
func (a *Auditor) aptConf() (map[string]aptSetting, error) {
	conf := map[string]aptSetting{}
	entries, err := os.ReadDir(a.path("/etc/apt/apt.conf.d"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if aptConfPart(e.Name()) && !e.IsDir() {
			files = append(files, "/etc/apt/apt.conf.d/"+e.Name())
		}
	}
	slices.Sort(files)
	files = append(files, "/etc/apt/apt.conf")
	for _, f := range files {
		if err := a.readAptConf(conf, f, 0); err != nil && !errors.Is(err, errMissing) {
			return nil, err
		}
	}
	return conf, nil
}

// readAptConf reads one file of apt's configuration into conf, and the
// files it includes. The syntax is apt.conf(5)'s:
//
//	APT::Periodic::Unattended-Upgrade "1";   // a comment
//	APT { Periodic { Update-Package-Lists "1"; }; };
//	#clear APT::Periodic;
//	#include "other.conf";
//
// with comments after "//" or "#" and between "/*" and "*/".
func (a *Auditor) readAptConf(conf map[string]aptSetting, file string, depth int) error {
	if depth > 8 {
		return fmt.Errorf("%s: #include nested too deep", file)
	}
	b, err := a.readFile(file)
	if err != nil {
		return err
	}
	return parseAptConf(conf, file, b, func(inc string) error {
		if err := a.readAptConf(conf, inc, depth+1); err != nil && !errors.Is(err, errMissing) {
			return err
		}
		return nil
	})
}

// parseAptConf reads the text b of file into conf; include reads the
// files of #include (absolute, or relative to file's directory).
func parseAptConf(conf map[string]aptSetting, file string, b []byte, include func(file string) error) error {
	toks, err := aptTokens(b)
	if err != nil {
		return fmt.Errorf("%s:%w", file, err)
	}
	var scope []string // the keys of the enclosing { }
	var stmt []aptToken
	var directive *aptToken
	full := func(key string) string {
		return strings.ToLower(strings.Join(append(slices.Clone(scope), key), "::"))
	}
	for _, t := range toks {
		switch t.kind {
		case '#':
			directive, stmt = &t, nil
		case '{':
			if directive != nil || len(stmt) == 0 {
				return fmt.Errorf("%s:%d: syntax error: { without a key", file, t.line)
			}
			if len(stmt) >= 2 {
				conf[full(stmt[0].text)] = aptSetting{value: stmt[1].text, where: fmt.Sprintf("%s:%d", file, stmt[1].line)}
			}
			scope, stmt = append(scope, stmt[0].text), nil
		case '}':
			if len(scope) == 0 {
				return fmt.Errorf("%s:%d: syntax error: unbalanced }", file, t.line)
			}
			scope, stmt, directive = scope[:len(scope)-1], nil, nil
		case ';':
			switch {
			case directive != nil && directive.text == "clear":
				for _, k := range stmt {
					key := strings.ToLower(k.text)
					for have := range conf {
						if have == key || strings.HasPrefix(have, key+"::") {
							delete(conf, have)
						}
					}
					conf[key] = aptSetting{cleared: true, where: fmt.Sprintf("%s:%d", file, k.line)}
				}
			case directive != nil && directive.text == "include" && len(stmt) > 0:
				inc := stmt[0].text
				if !path.IsAbs(inc) {
					inc = path.Join(path.Dir(file), inc)
				}
				if err := include(inc); err != nil {
					return err
				}
			case directive != nil:
			case len(stmt) >= 2:
				conf[full(stmt[0].text)] = aptSetting{value: stmt[1].text, where: fmt.Sprintf("%s:%d", file, stmt[1].line)}
			}
			stmt, directive = nil, nil
		default:
			stmt = append(stmt, t)
		}
	}
	if len(scope) > 0 {
		return fmt.Errorf("%s: syntax error: { %s not closed", file, scope[len(scope)-1])
	}
	return nil
}

// aptToken is a word, a quoted string (kind 'w'), a brace, a semicolon,
// or a directive ('#': clear, include).
type aptToken struct {
	kind byte
	text string
	line int
}

func aptTokens(b []byte) ([]aptToken, error) {
	var out []aptToken
	line := 1
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '/' && i+1 < len(b) && b[i+1] == '/', c == '#' && !isDirective(b[i:]):
			for i < len(b) && b[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(b) && b[i+1] == '*':
			end := bytes.Index(b[i+2:], []byte("*/"))
			if end < 0 {
				return nil, fmt.Errorf("%d: unterminated comment", line)
			}
			line += bytes.Count(b[i:i+2+end], []byte("\n"))
			i += 2 + end + 2
		case c == '#':
			w := "clear"
			if !bytes.HasPrefix(b[i+1:], []byte(w)) {
				w = "include"
			}
			out = append(out, aptToken{kind: '#', text: w, line: line})
			i += 1 + len(w)
		case c == '{' || c == '}' || c == ';':
			out = append(out, aptToken{kind: c, line: line})
			i++
		case c == '"':
			end := bytes.IndexByte(b[i+1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("%d: unterminated quote", line)
			}
			s := string(b[i+1 : i+1+end])
			out = append(out, aptToken{kind: 'w', text: s, line: line})
			line += strings.Count(s, "\n")
			i += end + 2
		default:
			j := i
			for j < len(b) && !strings.ContainsRune(" \t\r\n\f\v{};\"", rune(b[j])) &&
				!(b[j] == '/' && j+1 < len(b) && (b[j+1] == '/' || b[j+1] == '*')) {
				j++
			}
			out = append(out, aptToken{kind: 'w', text: string(b[i:j]), line: line})
			i = j
		}
	}
	return out, nil
}

// isDirective reports whether b starts with "#clear" or "#include" and a
// blank.
func isDirective(b []byte) bool {
	for _, d := range []string{"#clear", "#include"} {
		if len(b) > len(d) && string(b[:len(d)]) == d && strings.ContainsRune(" \t", rune(b[len(d)])) {
			return true
		}
	}
	return false
}
