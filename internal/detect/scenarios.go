package detect

import (
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
)

// The built-in scenarios. Capacity and leak follow the tools people run
// today where there is a common setting (fail2ban's sshd jail: 5 failures
// in 10 minutes; CrowdSec's ssh-bf: capacity 5, one leak per 10 s for its
// fast variant), tightened where a false positive is cheap (a one-hour ban)
// and loosened where browsers make noise (a page with broken images).
// A scenario whose sources are not configured (no sshd log tailed, no
// guard) simply never sees a signal.
func builtinScenarios() []config.DetectScenario {
	d := func(v time.Duration) config.Duration { return config.Duration(v) }
	web := []string{FromGuard, "nginx-access", "apache-access"}
	return []config.DetectScenario{
		{Name: "ssh-bruteforce", From: []string{"sshd"}, Kinds: []string{"auth_failure", "invalid_user"},
			Capacity: 5, Leak: d(2 * time.Minute), Ban: d(time.Hour), BanMax: d(7 * 24 * time.Hour)},
		{Name: "ssh-probe", From: []string{"sshd"}, Kinds: []string{"probe"},
			Capacity: 10, Leak: d(time.Minute), Ban: d(time.Hour), BanMax: d(7 * 24 * time.Hour)},
		{Name: "mail-auth-bruteforce", From: []string{"postfix", "dovecot"}, Kinds: []string{"auth_failure", "invalid_user"},
			Capacity: 5, Leak: d(2 * time.Minute), Ban: d(time.Hour), BanMax: d(7 * 24 * time.Hour)},
		{Name: "http-auth-bruteforce", From: web, Status: []string{"401"},
			Capacity: 10, Leak: d(30 * time.Second), Ban: d(time.Hour), BanMax: d(7 * 24 * time.Hour)},
		{Name: "http-login-limit", From: []string{FromGuard}, Kinds: []string{"login_limit"},
			Capacity: 5, Leak: d(time.Minute), Ban: d(time.Hour), BanMax: d(7 * 24 * time.Hour)},
		{Name: "http-probing", From: web, Status: []string{"400", "403", "404", "405"},
			Capacity: 60, Leak: d(500 * time.Millisecond), Ban: d(15 * time.Minute), BanMax: d(24 * time.Hour)},
		{Name: "http-waf", From: []string{FromGuard}, Kinds: []string{"waf"},
			Capacity: 5, Leak: d(time.Minute), Ban: d(time.Hour), BanMax: d(7 * 24 * time.Hour)},
		{Name: "http-flood", From: []string{FromGuard}, Kinds: []string{"limit"},
			Capacity: 200, Leak: d(time.Second), Ban: d(10 * time.Minute), BanMax: d(24 * time.Hour)},
		{Name: "http-error-log", From: []string{"nginx-error", "apache-error"}, Kinds: []string{"http_error", "auth_failure"},
			Capacity: 10, Leak: d(time.Minute), Ban: d(time.Hour), BanMax: d(7 * 24 * time.Hour)},
	}
}

// BuiltinScenarioNames lists the built-in scenarios' names.
func BuiltinScenarioNames() []string {
	var out []string
	for _, s := range builtinScenarios() {
		out = append(out, s.Name)
	}
	return out
}

// Scenarios returns the scenarios cfg runs: the built-in ones not
// disabled, each replaced by a configured scenario of the same name, then
// the other configured ones.
func Scenarios(cfg config.Detect) []config.DetectScenario {
	own := map[string]int{}
	for i, s := range cfg.Scenarios {
		own[s.Name] = i
	}
	disabled := set(cfg.Disable)
	var out []config.DetectScenario
	used := map[string]bool{}
	for _, b := range builtinScenarios() {
		if disabled[b.Name] {
			continue
		}
		if i, ok := own[b.Name]; ok {
			b = cfg.Scenarios[i]
			used[b.Name] = true
		}
		out = append(out, b)
	}
	for _, s := range cfg.Scenarios {
		if !used[s.Name] && !disabled[s.Name] {
			out = append(out, s)
		}
	}
	return out
}
