// Package identity holds Bulwark's accounts and how they prove who they are:
// argon2id passwords with a policy, TOTP and WebAuthn second factors,
// single-use recovery codes, login throttling with exponential back-off and
// lockout, browser sessions and API tokens.
//
// The Service is the capability's API; the HTTP layer calls it and audits
// what it returns. Everything that belongs together (a user and its role
// bindings, a confirmed TOTP secret and its recovery codes) is written in one
// transaction.
package identity

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Migrations is the identity capability's schema.
var Migrations = store.Migrations{Name: "identity", FS: migrationsFS, Dir: "migrations"}

// Errors returned by the Service. The HTTP layer maps them to status codes.
var (
	ErrBadCredentials  = errors.New("wrong username or password")
	ErrLocked          = errors.New("account locked: an administrator must unlock it")
	ErrDisabled        = errors.New("account disabled")
	ErrThrottled       = errors.New("too many failed attempts")
	ErrMFARequired     = errors.New("second factor required")
	ErrMFAFailed       = errors.New("second factor rejected")
	ErrUnauthenticated = errors.New("not signed in or token invalid")
	ErrExpired         = errors.New("expired")
	ErrInvalid         = errors.New("invalid input")
	ErrExists          = errors.New("already exists")
	ErrNotFoundUser    = fmt.Errorf("user %w", store.ErrNotFound)
)

// ThrottledError says how long a client must wait.
type ThrottledError struct {
	Key        string
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed sign-in attempts; retry in %s", e.RetryAfter.Round(time.Second))
}

// Unwrap makes errors.Is(err, ErrThrottled) work.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// Throttle tunes login back-off. After FreeAttempts failures for a key, each
// further failure blocks that key for BaseDelay doubled per failure, capped at
// MaxDelay. After LockoutAfter consecutive failures an account is locked until
// an administrator unlocks it (0 disables the lockout). A source address gets
// SourceFactor times as many attempts, since several users may share it.
type Throttle struct {
	BaseDelay    time.Duration
	MaxDelay     time.Duration
	FreeAttempts int
	LockoutAfter int
	SourceFactor int
}

// Config tunes the Service.
type Config struct {
	Policy          PasswordPolicy
	Argon2          Argon2Params
	SessionIdle     time.Duration
	SessionMaxAge   time.Duration
	TokenMaxAge     time.Duration
	Throttle        Throttle
	Require2FA      bool
	Require2FARoles []string
	Issuer          string
	WebAuthn        *WebAuthn
	Now             func() time.Time
	Rand            io.Reader
}

// DefaultConfig returns production defaults.
func DefaultConfig() Config {
	return Config{
		Policy:        PasswordPolicy{MinLength: 12, MaxLength: 1024},
		Argon2:        DefaultArgon2,
		SessionIdle:   30 * time.Minute,
		SessionMaxAge: 12 * time.Hour,
		TokenMaxAge:   365 * 24 * time.Hour,
		Throttle:      Throttle{BaseDelay: time.Second, MaxDelay: 15 * time.Minute, FreeAttempts: 3, LockoutAfter: 20, SourceFactor: 4},
		Issuer:        "Bulwark",
	}
}

// Service manages accounts and authentication.
type Service struct {
	db     *store.DB
	access *access.Store
	cfg    Config
	now    func() time.Time
	rand   io.Reader
	// dummyHash is verified when a username is unknown so that the response
	// time does not reveal which accounts exist.
	dummyHash string
	dummyErr  error
	dummyOnce sync.Once
	// hashSlots bounds concurrent argon2id work: each hash holds
	// Argon2.Memory while it runs, so a flood of logins must queue rather
	// than exhaust memory.
	hashSlots chan struct{}
}

// MaxConcurrentHashes is how many argon2id computations run at once.
const MaxConcurrentHashes = 4

func (s *Service) acquire(ctx context.Context) error {
	select {
	case s.hashSlots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("identity: waiting to hash a password: %w", ctx.Err())
	}
}

func (s *Service) release() { <-s.hashSlots }

// hashPassword hashes under the concurrency bound.
func (s *Service) hashPassword(ctx context.Context, pw string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	return HashPassword(pw, s.cfg.Argon2, s.rand)
}

// verifyPassword verifies under the concurrency bound.
func (s *Service) verifyPassword(ctx context.Context, encoded, pw string) (ok, rehash bool, err error) {
	if err := s.acquire(ctx); err != nil {
		return false, false, err
	}
	defer s.release()
	return VerifyPassword(encoded, pw, s.cfg.Argon2)
}

// New returns a Service over db. acc manages role bindings.
func New(db *store.DB, acc *access.Store, cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Throttle.SourceFactor <= 0 {
		cfg.Throttle.SourceFactor = 1
	}
	if cfg.Policy.MaxLength == 0 {
		cfg.Policy.MaxLength = 1024
	}
	if cfg.Issuer == "" {
		cfg.Issuer = "Bulwark"
	}
	return &Service{db: db, access: acc, cfg: cfg, now: cfg.Now, rand: cfg.Rand, hashSlots: make(chan struct{}, MaxConcurrentHashes)}, nil
}

// dummy returns the hash verified for unknown usernames, made on first use:
// an argon2id hash costs its memory (64 MiB by default) and a fraction of
// a second, which every process opening the store (each CLI command) would
// otherwise pay at start.
func (s *Service) dummy() (string, error) {
	s.dummyOnce.Do(func() {
		s.dummyHash, s.dummyErr = HashPassword("bulwark-timing-equaliser", s.cfg.Argon2, s.rand)
	})
	return s.dummyHash, s.dummyErr
}

// Config returns the service's configuration.
func (s *Service) Config() Config { return s.cfg }

// User is an account as the API shows it. Secrets never leave the store.
type User struct {
	ID                int64                `json:"id"`
	Username          string               `json:"username"`
	DisplayName       string               `json:"display_name"`
	Email             string               `json:"email"`
	CreatedAt         time.Time            `json:"created_at"`
	UpdatedAt         time.Time            `json:"updated_at"`
	PasswordChangedAt time.Time            `json:"password_changed_at"`
	Disabled          bool                 `json:"disabled"`
	Locked            bool                 `json:"locked"`
	LockedReason      string               `json:"locked_reason,omitempty"`
	TOTPEnabled       bool                 `json:"totp_enabled"`
	WebAuthnKeys      int                  `json:"webauthn_keys"`
	Tags              map[string]string    `json:"tags"`
	Roles             []access.RoleBinding `json:"roles"`
}

// HasMFA reports whether the user has any second factor enrolled.
func (u User) HasMFA() bool { return u.TOTPEnabled || u.WebAuthnKeys > 0 }

var usernameRE = regexp.MustCompile(`^[a-z][a-z0-9._-]{0,63}$`)

// ValidateUsername checks the allowed account-name syntax.
func ValidateUsername(name string) error {
	if !usernameRE.MatchString(name) {
		return fmt.Errorf("%w: username %q: use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter", ErrInvalid, name)
	}
	return nil
}

// NewUser describes an account to create.
type NewUser struct {
	Username    string
	Password    string
	DisplayName string
	Email       string
	Tags        map[string]string
	Roles       []access.RoleBinding
}

const userCols = `id, username, display_name, email, created_at, updated_at, password_changed_at, disabled, locked, locked_reason, totp_secret, tags,
	(SELECT count(*) FROM webauthn_keys k WHERE k.user_id = users.id)`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var created, updated, pwc int64
	var disabled, locked int
	var totp, tags string
	if err := row.Scan(&u.ID, &u.Username, &u.DisplayName, &u.Email, &created, &updated, &pwc, &disabled, &locked, &u.LockedReason, &totp, &tags, &u.WebAuthnKeys); err != nil {
		return User{}, err
	}
	u.CreatedAt, u.UpdatedAt, u.PasswordChangedAt = store.FromMicros(created), store.FromMicros(updated), store.FromMicros(pwc)
	u.Disabled, u.Locked, u.TOTPEnabled = disabled != 0, locked != 0, totp != ""
	u.Tags = map[string]string{}
	if err := json.Unmarshal([]byte(tags), &u.Tags); err != nil {
		return User{}, fmt.Errorf("identity: user %s tags: %w", u.Username, err)
	}
	return u, nil
}

// CreateUser creates an account and binds its roles in one transaction.
func (s *Service) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	if err := ValidateUsername(nu.Username); err != nil {
		return User{}, err
	}
	if err := s.cfg.Policy.Check(nu.Password, nu.Username); err != nil {
		return User{}, fmt.Errorf("%w: password: %w", ErrInvalid, err)
	}
	if err := validateTags(nu.Tags); err != nil {
		return User{}, err
	}
	hash, err := s.hashPassword(ctx, nu.Password)
	if err != nil {
		return User{}, err
	}
	handle := make([]byte, 32)
	if _, err := io.ReadFull(s.rand, handle); err != nil {
		return User{}, fmt.Errorf("identity: random: %w", err)
	}
	tags, err := json.Marshal(nonNil(nu.Tags))
	if err != nil {
		return User{}, err
	}
	now := store.Micros(s.now())
	var id int64
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO users(username, display_name, email, password_hash, password_changed_at, created_at, updated_at, webauthn_handle, tags)
			VALUES ($1, $2, $3, $4, $5, $5, $5, $6, $7) RETURNING id`,
			nu.Username, nu.DisplayName, nu.Email, hash, now, handle, string(tags)).Scan(&id)
		if store.IsUniqueViolation(err) {
			return fmt.Errorf("%w: user %q", ErrExists, nu.Username)
		}
		if err != nil {
			return fmt.Errorf("identity: insert user: %w", err)
		}
		if len(nu.Roles) > 0 {
			return s.access.BindRolesTx(ctx, tx, id, nu.Roles)
		}
		return nil
	})
	if err != nil {
		return User{}, err
	}
	return s.userByID(ctx, id)
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

var tagRE = regexp.MustCompile(`^[A-Za-z0-9._/-]{1,63}$`)

func validateTags(tags map[string]string) error {
	if len(tags) > 32 {
		return fmt.Errorf("%w: tags: at most 32", ErrInvalid)
	}
	for k, v := range tags {
		if !tagRE.MatchString(k) || (v != "" && !tagRE.MatchString(v)) {
			return fmt.Errorf("%w: tag %q=%q: keys and values are 1-63 of A-Z a-z 0-9 . _ / -", ErrInvalid, k, v)
		}
	}
	return nil
}

func (s *Service) userByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFoundUser
	}
	if err != nil {
		return User{}, fmt.Errorf("identity: load user: %w", err)
	}
	return s.withRoles(ctx, u)
}

func (s *Service) withRoles(ctx context.Context, u User) (User, error) {
	b, err := s.access.Bindings(ctx, u.ID)
	if err != nil {
		return User{}, err
	}
	u.Roles = b
	if u.Roles == nil {
		u.Roles = []access.RoleBinding{}
	}
	return u, nil
}

// GetUser loads a user by name.
func (s *Service) GetUser(ctx context.Context, username string) (User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE username = $1`, username))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("%w: %q", ErrNotFoundUser, username)
	}
	if err != nil {
		return User{}, fmt.Errorf("identity: load user: %w", err)
	}
	return s.withRoles(ctx, u)
}

// GetUserByID loads a user by id.
func (s *Service) GetUserByID(ctx context.Context, id int64) (User, error) {
	return s.userByID(ctx, id)
}

// ListUsers returns users ordered by name, after the given name, at most limit.
func (s *Service) ListUsers(ctx context.Context, after string, limit int) ([]User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userCols+` FROM users WHERE username > $1 ORDER BY username LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("identity: list users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i], err = s.withRoles(ctx, out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// UserUpdate lists the fields to change; nil leaves a field alone.
type UserUpdate struct {
	DisplayName *string
	Email       *string
	Disabled    *bool
	Tags        *map[string]string
	Roles       *[]access.RoleBinding
}

// UpdateUser changes a user's profile, status, tags or roles in one
// transaction. Disabling a user also ends its sessions and revokes its tokens.
func (s *Service) UpdateUser(ctx context.Context, username string, up UserUpdate) (User, error) {
	u, err := s.GetUser(ctx, username)
	if err != nil {
		return User{}, err
	}
	if up.Tags != nil {
		if err := validateTags(*up.Tags); err != nil {
			return User{}, err
		}
	}
	now := store.Micros(s.now())
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.lockAdminsTx(ctx, tx); err != nil {
			return err
		}
		if up.DisplayName != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET display_name = $1, updated_at = $2 WHERE id = $3`, *up.DisplayName, now, u.ID); err != nil {
				return err
			}
		}
		if up.Email != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET email = $1, updated_at = $2 WHERE id = $3`, *up.Email, now, u.ID); err != nil {
				return err
			}
		}
		if up.Tags != nil {
			b, err := json.Marshal(nonNil(*up.Tags))
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE users SET tags = $1, updated_at = $2 WHERE id = $3`, string(b), now, u.ID); err != nil {
				return err
			}
		}
		if up.Disabled != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3`, store.Bool(*up.Disabled), now, u.ID); err != nil {
				return err
			}
			if *up.Disabled {
				if err := revokeAllTx(ctx, tx, u.ID, now); err != nil {
					return err
				}
			}
		}
		if up.Roles != nil {
			if err := s.access.BindRolesTx(ctx, tx, u.ID, *up.Roles); err != nil {
				return err
			}
		}
		if isAdmin(u, s.now()) && ((up.Disabled != nil && *up.Disabled) || up.Roles != nil) {
			return s.adminRemainsTx(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return User{}, fmt.Errorf("identity: update user %s: %w", username, err)
	}
	return s.userByID(ctx, u.ID)
}

func revokeAllTx(ctx context.Context, tx *sql.Tx, uid, now int64) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1`, uid); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at = 0`, now, uid)
	return err
}

// DeleteUser removes an account, its sessions, tokens, keys and role
// bindings in one transaction. The last enabled admin cannot be deleted.
func (s *Service) DeleteUser(ctx context.Context, username string) error {
	u, err := s.GetUser(ctx, username)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := s.lockAdminsTx(ctx, tx); err != nil {
			return err
		}
		if err := s.access.RemoveUserTx(ctx, tx, u.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, u.ID); err != nil {
			return err
		}
		if isAdmin(u, s.now()) {
			return s.adminRemainsTx(ctx, tx)
		}
		return nil
	})
}

// lockAdminsTx serialises transactions that may remove an administrator, so
// two admins demoting each other at once cannot both succeed.
func (s *Service) lockAdminsTx(ctx context.Context, tx *sql.Tx) error {
	_, err := s.access.UsersInRoleTx(ctx, tx, "admin", true)
	return err
}

func isAdmin(u User, now time.Time) bool {
	for _, b := range u.Roles {
		if b.Role == "admin" && !b.Expired(now) {
			return true
		}
	}
	return false
}

// adminRemainsTx fails the transaction when it leaves no enabled user
// holding the admin role: nobody could manage access any more. (A locked
// admin still counts: another admin, or the admin after the lock is lifted,
// can act.)
func (s *Service) adminRemainsTx(ctx context.Context, tx *sql.Tx) error {
	ids, err := s.access.UsersInRoleTx(ctx, tx, "admin", false)
	if err != nil {
		return err
	}
	for _, id := range ids {
		var disabled int
		if err := tx.QueryRowContext(ctx, `SELECT disabled FROM users WHERE id = $1`, id).Scan(&disabled); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			return err
		}
		if disabled == 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: this would leave no enabled admin; make another user admin first", ErrInvalid)
}

// SetPassword sets a user's password (an administrator's reset, typically
// after a compromise). It ends the user's sessions and revokes their API
// tokens.
func (s *Service) SetPassword(ctx context.Context, username, password string) error {
	u, err := s.GetUser(ctx, username)
	if err != nil {
		return err
	}
	return s.setPassword(ctx, u, password, true)
}

// ChangeOwnPassword changes the caller's password after checking the
// current one (throttled like a login).
func (s *Service) ChangeOwnPassword(ctx context.Context, uid int64, current, next, source string) error {
	if err := s.CheckPassword(ctx, uid, current, source); err != nil {
		return err
	}
	u, err := s.userByID(ctx, uid)
	if err != nil {
		return err
	}
	return s.setPassword(ctx, u, next, false)
}

func (s *Service) setPassword(ctx context.Context, u User, password string, revokeTokens bool) error {
	if err := s.cfg.Policy.Check(password, u.Username); err != nil {
		return fmt.Errorf("%w: password: %w", ErrInvalid, err)
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return err
	}
	now := store.Micros(s.now())
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = $1, password_changed_at = $2, updated_at = $2 WHERE id = $3`, hash, now, u.ID); err != nil {
			return err
		}
		if revokeTokens {
			return revokeAllTx(ctx, tx, u.ID, now)
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = $1`, u.ID)
		return err
	})
}

// Unlock lifts an account's lockout and clears its failure counters.
func (s *Service) Unlock(ctx context.Context, username string) error {
	u, err := s.GetUser(ctx, username)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET locked = 0, locked_reason = '', updated_at = $1 WHERE id = $2`, store.Micros(s.now()), u.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM login_throttle WHERE key = $1`, userKey(username))
		return err
	})
}

// EnsureAdmin creates the built-in roles and, when no user exists yet, the
// "admin" account with password (or a generated one, returned so the caller
// can show it once). created is false when users already existed.
func (s *Service) EnsureAdmin(ctx context.Context, password string) (created bool, generated string, err error) {
	if err := s.access.EnsureBuiltins(ctx); err != nil {
		return false, "", err
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return false, "", fmt.Errorf("identity: count users: %w", err)
	}
	if n > 0 {
		return false, "", nil
	}
	if password == "" {
		generated, err = GeneratePassword(s.rand)
		if err != nil {
			return false, "", err
		}
		password = generated
	}
	_, err = s.CreateUser(ctx, NewUser{Username: "admin", DisplayName: "Administrator", Password: password,
		Roles: []access.RoleBinding{{Role: "admin"}}})
	if err != nil {
		if errors.Is(err, ErrExists) { // another replica won the race
			return false, "", nil
		}
		return false, "", fmt.Errorf("bootstrap admin: %w", err)
	}
	return true, generated, nil
}

// GeneratePassword returns a random 24-character password (about 140 bits).
func GeneratePassword(r io.Reader) (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 24)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("identity: random: %w", err)
	}
	var sb strings.Builder
	for i, c := range b {
		if i > 0 && i%6 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return sb.String(), nil
}

// Settings are runtime authentication settings an admin may change through
// the API; they add to (never weaken) the configuration file's.
type Settings struct {
	Require2FA      bool     `json:"require_2fa"`
	Require2FARoles []string `json:"require_2fa_roles"`
}

// Settings returns the effective settings: configuration OR runtime.
func (s *Service) Settings(ctx context.Context) (Settings, error) {
	var out Settings
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM auth_settings WHERE key = 'require_2fa'`).Scan(&v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return out, fmt.Errorf("identity: settings: %w", err)
	}
	out.Require2FA = s.cfg.Require2FA || v == "true"
	out.Require2FARoles = append([]string{}, s.cfg.Require2FARoles...)
	return out, nil
}

// SetRequire2FA turns the everyone-must-use-2FA switch on or off at runtime.
// Per-role requirements are set on roles (access).
func (s *Service) SetRequire2FA(ctx context.Context, on bool) error {
	v := "false"
	if on {
		v = "true"
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO auth_settings(key, value) VALUES ('require_2fa', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, v)
	if err != nil {
		return fmt.Errorf("identity: save setting: %w", err)
	}
	return nil
}

// requires2FA reports whether policy demands a second factor from u. It
// uses the role bindings already loaded with u (User.Roles) rather than
// reading them again: it runs on every request of a user without 2FA.
func (s *Service) requires2FA(ctx context.Context, u User) (bool, error) {
	st, err := s.Settings(ctx)
	if err != nil {
		return false, err
	}
	if st.Require2FA {
		return true, nil
	}
	for _, rb := range u.Roles {
		if slices.Contains(st.Require2FARoles, rb.Role) {
			return true, nil
		}
	}
	return s.access.Requires2FA(ctx, u.ID)
}
