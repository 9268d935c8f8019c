package access

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func allow(m Module, l Level, scope string) Grant {
	return Grant{Effect: EffectAllow, Module: m, Level: l, Scope: MustParseSelector(scope)}
}

func deny(m Module, l Level, scope string) Grant {
	return Grant{Effect: EffectDeny, Module: m, Level: l, Scope: MustParseSelector(scope)}
}

func until(g Grant, at time.Time) Grant { g.ExpiresAt = at; return g }

func coll(m Module, l Level) Request { return Request{Module: m, Level: l} }

func global(m Module, l Level) Request { return Request{Module: m, Level: l, Global: true} }

func res(m Module, l Level, tags map[string]string) Request {
	return Request{Module: m, Level: l, Tags: tags, Resource: true}
}

var (
	blue = map[string]string{"team": "blue"}
	red  = map[string]string{"team": "red"}
)

// TestDecidePrecedence is the table of precedence rules: deny beats allow,
// what a deny at each level removes, scoped against unscoped, expiry,
// ModuleAll, deny by default and collection against resource requests.
func TestDecidePrecedence(t *testing.T) {
	tests := []struct {
		name   string
		grants []Grant
		req    Request
		want   bool
		// decider is the index in grants of the grant that must decide, or
		// -1 when none must (default deny).
		decider int
	}{
		{"no grants: denied", nil, coll(ModuleBackups, LevelRead), false, -1},
		{"no grants: resource denied", nil, res(ModuleBackups, LevelRead, blue), false, -1},
		{"allow read permits read", []Grant{allow(ModuleBackups, LevelRead, "*")}, coll(ModuleBackups, LevelRead), true, 0},
		{"allow read refuses operate", []Grant{allow(ModuleBackups, LevelRead, "*")}, coll(ModuleBackups, LevelOperate), false, -1},
		{"allow operate permits read", []Grant{allow(ModuleBackups, LevelOperate, "*")}, coll(ModuleBackups, LevelRead), true, 0},
		{"allow operate refuses write", []Grant{allow(ModuleBackups, LevelOperate, "*")}, coll(ModuleBackups, LevelWrite), false, -1},
		{"allow write permits operate", []Grant{allow(ModuleBackups, LevelWrite, "*")}, coll(ModuleBackups, LevelOperate), true, 0},
		{"allow on another module does not count", []Grant{allow(ModuleGuard, LevelWrite, "*")}, coll(ModuleBackups, LevelRead), false, -1},

		{"deny beats allow (deny last)", []Grant{allow(ModuleBackups, LevelWrite, "*"), deny(ModuleBackups, LevelRead, "*")}, coll(ModuleBackups, LevelRead), false, 1},
		{"deny beats allow (deny first)", []Grant{deny(ModuleBackups, LevelRead, "*"), allow(ModuleBackups, LevelWrite, "*")}, coll(ModuleBackups, LevelRead), false, 0},
		{"deny read forbids write too", []Grant{allow(ModuleBackups, LevelWrite, "*"), deny(ModuleBackups, LevelRead, "*")}, coll(ModuleBackups, LevelWrite), false, 1},
		{"deny write leaves read", []Grant{allow(ModuleBackups, LevelWrite, "*"), deny(ModuleBackups, LevelWrite, "*")}, coll(ModuleBackups, LevelRead), true, 0},
		{"deny write leaves operate", []Grant{allow(ModuleBackups, LevelWrite, "*"), deny(ModuleBackups, LevelWrite, "*")}, coll(ModuleBackups, LevelOperate), true, 0},
		{"deny write forbids write", []Grant{allow(ModuleBackups, LevelWrite, "*"), deny(ModuleBackups, LevelWrite, "*")}, coll(ModuleBackups, LevelWrite), false, 1},
		{"deny operate forbids operate", []Grant{allow(ModuleBackups, LevelWrite, "*"), deny(ModuleBackups, LevelOperate, "*")}, coll(ModuleBackups, LevelOperate), false, 1},
		{"deny operate leaves read", []Grant{allow(ModuleBackups, LevelWrite, "*"), deny(ModuleBackups, LevelOperate, "*")}, coll(ModuleBackups, LevelRead), true, 0},
		{"deny on another module does not count", []Grant{allow(ModuleBackups, LevelWrite, "*"), deny(ModuleBilling, LevelRead, "*")}, coll(ModuleBackups, LevelWrite), true, 0},
		{"deny alone still denies", []Grant{deny(ModuleBackups, LevelWrite, "*")}, coll(ModuleBackups, LevelRead), false, -1},

		{"ModuleAll allow covers audit", []Grant{allow(ModuleAll, LevelRead, "*")}, coll(ModuleAudit, LevelRead), true, 0},
		{"ModuleAll allow covers billing", []Grant{allow(ModuleAll, LevelWrite, "*")}, coll(ModuleBilling, LevelWrite), true, 0},
		{"ModuleAll deny beats module allow", []Grant{allow(ModuleGuard, LevelWrite, "*"), deny(ModuleAll, LevelWrite, "*")}, coll(ModuleGuard, LevelWrite), false, 1},
		{"module deny beats ModuleAll allow", []Grant{allow(ModuleAll, LevelWrite, "*"), deny(ModuleBilling, LevelRead, "*")}, coll(ModuleBilling, LevelRead), false, 1},
		{"module deny leaves other modules of ModuleAll", []Grant{allow(ModuleAll, LevelWrite, "*"), deny(ModuleBilling, LevelRead, "*")}, coll(ModuleAccess, LevelWrite), true, 0},

		{"scoped allow, matching resource", []Grant{allow(ModuleBackups, LevelWrite, "team=blue")}, res(ModuleBackups, LevelWrite, blue), true, 0},
		{"scoped allow, other resource", []Grant{allow(ModuleBackups, LevelWrite, "team=blue")}, res(ModuleBackups, LevelWrite, red), false, -1},
		{"scoped allow, untagged resource", []Grant{allow(ModuleBackups, LevelWrite, "team=blue")}, res(ModuleBackups, LevelRead, nil), false, -1},
		{"scoped allow opens the collection", []Grant{allow(ModuleBackups, LevelWrite, "team=blue")}, coll(ModuleBackups, LevelWrite), true, 0},
		{"collection ignores request tags", []Grant{allow(ModuleBackups, LevelRead, "team=blue")}, Request{Module: ModuleBackups, Level: LevelRead, Tags: red}, true, 0},
		{"scoped deny, matching resource", []Grant{allow(ModuleBackups, LevelWrite, "*"), deny(ModuleBackups, LevelRead, "team=red")}, res(ModuleBackups, LevelRead, red), false, 1},
		{"scoped deny, other resource", []Grant{allow(ModuleBackups, LevelWrite, "*"), deny(ModuleBackups, LevelRead, "team=red")}, res(ModuleBackups, LevelRead, blue), true, 0},
		{"scoped deny does not close the collection", []Grant{allow(ModuleBackups, LevelWrite, "*"), deny(ModuleBackups, LevelRead, "team=red")}, coll(ModuleBackups, LevelRead), true, 0},
		{"unscoped deny closes the collection", []Grant{allow(ModuleBackups, LevelWrite, "team=blue"), deny(ModuleBackups, LevelRead, "*")}, coll(ModuleBackups, LevelRead), false, 1},
		{"unscoped deny beats scoped allow on its resource", []Grant{allow(ModuleBackups, LevelWrite, "team=blue"), deny(ModuleBackups, LevelWrite, "*")}, res(ModuleBackups, LevelWrite, blue), false, 1},
		{"deny with != scope applies to untagged resource", []Grant{allow(ModuleBackups, LevelWrite, "*"), deny(ModuleBackups, LevelWrite, "env!=dev")}, res(ModuleBackups, LevelWrite, nil), false, 1},
		{"deny with != scope spares the excluded value", []Grant{allow(ModuleBackups, LevelWrite, "*"), deny(ModuleBackups, LevelWrite, "env!=dev")}, res(ModuleBackups, LevelWrite, map[string]string{"env": "dev"}), true, 0},

		{"expired allow ignored", []Grant{until(allow(ModuleBackups, LevelRead, "*"), t0.Add(-time.Second))}, coll(ModuleBackups, LevelRead), false, -1},
		{"allow expiring exactly now ignored", []Grant{until(allow(ModuleBackups, LevelRead, "*"), t0)}, coll(ModuleBackups, LevelRead), false, -1},
		{"allow expiring later counts", []Grant{until(allow(ModuleBackups, LevelRead, "*"), t0.Add(time.Microsecond))}, coll(ModuleBackups, LevelRead), true, 0},
		{"expired deny ignored", []Grant{allow(ModuleBackups, LevelRead, "*"), until(deny(ModuleBackups, LevelRead, "*"), t0)}, coll(ModuleBackups, LevelRead), true, 0},
		{"live deny still beats", []Grant{allow(ModuleBackups, LevelRead, "*"), until(deny(ModuleBackups, LevelRead, "*"), t0.Add(time.Hour))}, coll(ModuleBackups, LevelRead), false, 1},
		{"expired allow does not hide a live one", []Grant{until(allow(ModuleBackups, LevelWrite, "*"), t0), allow(ModuleBackups, LevelRead, "*")}, coll(ModuleBackups, LevelRead), true, 1},

		{"request on ModuleAll is malformed", []Grant{allow(ModuleAll, LevelWrite, "*")}, coll(ModuleAll, LevelRead), false, -1},
		{"request on unknown module", []Grant{allow(ModuleAll, LevelWrite, "*")}, coll("servers", LevelRead), false, -1},
		{"request at level 0", []Grant{allow(ModuleAll, LevelWrite, "*")}, coll(ModuleBackups, 0), false, -1},
		{"request above write", []Grant{allow(ModuleAll, LevelWrite, "*")}, coll(ModuleBackups, 4), false, -1},
		{"corrupt deny at level 0 fails closed", []Grant{allow(ModuleAll, LevelWrite, "*"), {Effect: EffectDeny, Module: ModuleBackups}}, coll(ModuleBackups, LevelRead), false, 1},
		{"grant with unknown effect ignored", []Grant{{Effect: "maybe", Module: ModuleBackups, Level: LevelWrite}}, coll(ModuleBackups, LevelRead), false, -1},

		{"global: unscoped allow applies", []Grant{allow(ModuleAccess, LevelWrite, "*")}, global(ModuleAccess, LevelWrite), true, 0},
		{"global: scoped allow does not reach", []Grant{allow(ModuleAccess, LevelWrite, "team=blue")}, global(ModuleAccess, LevelWrite), false, -1},
		{"global: scoped deny applies whatever its scope", []Grant{allow(ModuleAccess, LevelWrite, "*"), deny(ModuleAccess, LevelWrite, "team=red")}, global(ModuleAccess, LevelWrite), false, 1},
		{"global: scoped deny below the level still forbids", []Grant{allow(ModuleAll, LevelWrite, "*"), deny(ModuleAudit, LevelRead, "env=prod")}, global(ModuleAudit, LevelRead), false, 1},
		{"global: deny above the level leaves read", []Grant{allow(ModuleAll, LevelWrite, "*"), deny(ModuleAudit, LevelWrite, "env=prod")}, global(ModuleAudit, LevelRead), true, 0},
		{"global: beats Resource", []Grant{allow(ModuleAccess, LevelWrite, "team=blue")}, Request{Module: ModuleAccess, Level: LevelWrite, Resource: true, Tags: blue, Global: true}, false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.grants, t0, tt.req)
			if d.Allowed != tt.want {
				t.Errorf("Allowed = %v, want %v (reason %q)", d.Allowed, tt.want, d.Reason)
			}
			var want *Grant
			if tt.decider >= 0 {
				want = &tt.grants[tt.decider]
			}
			if diff := cmp.Diff(want, d.Grant); diff != "" {
				t.Errorf("deciding grant (-want +got):\n%s", diff)
			}
			if d.Reason == "" {
				t.Error("Reason is empty")
			}
		})
	}
}

func TestDecideReasons(t *testing.T) {
	g := allow(ModuleBackups, LevelWrite, "*")
	g.Role = "ops"
	dn := deny(ModuleBilling, LevelRead, "*")
	dn.Role = "seniors"
	tests := []struct {
		name   string
		grants []Grant
		req    Request
		want   string
	}{
		{"allow", []Grant{g}, coll(ModuleBackups, LevelOperate), `allowed by role "ops": allow backups write on all resources`},
		{"deny", []Grant{g, dn}, coll(ModuleBilling, LevelWrite), `denied by role "seniors": deny billing read on all resources`},
		{"default", nil, coll(ModuleGuard, LevelRead), "no grant allows read on guard"},
		{"default resource", nil, res(ModuleGuard, LevelRead, map[string]string{"team": "red", "env": "prod"}), "no grant allows read on guard for a resource tagged {env=prod,team=red}"},
		{"expiry shown", []Grant{until(allow(ModuleGuard, LevelRead, "team=blue"), t0.Add(time.Hour))}, coll(ModuleGuard, LevelRead), "allowed by allow guard read on team=blue until 2026-03-01T13:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decide(tt.grants, t0, tt.req).Reason; got != tt.want {
				t.Errorf("Reason = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecideDoesNotAlias(t *testing.T) {
	grants := []Grant{allow(ModuleBackups, LevelRead, "*")}
	d := Decide(grants, t0, coll(ModuleBackups, LevelRead))
	d.Grant.Level = LevelWrite
	if grants[0].Level != LevelRead {
		t.Errorf("changing Decision.Grant changed the caller's grant: %v", grants[0])
	}
}

func TestPrincipalAuthorize(t *testing.T) {
	p := &Principal{UserID: 7, Username: "ann", Roles: []string{"ops"}, Grants: []Grant{
		allow(ModuleBackups, LevelOperate, "*"), deny(ModuleBackups, LevelOperate, "frozen"),
	}}
	if err := p.Authorize(t0, coll(ModuleBackups, LevelOperate)); err != nil {
		t.Errorf("operate backups: %v, want nil", err)
	}
	tests := []struct {
		name string
		p    *Principal
		req  Request
		want []string
	}{
		{"level too high", p, coll(ModuleBackups, LevelWrite), []string{`user "ann"`, "may not write backups", "no grant allows write on backups", "ask an administrator"}},
		{"explicit deny", p, res(ModuleBackups, LevelOperate, map[string]string{"frozen": "yes"}), []string{"may not operate backups", "denied by deny backups operate on frozen"}},
		{"token", &Principal{Username: "ann", TokenID: "tok_1"}, coll(ModuleAudit, LevelRead), []string{`user "ann" (API token tok_1)`, "may not read audit"}},
		{"nil principal", nil, coll(ModuleAudit, LevelRead), []string{"anonymous caller may not read audit", "not authenticated"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Authorize(t0, tt.req)
			if !errors.Is(err, ErrDenied) {
				t.Fatalf("Authorize = %v, want ErrDenied", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestPrincipalCan(t *testing.T) {
	p := &Principal{Grants: []Grant{allow(ModuleGuard, LevelWrite, "team=blue"), deny(ModuleGuard, LevelWrite, "prod")}}
	tests := []struct {
		m    Module
		l    Level
		want bool
	}{
		{ModuleGuard, LevelRead, true},
		{ModuleGuard, LevelWrite, true}, // scoped deny filters items, not the area
		{ModuleBackups, LevelRead, false},
	}
	for _, tt := range tests {
		if got := p.Can(t0, tt.m, tt.l); got != tt.want {
			t.Errorf("Can(%s, %s) = %v, want %v", tt.m, tt.l, got, tt.want)
		}
	}
	var nobody *Principal
	if nobody.Can(t0, ModuleGuard, LevelRead) {
		t.Error("nil principal Can read guard, want false")
	}
}

func TestLevelAndModule(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Level
	}{{"read", LevelRead}, {"operate", LevelOperate}, {"write", LevelWrite}} {
		got, err := ParseLevel(tt.in)
		if err != nil || got != tt.want || got.String() != tt.in {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if !(LevelRead < LevelOperate && LevelOperate < LevelWrite) {
		t.Error("levels are not ordered read < operate < write")
	}
	for _, bad := range []string{"", "READ", "admin", "rw"} {
		if _, err := ParseLevel(bad); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "want read, operate or write") {
			t.Errorf("ParseLevel(%q) err = %v, want ErrInvalid listing the levels", bad, err)
		}
	}
	b, err := json.Marshal(map[string]Level{"l": LevelOperate})
	if err != nil || string(b) != `{"l":"operate"}` {
		t.Errorf("json = %s, %v; want {\"l\":\"operate\"}", b, err)
	}
	var l Level
	if err := json.Unmarshal([]byte(`"write"`), &l); err != nil || l != LevelWrite {
		t.Errorf("unmarshal write = %v, %v", l, err)
	}
	if err := json.Unmarshal([]byte(`3`), &l); err == nil {
		t.Error("unmarshal of a number succeeded, want an error")
	}
	if _, err := json.Marshal(Level(0)); err == nil {
		t.Error("marshal of level 0 succeeded, want an error")
	}
	if got := Level(9).String(); got != "level(9)" {
		t.Errorf("Level(9).String() = %q", got)
	}
	for _, m := range append(Modules(), ModuleAll) {
		if got, err := ParseModule(string(m)); err != nil || got != m {
			t.Errorf("ParseModule(%q) = %q, %v", m, got, err)
		}
	}
	if len(Modules()) != 9 {
		t.Errorf("len(Modules()) = %d, want 9", len(Modules()))
	}
	if _, err := ParseModule("servers"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseModule(servers) err = %v, want ErrInvalid", err)
	}
	if _, err := ParseEffect("permit"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseEffect(permit) err = %v, want ErrInvalid", err)
	}
}

func TestRoleNames(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"a", true}, {"junior-sysadmins", true}, {"team_blue2", true}, {"a" + strings.Repeat("b", 62), true},
		{"", false}, {"A", false}, {"1team", false}, {"-x", false}, {"a" + strings.Repeat("b", 63), false},
		{"team blue", false}, {"team.blue", false}, {"tëam", false},
	} {
		if got := ValidRoleName(tt.name); got != tt.want {
			t.Errorf("ValidRoleName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
