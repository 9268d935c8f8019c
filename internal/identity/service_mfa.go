package identity

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// TOTPEnrollment is what a user needs to add Bulwark to an authenticator app.
type TOTPEnrollment struct {
	Secret string `json:"secret"`
	URI    string `json:"otpauth_uri"`
	QRPNG  []byte `json:"qr_png"`
}

// BeginTOTP creates a pending TOTP secret for uid. It takes effect only when
// ConfirmTOTP sees a valid code from it, so a half-done enrolment never locks
// the user out.
func (s *Service) BeginTOTP(ctx context.Context, uid int64) (TOTPEnrollment, error) {
	u, err := s.userByID(ctx, uid)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	secret, err := NewTOTPSecret(s.rand)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	enc := EncodeTOTPSecret(secret)
	if _, err := s.db.ExecContext(ctx, `UPDATE users SET totp_pending = $1 WHERE id = $2`, enc, uid); err != nil {
		return TOTPEnrollment{}, fmt.Errorf("identity: save pending TOTP: %w", err)
	}
	uri := TOTPURI(secret, s.cfg.Issuer, u.Username, DefaultTOTP)
	png, err := TOTPQRCodePNG(uri, 256)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	return TOTPEnrollment{Secret: enc, URI: uri, QRPNG: png}, nil
}

// ConfirmTOTP activates the pending secret when code is valid for it, and
// returns a fresh set of recovery codes (shown once). Both are written in one
// transaction.
func (s *Service) ConfirmTOTP(ctx context.Context, uid int64, code string) ([]string, error) {
	var pending string
	if err := s.db.QueryRowContext(ctx, `SELECT totp_pending FROM users WHERE id = $1`, uid).Scan(&pending); err != nil {
		return nil, fmt.Errorf("identity: load user: %w", err)
	}
	if pending == "" {
		return nil, fmt.Errorf("%w: no TOTP enrolment in progress; start one first", ErrInvalid)
	}
	secret, err := DecodeTOTPSecret(pending)
	if err != nil {
		return nil, err
	}
	step, err := VerifyTOTP(secret, code, s.now(), 0, DefaultTOTP)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMFAFailed, err)
	}
	codes, hashes, err := NewRecoveryCodes(RecoveryCodeCount, s.rand)
	if err != nil {
		return nil, err
	}
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET totp_secret = totp_pending, totp_pending = '', totp_last_step = $1, updated_at = $2 WHERE id = $3`,
			step, store.Micros(s.now()), uid); err != nil {
			return err
		}
		return replaceRecoveryTx(ctx, tx, uid, hashes)
	})
	if err != nil {
		return nil, fmt.Errorf("identity: confirm TOTP: %w", err)
	}
	return codes, nil
}

func replaceRecoveryTx(ctx context.Context, tx *sql.Tx, uid int64, hashes []string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, uid); err != nil {
		return err
	}
	for _, h := range hashes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes(user_id, code_hash) VALUES ($1, $2)`, uid, h); err != nil {
			return err
		}
	}
	return nil
}

// DisableTOTP removes the user's TOTP secret. When it was their last second
// factor, recovery codes go too; that is refused while policy requires 2FA
// of the user.
func (s *Service) DisableTOTP(ctx context.Context, uid int64) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET totp_secret = '', totp_pending = '', updated_at = $1 WHERE id = $2`, store.Micros(s.now()), uid); err != nil {
			return err
		}
		return s.dropRecoveryIfNoMFATx(ctx, tx, uid)
	})
}

// PendingTOTP returns the enrolment started by BeginTOTP without changing
// anything (for GET of the QR code).
func (s *Service) PendingTOTP(ctx context.Context, uid int64) (TOTPEnrollment, error) {
	var pending, name string
	if err := s.db.QueryRowContext(ctx, `SELECT totp_pending, username FROM users WHERE id = $1`, uid).Scan(&pending, &name); err != nil {
		return TOTPEnrollment{}, fmt.Errorf("identity: load user: %w", err)
	}
	if pending == "" {
		return TOTPEnrollment{}, fmt.Errorf("TOTP enrolment %w: start one with POST /api/v1/me/totp", store.ErrNotFound)
	}
	secret, err := DecodeTOTPSecret(pending)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	uri := TOTPURI(secret, s.cfg.Issuer, name, DefaultTOTP)
	png, err := TOTPQRCodePNG(uri, 256)
	if err != nil {
		return TOTPEnrollment{}, err
	}
	return TOTPEnrollment{Secret: pending, URI: uri, QRPNG: png}, nil
}

func (s *Service) dropRecoveryIfNoMFATx(ctx context.Context, tx *sql.Tx, uid int64) error {
	var keys int
	var totp string
	if err := tx.QueryRowContext(ctx, `SELECT totp_secret, (SELECT count(*) FROM webauthn_keys WHERE user_id = $1) FROM users WHERE id = $1`, uid).Scan(&totp, &keys); err != nil {
		return err
	}
	if totp == "" && keys == 0 {
		u, err := s.userByID(ctx, uid)
		if err != nil {
			return err
		}
		need, err := s.requires2FA(ctx, u)
		if err != nil {
			return err
		}
		if need {
			return fmt.Errorf("%w: two-factor authentication is required for your account; enrol another factor before removing the last one", ErrInvalid)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, uid)
		return err
	}
	return nil
}

// RegenerateRecoveryCodes replaces the user's recovery codes. The user must
// have a second factor.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, uid int64) ([]string, error) {
	u, err := s.userByID(ctx, uid)
	if err != nil {
		return nil, err
	}
	if !u.HasMFA() {
		return nil, fmt.Errorf("%w: enrol TOTP or a security key first", ErrInvalid)
	}
	codes, hashes, err := NewRecoveryCodes(RecoveryCodeCount, s.rand)
	if err != nil {
		return nil, err
	}
	if err := s.db.Tx(ctx, func(tx *sql.Tx) error { return replaceRecoveryTx(ctx, tx, uid, hashes) }); err != nil {
		return nil, fmt.Errorf("identity: recovery codes: %w", err)
	}
	return codes, nil
}

// RecoveryCodesLeft counts unused recovery codes.
func (s *Service) RecoveryCodesLeft(ctx context.Context, uid int64) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at = 0`, uid).Scan(&n)
	return n, err
}

// KeyInfo describes a registered security key.
type KeyInfo struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

func (s *Service) webauthnAccount(ctx context.Context, uid int64) (WebAuthnAccount, error) {
	var a WebAuthnAccount
	if err := s.db.QueryRowContext(ctx, `SELECT webauthn_handle, username, display_name FROM users WHERE id = $1`, uid).Scan(&a.Handle, &a.Name, &a.DisplayName); err != nil {
		return a, fmt.Errorf("identity: load user: %w", err)
	}
	if a.DisplayName == "" {
		a.DisplayName = a.Name
	}
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM webauthn_keys WHERE user_id = $1 ORDER BY created_at`, uid)
	if err != nil {
		return a, fmt.Errorf("identity: load keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return a, err
		}
		var k WebAuthnKey
		if err := json.Unmarshal([]byte(data), &k); err != nil {
			return a, fmt.Errorf("identity: stored key: %w", err)
		}
		a.Keys = append(a.Keys, k)
	}
	return a, rows.Err()
}

func (s *Service) webauthn() (*WebAuthn, error) {
	if s.cfg.WebAuthn == nil {
		return nil, fmt.Errorf("%w: WebAuthn is not configured (auth.webauthn)", ErrInvalid)
	}
	return s.cfg.WebAuthn, nil
}

// BeginWebAuthnRegistration starts registering a security key for uid and
// returns the options for navigator.credentials.create and a ceremony token.
func (s *Service) BeginWebAuthnRegistration(ctx context.Context, uid int64) (options json.RawMessage, ceremony string, err error) {
	w, err := s.webauthn()
	if err != nil {
		return nil, "", err
	}
	a, err := s.webauthnAccount(ctx, uid)
	if err != nil {
		return nil, "", err
	}
	options, state, err := w.BeginRegistration(a)
	if err != nil {
		return nil, "", err
	}
	tok, id, hash, err := NewOpaqueToken("bwr", s.rand)
	if err != nil {
		return nil, "", err
	}
	now := s.now()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO auth_challenges(id, secret_hash, user_id, kind, state, created_at, expires_at) VALUES ($1, $2, $3, 'webauthn_register', $4, $5, $6)`,
		id, hash, uid, state, store.Micros(now), store.Micros(now.Add(mfaChallengeTTL))); err != nil {
		return nil, "", fmt.Errorf("identity: save ceremony: %w", err)
	}
	return options, tok, nil
}

// FinishWebAuthnRegistration verifies the authenticator's response and
// stores the new key under name.
func (s *Service) FinishWebAuthnRegistration(ctx context.Context, uid int64, ceremony, name string, response []byte) (KeyInfo, error) {
	w, err := s.webauthn()
	if err != nil {
		return KeyInfo{}, err
	}
	name, err = ValidateWebAuthnKeyName(name)
	if err != nil {
		return KeyInfo{}, fmt.Errorf("%w: name: %w", ErrInvalid, err)
	}
	owner, state, id, err := s.challenge(ctx, ceremony, "webauthn_register")
	if err != nil {
		return KeyInfo{}, err
	}
	if owner != uid {
		return KeyInfo{}, fmt.Errorf("%w: ceremony belongs to another user", ErrUnauthenticated)
	}
	a, err := s.webauthnAccount(ctx, uid)
	if err != nil {
		return KeyInfo{}, err
	}
	key, err := w.FinishRegistration(a, state, response, name, s.now())
	if err != nil {
		return KeyInfo{}, fmt.Errorf("%w: %w", ErrMFAFailed, err)
	}
	data, err := json.Marshal(key)
	if err != nil {
		return KeyInfo{}, err
	}
	kid := base64.RawURLEncoding.EncodeToString(key.ID)
	now := s.now()
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := deleteChallengeTx(ctx, tx, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO webauthn_keys(id, user_id, name, data, created_at) VALUES ($1, $2, $3, $4, $5)`,
			kid, uid, key.Name, string(data), store.Micros(now))
		if store.IsUniqueViolation(err) {
			return fmt.Errorf("%w: this security key is already registered", ErrExists)
		}
		return err
	})
	if err != nil {
		return KeyInfo{}, err
	}
	return KeyInfo{ID: kid, Name: name, CreatedAt: now}, nil
}

// ListWebAuthnKeys lists uid's security keys.
func (s *Service) ListWebAuthnKeys(ctx context.Context, uid int64) ([]KeyInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, created_at, last_used_at FROM webauthn_keys WHERE user_id = $1 ORDER BY created_at`, uid)
	if err != nil {
		return nil, fmt.Errorf("identity: list keys: %w", err)
	}
	defer rows.Close()
	out := []KeyInfo{}
	for rows.Next() {
		var k KeyInfo
		var c, l int64
		if err := rows.Scan(&k.ID, &k.Name, &c, &l); err != nil {
			return nil, err
		}
		k.CreatedAt, k.LastUsedAt = store.FromMicros(c), store.FromMicros(l)
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeleteWebAuthnKey removes one of uid's keys.
func (s *Service) DeleteWebAuthnKey(ctx context.Context, uid int64, keyID string) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webauthn_keys WHERE id = $1 AND user_id = $2`, keyID, uid)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("security key %q: %w", keyID, store.ErrNotFound)
		}
		return s.dropRecoveryIfNoMFATx(ctx, tx, uid)
	})
}

// BeginWebAuthnLogin returns assertion options for the user behind an MFA
// challenge token from Login.
func (s *Service) BeginWebAuthnLogin(ctx context.Context, mfaToken string) (json.RawMessage, error) {
	w, err := s.webauthn()
	if err != nil {
		return nil, err
	}
	uid, _, id, err := s.challenge(ctx, mfaToken, "mfa")
	if err != nil {
		return nil, err
	}
	a, err := s.webauthnAccount(ctx, uid)
	if err != nil {
		return nil, err
	}
	options, state, err := w.BeginLogin(a)
	if err != nil {
		return nil, err
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE auth_challenges SET state = $1 WHERE id = $2`, state, id); err != nil {
		return nil, fmt.Errorf("identity: save ceremony: %w", err)
	}
	return options, nil
}

// FinishWebAuthnLogin checks the assertion and signs the user in.
func (s *Service) FinishWebAuthnLogin(ctx context.Context, mfaToken string, response []byte, l Login) (LoginResult, error) {
	w, err := s.webauthn()
	if err != nil {
		return LoginResult{}, err
	}
	st, err := s.secondStep(ctx, mfaToken, &l, true)
	if err != nil {
		return LoginResult{User: st.user}, err
	}
	u, at, id, uid := st.user, st.attempt, st.id, st.user.ID
	a, err := s.webauthnAccount(ctx, uid)
	if err != nil {
		return LoginResult{User: u}, err
	}
	keyID, count, err := w.FinishLogin(a, st.state, response, s.now())
	if err != nil {
		return LoginResult{User: u}, s.fail(ctx, at, uid, l.Source, fmt.Errorf("%w: %w", ErrMFAFailed, err))
	}
	kid := base64.RawURLEncoding.EncodeToString(keyID)
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		// The ceremony is single use: of two racing requests with the same
		// assertion only the one that deletes the challenge proceeds.
		if err := deleteChallengeTx(ctx, tx, id); err != nil {
			return err
		}
		var data string
		if err := tx.QueryRowContext(ctx, `SELECT data FROM webauthn_keys WHERE id = $1 AND user_id = $2`, kid, uid).Scan(&data); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: unknown key", ErrMFAFailed)
			}
			return err
		}
		var k WebAuthnKey
		if err := json.Unmarshal([]byte(data), &k); err != nil {
			return err
		}
		if count != 0 && count <= k.SignCount {
			return fmt.Errorf("%w: signature counter did not advance (cloned key?)", ErrMFAFailed)
		}
		k.SignCount = count
		b, err := json.Marshal(k)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE webauthn_keys SET data = $1, last_used_at = $2 WHERE id = $3 AND data = $4`, string(b), store.Micros(s.now()), kid, data)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("%w: the key was used concurrently (cloned key?)", ErrMFAFailed)
		}
		return nil
	})
	if errors.Is(err, ErrMFAFailed) || errors.Is(err, ErrUnauthenticated) {
		return LoginResult{User: u}, s.fail(ctx, at, uid, l.Source, err)
	}
	if err != nil {
		return LoginResult{User: u}, fmt.Errorf("identity: security key login: %w", err)
	}
	return s.signIn(ctx, u, l, at, true, false)
}

// deleteChallengeTx consumes a ceremony; it fails unless this call removed it.
func deleteChallengeTx(ctx context.Context, tx *sql.Tx, id string) error {
	res, err := tx.ExecContext(ctx, `DELETE FROM auth_challenges WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("%w: challenge already used", ErrUnauthenticated)
	}
	return nil
}
