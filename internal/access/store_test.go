package access

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// clock is a settable time source; tests move it instead of sleeping.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newStore(t *testing.T, db *store.DB) (*Store, *clock) {
	t.Helper()
	c := &clock{t: t0}
	s := NewStore(db, c.now)
	if err := s.EnsureBuiltins(context.Background()); err != nil {
		t.Fatalf("EnsureBuiltins: %v", err)
	}
	return s, c
}

// ignoreIDs compares grants by content.
var ignoreIDs = cmpopts.IgnoreFields(Grant{}, "ID")

func TestStoreRoles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, c := newStore(t, db)

		in := Role{Name: "team-blue", Description: "Blue team", Require2FA: true, Grants: []Grant{
			{Module: ModuleBackups, Level: LevelWrite, Scope: MustParseSelector("team=blue")},
			{Effect: EffectDeny, Module: ModuleBackups, Level: LevelWrite, Scope: MustParseSelector("frozen"), ExpiresAt: t0.Add(48 * time.Hour)},
		}}
		created, err := s.CreateRole(ctx, in)
		if err != nil {
			t.Fatalf("CreateRole: %v", err)
		}
		want := Role{Name: "team-blue", Description: "Blue team", Require2FA: true, CreatedAt: t0, UpdatedAt: t0, Grants: []Grant{
			{Role: "team-blue", Effect: EffectAllow, Module: ModuleBackups, Level: LevelWrite, Scope: MustParseSelector("team=blue")},
			{Role: "team-blue", Effect: EffectDeny, Module: ModuleBackups, Level: LevelWrite, Scope: MustParseSelector("frozen"), ExpiresAt: t0.Add(48 * time.Hour)},
		}}
		if diff := cmp.Diff(want, created, ignoreIDs); diff != "" {
			t.Errorf("CreateRole result (-want +got):\n%s", diff)
		}
		if created.Grants[0].ID == 0 || created.Grants[1].ID <= created.Grants[0].ID {
			t.Errorf("grant IDs = %d, %d; want increasing non-zero IDs", created.Grants[0].ID, created.Grants[1].ID)
		}
		got, err := s.GetRole(ctx, "team-blue")
		if err != nil {
			t.Fatalf("GetRole: %v", err)
		}
		if diff := cmp.Diff(created, got); diff != "" {
			t.Errorf("GetRole (-created +got):\n%s", diff)
		}

		// Empty role, then the listing: built-ins plus ours, sorted.
		if _, err := s.CreateRole(ctx, Role{Name: "a-empty"}); err != nil {
			t.Fatalf("CreateRole(a-empty): %v", err)
		}
		list, err := s.ListRoles(ctx)
		if err != nil {
			t.Fatalf("ListRoles: %v", err)
		}
		var names []string
		for _, r := range list {
			names = append(names, r.Name)
		}
		if diff := cmp.Diff([]string{"a-empty", "admin", "auditor", "billing", "operator", "team-blue"}, names); diff != "" {
			t.Errorf("ListRoles names (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(created, list[5]); diff != "" {
			t.Errorf("ListRoles team-blue (-want +got):\n%s", diff)
		}
		if list[0].Grants == nil || len(list[0].Grants) != 0 {
			t.Errorf("empty role grants = %#v, want an empty non-nil slice", list[0].Grants)
		}

		// UpdateRole: each field alone, then nothing.
		c.advance(time.Minute)
		desc := "Blue team servers"
		u, err := s.UpdateRole(ctx, "team-blue", &desc, nil)
		if err != nil {
			t.Fatalf("UpdateRole(description): %v", err)
		}
		if u.Description != desc || !u.Require2FA || !u.UpdatedAt.Equal(t0.Add(time.Minute)) || !u.CreatedAt.Equal(t0) {
			t.Errorf("after description update: %+v", u)
		}
		off := false
		if u, err = s.UpdateRole(ctx, "team-blue", nil, &off); err != nil || u.Require2FA || u.Description != desc {
			t.Errorf("UpdateRole(require2FA=false) = %+v, %v", u, err)
		}
		if u, err = s.UpdateRole(ctx, "team-blue", nil, nil); err != nil || u.Description != desc {
			t.Errorf("UpdateRole(nil, nil) = %+v, %v", u, err)
		}

		// AddGrant / RemoveGrant.
		g, err := s.AddGrant(ctx, "team-blue", Grant{Module: ModuleMonitoring, Level: LevelOperate})
		if err != nil {
			t.Fatalf("AddGrant: %v", err)
		}
		if g.ID == 0 || g.Role != "team-blue" || g.Effect != EffectAllow || !g.Scope.All() {
			t.Errorf("AddGrant = %+v", g)
		}
		if err := s.RemoveGrant(ctx, "team-blue", created.Grants[0].ID); err != nil {
			t.Fatalf("RemoveGrant: %v", err)
		}
		got, err = s.GetRole(ctx, "team-blue")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]Grant{created.Grants[1], g}, got.Grants); diff != "" {
			t.Errorf("grants after add+remove (-want +got):\n%s", diff)
		}
		if err := s.RemoveGrant(ctx, "team-blue", created.Grants[0].ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("RemoveGrant twice: %v, want ErrNotFound", err)
		}
		// A grant of another role cannot be removed through this one.
		other, err := s.CreateRole(ctx, Role{Name: "other", Grants: []Grant{{Module: ModuleGuard, Level: LevelRead}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveGrant(ctx, "team-blue", other.Grants[0].ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("RemoveGrant of another role's grant: %v, want ErrNotFound", err)
		}
		if r, _ := s.GetRole(ctx, "other"); len(r.Grants) != 1 {
			t.Errorf("other role lost its grant: %+v", r)
		}

		// DeleteRole also removes bindings.
		if err := s.BindRoles(ctx, 5, []RoleBinding{{Role: "other"}, {Role: "team-blue"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRole(ctx, "team-blue"); err != nil {
			t.Fatalf("DeleteRole: %v", err)
		}
		if _, err := s.GetRole(ctx, "team-blue"); !errors.Is(err, ErrNotFound) {
			t.Errorf("GetRole after delete: %v, want ErrNotFound", err)
		}
		b, err := s.Bindings(ctx, 5)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]RoleBinding{{Role: "other", CreatedAt: t0.Add(time.Minute)}}, b); diff != "" {
			t.Errorf("bindings after DeleteRole (-want +got):\n%s", diff)
		}
		// The name is free again.
		if _, err := s.CreateRole(ctx, Role{Name: "team-blue"}); err != nil {
			t.Errorf("re-create deleted role: %v", err)
		}
	}, Migrations)
}

func TestStoreErrors(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		if _, err := s.CreateRole(ctx, Role{Name: "dup"}); err != nil {
			t.Fatal(err)
		}
		admin, err := s.GetRole(ctx, RoleAdmin)
		if err != nil {
			t.Fatal(err)
		}
		desc := "x"
		tests := []struct {
			name    string
			call    func() error
			want    error
			wantMsg string
		}{
			{"duplicate role", func() error { _, err := s.CreateRole(ctx, Role{Name: "dup"}); return err }, ErrConflict, `role "dup" already exists`},
			{"builtin name", func() error { _, err := s.CreateRole(ctx, Role{Name: "admin"}); return err }, ErrBuiltin, "reserved"},
			{"bad name", func() error { _, err := s.CreateRole(ctx, Role{Name: "Bad Name"}); return err }, ErrInvalid, "role name"},
			{"builtin flag", func() error { _, err := s.CreateRole(ctx, Role{Name: "mine", Builtin: true}); return err }, ErrInvalid, "builtin"},
			{"long description", func() error {
				_, err := s.CreateRole(ctx, Role{Name: "mine", Description: strings.Repeat("d", 1025)})
				return err
			}, ErrInvalid, "description"},
			{"bad grant module", func() error {
				_, err := s.CreateRole(ctx, Role{Name: "mine", Grants: []Grant{{Module: "servers", Level: LevelRead}}})
				return err
			}, ErrInvalid, `grants[0]: grant: invalid module "servers"`},
			{"bad grant level", func() error {
				_, err := s.CreateRole(ctx, Role{Name: "mine", Grants: []Grant{{Module: ModuleGuard}}})
				return err
			}, ErrInvalid, "level 0"},
			{"bad grant effect", func() error {
				_, err := s.CreateRole(ctx, Role{Name: "mine", Grants: []Grant{{Effect: "permit", Module: ModuleGuard, Level: LevelRead}}})
				return err
			}, ErrInvalid, `effect "permit"`},
			{"grant already expired", func() error {
				_, err := s.AddGrant(ctx, "dup", Grant{Module: ModuleGuard, Level: LevelRead, ExpiresAt: t0})
				return err
			}, ErrInvalid, "already past"},
			{"get unknown", func() error { _, err := s.GetRole(ctx, "nope"); return err }, ErrNotFound, `role "nope" does not exist`},
			{"update unknown", func() error { _, err := s.UpdateRole(ctx, "nope", &desc, nil); return err }, ErrNotFound, "nope"},
			{"update long description", func() error {
				long := strings.Repeat("d", 1025)
				_, err := s.UpdateRole(ctx, "dup", &long, nil)
				return err
			}, ErrInvalid, "description"},
			{"delete unknown", func() error { return s.DeleteRole(ctx, "nope") }, ErrNotFound, "nope"},
			{"delete builtin", func() error { return s.DeleteRole(ctx, RoleAdmin) }, ErrBuiltin, "cannot be deleted"},
			{"add grant to unknown", func() error {
				_, err := s.AddGrant(ctx, "nope", Grant{Module: ModuleGuard, Level: LevelRead})
				return err
			}, ErrNotFound, "nope"},
			{"add grant to builtin", func() error {
				_, err := s.AddGrant(ctx, RoleAuditor, Grant{Module: ModuleGuard, Level: LevelWrite})
				return err
			}, ErrBuiltin, "create a new role"},
			{"remove grant from builtin", func() error { return s.RemoveGrant(ctx, RoleAdmin, admin.Grants[0].ID) }, ErrBuiltin, "fixed"},
			{"remove grant from unknown", func() error { return s.RemoveGrant(ctx, "nope", 1) }, ErrNotFound, "nope"},
			{"bind unknown role", func() error { return s.BindRoles(ctx, 1, []RoleBinding{{Role: "dup"}, {Role: "ghost"}}) }, ErrNotFound, `role "ghost" does not exist`},
			{"bind same role twice", func() error { return s.BindRoles(ctx, 1, []RoleBinding{{Role: "dup"}, {Role: "dup"}}) }, ErrInvalid, "listed twice"},
			{"bind bad role name", func() error { return s.BindRoles(ctx, 1, []RoleBinding{{Role: "Dup"}}) }, ErrInvalid, "roles[0]"},
			{"bind expired", func() error {
				return s.BindRoles(ctx, 1, []RoleBinding{{Role: "dup", ExpiresAt: t0.Add(-time.Hour)}})
			}, ErrInvalid, "already past"},
			{"bind user 0", func() error { return s.BindRoles(ctx, 0, nil) }, ErrInvalid, "user id 0"},
			{"users in unknown role", func() error { _, err := s.UsersInRole(ctx, "nope"); return err }, ErrNotFound, "nope"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.call()
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("err = %q, want it to mention %q", err, tt.wantMsg)
				}
			})
		}
		// Nothing the failed calls tried was stored.
		if b, err := s.Bindings(ctx, 1); err != nil || len(b) != 0 {
			t.Errorf("bindings of user 1 after failed binds = %v, %v; want none", b, err)
		}
		if _, err := s.GetRole(ctx, "mine"); !errors.Is(err, ErrNotFound) {
			t.Errorf("role from failed create exists: %v", err)
		}
		if r, err := s.GetRole(ctx, RoleAuditor); err != nil || len(r.Grants) != 1 {
			t.Errorf("auditor after refused change = %+v, %v", r, err)
		}
	}, Migrations)
}

func TestBuiltins(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		before, err := s.ListRoles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range before {
			if !r.Builtin {
				t.Errorf("role %s: Builtin = false", r.Name)
			}
		}
		want := BuiltinRoles()
		for i := range want {
			want[i].Builtin = true
			want[i].CreatedAt, want[i].UpdatedAt = t0, t0
			for j := range want[i].Grants {
				want[i].Grants[j].Role = want[i].Name
			}
		}
		byName := cmpopts.SortSlices(func(a, b Role) bool { return a.Name < b.Name })
		if diff := cmp.Diff(want, before, ignoreIDs, byName); diff != "" {
			t.Errorf("built-in roles (-want +got):\n%s", diff)
		}

		// Idempotent: a second run changes nothing, not even grant IDs; an
		// administrator's Require2FA on a built-in survives it.
		on := true
		if _, err := s.UpdateRole(ctx, RoleAdmin, nil, &on); err != nil {
			t.Fatalf("require 2FA on admin: %v", err)
		}
		if err := s.EnsureBuiltins(ctx); err != nil {
			t.Fatalf("second EnsureBuiltins: %v", err)
		}
		after, err := s.ListRoles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		before[0].Require2FA = true // admin sorts first
		if diff := cmp.Diff(before, after, cmpopts.IgnoreFields(Role{}, "UpdatedAt")); diff != "" {
			t.Errorf("roles after second EnsureBuiltins (-want +got):\n%s", diff)
		}

		// Tampering behind the store's back is repaired.
		if _, err := db.ExecContext(ctx, `INSERT INTO access_grants (role, effect, module, level, scope, expires_at, created_at)
			VALUES ('billing', 'allow', '*', 'write', '*', 0, 1)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `DELETE FROM access_grants WHERE role = 'auditor'`); err != nil {
			t.Fatal(err)
		}
		if err := s.EnsureBuiltins(ctx); err != nil {
			t.Fatal(err)
		}
		repaired, err := s.ListRoles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, repaired, ignoreIDs, byName, cmpopts.IgnoreFields(Role{}, "UpdatedAt", "Require2FA")); diff != "" {
			t.Errorf("built-ins after repair (-want +got):\n%s", diff)
		}

		// Replicas starting together repair at the same time without
		// duplicating grants, whatever the interleaving.
		if _, err := db.ExecContext(ctx, `DELETE FROM access_grants`); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 3)
		for range 3 {
			go func() { errs <- s.EnsureBuiltins(ctx) }()
		}
		for range 3 {
			if err := <-errs; err != nil {
				t.Errorf("concurrent EnsureBuiltins: %v", err)
			}
		}
		concurrent, err := s.ListRoles(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, concurrent, ignoreIDs, byName, cmpopts.IgnoreFields(Role{}, "UpdatedAt", "Require2FA")); diff != "" {
			t.Errorf("built-ins after concurrent EnsureBuiltins (-want +got):\n%s", diff)
		}
	}, Migrations)
}

// TestBuiltinAuthorization checks what each built-in role lets its holder do.
func TestBuiltinAuthorization(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		users := map[string]int64{RoleAdmin: 1, RoleAuditor: 2, RoleOperator: 3, RoleBilling: 4}
		for role, id := range users {
			if err := s.BindRoles(ctx, id, []RoleBinding{{Role: role}}); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			role string
			req  Request
			want bool
		}{
			{RoleAdmin, coll(ModuleAccess, LevelWrite), true},
			{RoleAdmin, coll(ModuleBilling, LevelWrite), true},
			{RoleAdmin, res(ModuleBackups, LevelWrite, blue), true},
			{RoleAuditor, coll(ModuleAudit, LevelRead), true},
			{RoleAuditor, coll(ModuleBilling, LevelRead), true},
			{RoleAuditor, res(ModuleGuard, LevelRead, red), true},
			{RoleAuditor, coll(ModuleAudit, LevelOperate), false},
			{RoleAuditor, coll(ModuleBackups, LevelWrite), false},
			{RoleAuditor, coll(ModuleAccess, LevelWrite), false},
			{RoleOperator, coll(ModuleBackups, LevelOperate), true},
			{RoleOperator, res(ModuleContinuity, LevelOperate, blue), true},
			{RoleOperator, coll(ModuleMonitoring, LevelRead), true},
			{RoleOperator, coll(ModuleBackups, LevelWrite), false},
			{RoleOperator, coll(ModuleAccess, LevelWrite), false},
			{RoleBilling, coll(ModuleBilling, LevelRead), true},
			{RoleBilling, coll(ModuleBilling, LevelWrite), true},
			{RoleBilling, coll(ModuleBackups, LevelRead), false},
			{RoleBilling, coll(ModuleAudit, LevelRead), false},
			{RoleBilling, coll(ModuleAccess, LevelRead), false},
		}
		for _, tt := range tests {
			t.Run(tt.role+"/"+tt.req.String(), func(t *testing.T) {
				p, err := s.Principal(ctx, users[tt.role], tt.role+"-user", "", nil)
				if err != nil {
					t.Fatal(err)
				}
				err = p.Authorize(t0, tt.req)
				if got := err == nil; got != tt.want {
					t.Errorf("Authorize(%s) = %v, want allowed=%v", tt.req, err, tt.want)
				}
				if err != nil && !errors.Is(err, ErrDenied) {
					t.Errorf("error %v does not wrap ErrDenied", err)
				}
			})
		}
	}, Migrations)
}

func TestStoreBindings(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, c := newStore(t, db)
		for _, name := range []string{"ops", "oncall", "strict"} {
			if _, err := s.CreateRole(ctx, Role{Name: name, Require2FA: name == "strict", Grants: []Grant{{Module: ModuleGuard, Level: LevelRead}}}); err != nil {
				t.Fatal(err)
			}
		}
		week := t0.Add(7 * 24 * time.Hour)
		if err := s.BindRoles(ctx, 10, []RoleBinding{{Role: "ops"}, {Role: "oncall", ExpiresAt: week}}); err != nil {
			t.Fatalf("BindRoles: %v", err)
		}
		if err := s.BindRoles(ctx, 11, []RoleBinding{{Role: "ops"}}); err != nil {
			t.Fatal(err)
		}
		want := []RoleBinding{{Role: "oncall", ExpiresAt: week, CreatedAt: t0}, {Role: "ops", CreatedAt: t0}}
		got, err := s.Bindings(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Bindings (-want +got):\n%s", diff)
		}
		if ids, err := s.UsersInRole(ctx, "ops"); err != nil || !cmp.Equal(ids, []int64{10, 11}) {
			t.Errorf("UsersInRole(ops) = %v, %v; want [10 11]", ids, err)
		}
		if ids, err := s.UsersInRole(ctx, "strict"); err != nil || ids == nil || len(ids) != 0 {
			t.Errorf("UsersInRole(strict) = %#v, %v; want empty", ids, err)
		}
		if req, err := s.Requires2FA(ctx, 10); err != nil || req {
			t.Errorf("Requires2FA(10) = %v, %v; want false", req, err)
		}

		// Replace: ops stays (keeping its CreatedAt), oncall goes, strict comes.
		c.advance(time.Hour)
		if err := s.BindRoles(ctx, 10, []RoleBinding{{Role: "strict"}, {Role: "ops"}}); err != nil {
			t.Fatal(err)
		}
		want = []RoleBinding{{Role: "ops", CreatedAt: t0}, {Role: "strict", CreatedAt: t0.Add(time.Hour)}}
		if got, err = s.Bindings(ctx, 10); err != nil || !cmp.Equal(want, got) {
			t.Errorf("Bindings after replace = %v, %v; want %v", got, err, want)
		}
		if req, err := s.Requires2FA(ctx, 10); err != nil || !req {
			t.Errorf("Requires2FA(10) with strict = %v, %v; want true", req, err)
		}

		// A failed replace leaves the old bindings.
		if err := s.BindRoles(ctx, 10, []RoleBinding{{Role: "ghost"}}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("bind ghost: %v", err)
		}
		if got, err = s.Bindings(ctx, 10); err != nil || !cmp.Equal(want, got) {
			t.Errorf("Bindings after failed replace = %v, %v; want %v", got, err, want)
		}

		// Tx variants commit and roll back with the caller's transaction.
		errBoom := errors.New("caller's write failed")
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			if err := s.BindRolesTx(ctx, tx, 12, []RoleBinding{{Role: "ops"}}); err != nil {
				return err
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("Tx = %v, want errBoom", err)
		}
		if got, err := s.Bindings(ctx, 12); err != nil || len(got) != 0 {
			t.Errorf("bindings of user 12 after rollback = %v, %v; want none", got, err)
		}
		err = db.Tx(ctx, func(tx *sql.Tx) error { return s.BindRolesTx(ctx, tx, 12, []RoleBinding{{Role: "ops"}}) })
		if err != nil {
			t.Fatal(err)
		}
		err = db.Tx(ctx, func(tx *sql.Tx) error {
			if err := s.RemoveUserTx(ctx, tx, 12); err != nil {
				return err
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatal(err)
		}
		if got, err := s.Bindings(ctx, 12); err != nil || len(got) != 1 {
			t.Errorf("bindings of user 12 after rolled-back removal = %v, %v; want one", got, err)
		}
		if err := db.Tx(ctx, func(tx *sql.Tx) error { return s.RemoveUserTx(ctx, tx, 12) }); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Bindings(ctx, 12); err != nil || len(got) != 0 {
			t.Errorf("bindings of user 12 after RemoveUserTx = %v, %v; want none", got, err)
		}

		// RemoveUser, and BindRoles with an empty list.
		if err := s.RemoveUser(ctx, 11); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveUser(ctx, 999); err != nil {
			t.Errorf("RemoveUser of a user without bindings: %v", err)
		}
		if err := s.BindRoles(ctx, 10, nil); err != nil {
			t.Fatal(err)
		}
		if ids, err := s.UsersInRole(ctx, "ops"); err != nil || len(ids) != 0 {
			t.Errorf("UsersInRole(ops) after removals = %v, %v; want none", ids, err)
		}
	}, Migrations)
}

// TestBindingExpiry moves the clock past a need-to-know binding and a grant
// that expire, and checks that they stop counting everywhere.
func TestBindingExpiry(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, c := newStore(t, db)
		if _, err := s.CreateRole(ctx, Role{Name: "incident", Require2FA: true, Grants: []Grant{
			{Module: ModuleIntegrity, Level: LevelWrite},
			{Module: ModuleAudit, Level: LevelRead, ExpiresAt: t0.Add(30 * time.Minute)},
		}}); err != nil {
			t.Fatal(err)
		}
		if err := s.BindRoles(ctx, 7, []RoleBinding{{Role: RoleAuditor}, {Role: "incident", ExpiresAt: t0.Add(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
		check := func(wantRoles []string, wantModules []Module, want2FA bool, wantUsers []int64) {
			t.Helper()
			roles, grants, err := s.EffectiveGrants(ctx, 7, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantRoles, roles); diff != "" {
				t.Errorf("at %s roles (-want +got):\n%s", c.t.Format(time.Kitchen), diff)
			}
			var mods []Module
			for _, g := range grants {
				mods = append(mods, g.Module)
			}
			if diff := cmp.Diff(wantModules, mods); diff != "" {
				t.Errorf("at %s grant modules (-want +got):\n%s", c.t.Format(time.Kitchen), diff)
			}
			if got, err := s.Requires2FA(ctx, 7); err != nil || got != want2FA {
				t.Errorf("at %s Requires2FA = %v, %v; want %v", c.t.Format(time.Kitchen), got, err, want2FA)
			}
			if got, err := s.UsersInRole(ctx, "incident"); err != nil || !cmp.Equal(got, wantUsers, cmpopts.EquateEmpty()) {
				t.Errorf("at %s UsersInRole(incident) = %v, %v; want %v", c.t.Format(time.Kitchen), got, err, wantUsers)
			}
		}
		check([]string{"auditor", "incident"}, []Module{ModuleAll, ModuleIntegrity, ModuleAudit}, true, []int64{7})
		c.advance(30 * time.Minute) // the audit grant expires exactly now
		check([]string{"auditor", "incident"}, []Module{ModuleAll, ModuleIntegrity}, true, []int64{7})
		c.advance(30 * time.Minute) // the binding expires exactly now
		check([]string{"auditor"}, []Module{ModuleAll}, false, nil)

		// The expired binding is still listed for administrators.
		b, err := s.Bindings(ctx, 7)
		if err != nil || len(b) != 2 || !b[1].Expired(c.t) || b[0].Expired(c.t) {
			t.Errorf("Bindings after expiry = %+v, %v; want auditor live and incident expired", b, err)
		}
		p, err := s.Principal(ctx, 7, "eve", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Authorize(c.t, coll(ModuleIntegrity, LevelWrite)); !errors.Is(err, ErrDenied) {
			t.Errorf("integrity write after the binding expired: %v, want ErrDenied", err)
		}
	}, Migrations)
}

// TestTokenSubset checks that a token only carries the roles in both its
// subset and its owner's current roles.
func TestTokenSubset(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		if _, err := s.CreateRole(ctx, Role{Name: "backup-ops", Grants: []Grant{{Module: ModuleBackups, Level: LevelWrite}}}); err != nil {
			t.Fatal(err)
		}
		if err := s.BindRoles(ctx, 3, []RoleBinding{{Role: RoleAuditor}, {Role: "backup-ops"}}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name      string
			subset    []string
			wantRoles []string
			allowed   []Request
			denied    []Request
		}{
			{"nil subset is every role", nil, []string{"auditor", "backup-ops"},
				[]Request{coll(ModuleBackups, LevelWrite), coll(ModuleAudit, LevelRead)}, nil},
			{"subset excludes backup-ops", []string{RoleAuditor}, []string{"auditor"},
				[]Request{coll(ModuleAudit, LevelRead), coll(ModuleBackups, LevelRead)}, []Request{coll(ModuleBackups, LevelWrite)}},
			{"subset excludes auditor", []string{"backup-ops"}, []string{"backup-ops"},
				[]Request{coll(ModuleBackups, LevelWrite)}, []Request{coll(ModuleAudit, LevelRead)}},
			{"role the user does not have is ignored", []string{RoleAdmin, "backup-ops"}, []string{"backup-ops"},
				[]Request{coll(ModuleBackups, LevelWrite)}, []Request{coll(ModuleAccess, LevelWrite), coll(ModuleAudit, LevelRead)}},
			{"unknown role is ignored", []string{"ghost"}, []string{},
				nil, []Request{coll(ModuleBackups, LevelRead)}},
			{"empty subset is nothing", []string{}, []string{},
				nil, []Request{coll(ModuleBackups, LevelRead), coll(ModuleAudit, LevelRead)}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p, err := s.Principal(ctx, 3, "tok-owner", "tok_abc", tt.subset)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.wantRoles, p.Roles); diff != "" {
					t.Errorf("roles (-want +got):\n%s", diff)
				}
				for _, r := range tt.allowed {
					if err := p.Authorize(t0, r); err != nil {
						t.Errorf("Authorize(%s) = %v, want nil", r, err)
					}
				}
				for _, r := range tt.denied {
					if err := p.Authorize(t0, r); !errors.Is(err, ErrDenied) {
						t.Errorf("Authorize(%s) = %v, want ErrDenied", r, err)
					} else if !strings.Contains(err.Error(), "API token tok_abc") {
						t.Errorf("error %q does not name the token", err)
					}
				}
			})
		}

		// The owner loses backup-ops: a token made with it no longer has it.
		if err := s.BindRoles(ctx, 3, []RoleBinding{{Role: RoleAuditor}}); err != nil {
			t.Fatal(err)
		}
		roles, grants, err := s.EffectiveGrants(ctx, 3, []string{"backup-ops", RoleAuditor})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"auditor"}, roles); diff != "" {
			t.Errorf("roles after the owner lost backup-ops (-want +got):\n%s", diff)
		}
		if got := Decide(grants, t0, coll(ModuleBackups, LevelWrite)); got.Allowed {
			t.Errorf("token still writes backups after its owner lost the role: %s", got.Reason)
		}
	}, Migrations)
}
