package api_test

import (
	"context"
	"net/netip"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/api"
	"github.com/bulwarkhq/bulwark/internal/detect"
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
