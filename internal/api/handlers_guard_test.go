package api_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/api"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/guard/rules"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// TestBansAPI: ban decisions through the API on both stores: an operator
// of module guard adds, lists and lifts; a reader lists but cannot add;
// someone without a guard grant sees nothing; bad input is refused naming
// the field and stores nothing; each call is audited and each decision is
// an event naming the person.
func TestBansAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var bans *detect.Bans
		e := newEnvWith(t, db, func(e *env, d *api.Deps) {
			var err error
			if bans, err = detect.Open(context.Background(), db, detect.Options{Bus: e.events, Now: e.clock.Now}); err != nil {
				t.Fatal(err)
			}
			d.Bans = bans
		})
		admin := e.login("admin", adminPassword)
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "edge-ops", "grants": []map[string]any{{"module": "guard", "level": "operate"}}}), 201)
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "edge-view", "grants": []map[string]any{{"module": "guard", "level": "read"}}}), 201)
		ops := e.mkuser(admin, "ops1", "edge-ops")
		viewer := e.mkuser(admin, "view1", "edge-view")
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "backup-view", "grants": []map[string]any{{"module": "backups", "level": "read"}}}), 201)
		other := e.mkuser(admin, "other1", "backup-view")

		var ban detect.Ban
		e.want(e.do("POST", "/api/v1/bans", ops, map[string]any{"net": "203.0.113.0/24", "duration": "2h", "reason": "scanner"}), 201).json(t, &ban)
		if ban.Net.String() != "203.0.113.0/24" || ban.Origin != "user:ops1" {
			t.Errorf("ban = %+v", ban)
		}
		if _, ok := bans.Match(netip.MustParseAddr("203.0.113.99")); !ok {
			t.Error("the API's ban is not in force")
		}
		var list api.List[detect.Ban]
		e.want(e.do("GET", "/api/v1/bans", viewer, nil), 200).json(t, &list)
		if len(list.Items) != 1 {
			t.Errorf("viewer lists %d bans", len(list.Items))
		}
		for _, c := range []struct {
			who, token, method, path string
			body                     any
			status                   int
			field                    string
		}{
			{"viewer", viewer, "POST", "/api/v1/bans", map[string]any{"net": "198.51.100.1", "duration": "1h", "reason": "x"}, 403, ""},
			{"viewer", viewer, "DELETE", "/api/v1/bans?net=203.0.113.0/24", nil, 403, ""},
			{"no guard grant", other, "GET", "/api/v1/bans", nil, 403, ""},
			{"bad net", ops, "POST", "/api/v1/bans", map[string]any{"net": "example.com", "duration": "1h", "reason": "x"}, 400, "net"},
			{"bad duration", ops, "POST", "/api/v1/bans", map[string]any{"net": "198.51.100.1", "duration": "forever", "reason": "x"}, 400, "duration"},
			{"no reason", ops, "POST", "/api/v1/bans", map[string]any{"net": "198.51.100.1", "duration": "1h"}, 400, "reason"},
			{"unknown field", ops, "POST", "/api/v1/bans", map[string]any{"net": "198.51.100.1", "duration": "1h", "reason": "x", "until": "y"}, 400, ""},
			{"nothing to lift", ops, "DELETE", "/api/v1/bans?net=198.51.100.1", nil, 404, ""},
			{"lift: bad net", ops, "DELETE", "/api/v1/bans?net=nope", nil, 400, "net"},
		} {
			r := e.do(c.method, c.path, c.token, c.body)
			if r.Status != c.status {
				t.Errorf("%s: %s %s: %d %s, want %d", c.who, c.method, c.path, r.Status, r.Body, c.status)
			}
		}
		e.want(e.do("GET", "/api/v1/bans?all=true", ops, nil), 200).json(t, &list)
		if len(list.Items) != 1 {
			t.Errorf("bad input stored decisions: %d in the history", len(list.Items))
		}
		e.want(e.do("DELETE", "/api/v1/bans?net=203.0.113.0/24", ops, nil), 200).json(t, &list)
		if len(list.Items) != 1 || list.Items[0].RemovedBy != "user:ops1" {
			t.Errorf("lifted: %+v", list.Items)
		}
		if _, ok := bans.Match(netip.MustParseAddr("203.0.113.99")); ok {
			t.Error("a lifted ban is still in force")
		}
		if n := e.auditCount("ban.add", "ok"); n != 1 {
			t.Errorf("audited ban.add: %d, want 1", n)
		}
		if n := e.auditCount("ban.remove", "ok"); n != 1 {
			t.Errorf("audited ban.remove: %d, want 1", n)
		}
	}, append(migrations(), detect.Migrations)...)
}

// TestGuardRulesAPI: the guard's runtime lists and bandwidth rules through
// the API on both stores: an operator of module guard changes them, a
// reader lists them, someone without a guard grant sees nothing; bad input
// is refused naming the field and stores nothing; changes are audited and
// apply to the in-memory snapshot the guard reads.
func TestGuardRulesAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var rs *rules.Rules
		e := newEnvWith(t, db, func(e *env, d *api.Deps) {
			var err error
			if rs, err = rules.Open(context.Background(), db, rules.Options{Bus: e.events, Now: e.clock.Now}); err != nil {
				t.Fatal(err)
			}
			d.Rules = rs
			d.GuardHost = func(h string) bool { return h == "shop.example" }
		})
		admin := e.login("admin", adminPassword)
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "edge-ops", "grants": []map[string]any{{"module": "guard", "level": "operate"}}}), 201)
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "edge-view", "grants": []map[string]any{{"module": "guard", "level": "read"}}}), 201)
		e.want(e.do("POST", "/api/v1/roles", admin, map[string]any{"name": "backup-view", "grants": []map[string]any{{"module": "backups", "level": "read"}}}), 201)
		ops := e.mkuser(admin, "ops1", "edge-ops")
		viewer := e.mkuser(admin, "view1", "edge-view")
		other := e.mkuser(admin, "other1", "backup-view")

		var en rules.Entry
		e.want(e.do("POST", "/api/v1/guard/lists", ops, map[string]any{"list": "allow", "net": "198.51.100.7/24", "reason": "office"}), 201).json(t, &en)
		if en.Net.String() != "198.51.100.0/24" || en.Origin != "user:ops1" || !en.Expires.IsZero() {
			t.Errorf("entry = %+v", en)
		}
		e.want(e.do("POST", "/api/v1/guard/lists", ops, map[string]any{"list": "deny", "net": "2001:db8::/32", "reason": "abuse", "duration": "2h"}), 201).json(t, &en)
		if en.Expires.Sub(en.Created) != 2*time.Hour {
			t.Errorf("deny entry = %+v", en)
		}
		if s := rs.Snapshot(); len(s.Allow) != 1 || len(s.Deny) != 1 {
			t.Errorf("snapshot after the API's changes: %+v", s)
		}
		var sh rules.Shape
		e.want(e.do("PUT", "/api/v1/guard/shaping/office", ops, map[string]any{"nets": []string{"198.51.100.0/24"}, "bandwidth": "5MiB", "reason": "contract"}), 201).json(t, &sh)
		if sh.Bandwidth != 5<<20 || sh.Origin != "user:ops1" {
			t.Errorf("shape = %+v", sh)
		}
		var sh2 rules.Shape
		e.want(e.do("PUT", "/api/v1/guard/shaping/office", ops, map[string]any{"accounts": []string{"acme"}, "sites": []string{"shop.example"}, "bandwidth": 1048576}), 200).json(t, &sh2)
		if sh2.Bandwidth != 1<<20 || len(sh2.Nets) != 0 || sh2.Accounts[0] != "acme" || sh2.Reason != "" {
			t.Errorf("replaced shape = %+v", sh2)
		}
		if s := rs.Snapshot().Shapes; len(s) != 1 || s[0].Bandwidth != 1<<20 || len(s[0].Nets) != 0 {
			t.Errorf("snapshot after the replacement: %+v", s)
		}

		var list api.List[rules.Entry]
		e.want(e.do("GET", "/api/v1/guard/lists?list=deny", viewer, nil), 200).json(t, &list)
		if len(list.Items) != 1 || list.Items[0].List != "deny" {
			t.Errorf("viewer lists %+v", list.Items)
		}
		var shapes api.List[rules.Shape]
		e.want(e.do("GET", "/api/v1/guard/shaping", viewer, nil), 200).json(t, &shapes)
		if len(shapes.Items) != 1 || shapes.Items[0].Name != "office" {
			t.Errorf("viewer lists shapes %+v", shapes.Items)
		}
		for _, c := range []struct {
			who, token, method, path string
			body                     any
			status                   int
			field                    string
		}{
			{"viewer", viewer, "POST", "/api/v1/guard/lists", map[string]any{"list": "deny", "net": "203.0.113.1", "reason": "x"}, 403, ""},
			{"viewer", viewer, "PUT", "/api/v1/guard/shaping/x", map[string]any{"bandwidth": "1MiB"}, 403, ""},
			{"viewer", viewer, "DELETE", "/api/v1/guard/shaping/office", nil, 403, ""},
			{"no guard grant", other, "GET", "/api/v1/guard/lists", nil, 403, ""},
			{"no guard grant", other, "GET", "/api/v1/guard/shaping", nil, 403, ""},
			{"bad list", ops, "POST", "/api/v1/guard/lists", map[string]any{"list": "block", "net": "203.0.113.1", "reason": "x"}, 400, "list"},
			{"bad net", ops, "POST", "/api/v1/guard/lists", map[string]any{"list": "deny", "net": "example.com", "reason": "x"}, 400, "net"},
			{"bad duration", ops, "POST", "/api/v1/guard/lists", map[string]any{"list": "deny", "net": "203.0.113.1", "reason": "x", "duration": "-1h"}, 400, "duration"},
			{"no reason", ops, "POST", "/api/v1/guard/lists", map[string]any{"list": "deny", "net": "203.0.113.1"}, 400, "reason"},
			{"list filter", ops, "GET", "/api/v1/guard/lists?list=block", nil, 400, "list"},
			{"remove: no list", ops, "DELETE", "/api/v1/guard/lists?net=203.0.113.1", nil, 400, "list"},
			{"remove: not there", ops, "DELETE", "/api/v1/guard/lists?list=deny&net=203.0.113.1", nil, 404, ""},
			{"shape: bad name", ops, "PUT", "/api/v1/guard/shaping/Bad%20Name", map[string]any{"bandwidth": "1MiB"}, 400, "name"},
			{"shape: no bandwidth", ops, "PUT", "/api/v1/guard/shaping/x", map[string]any{"nets": []string{"203.0.113.0/24"}}, 400, "bandwidth"},
			{"shape: bad size", ops, "PUT", "/api/v1/guard/shaping/x", map[string]any{"bandwidth": "fast"}, 400, ""},
			{"shape: bad net", ops, "PUT", "/api/v1/guard/shaping/x", map[string]any{"nets": []string{"203.0.113.0/24", "nope"}, "bandwidth": "1MiB"}, 400, "nets[1]"},
			{"shape: unknown site", ops, "PUT", "/api/v1/guard/shaping/x", map[string]any{"sites": []string{"other.example"}, "bandwidth": "1MiB"}, 400, "sites[0]"},
			{"shape: control in account", ops, "PUT", "/api/v1/guard/shaping/x", map[string]any{"accounts": []string{"a\u0000b"}, "bandwidth": "1MiB"}, 400, "accounts[0]"},
			{"shape: remove unknown", ops, "DELETE", "/api/v1/guard/shaping/x", nil, 404, ""},
		} {
			r := e.do(c.method, c.path, c.token, c.body)
			if r.Status != c.status || c.field != "" && r.errField() != c.field {
				t.Errorf("%s: %s %s: %d %s, want %d naming %q", c.who, c.method, c.path, r.Status, r.Body, c.status, c.field)
			}
		}
		if l, _ := rs.Entries(context.Background(), "", true); len(l) != 2 {
			t.Errorf("bad input stored entries: %d", len(l))
		}
		if s := rs.Shapes(); len(s) != 1 {
			t.Errorf("bad input stored rules: %d", len(s))
		}
		e.want(e.do("DELETE", "/api/v1/guard/lists?list=allow&net=198.51.100.0/24", ops, nil), 200)
		e.want(e.do("DELETE", "/api/v1/guard/shaping/office", ops, nil), 200)
		if s := rs.Snapshot(); len(s.Allow) != 0 || len(s.Shapes) != 0 {
			t.Errorf("snapshot after removal: %+v", s)
		}
		for action, want := range map[string]int{"guard.list.add": 2, "guard.list.remove": 1, "guard.shape.set": 2, "guard.shape.remove": 1} {
			if n := e.auditCount(action, "ok"); n != want {
				t.Errorf("audited %s: %d, want %d", action, n, want)
			}
		}
	}, append(migrations(), rules.Migrations)...)
}
