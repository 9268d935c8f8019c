package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/audit"
)

// TestListAndShapeCommands: runtime allow and deny entries and bandwidth
// rules set from the command line land in the data directory's store with
// who set them, are audited, and bad input is refused with a message
// naming it, storing nothing.
func TestListAndShapeCommands(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "bulwark.yaml")
	if err := os.WriteFile(cfgFile, []byte("guard:\n  listen: 127.0.0.1:0\n  sites:\n    - hosts: [shop.example, \"*.shop.example\"]\n      upstreams: [http://127.0.0.1:9000]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	d := []string{"--data", filepath.Join(dir, "data"), "--config", cfgFile}

	var en struct {
		Net, List, Origin string
	}
	out := mustRun(t, c, append([]string{"allow", "add", "198.51.100.7/24", "--reason", "office", "--json"}, d...)...)
	if err := json.Unmarshal([]byte(out), &en); err != nil || en.Net != "198.51.100.0/24" || en.List != "allow" || !strings.HasPrefix(en.Origin, "user:") {
		t.Fatalf("allow add --json: %+v %v\n%s", en, err, out)
	}
	out = mustRun(t, c, append([]string{"deny", "add", "2001:db8:66::/48", "--for", "2h", "--reason", "scanner"}, d...)...)
	if !strings.Contains(out, "added 2001:db8:66::/48 to the deny list until") {
		t.Errorf("deny add: %s", out)
	}
	out = mustRun(t, c, append([]string{"allow", "list"}, d...)...)
	if !strings.Contains(out, "198.51.100.0/24") || !strings.Contains(out, "office") || strings.Contains(out, "2001:db8:66::") {
		t.Errorf("allow list:\n%s", out)
	}
	out = mustRun(t, c, append([]string{"shape", "set", "office", "--net", "198.51.100.0/24", "--account", "acme", "--site", "shop.example", "--bandwidth", "5MiB", "--reason", "contract"}, d...)...)
	if !strings.Contains(out, "created bandwidth rule office: 5MiB/s") {
		t.Errorf("shape set: %s", out)
	}
	out = mustRun(t, c, append([]string{"shape", "set", "office", "--net", "198.51.100.0/24", "--bandwidth", "2MiB"}, d...)...)
	if !strings.Contains(out, "replaced bandwidth rule office: 2MiB/s") {
		t.Errorf("shape set again: %s", out)
	}
	var shapes []struct {
		Name      string
		Bandwidth int64
		Accounts  []string
	}
	if err := json.Unmarshal([]byte(mustRun(t, c, append([]string{"shape", "list", "--json"}, d...)...)), &shapes); err != nil ||
		len(shapes) != 1 || shapes[0].Bandwidth != 2<<20 || len(shapes[0].Accounts) != 0 {
		t.Fatalf("shape list --json: %+v %v", shapes, err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"allow", "add", "example.com", "--reason", "x"}, `"example.com" is not an address or CIDR`},
		{[]string{"deny", "add", "203.0.113.9"}, "--reason TEXT is required"},
		{[]string{"deny", "add", "203.0.113.9", "--for", "-1h", "--reason", "x"}, "must be positive"},
		{[]string{"deny", "remove", "203.0.113.0/33"}, "is not an address or CIDR"},
		{[]string{"shape", "set", "x", "--net", "203.0.113.0/24"}, "bandwidth: 0 bytes/s"},
		{[]string{"shape", "set", "Bad", "--bandwidth", "1MiB"}, "name: \"Bad\""},
		{[]string{"shape", "set", "x", "--bandwidth", "fast"}, "invalid value \"fast\" for flag -bandwidth"},
		{[]string{"shape", "set", "x", "--net", "nope", "--bandwidth", "1MiB"}, "--net: \"nope\" is not an address or CIDR"},
		{[]string{"shape", "set", "x", "--site", "other.example", "--bandwidth", "1MiB"}, "--site \"other.example\": no site in the config answers this host"},
		{[]string{"shape", "list", "extra"}, "list takes no arguments"},
	} {
		if code, _, stderr := c.run("", append(tc.args, d...)...); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("bulwark %s: exit %d, stderr %q; want 2 and %q", strings.Join(tc.args, " "), code, stderr, tc.want)
		}
	}
	if code, _, stderr := c.run("", append([]string{"allow", "remove", "198.51.100.7"}, d...)...); code != 1 || !strings.Contains(stderr, "no runtime allow-list entry for exactly 198.51.100.7/32") {
		t.Errorf("removing a narrower network: exit %d, %s", code, stderr)
	}
	if code, _, stderr := c.run("", append([]string{"shape", "remove", "nope"}, d...)...); code != 1 || !strings.Contains(stderr, `no bandwidth rule named "nope"`) {
		t.Errorf("removing an unknown rule: exit %d, %s", code, stderr)
	}
	mustRun(t, c, append([]string{"allow", "remove", "198.51.100.0/24"}, d...)...)
	mustRun(t, c, append([]string{"shape", "remove", "office"}, d...)...)
	var all []map[string]any
	if err := json.Unmarshal([]byte(mustRun(t, c, append([]string{"deny", "list", "--json"}, d...)...)), &all); err != nil || len(all) != 1 {
		t.Errorf("bad input stored something, or removal failed: %d deny entries, %v", len(all), err)
	}
	if out := mustRun(t, c, append([]string{"shape", "list"}, d...)...); !strings.Contains(out, "no bandwidth rules") {
		t.Errorf("shape list after removal: %s", out)
	}

	// Audited: one entry per change, naming the person.
	mustRun(t, c, append([]string{"audit", "verify"}, d...)...)
	counts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(mustRun(t, c, append([]string{"audit", "export"}, d...)...)), "\n") {
		var e audit.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit export line %q: %v", line, err)
		}
		if strings.HasPrefix(e.Actor, "user:") {
			counts[e.Action]++
		}
	}
	for action, want := range map[string]int{"event.list.added": 2, "event.list.removed": 1, "event.shape.set": 2, "event.shape.removed": 1} {
		if counts[action] != want {
			t.Errorf("audited %s: %d, want %d (all: %v)", action, counts[action], want, counts)
		}
	}
}
