package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// infra are the modules that act on servers, as opposed to the account
// itself (access, audit, billing).
var infra = []Module{ModuleBackups, ModuleContinuity, ModuleGuard, ModuleIntegrity, ModuleMonitoring, ModulePosture}

func onInfra(effect Effect, l Level, scope string) []Grant {
	var out []Grant
	for _, m := range infra {
		out = append(out, Grant{Effect: effect, Module: m, Level: l, Scope: MustParseSelector(scope)})
	}
	return out
}

// TestSeedScenarios expresses the delegation examples of the access-control
// research (seed 003) as roles built through the Store, and checks concrete
// requests against them on both engines:
//
//   - accounting sees billing, and edits no server or network resource;
//   - junior sysadmins start and stop, but create or delete nothing;
//   - senior sysadmins manage everything but cannot reach billing;
//   - the operations team handles firewall policy (guard) but not servers;
//   - a team has full access to its tagged servers and nothing else.
func TestSeedScenarios(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, c := newStore(t, db)
		roles := []Role{
			{Name: "accounting", Grants: []Grant{{Module: ModuleBilling, Level: LevelWrite}}},
			{Name: "junior-sysadmins", Grants: onInfra(EffectAllow, LevelOperate, "*")},
			{Name: "senior-sysadmins", Require2FA: true, Grants: []Grant{
				{Module: ModuleAll, Level: LevelWrite},
				{Effect: EffectDeny, Module: ModuleBilling, Level: LevelRead},
			}},
			{Name: "network-ops", Grants: []Grant{{Module: ModuleGuard, Level: LevelWrite}, {Module: ModuleMonitoring, Level: LevelRead}}},
			{Name: "team-blue", Grants: onInfra(EffectAllow, LevelWrite, "team=blue")},
		}
		for _, r := range roles {
			if _, err := s.CreateRole(ctx, r); err != nil {
				t.Fatalf("CreateRole(%s): %v", r.Name, err)
			}
		}
		const (
			accountant = iota + 1
			junior
			senior
			netops
			bluedev
			seniorBilling // senior-sysadmins plus the billing role: the deny still wins
			juniorBlue    // junior everywhere, full access on blue
			contractor    // senior for one day only
		)
		bind := map[int64][]RoleBinding{
			accountant:    {{Role: "accounting"}},
			junior:        {{Role: "junior-sysadmins"}},
			senior:        {{Role: "senior-sysadmins"}},
			netops:        {{Role: "network-ops"}},
			bluedev:       {{Role: "team-blue"}},
			seniorBilling: {{Role: "senior-sysadmins"}, {Role: RoleBilling}},
			juniorBlue:    {{Role: "junior-sysadmins"}, {Role: "team-blue"}},
			contractor:    {{Role: "senior-sysadmins", ExpiresAt: t0.Add(24 * time.Hour)}},
		}
		for id, b := range bind {
			if err := s.BindRoles(ctx, id, b); err != nil {
				t.Fatalf("BindRoles(%d): %v", id, err)
			}
		}
		blueSrv := map[string]string{"team": "blue", "env": "prod"}
		redSrv := map[string]string{"team": "red"}
		tests := []struct {
			name  string
			user  int64
			after time.Duration // clock offset from t0
			req   Request
			want  bool
			why   string // part of the denial message
		}{
			{"accounting reads billing", accountant, 0, coll(ModuleBilling, LevelRead), true, ""},
			{"accounting edits billing", accountant, 0, coll(ModuleBilling, LevelWrite), true, ""},
			{"accounting cannot see backups", accountant, 0, coll(ModuleBackups, LevelRead), false, "no grant allows read on backups"},
			{"accounting cannot edit a server", accountant, 0, res(ModuleContinuity, LevelWrite, blueSrv), false, "no grant allows write on continuity"},
			{"accounting cannot touch guard", accountant, 0, coll(ModuleGuard, LevelWrite), false, "no grant"},

			{"junior starts a backup", junior, 0, res(ModuleBackups, LevelOperate, redSrv), true, ""},
			{"junior stops a continuity job", junior, 0, coll(ModuleContinuity, LevelOperate), true, ""},
			{"junior reads monitoring", junior, 0, coll(ModuleMonitoring, LevelRead), true, ""},
			{"junior cannot create a backup policy", junior, 0, coll(ModuleBackups, LevelWrite), false, "no grant allows write on backups"},
			{"junior cannot delete a guard rule", junior, 0, res(ModuleGuard, LevelWrite, blueSrv), false, "no grant"},
			{"junior cannot see billing", junior, 0, coll(ModuleBilling, LevelRead), false, "no grant"},
			{"junior cannot manage users", junior, 0, coll(ModuleAccess, LevelWrite), false, "no grant"},

			{"senior creates backup policies", senior, 0, coll(ModuleBackups, LevelWrite), true, ""},
			{"senior deletes a red server's guard rule", senior, 0, res(ModuleGuard, LevelWrite, redSrv), true, ""},
			{"senior manages users", senior, 0, coll(ModuleAccess, LevelWrite), true, ""},
			{"senior reads audit", senior, 0, coll(ModuleAudit, LevelRead), true, ""},
			{"senior cannot read billing", senior, 0, coll(ModuleBilling, LevelRead), false, `denied by role "senior-sysadmins": deny billing read`},
			{"senior cannot change billing", senior, 0, coll(ModuleBilling, LevelWrite), false, "deny billing read"},
			{"senior+billing role still cannot read billing", seniorBilling, 0, coll(ModuleBilling, LevelRead), false, "deny billing read"},
			{"senior+billing role still manages backups", seniorBilling, 0, coll(ModuleBackups, LevelWrite), true, ""},

			{"netops edits firewall policy", netops, 0, coll(ModuleGuard, LevelWrite), true, ""},
			{"netops reads monitoring", netops, 0, coll(ModuleMonitoring, LevelRead), true, ""},
			{"netops cannot see servers' backups", netops, 0, coll(ModuleBackups, LevelRead), false, "no grant"},
			{"netops cannot restart a continuity job", netops, 0, coll(ModuleContinuity, LevelOperate), false, "no grant"},

			{"blue team writes its server", bluedev, 0, res(ModuleBackups, LevelWrite, blueSrv), true, ""},
			{"blue team runs integrity on its server", bluedev, 0, res(ModuleIntegrity, LevelOperate, blueSrv), true, ""},
			{"blue team lists backups (filtered later)", bluedev, 0, coll(ModuleBackups, LevelRead), true, ""},
			{"blue team cannot read a red server", bluedev, 0, res(ModuleBackups, LevelRead, redSrv), false, "for a resource tagged {team=red}"},
			{"blue team cannot read an untagged server", bluedev, 0, res(ModuleGuard, LevelRead, nil), false, "no tags"},
			{"blue team cannot see billing", bluedev, 0, coll(ModuleBilling, LevelRead), false, "no grant"},
			{"blue team cannot manage users", bluedev, 0, coll(ModuleAccess, LevelRead), false, "no grant"},

			{"junior+blue writes blue", juniorBlue, 0, res(ModuleGuard, LevelWrite, blueSrv), true, ""},
			{"junior+blue only operates red", juniorBlue, 0, res(ModuleGuard, LevelOperate, redSrv), true, ""},
			{"junior+blue cannot write red", juniorBlue, 0, res(ModuleGuard, LevelWrite, redSrv), false, "no grant allows write on guard"},

			{"contractor writes while the binding lasts", contractor, 23 * time.Hour, coll(ModuleBackups, LevelWrite), true, ""},
			{"contractor loses everything when it expires", contractor, 24 * time.Hour, coll(ModuleBackups, LevelRead), false, "no grant"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c.t = t0.Add(tt.after)
				p, err := s.Principal(ctx, tt.user, fmt.Sprintf("user%d", tt.user), "", nil)
				if err != nil {
					t.Fatal(err)
				}
				err = p.Authorize(c.t, tt.req)
				if got := err == nil; got != tt.want {
					t.Fatalf("Authorize(%s) = %v, want allowed=%v", tt.req, err, tt.want)
				}
				if err == nil {
					return
				}
				if !errors.Is(err, ErrDenied) {
					t.Errorf("error %v does not wrap ErrDenied", err)
				}
				if !strings.Contains(err.Error(), tt.why) {
					t.Errorf("error %q does not say %q", err, tt.why)
				}
			})
		}
		c.t = t0
		// Senior sysadmins must use a second factor; the others need not.
		for id, want := range map[int64]bool{senior: true, contractor: true, junior: false, bluedev: false} {
			if got, err := s.Requires2FA(ctx, id); err != nil || got != want {
				t.Errorf("Requires2FA(user %d) = %v, %v; want %v", id, got, err, want)
			}
		}
	}, Migrations)
}
