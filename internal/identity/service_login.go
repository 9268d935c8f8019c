package identity

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

//go:embed migrations/*.sql
var migrationsFS embed.FS

// Login is one sign-in attempt.
type Login struct {
	Username     string
	Password     string
	TOTP         string
	RecoveryCode string
	Source       string // client address, for throttling and the session record
	UserAgent    string
}

// LoginResult is the outcome of a successful first step. Either Token is set
// (signed in), or MFAToken is set and the client must complete a second
// factor with one of Methods.
type LoginResult struct {
	User      User      `json:"user"`
	Token     string    `json:"token,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Restricted sessions may only enrol a second factor: policy requires
	// 2FA and the user has none yet.
	Restricted bool     `json:"restricted,omitempty"`
	MFAToken   string   `json:"mfa_token,omitempty"`
	Methods    []string `json:"methods,omitempty"`
	// UsedRecoveryCode is true when a recovery code was consumed.
	UsedRecoveryCode bool `json:"used_recovery_code,omitempty"`
}

const mfaChallengeTTL = 5 * time.Minute
const mfaMaxAttempts = 5

func userKey(name string) string { return "user:" + name }

// sourceKey groups IPv6 clients by /64, since one host commonly holds a whole
// /64 and could otherwise rotate addresses to dodge the limit.
func sourceKey(src string) string {
	ap, err := netip.ParseAddrPort(src)
	var a netip.Addr
	if err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(src); err != nil {
		return "src:" + src
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "src:" + p.String()
	}
	return "src:" + a.String()
}

// Backoff returns how long a key is blocked after its n-th consecutive
// failure: nothing for the free attempts, then base doubling up to max.
func (t Throttle) Backoff(n, free int) time.Duration {
	if n <= free || t.BaseDelay <= 0 {
		return 0
	}
	d := t.BaseDelay
	for i := free + 1; i < n; i++ {
		d *= 2
		if d >= t.MaxDelay {
			return t.MaxDelay
		}
	}
	return min(d, t.MaxDelay)
}

// attempt is one reserved sign-in attempt: its keys' failure counters were
// raised before any password work, and are refunded on success.
type attempt struct {
	keys []string
	// n is the account key's count including this attempt.
	n int
}

// reserve counts an attempt against each key before the credential is
// checked, refusing while any key is blocked. Counting first (and refunding
// on success) is what makes the limit hold under a burst of parallel
// requests: each one sees the counts of all those before it, so only the
// free attempts get through to argon2id.
func (s *Service) reserve(ctx context.Context, username, source string) (*attempt, error) {
	t := s.cfg.Throttle
	a := &attempt{}
	now := s.now()
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		for _, k := range []struct {
			key  string
			free int
		}{{userKey(username), t.FreeAttempts}, {sourceKey(source), t.FreeAttempts * t.SourceFactor}} {
			var n int
			var blocked int64
			err := tx.QueryRowContext(ctx, `INSERT INTO login_throttle(key, failures, last_failure, blocked_until) VALUES ($1, 1, $2, 0)
				ON CONFLICT (key) DO UPDATE SET failures = login_throttle.failures + 1, last_failure = excluded.last_failure
				RETURNING failures, blocked_until`, k.key, store.Micros(now)).Scan(&n, &blocked)
			if err != nil {
				return err
			}
			if until := store.FromMicros(blocked); until.After(now) {
				return &ThrottledError{Key: k.key, RetryAfter: until.Sub(now)} // rolls the counts back
			}
			if d := s.cfg.Throttle.Backoff(n, k.free); d > 0 {
				if _, err := tx.ExecContext(ctx, `UPDATE login_throttle SET blocked_until = $1 WHERE key = $2`, store.Micros(now.Add(d)), k.key); err != nil {
					return err
				}
			}
			if a.keys == nil {
				a.n = n
			}
			a.keys = append(a.keys, k.key)
		}
		return nil
	})
	if err != nil {
		var te *ThrottledError
		if errors.As(err, &te) {
			return nil, err
		}
		return nil, fmt.Errorf("identity: throttle: %w", err)
	}
	return a, nil
}

// succeed refunds a reserved attempt: the account's counter is cleared, the
// source's lowered by one (a source keeps its history: one good login from
// an address must not wipe the failures of a password sprayer behind it).
func (s *Service) succeedTx(ctx context.Context, tx *sql.Tx, a *attempt) error {
	if a == nil {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM login_throttle WHERE key = $1`, a.keys[0]); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE login_throttle SET failures = failures - 1 WHERE key = $1 AND failures > 0`, a.keys[1])
	return err
}

// fail settles a reserved attempt that failed, locking the account when it
// reached the lockout threshold. The account's lockout reason stays in the
// database (and the audit log); the caller sees only ErrLocked.
func (s *Service) fail(ctx context.Context, a *attempt, uid int64, source string, cause error) error {
	t := s.cfg.Throttle
	if uid != 0 && t.LockoutAfter > 0 && a.n >= t.LockoutAfter {
		reason := fmt.Sprintf("%d consecutive failed sign-ins, last from %s", a.n, source)
		if _, err := s.db.ExecContext(ctx, `UPDATE users SET locked = 1, locked_reason = $1 WHERE id = $2 AND locked = 0`, reason, uid); err != nil {
			return fmt.Errorf("identity: lock account: %w", err)
		}
		return ErrLocked
	}
	return cause
}

// CheckPassword verifies uid's current password under the same throttle as
// a login: the re-authentication required before credential changes, so a
// stolen session cannot silently swap the account's factors.
func (s *Service) CheckPassword(ctx context.Context, uid int64, password, source string) error {
	var hash, name string
	var locked int
	if err := s.db.QueryRowContext(ctx, `SELECT password_hash, username, locked FROM users WHERE id = $1`, uid).Scan(&hash, &name, &locked); err != nil {
		return fmt.Errorf("identity: load user: %w", err)
	}
	a, err := s.reserve(ctx, name, source)
	if err != nil {
		return err
	}
	ok, _, err := s.verifyPassword(ctx, hash, password)
	if err != nil {
		return err
	}
	if locked != 0 {
		return ErrLocked
	}
	if !ok {
		return s.fail(ctx, a, uid, source, ErrBadCredentials)
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error { return s.succeedTx(ctx, tx, a) })
}

// Login checks a password and, when the account has or needs a second
// factor, the TOTP code or recovery code given with it. Without one, it
// returns an MFA challenge the client completes with LoginMFA or WebAuthn.
func (s *Service) Login(ctx context.Context, l Login) (LoginResult, error) {
	a, err := s.reserve(ctx, l.Username, l.Source)
	if err != nil {
		return LoginResult{}, err
	}
	var uid int64
	var hash string
	var disabled, locked int
	err = s.db.QueryRowContext(ctx, `SELECT id, password_hash, disabled, locked FROM users WHERE username = $1`, l.Username).Scan(&uid, &hash, &disabled, &locked)
	if errors.Is(err, sql.ErrNoRows) || len(l.Password) > 4096 {
		dummy, err := s.dummy()
		if err != nil {
			return LoginResult{}, fmt.Errorf("identity: %w", err)
		}
		if _, _, err := s.verifyPassword(ctx, dummy, l.Password); err != nil && ctx.Err() != nil {
			return LoginResult{}, err
		}
		return LoginResult{}, s.fail(ctx, a, 0, l.Source, ErrBadCredentials)
	}
	if err != nil {
		return LoginResult{}, fmt.Errorf("identity: load user: %w", err)
	}
	ok, rehash, err := s.verifyPassword(ctx, hash, l.Password)
	if err != nil {
		return LoginResult{}, fmt.Errorf("identity: stored password hash of %s: %w", l.Username, err)
	}
	if locked != 0 {
		// The same answer whether or not the password was right.
		return LoginResult{}, ErrLocked
	}
	if !ok {
		return LoginResult{}, s.fail(ctx, a, uid, l.Source, ErrBadCredentials)
	}
	if disabled != 0 {
		return LoginResult{}, ErrDisabled
	}
	if rehash {
		if h, err := s.hashPassword(ctx, l.Password); err == nil {
			if _, err := s.db.ExecContext(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, h, uid); err != nil {
				return LoginResult{}, fmt.Errorf("identity: rehash: %w", err)
			}
		}
	}
	u, err := s.userByID(ctx, uid)
	if err != nil {
		return LoginResult{}, err
	}
	need, err := s.requires2FA(ctx, u)
	if err != nil {
		return LoginResult{}, err
	}
	switch {
	case u.HasMFA() && (l.TOTP != "" || l.RecoveryCode != ""):
		used, err := s.checkSecondFactor(ctx, u, l.TOTP, l.RecoveryCode)
		if err != nil {
			return LoginResult{User: u}, s.fail(ctx, a, uid, l.Source, err)
		}
		res, err := s.signIn(ctx, u, l, a, true, false)
		res.UsedRecoveryCode = used
		return res, err
	case u.HasMFA():
		// The password was right: refund it; the second step reserves its own.
		if err := s.db.Tx(ctx, func(tx *sql.Tx) error { return s.succeedTx(ctx, tx, a) }); err != nil {
			return LoginResult{}, err
		}
		return s.mfaChallenge(ctx, u)
	case need:
		// Policy requires 2FA and none is enrolled: a session that can only enrol.
		return s.signIn(ctx, u, l, a, false, true)
	default:
		return s.signIn(ctx, u, l, a, false, false)
	}
}

func (s *Service) mfaChallenge(ctx context.Context, u User) (LoginResult, error) {
	tok, id, hash, err := NewOpaqueToken("bwm", s.rand)
	if err != nil {
		return LoginResult{}, err
	}
	now := s.now()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO auth_challenges(id, secret_hash, user_id, kind, created_at, expires_at) VALUES ($1, $2, $3, 'mfa', $4, $5)`,
		id, hash, u.ID, store.Micros(now), store.Micros(now.Add(mfaChallengeTTL))); err != nil {
		return LoginResult{}, fmt.Errorf("identity: save challenge: %w", err)
	}
	var methods []string
	if u.TOTPEnabled {
		methods = append(methods, "totp", "recovery_code")
	}
	if u.WebAuthnKeys > 0 {
		methods = append(methods, "webauthn")
	}
	if !u.TOTPEnabled {
		methods = append(methods, "recovery_code")
	}
	return LoginResult{User: u, MFAToken: tok, Methods: methods}, nil
}

// challenge loads a pending ceremony by its client token, counting the
// attempt; expired or exhausted challenges are deleted.
func (s *Service) challenge(ctx context.Context, token, kind string) (uid int64, state []byte, id string, err error) {
	prefix := "bwm"
	if kind == "webauthn_register" {
		prefix = "bwr"
	}
	id, secretHash, err := ParseOpaqueToken(token, prefix)
	if err != nil {
		return 0, nil, "", fmt.Errorf("%w: challenge token", ErrUnauthenticated)
	}
	// Counting the attempt and reading the challenge is one statement, so
	// parallel requests cannot exceed mfaMaxAttempts between a read and a
	// write.
	var stored string
	err = s.db.QueryRowContext(ctx, `UPDATE auth_challenges SET attempts = attempts + 1
		WHERE id = $1 AND kind = $2 AND attempts < $3 AND expires_at > $4
		RETURNING secret_hash, user_id, state`, id, kind, mfaMaxAttempts, store.Micros(s.now())).Scan(&stored, &uid, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, "", fmt.Errorf("%w: challenge unknown, used, expired or out of attempts; sign in again", ErrUnauthenticated)
	}
	if err != nil {
		return 0, nil, "", fmt.Errorf("identity: load challenge: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(stored), []byte(secretHash)) != 1 {
		return 0, nil, "", fmt.Errorf("%w: unknown or used challenge", ErrUnauthenticated)
	}
	return uid, state, id, nil
}

// pendingStep is the second step of a login, as loaded by secondStep.
type pendingStep struct {
	user    User
	attempt *attempt
	id      string // the challenge's id
	state   []byte // the ceremony state stored with it
}

// secondStep loads the challenge behind an MFA token and its user (naming
// the account in l for throttling and audit), then reserves the attempt.
// needState refuses, before anything is counted, a challenge whose
// security-key ceremony was never begun.
func (s *Service) secondStep(ctx context.Context, mfaToken string, l *Login, needState bool) (pendingStep, error) {
	var st pendingStep
	uid, state, id, err := s.challenge(ctx, mfaToken, "mfa")
	if err != nil {
		return st, err
	}
	if needState && len(state) == 0 {
		return st, fmt.Errorf("%w: begin the security-key login first", ErrInvalid)
	}
	u, err := s.userByID(ctx, uid)
	if err != nil {
		return st, err
	}
	st.user, st.id, st.state = u, id, state
	l.Username = u.Username
	st.attempt, err = s.reserve(ctx, u.Username, l.Source)
	return st, err
}

// LoginMFA completes a login with a TOTP or recovery code.
func (s *Service) LoginMFA(ctx context.Context, mfaToken, totp, recovery string, l Login) (LoginResult, error) {
	st, err := s.secondStep(ctx, mfaToken, &l, false)
	if err != nil {
		return LoginResult{User: st.user}, err
	}
	u, a, id := st.user, st.attempt, st.id
	used, err := s.checkSecondFactor(ctx, u, totp, recovery)
	if err != nil {
		return LoginResult{User: u}, s.fail(ctx, a, u.ID, l.Source, err)
	}
	if err := s.db.Tx(ctx, func(tx *sql.Tx) error { return deleteChallengeTx(ctx, tx, id) }); err != nil {
		return LoginResult{User: u}, err
	}
	res, err := s.signIn(ctx, u, l, a, true, false)
	res.UsedRecoveryCode = used
	return res, err
}

// checkSecondFactor verifies a TOTP code (recording its step so it cannot be
// replayed) or consumes a recovery code.
func (s *Service) checkSecondFactor(ctx context.Context, u User, code, recovery string) (usedRecovery bool, err error) {
	if recovery != "" {
		return true, s.consumeRecoveryCode(ctx, u.ID, recovery)
	}
	if code == "" {
		return false, fmt.Errorf("%w: no code given", ErrMFAFailed)
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var enc string
		var last int64
		if err := tx.QueryRowContext(ctx, `SELECT totp_secret, totp_last_step FROM users WHERE id = $1`+s.forUpdate(), u.ID).Scan(&enc, &last); err != nil {
			return err
		}
		if enc == "" {
			return fmt.Errorf("%w: TOTP not enrolled", ErrMFAFailed)
		}
		secret, err := DecodeTOTPSecret(enc)
		if err != nil {
			return fmt.Errorf("identity: stored TOTP secret: %w", err)
		}
		step, err := VerifyTOTP(secret, code, s.now(), last, DefaultTOTP)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMFAFailed, err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET totp_last_step = $1 WHERE id = $2`, step, u.ID)
		return err
	})
	return false, err
}

func (s *Service) forUpdate() string {
	if s.db.Dialect == store.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func (s *Service) consumeRecoveryCode(ctx context.Context, uid int64, input string) error {
	norm, ok := NormalizeRecoveryCode(input)
	if !ok {
		return fmt.Errorf("%w: malformed recovery code", ErrMFAFailed)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at = 0`,
		store.Micros(s.now()), uid, HashRecoveryCode(norm))
	if err != nil {
		return fmt.Errorf("identity: recovery code: %w", err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("%w: recovery code unknown or already used", ErrMFAFailed)
	}
	return nil
}

// signIn creates a session after all factors passed, refunding the
// reserved attempt. The account's state is read again inside the
// transaction: a lockout or disabling that landed while the factors were
// being checked wins.
func (s *Service) signIn(ctx context.Context, u User, l Login, a *attempt, mfa, restricted bool) (LoginResult, error) {
	tok, id, hash, err := NewOpaqueToken("bws", s.rand)
	if err != nil {
		return LoginResult{}, err
	}
	now := s.now()
	exp := now.Add(s.cfg.SessionMaxAge)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		var locked, disabled int
		if err := tx.QueryRowContext(ctx, `SELECT locked, disabled FROM users WHERE id = $1`+s.forUpdate(), u.ID).Scan(&locked, &disabled); err != nil {
			return err
		}
		if locked != 0 {
			return ErrLocked
		}
		if disabled != 0 {
			return ErrDisabled
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sessions(id, secret_hash, user_id, created_at, last_seen_at, expires_at, source, user_agent, mfa, restricted)
			VALUES ($1, $2, $3, $4, $4, $5, $6, $7, $8, $9)`, id, hash, u.ID, store.Micros(now), store.Micros(exp), l.Source, truncate(l.UserAgent, 256), store.Bool(mfa), store.Bool(restricted)); err != nil {
			return err
		}
		return s.succeedTx(ctx, tx, a)
	})
	if errors.Is(err, ErrLocked) || errors.Is(err, ErrDisabled) {
		return LoginResult{User: u}, err
	}
	if err != nil {
		return LoginResult{}, fmt.Errorf("identity: create session: %w", err)
	}
	return LoginResult{User: u, Token: tok, ExpiresAt: exp, Restricted: restricted}, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Auth is an authenticated caller.
type Auth struct {
	User User
	// SessionID is set for a browser/CLI session, TokenID for an API token.
	SessionID string
	TokenID   string
	// TokenRoles is the token's role subset (nil for sessions: all roles).
	TokenRoles []string
	// Restricted sessions may only enrol a second factor.
	Restricted bool
	MFA        bool
}

// sessionTouchEvery limits last-seen writes to one per interval per session.
const sessionTouchEvery = time.Minute

// Authenticate resolves a bearer credential (session or API token).
func (s *Service) Authenticate(ctx context.Context, bearer string) (Auth, error) {
	if id, hash, err := ParseOpaqueToken(bearer, "bws"); err == nil {
		return s.authSession(ctx, id, hash)
	}
	if id, hash, err := ParseOpaqueToken(bearer, "bwt"); err == nil {
		return s.authToken(ctx, id, hash)
	}
	return Auth{}, ErrUnauthenticated
}

func (s *Service) authSession(ctx context.Context, id, hash string) (Auth, error) {
	var uid, seen, exp int64
	var stored string
	var mfa, restricted int
	err := s.db.QueryRowContext(ctx, `SELECT secret_hash, user_id, last_seen_at, expires_at, mfa, restricted FROM sessions WHERE id = $1`, id).
		Scan(&stored, &uid, &seen, &exp, &mfa, &restricted)
	if errors.Is(err, sql.ErrNoRows) {
		return Auth{}, ErrUnauthenticated
	}
	if err != nil {
		return Auth{}, fmt.Errorf("identity: load session: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(stored), []byte(hash)) != 1 {
		return Auth{}, ErrUnauthenticated
	}
	now := s.now()
	if !store.FromMicros(exp).After(now) || now.Sub(store.FromMicros(seen)) > s.cfg.SessionIdle {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id = $1`, id); err != nil {
			return Auth{}, err
		}
		return Auth{}, fmt.Errorf("%w: session %w", ErrUnauthenticated, ErrExpired)
	}
	u, err := s.userByID(ctx, uid)
	if err != nil {
		return Auth{}, err
	}
	if u.Disabled || u.Locked {
		return Auth{}, ErrUnauthenticated
	}
	if now.Sub(store.FromMicros(seen)) >= sessionTouchEvery {
		if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_seen_at = $1 WHERE id = $2`, store.Micros(now), id); err != nil {
			return Auth{}, fmt.Errorf("identity: touch session: %w", err)
		}
	}
	if restricted == 0 && !u.HasMFA() {
		// Policy may have started requiring 2FA after this session began,
		// or the user removed their last factor: restrict it from now on.
		need, err := s.requires2FA(ctx, u)
		if err != nil {
			return Auth{}, err
		}
		restricted = store.Bool(need)
	}
	return Auth{User: u, SessionID: id, Restricted: restricted != 0, MFA: mfa != 0}, nil
}

func (s *Service) authToken(ctx context.Context, id, hash string) (Auth, error) {
	var uid, exp, revoked, used int64
	var stored, roles string
	err := s.db.QueryRowContext(ctx, `SELECT secret_hash, user_id, expires_at, revoked_at, last_used_at, roles FROM api_tokens WHERE id = $1`, id).
		Scan(&stored, &uid, &exp, &revoked, &used, &roles)
	if errors.Is(err, sql.ErrNoRows) {
		return Auth{}, ErrUnauthenticated
	}
	if err != nil {
		return Auth{}, fmt.Errorf("identity: load token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(stored), []byte(hash)) != 1 || revoked != 0 {
		return Auth{}, ErrUnauthenticated
	}
	now := s.now()
	if !store.FromMicros(exp).After(now) {
		return Auth{}, fmt.Errorf("%w: token %w", ErrUnauthenticated, ErrExpired)
	}
	u, err := s.userByID(ctx, uid)
	if err != nil {
		return Auth{}, err
	}
	if u.Disabled || u.Locked {
		return Auth{}, ErrUnauthenticated
	}
	if !u.HasMFA() {
		// A token does not outlive its owner's duty to use 2FA.
		need, err := s.requires2FA(ctx, u)
		if err != nil {
			return Auth{}, err
		}
		if need {
			return Auth{}, fmt.Errorf("%w: the token's owner must enrol two-factor authentication first", ErrUnauthenticated)
		}
	}
	var subset []string
	if err := json.Unmarshal([]byte(roles), &subset); err != nil {
		return Auth{}, fmt.Errorf("identity: token roles: %w", err)
	}
	if subset == nil {
		subset = []string{}
	}
	if now.Sub(store.FromMicros(used)) >= sessionTouchEvery {
		if _, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = $1 WHERE id = $2`, store.Micros(now), id); err != nil {
			return Auth{}, fmt.Errorf("identity: touch token: %w", err)
		}
	}
	return Auth{User: u, TokenID: id, TokenRoles: subset, MFA: true}, nil
}

// Logout ends a session.
func (s *Service) Logout(ctx context.Context, sessionID string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id = $1`, sessionID)
	return err
}
