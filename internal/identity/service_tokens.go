package identity

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// APIToken describes an API token; its secret is shown once at creation and
// only its SHA-256 is stored.
type APIToken struct {
	ID         string    `json:"id"`
	UserID     int64     `json:"user_id"`
	Username   string    `json:"username"`
	Name       string    `json:"name"`
	Roles      []string  `json:"roles"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
	Revoked    bool      `json:"revoked"`
}

// CreateToken issues an API token for uid limited to roles, which must be a
// subset of the user's current roles (empty means all of them, frozen now).
// The token expires at expires, which must lie within the configured maximum.
func (s *Service) CreateToken(ctx context.Context, uid int64, name string, roles []string, expires time.Time) (secret string, t APIToken, err error) {
	if name == "" || len(name) > 64 {
		return "", t, fmt.Errorf("%w: name: give the token a name of 1-64 characters", ErrInvalid)
	}
	now := s.now()
	if expires.IsZero() {
		expires = now.Add(90 * 24 * time.Hour)
	}
	if !expires.After(now) {
		return "", t, fmt.Errorf("%w: expires_at: must be in the future", ErrInvalid)
	}
	if expires.Sub(now) > s.cfg.TokenMaxAge {
		return "", t, fmt.Errorf("%w: expires_at: at most %s from now (auth.token_max_age)", ErrInvalid, s.cfg.TokenMaxAge)
	}
	u, err := s.userByID(ctx, uid)
	if err != nil {
		return "", t, err
	}
	var have []string
	for _, b := range u.Roles {
		if b.ExpiresAt.IsZero() || b.ExpiresAt.After(now) {
			have = append(have, b.Role)
		}
	}
	if len(roles) == 0 {
		roles = have
	}
	for _, r := range roles {
		if !slices.Contains(have, r) {
			return "", t, fmt.Errorf("%w: roles: %q is not one of your roles %v", ErrInvalid, r, have)
		}
	}
	roles = slices.Compact(slices.Sorted(slices.Values(roles)))
	if roles == nil {
		roles = []string{}
	}
	rb, err := json.Marshal(roles)
	if err != nil {
		return "", t, err
	}
	secret, id, hash, err := NewOpaqueToken("bwt", s.rand)
	if err != nil {
		return "", t, err
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO api_tokens(id, secret_hash, user_id, name, roles, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		id, hash, uid, name, string(rb), store.Micros(now), store.Micros(expires)); err != nil {
		return "", t, fmt.Errorf("identity: save token: %w", err)
	}
	return secret, APIToken{ID: id, UserID: uid, Username: u.Username, Name: name, Roles: roles, CreatedAt: now.UTC(), ExpiresAt: expires.UTC()}, nil
}

// ListTokens lists tokens, of one user when uid != 0, else of everyone.
func (s *Service) ListTokens(ctx context.Context, uid int64) ([]APIToken, error) {
	q := `SELECT t.id, t.user_id, u.username, t.name, t.roles, t.created_at, t.expires_at, t.last_used_at, t.revoked_at
		FROM api_tokens t JOIN users u ON u.id = t.user_id`
	args := []any{}
	if uid != 0 {
		q += ` WHERE t.user_id = $1`
		args = append(args, uid)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY t.created_at, t.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("identity: list tokens: %w", err)
	}
	defer rows.Close()
	out := []APIToken{}
	for rows.Next() {
		var t APIToken
		var roles string
		var c, e, l, r int64
		if err := rows.Scan(&t.ID, &t.UserID, &t.Username, &t.Name, &roles, &c, &e, &l, &r); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(roles), &t.Roles); err != nil {
			return nil, err
		}
		t.CreatedAt, t.ExpiresAt, t.LastUsedAt, t.Revoked = store.FromMicros(c), store.FromMicros(e), store.FromMicros(l), r != 0
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken revokes a token; owner != 0 restricts it to that user's tokens.
func (s *Service) RevokeToken(ctx context.Context, id string, owner int64) error {
	q := `UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0`
	args := []any{store.Micros(s.now()), id}
	if owner != 0 {
		q += ` AND user_id = $3`
		args = append(args, owner)
	}
	res, err := s.db.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("identity: revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("token %q: %w", id, store.ErrNotFound)
	}
	return nil
}

// PruneExpired deletes expired sessions, challenges and long-expired tokens.
func (s *Service) PruneExpired(ctx context.Context) error {
	now := s.now()
	return errors.Join(
		execErr(s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2`, store.Micros(now), store.Micros(now.Add(-s.cfg.SessionIdle)))),
		execErr(s.db.ExecContext(ctx, `DELETE FROM auth_challenges WHERE expires_at <= $1`, store.Micros(now))),
		execErr(s.db.ExecContext(ctx, `DELETE FROM login_throttle WHERE blocked_until <= $1 AND last_failure <= $2`, store.Micros(now), store.Micros(now.Add(-24*time.Hour)))),
	)
}

func execErr(_ sql.Result, err error) error { return err }
