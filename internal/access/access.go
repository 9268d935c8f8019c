// Package access is Bulwark's access control: roles made of grants, users
// bound to roles, and the decision whether a principal may do something.
//
// A grant is (effect, module, level, scope, expiry): "allow operate on
// backups for resources tagged team=blue until Friday". A role is a named set
// of grants; a user holds roles through bindings, which may expire too. An API
// token carries a subset of its owner's roles, and only the roles the owner
// still holds count.
//
// Decisions are deny by default, and an explicit deny beats any allow (see
// Decide). The rules are written out for administrators in docs/access.md.
package access

import (
	"errors"
	"fmt"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// ErrDenied is wrapped by every authorization failure.
var ErrDenied = errors.New("access denied")

// ErrInvalid is wrapped by validation errors; the message names the field
// and says what is allowed.
var ErrInvalid = errors.New("invalid")

// ErrBuiltin is returned when a change would delete a built-in role or alter
// its grants, or when a new role would take a built-in role's name.
var ErrBuiltin = errors.New("built-in role")

// ErrNotFound is store.ErrNotFound, returned for an unknown role or grant.
var ErrNotFound = store.ErrNotFound

// ErrConflict is store.ErrConflict, returned when a role name is taken or a
// concurrent change collided with this one.
var ErrConflict = store.ErrConflict

// Module names one area of the product that grants are given on.
type Module string

// The modules. ModuleAll in a grant covers every module, including modules
// added in later versions; a request always names one concrete module.
const (
	ModuleBackups    Module = "backups"
	ModuleContinuity Module = "continuity"
	ModuleGuard      Module = "guard"
	ModuleIntegrity  Module = "integrity"
	ModuleMonitoring Module = "monitoring"
	ModulePosture    Module = "posture"
	ModuleAccess     Module = "access"
	ModuleAudit      Module = "audit"
	ModuleBilling    Module = "billing"
	ModuleAll        Module = "*"
)

var modules = []Module{
	ModuleBackups, ModuleContinuity, ModuleGuard, ModuleIntegrity, ModuleMonitoring,
	ModulePosture, ModuleAccess, ModuleAudit, ModuleBilling,
}

// Modules returns the concrete modules (without ModuleAll), in a fixed order.
func Modules() []Module {
	return append([]Module(nil), modules...)
}

// ParseModule parses a module name or "*".
func ParseModule(s string) (Module, error) {
	m := Module(s)
	if m == ModuleAll || m.concrete() {
		return m, nil
	}
	return "", fmt.Errorf("%w module %q: want one of backups, continuity, guard, integrity, monitoring, posture, access, audit, billing or *", ErrInvalid, s)
}

func (m Module) concrete() bool {
	for _, c := range modules {
		if m == c {
			return true
		}
	}
	return false
}

// covers reports whether a grant on m applies to a request on req.
func (m Module) covers(req Module) bool {
	return m == ModuleAll || m == req
}

// Level is how much a grant permits on a module. Levels are ordered: a
// higher level includes the lower ones when allowed, and a deny at a level
// forbids it and everything above it.
type Level int

// The levels, in increasing order.
const (
	// LevelRead is seeing things: lists, details, reports.
	LevelRead Level = 1
	// LevelOperate is acting on existing things without changing their
	// definition: start, stop, run now, acknowledge.
	LevelOperate Level = 2
	// LevelWrite is create, change and delete.
	LevelWrite Level = 3
)

// ParseLevel parses "read", "operate" or "write".
func ParseLevel(s string) (Level, error) {
	switch s {
	case "read":
		return LevelRead, nil
	case "operate":
		return LevelOperate, nil
	case "write":
		return LevelWrite, nil
	}
	return 0, fmt.Errorf("%w level %q: want read, operate or write", ErrInvalid, s)
}

// Valid reports whether l is one of the three levels.
func (l Level) Valid() bool { return l >= LevelRead && l <= LevelWrite }

// String returns the level's name, or "level(N)" for an invalid level.
func (l Level) String() string {
	switch l {
	case LevelRead:
		return "read"
	case LevelOperate:
		return "operate"
	case LevelWrite:
		return "write"
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// MarshalText encodes the level as its name, so JSON and YAML carry
// "read"/"operate"/"write" rather than numbers.
func (l Level) MarshalText() ([]byte, error) {
	if !l.Valid() {
		return nil, fmt.Errorf("%w level %d: want 1 (read), 2 (operate) or 3 (write)", ErrInvalid, int(l))
	}
	return []byte(l.String()), nil
}

// UnmarshalText decodes a level name.
func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Effect says whether a grant allows or denies.
type Effect string

// The effects.
const (
	EffectAllow Effect = "allow"
	EffectDeny  Effect = "deny"
)

// ParseEffect parses "allow" or "deny".
func ParseEffect(s string) (Effect, error) {
	switch e := Effect(s); e {
	case EffectAllow, EffectDeny:
		return e, nil
	}
	return "", fmt.Errorf("%w effect %q: want allow or deny", ErrInvalid, s)
}

// Grant is one rule of a role.
type Grant struct {
	// ID identifies the grant within the store; 0 before it is stored.
	ID int64 `json:"id,omitempty"`
	// Role is the role the grant belongs to; filled in by the store.
	Role string `json:"role,omitempty"`
	// Effect is allow or deny. The store saves an empty Effect as allow;
	// Decide ignores a grant whose Effect is neither (so an unknown effect
	// never widens access).
	Effect Effect `json:"effect"`
	// Module is the module the grant applies to, or ModuleAll.
	Module Module `json:"module"`
	// Level: an allow permits this level and below; a deny forbids this
	// level and above.
	Level Level `json:"level"`
	// Scope selects the resources, by tags, the grant applies to; the zero
	// Selector is all resources.
	Scope Selector `json:"scope"`
	// ExpiresAt, when not zero, is the instant the grant stops counting.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Expired reports whether the grant has an expiry at or before now.
func (g Grant) Expired(now time.Time) bool {
	return !g.ExpiresAt.IsZero() && !g.ExpiresAt.After(now)
}

// Validate checks the grant's fields. An empty Effect is accepted: the store
// saves it as allow.
func (g Grant) Validate() error {
	if g.Effect != "" {
		if _, err := ParseEffect(string(g.Effect)); err != nil {
			return fmt.Errorf("grant: %w", err)
		}
	}
	if _, err := ParseModule(string(g.Module)); err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	if !g.Level.Valid() {
		return fmt.Errorf("grant: %w level %d: want read, operate or write", ErrInvalid, int(g.Level))
	}
	return nil
}

func (g Grant) normalize() Grant {
	if g.Effect == "" {
		g.Effect = EffectAllow
	}
	if !g.ExpiresAt.IsZero() {
		// The store keeps microseconds; keep the value callers get back
		// equal to what a later read returns.
		g.ExpiresAt = store.FromMicros(store.Micros(g.ExpiresAt))
	}
	return g
}

// String describes the grant for people, e.g.
// `deny billing read on all resources` or
// `allow * write on team=blue until 2026-01-02T15:04:05Z`.
func (g Grant) String() string {
	scope := "all resources"
	if !g.Scope.All() {
		scope = g.Scope.String()
	}
	s := fmt.Sprintf("%s %s %s on %s", g.Effect, g.Module, g.Level, scope)
	if !g.ExpiresAt.IsZero() {
		s += " until " + g.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return s
}

// Role is a named set of grants.
type Role struct {
	// Name matches ^[a-z][a-z0-9_-]{0,62}$.
	Name string `json:"name"`
	// Description is free text for administrators (at most 1024 bytes).
	Description string `json:"description"`
	// Builtin roles are created by EnsureBuiltins; their grants are fixed.
	Builtin bool `json:"builtin"`
	// Require2FA means a user holding the role must have a second factor.
	Require2FA bool `json:"require_2fa"`
	// Grants are the role's rules, ordered by ID.
	Grants []Grant `json:"grants"`
	// CreatedAt and UpdatedAt are set by the store.
	CreatedAt time.Time `json:"created_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// RoleBinding links a user to a role, until ExpiresAt when that is not zero.
type RoleBinding struct {
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// CreatedAt is when the user first got the role; set by the store.
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Expired reports whether the binding has an expiry at or before now.
func (b RoleBinding) Expired(now time.Time) bool {
	return !b.ExpiresAt.IsZero() && !b.ExpiresAt.After(now)
}

const maxDescription = 1024

// ValidRoleName reports whether name is a well-formed role name:
// ^[a-z][a-z0-9_-]{0,62}$.
func ValidRoleName(name string) bool {
	if len(name) == 0 || len(name) > 63 || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func checkRoleName(name string) error {
	if !ValidRoleName(name) {
		return fmt.Errorf("%w role name %q: use 1-63 characters, a lowercase letter first, then lowercase letters, digits, '_' or '-'", ErrInvalid, name)
	}
	return nil
}
