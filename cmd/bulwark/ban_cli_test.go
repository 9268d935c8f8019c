package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/audit"
)

// TestBanCommands: bans added, listed and lifted from the command line
// land in the data directory's store with who decided, are audited, and
// bad input is refused with a message naming it, storing nothing.
func TestBanCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	c := newCLI(t)
	d := []string{"--data", data}
	var added struct {
		ID      int64     `json:"id"`
		Net     string    `json:"net"`
		Origin  string    `json:"origin"`
		Start   time.Time `json:"start"`
		Expires time.Time `json:"expires"`
	}
	out := mustRun(t, c, append([]string{"ban", "add", "203.0.113.7", "--for", "2h", "--reason", "credential stuffing", "--json"}, d...)...)
	if err := json.Unmarshal([]byte(out), &added); err != nil {
		t.Fatalf("ban add --json: %v\n%s", err, out)
	}
	if added.Net != "203.0.113.7/32" || !strings.HasPrefix(added.Origin, "user:") || added.Expires.Sub(added.Start) != 2*time.Hour {
		t.Errorf("added = %+v", added)
	}
	mustRun(t, c, append([]string{"ban", "add", "2001:db8:66::1/48", "--for", "30m", "--reason", "scanner"}, d...)...)

	out = mustRun(t, c, append([]string{"ban", "list"}, d...)...)
	for _, w := range []string{"203.0.113.7/32", "2001:db8:66::/48", "credential stuffing", "active"} {
		if !strings.Contains(out, w) {
			t.Errorf("ban list lacks %q:\n%s", w, out)
		}
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, c, append([]string{"ban", "list", "--json"}, d...)...)), &list); err != nil || len(list) != 2 {
		t.Fatalf("ban list --json: %d bans, %v", len(list), err)
	}

	out = mustRun(t, c, append([]string{"ban", "remove", "203.0.113.7"}, d...)...)
	if !strings.Contains(out, "lifted the ban of 203.0.113.7/32") {
		t.Errorf("ban remove: %s", out)
	}
	if code, _, stderr := c.run("", append([]string{"ban", "remove", "203.0.113.7"}, d...)...); code != 1 || !strings.Contains(stderr, "no ban in force on exactly 203.0.113.7/32") {
		t.Errorf("removing it again: exit %d, %s", code, stderr)
	}
	if err := json.Unmarshal([]byte(mustRun(t, c, append([]string{"ban", "list", "--json"}, d...)...)), &list); err != nil || len(list) != 1 {
		t.Fatalf("after remove: %d active, %v", len(list), err)
	}
	out = mustRun(t, c, append([]string{"ban", "list", "--all"}, d...)...)
	if !strings.Contains(out, "lifted by") {
		t.Errorf("ban list --all shows no lifted ban:\n%s", out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ban", "add", "example.com", "--for", "1h", "--reason", "x"}, `"example.com" is not an address or CIDR`},
		{[]string{"ban", "add", "203.0.113.9", "--reason", "x"}, "--for DURATION is required"},
		{[]string{"ban", "add", "203.0.113.9", "--for", "1h"}, "--reason TEXT is required"},
		{[]string{"ban", "add", "203.0.113.9", "--for", "-1h", "--reason", "x"}, "must be positive"},
		{[]string{"ban", "add", "203.0.113.9", "--for", "100000h", "--reason", "x"}, "longer than the limit"},
		{[]string{"ban", "remove", "203.0.113.0/33"}, "is not an address or CIDR"},
		{[]string{"ban", "list", "extra"}, "list takes no arguments"},
	} {
		if code, _, stderr := c.run("", append(tc.args, d...)...); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("bulwark %s: exit %d, stderr %q; want 2 and %q", strings.Join(tc.args, " "), code, stderr, tc.want)
		}
	}
	if err := json.Unmarshal([]byte(mustRun(t, c, append([]string{"ban", "list", "--all", "--json"}, d...)...)), &list); err != nil || len(list) != 2 {
		t.Errorf("bad input stored something: %d decisions, %v", len(list), err)
	}

	// Audited: one entry per decision, naming the person.
	mustRun(t, c, append([]string{"audit", "verify"}, d...)...)
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(mustRun(t, c, append([]string{"audit", "export"}, d...)...)), "\n") {
		var e audit.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit export line %q: %v", line, err)
		}
		if strings.HasPrefix(e.Action, "event.ban.") && strings.HasPrefix(e.Actor, "user:") {
			n++
		}
	}
	if n != 3 {
		t.Errorf("%d audited ban decisions by a person, want 3 (two added, one lifted)", n)
	}
}
