package access

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations is the access schema: roles, grants and role bindings.
var Migrations = store.Migrations{Name: "access", FS: migrationFiles, Dir: "migrations"}

// Store keeps roles, grants and bindings in the database.
type Store struct {
	db  *store.DB
	now func() time.Time
}

// NewStore returns a Store over db. now is the clock used for expiry and
// timestamps; nil means time.Now.
func NewStore(db *store.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) nowMicros() int64 { return store.Micros(s.now()) }

// EnsureBuiltins creates the built-in roles if they are missing and resets
// their grants to BuiltinRoles when they differ (a newer version may have
// changed them). It leaves the description and Require2FA flag of an
// existing built-in role as the administrator set them. It is idempotent and
// safe to run from several replicas at once.
func (s *Store) EnsureBuiltins(ctx context.Context) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		now := s.nowMicros()
		for _, b := range BuiltinRoles() {
			if _, err := tx.ExecContext(ctx, `INSERT INTO access_roles (name, description, builtin, require_2fa, created_at, updated_at)
				VALUES ($1, $2, 1, 0, $3, $3) ON CONFLICT (name) DO NOTHING`, b.Name, b.Description, now); err != nil {
				return fmt.Errorf("insert role %s: %w", b.Name, err)
			}
			// Lock the role row so two replicas do not both rewrite the
			// grants (SQLite's IMMEDIATE transactions already serialise).
			lock := `SELECT name FROM access_roles WHERE name = $1`
			if s.db.Dialect == store.Postgres {
				lock += ` FOR UPDATE`
			}
			var name string
			if err := tx.QueryRowContext(ctx, lock, b.Name).Scan(&name); err != nil {
				return fmt.Errorf("lock role %s: %w", b.Name, err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE access_roles SET builtin = 1 WHERE name = $1 AND builtin = 0`, b.Name); err != nil {
				return fmt.Errorf("mark role %s built-in: %w", b.Name, err)
			}
			have, err := grantsOf(ctx, tx, b.Name)
			if err != nil {
				return err
			}
			if sameGrants(have, b.Grants) {
				continue
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM access_grants WHERE role = $1`, b.Name); err != nil {
				return fmt.Errorf("reset grants of %s: %w", b.Name, err)
			}
			for _, g := range b.Grants {
				if _, err := insertGrant(ctx, tx, b.Name, g, now); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("access: ensure built-in roles: %w", err)
	}
	return nil
}

// sameGrants compares grants ignoring IDs, roles and order.
func sameGrants(a, b []Grant) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(g Grant) string {
		g = g.normalize()
		return fmt.Sprintf("%s|%s|%d|%s|%d", g.Effect, g.Module, g.Level, g.Scope, store.Micros(g.ExpiresAt))
	}
	count := map[string]int{}
	for _, g := range a {
		count[key(g)]++
	}
	for _, g := range b {
		k := key(g)
		if count[k] == 0 {
			return false
		}
		count[k]--
	}
	return true
}

func checkDescription(d string) error {
	if len(d) > maxDescription {
		return fmt.Errorf("%w description: %d bytes, the limit is %d", ErrInvalid, len(d), maxDescription)
	}
	return nil
}

func (s *Store) checkNewGrant(g Grant) error {
	if err := g.Validate(); err != nil {
		return err
	}
	if g.Expired(s.now()) {
		return fmt.Errorf("grant: %w expires_at %s: already past; give a future time or none", ErrInvalid, g.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// CreateRole stores a new role with its grants and returns it as stored
// (grant IDs filled in). The name must be free and not a built-in name
// (ErrBuiltin); a taken name gives ErrConflict.
func (s *Store) CreateRole(ctx context.Context, r Role) (Role, error) {
	if err := checkRoleName(r.Name); err != nil {
		return Role{}, fmt.Errorf("access: create role: %w", err)
	}
	if IsBuiltin(r.Name) {
		return Role{}, fmt.Errorf("access: create role %q: %w: the name is reserved; choose another", r.Name, ErrBuiltin)
	}
	if r.Builtin {
		return Role{}, fmt.Errorf("access: create role %q: %w builtin: only the built-in roles are built-in; leave it false", r.Name, ErrInvalid)
	}
	if err := checkDescription(r.Description); err != nil {
		return Role{}, fmt.Errorf("access: create role %q: %w", r.Name, err)
	}
	for i, g := range r.Grants {
		if err := s.checkNewGrant(g); err != nil {
			return Role{}, fmt.Errorf("access: create role %q: grants[%d]: %w", r.Name, i, err)
		}
	}
	now := s.nowMicros()
	out := Role{
		Name: r.Name, Description: r.Description, Require2FA: r.Require2FA,
		Grants: []Grant{}, CreatedAt: store.FromMicros(now), UpdatedAt: store.FromMicros(now),
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO access_roles (name, description, builtin, require_2fa, created_at, updated_at)
			VALUES ($1, $2, 0, $3, $4, $4)`, r.Name, r.Description, store.Bool(r.Require2FA), now)
		if store.IsUniqueViolation(err) {
			return fmt.Errorf("%w: role %q already exists; choose another name or change that role", ErrConflict, r.Name)
		}
		if err != nil {
			return err
		}
		for _, g := range r.Grants {
			sg, err := insertGrant(ctx, tx, r.Name, g, now)
			if err != nil {
				return err
			}
			out.Grants = append(out.Grants, sg)
		}
		return nil
	})
	if err != nil {
		return Role{}, fmt.Errorf("access: create role %q: %w", r.Name, err)
	}
	return out, nil
}

func insertGrant(ctx context.Context, q querier, role string, g Grant, now int64) (Grant, error) {
	g = g.normalize()
	g.Role = role
	err := q.QueryRowContext(ctx, `INSERT INTO access_grants (role, effect, module, level, scope, expires_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		role, string(g.Effect), string(g.Module), g.Level.String(), g.Scope.String(), store.Micros(g.ExpiresAt), now).Scan(&g.ID)
	if store.IsForeignKeyViolation(err) {
		return Grant{}, fmt.Errorf("%w: role %q", ErrNotFound, role)
	}
	if err != nil {
		return Grant{}, fmt.Errorf("insert grant: %w", err)
	}
	return g, nil
}

const grantColumns = `id, role, effect, module, level, scope, expires_at`

func scanGrant(sc interface{ Scan(...any) error }) (Grant, error) {
	var (
		g                            Grant
		effect, module, level, scope string
		exp                          int64
	)
	if err := sc.Scan(&g.ID, &g.Role, &effect, &module, &level, &scope, &exp); err != nil {
		return Grant{}, err
	}
	return decodeGrant(g, effect, module, level, scope, exp)
}

// decodeGrant parses a stored grant. A row that does not parse is an error,
// never a silently dropped (or silently widened) grant.
func decodeGrant(g Grant, effect, module, level, scope string, exp int64) (Grant, error) {
	var err error
	if g.Effect, err = ParseEffect(effect); err != nil {
		return Grant{}, fmt.Errorf("stored grant %d: %w", g.ID, err)
	}
	if g.Module, err = ParseModule(module); err != nil {
		return Grant{}, fmt.Errorf("stored grant %d: %w", g.ID, err)
	}
	if g.Level, err = ParseLevel(level); err != nil {
		return Grant{}, fmt.Errorf("stored grant %d: %w", g.ID, err)
	}
	if g.Scope, err = ParseSelector(scope); err != nil {
		return Grant{}, fmt.Errorf("stored grant %d: %w", g.ID, err)
	}
	g.ExpiresAt = store.FromMicros(exp)
	return g, nil
}

func grantsOf(ctx context.Context, q querier, role string) ([]Grant, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+grantColumns+` FROM access_grants WHERE role = $1 ORDER BY id`, role)
	if err != nil {
		return nil, fmt.Errorf("grants of %s: %w", role, err)
	}
	defer rows.Close()
	out := []Grant{}
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("grants of %s: %w", role, err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("grants of %s: %w", role, err)
	}
	return out, nil
}

const roleColumns = `name, description, builtin, require_2fa, created_at, updated_at`

func scanRole(sc interface{ Scan(...any) error }) (Role, error) {
	var (
		r                Role
		builtin, req2fa  int
		created, updated int64
	)
	if err := sc.Scan(&r.Name, &r.Description, &builtin, &req2fa, &created, &updated); err != nil {
		return Role{}, err
	}
	r.Builtin, r.Require2FA = builtin != 0, req2fa != 0
	r.CreatedAt, r.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return r, nil
}

func loadRole(ctx context.Context, q querier, name string) (Role, error) {
	r, err := scanRole(q.QueryRowContext(ctx, `SELECT `+roleColumns+` FROM access_roles WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Role{}, fmt.Errorf("%w: role %q does not exist", ErrNotFound, name)
	}
	if err != nil {
		return Role{}, fmt.Errorf("load role %q: %w", name, err)
	}
	if r.Grants, err = grantsOf(ctx, q, name); err != nil {
		return Role{}, err
	}
	return r, nil
}

// GetRole returns the named role with its grants, or ErrNotFound.
func (s *Store) GetRole(ctx context.Context, name string) (Role, error) {
	r, err := loadRole(ctx, s.db, name)
	if err != nil {
		return Role{}, fmt.Errorf("access: %w", err)
	}
	return r, nil
}

// ListRoles returns every role with its grants, ordered by name.
func (s *Store) ListRoles(ctx context.Context) ([]Role, error) {
	var roles []Role
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		roles = []Role{}
		rows, err := tx.QueryContext(ctx, `SELECT `+roleColumns+` FROM access_roles ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		index := map[string]int{}
		for rows.Next() {
			r, err := scanRole(rows)
			if err != nil {
				return err
			}
			r.Grants = []Grant{}
			index[r.Name] = len(roles)
			roles = append(roles, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		grows, err := tx.QueryContext(ctx, `SELECT `+grantColumns+` FROM access_grants ORDER BY role, id`)
		if err != nil {
			return err
		}
		defer grows.Close()
		for grows.Next() {
			g, err := scanGrant(grows)
			if err != nil {
				return err
			}
			if i, ok := index[g.Role]; ok {
				roles[i].Grants = append(roles[i].Grants, g)
			}
		}
		return grows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("access: list roles: %w", err)
	}
	// Sort here, not in SQL: PostgreSQL's collation may order '-' and '_'
	// differently from SQLite, and callers should see one order.
	sort.Slice(roles, func(i, j int) bool { return roles[i].Name < roles[j].Name })
	return roles, nil
}

// roleState returns whether the role exists and is built-in, as ErrNotFound
// when it does not exist.
func roleState(ctx context.Context, q querier, name string) (builtin bool, err error) {
	var b int
	err = q.QueryRowContext(ctx, `SELECT builtin FROM access_roles WHERE name = $1`, name).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("%w: role %q does not exist", ErrNotFound, name)
	}
	if err != nil {
		return false, fmt.Errorf("look up role %q: %w", name, err)
	}
	return b != 0, nil
}

// UpdateRole changes the description and/or the Require2FA flag (nil leaves
// a field as it is) and returns the role as stored. Both may be changed on a
// built-in role too: they are about who may hold it, not what it grants.
func (s *Store) UpdateRole(ctx context.Context, name string, description *string, require2FA *bool) (Role, error) {
	if description != nil {
		if err := checkDescription(*description); err != nil {
			return Role{}, fmt.Errorf("access: update role %q: %w", name, err)
		}
	}
	var out Role
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := roleState(ctx, tx, name); err != nil {
			return err
		}
		now := s.nowMicros()
		if description != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE access_roles SET description = $1, updated_at = $2 WHERE name = $3`, *description, now, name); err != nil {
				return err
			}
		}
		if require2FA != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE access_roles SET require_2fa = $1, updated_at = $2 WHERE name = $3`, store.Bool(*require2FA), now, name); err != nil {
				return err
			}
		}
		var err error
		out, err = loadRole(ctx, tx, name)
		return err
	})
	if err != nil {
		return Role{}, fmt.Errorf("access: update role %q: %w", name, err)
	}
	return out, nil
}

// DeleteRole deletes a role, its grants and every binding to it. Built-in
// roles give ErrBuiltin, unknown ones ErrNotFound.
func (s *Store) DeleteRole(ctx context.Context, name string) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		builtin, err := roleState(ctx, tx, name)
		if err != nil {
			return err
		}
		if builtin {
			return fmt.Errorf("%w: it cannot be deleted", ErrBuiltin)
		}
		for _, q := range []string{
			`DELETE FROM access_bindings WHERE role = $1`,
			`DELETE FROM access_grants WHERE role = $1`,
			`DELETE FROM access_roles WHERE name = $1`,
		} {
			if _, err := tx.ExecContext(ctx, q, name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("access: delete role %q: %w", name, err)
	}
	return nil
}

// AddGrant adds a grant to a role and returns it with its ID. Built-in roles
// give ErrBuiltin, unknown ones ErrNotFound, a bad grant ErrInvalid.
func (s *Store) AddGrant(ctx context.Context, role string, g Grant) (Grant, error) {
	if err := s.checkNewGrant(g); err != nil {
		return Grant{}, fmt.Errorf("access: add grant to role %q: %w", role, err)
	}
	var out Grant
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		builtin, err := roleState(ctx, tx, role)
		if err != nil {
			return err
		}
		if builtin {
			return fmt.Errorf("%w: its grants are fixed; create a new role instead", ErrBuiltin)
		}
		now := s.nowMicros()
		if out, err = insertGrant(ctx, tx, role, g, now); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE access_roles SET updated_at = $1 WHERE name = $2`, now, role)
		return err
	})
	if err != nil {
		return Grant{}, fmt.Errorf("access: add grant to role %q: %w", role, err)
	}
	return out, nil
}

// RemoveGrant removes grant id from a role. Built-in roles give ErrBuiltin;
// an unknown role, or a grant that is not the role's, ErrNotFound.
func (s *Store) RemoveGrant(ctx context.Context, role string, id int64) error {
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		builtin, err := roleState(ctx, tx, role)
		if err != nil {
			return err
		}
		if builtin {
			return fmt.Errorf("%w: its grants are fixed; create a new role instead", ErrBuiltin)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM access_grants WHERE id = $1 AND role = $2`, id, role)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: grant %d is not a grant of this role", ErrNotFound, id)
		}
		_, err = tx.ExecContext(ctx, `UPDATE access_roles SET updated_at = $1 WHERE name = $2`, s.nowMicros(), role)
		return err
	})
	if err != nil {
		return fmt.Errorf("access: remove grant %d from role %q: %w", id, role, err)
	}
	return nil
}

func checkUserID(id int64) error {
	if id <= 0 {
		return fmt.Errorf("%w user id %d: must be positive", ErrInvalid, id)
	}
	return nil
}

// BindRoles replaces the user's role bindings with roles, in one
// transaction. An empty list removes them all. An unknown role gives
// ErrNotFound naming it; a role listed twice or an expiry already past,
// ErrInvalid. A binding that stays keeps its CreatedAt.
func (s *Store) BindRoles(ctx context.Context, userID int64, roles []RoleBinding) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		return s.BindRolesTx(ctx, tx, userID, roles)
	})
}

// BindRolesTx is BindRoles inside the caller's transaction, for callers that
// must commit the bindings together with their own write (creating a user).
func (s *Store) BindRolesTx(ctx context.Context, tx *sql.Tx, userID int64, roles []RoleBinding) error {
	if err := s.bindRoles(ctx, tx, userID, roles); err != nil {
		return fmt.Errorf("access: bind roles of user %d: %w", userID, err)
	}
	return nil
}

func (s *Store) bindRoles(ctx context.Context, tx *sql.Tx, userID int64, roles []RoleBinding) error {
	if err := checkUserID(userID); err != nil {
		return err
	}
	now := s.now()
	seen := map[string]bool{}
	for i, b := range roles {
		if err := checkRoleName(b.Role); err != nil {
			return fmt.Errorf("roles[%d]: %w", i, err)
		}
		if seen[b.Role] {
			return fmt.Errorf("roles[%d]: %w role %q: listed twice; list each role once", i, ErrInvalid, b.Role)
		}
		seen[b.Role] = true
		if b.Expired(now) {
			return fmt.Errorf("roles[%d]: %w expires_at of role %q: already past; give a future time or none", i, ErrInvalid, b.Role)
		}
	}
	for _, b := range roles {
		if _, err := roleState(ctx, tx, b.Role); err != nil {
			return err
		}
	}
	// Keep the first-bound time of bindings that stay.
	created := map[string]int64{}
	rows, err := tx.QueryContext(ctx, `SELECT role, created_at FROM access_bindings WHERE user_id = $1`, userID)
	if err != nil {
		return err
	}
	for rows.Next() {
		var r string
		var c int64
		if err := rows.Scan(&r, &c); err != nil {
			rows.Close()
			return err
		}
		created[r] = c
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return err
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM access_bindings WHERE user_id = $1`, userID); err != nil {
		return err
	}
	nowUS := store.Micros(now)
	for _, b := range roles {
		c, ok := created[b.Role]
		if !ok {
			c = nowUS
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO access_bindings (user_id, role, expires_at, created_at) VALUES ($1, $2, $3, $4)`,
			userID, b.Role, store.Micros(b.ExpiresAt), c)
		switch {
		case store.IsForeignKeyViolation(err):
			return fmt.Errorf("%w: role %q does not exist", ErrNotFound, b.Role)
		case store.IsUniqueViolation(err):
			return fmt.Errorf("%w: the user's roles were changed at the same time; retry", ErrConflict)
		case err != nil:
			return err
		}
	}
	return nil
}

// Bindings returns the user's stored bindings ordered by role, expired ones
// included (so an administrator sees them; RoleBinding.Expired tells them
// apart). EffectiveGrants ignores expired bindings.
func (s *Store) Bindings(ctx context.Context, userID int64) ([]RoleBinding, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT role, expires_at, created_at FROM access_bindings WHERE user_id = $1 ORDER BY role`, userID)
	if err != nil {
		return nil, fmt.Errorf("access: bindings of user %d: %w", userID, err)
	}
	defer rows.Close()
	out := []RoleBinding{}
	for rows.Next() {
		var b RoleBinding
		var exp, created int64
		if err := rows.Scan(&b.Role, &exp, &created); err != nil {
			return nil, fmt.Errorf("access: bindings of user %d: %w", userID, err)
		}
		b.ExpiresAt, b.CreatedAt = store.FromMicros(exp), store.FromMicros(created)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("access: bindings of user %d: %w", userID, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Role < out[j].Role })
	return out, nil
}

// UsersInRole returns the IDs of the users who hold the role now (expired
// bindings excluded), ascending. An unknown role gives ErrNotFound.
func (s *Store) UsersInRole(ctx context.Context, role string) ([]int64, error) {
	var out []int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := roleState(ctx, tx, role); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT user_id FROM access_bindings WHERE role = $1 AND (expires_at = 0 OR expires_at > $2) ORDER BY user_id`,
			role, s.nowMicros())
		if err != nil {
			return err
		}
		defer rows.Close()
		out = []int64{}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			out = append(out, id)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("access: users in role %q: %w", role, err)
	}
	return out, nil
}

// UsersInRoleTx is UsersInRole inside the caller's transaction. With lock
// set it first locks the role's row (FOR UPDATE on PostgreSQL; SQLite's
// write transaction already excludes other writers), so callers that check
// "someone still holds this role" and then change bindings serialise.
func (s *Store) UsersInRoleTx(ctx context.Context, tx *sql.Tx, role string, lock bool) ([]int64, error) {
	if lock && s.db.Dialect == store.Postgres {
		var name string
		if err := tx.QueryRowContext(ctx, `SELECT name FROM access_roles WHERE name = $1 FOR UPDATE`, role).Scan(&name); err != nil {
			return nil, fmt.Errorf("access: lock role %q: %w", role, err)
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT user_id FROM access_bindings WHERE role = $1 AND (expires_at = 0 OR expires_at > $2) ORDER BY user_id`,
		role, s.nowMicros())
	if err != nil {
		return nil, fmt.Errorf("access: users in role %q: %w", role, err)
	}
	defer rows.Close()
	out := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// RemoveUser deletes every binding of the user (when the user is deleted).
// Removing a user without bindings is not an error.
func (s *Store) RemoveUser(ctx context.Context, userID int64) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error { return s.RemoveUserTx(ctx, tx, userID) })
}

// RemoveUserTx is RemoveUser inside the caller's transaction, so identity
// deletes the account and its bindings together.
func (s *Store) RemoveUserTx(ctx context.Context, tx *sql.Tx, userID int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM access_bindings WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("access: remove bindings of user %d: %w", userID, err)
	}
	return nil
}

// EffectiveGrants returns the roles the user holds now and their grants that
// have not expired, ordered by role then grant ID. With a non-nil subset
// (an API token's roles) only roles in both the subset and the user's
// current roles count: a role the user has lost since the token was made is
// ignored, and an empty subset yields nothing.
func (s *Store) EffectiveGrants(ctx context.Context, userID int64, subset []string) (roles []string, grants []Grant, err error) {
	var keep map[string]bool
	if subset != nil {
		keep = make(map[string]bool, len(subset))
		for _, r := range subset {
			keep[r] = true
		}
	}
	now := s.nowMicros()
	rows, err := s.db.QueryContext(ctx, `SELECT b.role, g.id, g.effect, g.module, g.level, g.scope, g.expires_at
		FROM access_bindings b
		LEFT JOIN access_grants g ON g.role = b.role AND (g.expires_at = 0 OR g.expires_at > $2)
		WHERE b.user_id = $1 AND (b.expires_at = 0 OR b.expires_at > $2)
		ORDER BY b.role, g.id`, userID, now)
	if err != nil {
		return nil, nil, fmt.Errorf("access: effective grants of user %d: %w", userID, err)
	}
	defer rows.Close()
	roles, grants = []string{}, []Grant{}
	for rows.Next() {
		var (
			role                         string
			id, exp                      sql.NullInt64
			effect, module, level, scope sql.NullString
		)
		if err := rows.Scan(&role, &id, &effect, &module, &level, &scope, &exp); err != nil {
			return nil, nil, fmt.Errorf("access: effective grants of user %d: %w", userID, err)
		}
		if keep != nil && !keep[role] {
			continue
		}
		if len(roles) == 0 || roles[len(roles)-1] != role {
			roles = append(roles, role)
		}
		if !id.Valid {
			continue // a role without grants
		}
		g, err := decodeGrant(Grant{ID: id.Int64, Role: role}, effect.String, module.String, level.String, scope.String, exp.Int64)
		if err != nil {
			return nil, nil, fmt.Errorf("access: effective grants of user %d: %w", userID, err)
		}
		grants = append(grants, g)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("access: effective grants of user %d: %w", userID, err)
	}
	// The query groups rows by role; byte order is imposed here because
	// PostgreSQL's collation may differ from SQLite's.
	sort.Strings(roles)
	sort.SliceStable(grants, func(i, j int) bool {
		if grants[i].Role != grants[j].Role {
			return grants[i].Role < grants[j].Role
		}
		return grants[i].ID < grants[j].ID
	})
	return roles, grants, nil
}

// Principal loads the principal for a request: the user's effective roles
// and grants (through the token's role subset when tokenID is set).
func (s *Store) Principal(ctx context.Context, userID int64, username, tokenID string, subset []string) (*Principal, error) {
	roles, grants, err := s.EffectiveGrants(ctx, userID, subset)
	if err != nil {
		return nil, err
	}
	return &Principal{UserID: userID, Username: username, Roles: roles, Grants: grants, TokenID: tokenID}, nil
}

// Requires2FA reports whether any role the user holds now requires a second
// factor.
func (s *Store) Requires2FA(ctx context.Context, userID int64) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM access_bindings b JOIN access_roles r ON r.name = b.role
		WHERE b.user_id = $1 AND (b.expires_at = 0 OR b.expires_at > $2) AND r.require_2fa = 1`, userID, s.nowMicros()).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("access: 2FA requirement of user %d: %w", userID, err)
	}
	return n > 0, nil
}
