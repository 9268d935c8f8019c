package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
)

// apiToken is an API token as the API lists it.
type apiToken struct {
	ID         string    `json:"id"`
	Username   string    `json:"username"`
	Name       string    `json:"name"`
	Roles      []string  `json:"roles"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	Revoked    bool      `json:"revoked"`
}

type accessData struct {
	Users     []user
	UsersPart part
	Roles     []access.Role
	RolesPart part
	Tokens    []apiToken
	TokPart   part
	Modules   []access.Module
	Levels    []access.Level
}

func (c *Console) accessPage(w http.ResponseWriter, r *http.Request, s *session) error {
	d := accessData{Modules: access.Modules(), Levels: []access.Level{access.LevelRead, access.LevelOperate, access.LevelWrite}}
	var ul list[user]
	d.UsersPart = c.get(r, s, "/api/v1/users?limit=500", &ul)
	d.Users = ul.Items
	var rl list[access.Role]
	d.RolesPart = c.get(r, s, "/api/v1/roles", &rl)
	d.Roles = rl.Items
	if s.CanAll("access", "read") {
		var tl list[apiToken]
		d.TokPart = c.get(r, s, "/api/v1/tokens", &tl)
		d.Tokens = tl.Items
	}
	c.render(w, r, http.StatusOK, "access", &view{Title: "Access", S: s, Data: d})
	return nil
}

func (c *Console) userCreate(r *http.Request, s *session) (string, error) {
	f := r.PostForm
	in := map[string]any{"username": strings.TrimSpace(f.Get("username")), "password": f.Get("password"),
		"display_name": f.Get("display_name"), "email": strings.TrimSpace(f.Get("email"))}
	if role := f.Get("role"); role != "" {
		b := access.RoleBinding{Role: role}
		if e := strings.TrimSpace(f.Get("expires")); e != "" {
			t, err := time.ParseInLocation("2006-01-02", e, time.UTC)
			if err != nil {
				return "", fmt.Errorf("expires: %q is not a date (YYYY-MM-DD)", e)
			}
			b.ExpiresAt = t
		}
		in["roles"] = []access.RoleBinding{b}
	}
	if err := c.call(r, s.token, http.MethodPost, "/api/v1/users", in, nil); err != nil {
		return "", err
	}
	return "Created user " + in["username"].(string) + ".", nil
}

func (c *Console) userDelete(r *http.Request, s *session) (string, error) {
	n := r.PathValue("name")
	if err := c.call(r, s.token, http.MethodDelete, "/api/v1/users/"+url.PathEscape(n), nil, nil); err != nil {
		return "", err
	}
	return "Deleted user " + n + ".", nil
}

func (c *Console) userUnlock(r *http.Request, s *session) (string, error) {
	n := r.PathValue("name")
	if err := c.call(r, s.token, http.MethodPost, "/api/v1/users/"+url.PathEscape(n)+"/unlock", nil, nil); err != nil {
		return "", err
	}
	return "Unlocked " + n + ".", nil
}

func (c *Console) grantAdd(r *http.Request, s *session) (string, error) {
	f := r.PostForm
	in := map[string]any{"module": f.Get("module"), "level": f.Get("level"), "effect": f.Get("effect")}
	if sc := strings.TrimSpace(f.Get("scope")); sc != "" {
		sel, err := access.ParseSelector(sc)
		if err != nil {
			return "", fmt.Errorf("scope: %w", err)
		}
		in["scope"] = sel
	}
	if e := strings.TrimSpace(f.Get("expires")); e != "" {
		t, err := time.ParseInLocation("2006-01-02", e, time.UTC)
		if err != nil {
			return "", fmt.Errorf("expires: %q is not a date (YYYY-MM-DD)", e)
		}
		in["expires_at"] = t
	}
	role := r.PathValue("name")
	if err := c.call(r, s.token, http.MethodPost, "/api/v1/roles/"+url.PathEscape(role)+"/grants", in, nil); err != nil {
		return "", err
	}
	return fmt.Sprintf("Added %s %s on %s to role %s.", f.Get("effect"), f.Get("level"), f.Get("module"), role), nil
}

func (c *Console) grantRemove(r *http.Request, s *session) (string, error) {
	role, id := r.PathValue("name"), r.PathValue("id")
	if err := c.call(r, s.token, http.MethodDelete, "/api/v1/roles/"+url.PathEscape(role)+"/grants/"+url.PathEscape(id), nil, nil); err != nil {
		return "", err
	}
	return "Removed grant " + id + " from role " + role + ".", nil
}

func (c *Console) tokenRevokeAny(r *http.Request, s *session) (string, error) {
	id := r.PathValue("id")
	if err := c.call(r, s.token, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(id), nil, nil); err != nil {
		return "", err
	}
	return "Revoked token " + id + ".", nil
}

// ---- Account: the signed-in user's own credentials ----

type securityKey struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
}

type accountData struct {
	Keys     []securityKey
	KeysPart part
	Tokens   []apiToken
	TokPart  part
	TOTP     *totpEnrolment
	Codes    []string
	Secret   string
	Created  *apiToken
}

type totpEnrolment struct {
	Secret string `json:"secret"`
	URI    string `json:"otpauth_uri"`
}

func (c *Console) accountData(r *http.Request, s *session) accountData {
	var d accountData
	var kl list[securityKey]
	d.KeysPart = c.get(r, s, "/api/v1/me/webauthn", &kl)
	d.Keys = kl.Items
	var tl list[apiToken]
	if !s.Me.Restricted {
		d.TokPart = c.get(r, s, "/api/v1/me/tokens", &tl)
	}
	d.Tokens = tl.Items
	return d
}

func (c *Console) account(w http.ResponseWriter, r *http.Request, s *session) error {
	c.render(w, r, http.StatusOK, "account", &view{Title: "Your account", S: s, Data: c.accountData(r, s)})
	return nil
}

func (c *Console) passwordChange(r *http.Request, s *session) (string, error) {
	f := r.PostForm
	if f.Get("new") != f.Get("confirm") {
		return "", errors.New("the new password and its confirmation differ")
	}
	if err := c.call(r, s.token, http.MethodPost, "/api/v1/me/password", map[string]string{"current": f.Get("current"), "new": f.Get("new")}, nil); err != nil {
		return "", err
	}
	return "Password changed.", nil
}

func (c *Console) totpBegin(w http.ResponseWriter, r *http.Request, s *session) error {
	var in any
	if pw := r.PostForm.Get("password"); pw != "" {
		in = map[string]string{"password": pw}
	}
	var e totpEnrolment
	if err := c.call(r, s.token, http.MethodPost, "/api/v1/me/totp", in, &e); err != nil {
		return err
	}
	d := c.accountData(r, s)
	d.TOTP = &e
	c.render(w, r, http.StatusOK, "account", &view{Title: "Your account", S: s, Data: d})
	return nil
}

func (c *Console) totpConfirm(w http.ResponseWriter, r *http.Request, s *session) error {
	var out struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	if err := c.call(r, s.token, http.MethodPost, "/api/v1/me/totp/confirm", map[string]string{"code": strings.TrimSpace(r.PostForm.Get("code"))}, &out); err != nil {
		return err
	}
	s.Me.User.TOTPEnabled = true
	s.Me.Restricted = false // the API keeps the session restricted: sign in again
	d := c.accountData(r, s)
	d.Codes = out.RecoveryCodes
	c.render(w, r, http.StatusOK, "account", &view{Title: "Your account", S: s, Data: d,
		Notice: &notice{Text: "Two-factor authentication is on. Keep these recovery codes somewhere safe: they are shown once."}})
	return nil
}

func (c *Console) recoveryCodes(w http.ResponseWriter, r *http.Request, s *session) error {
	var out struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}
	if err := c.call(r, s.token, http.MethodPost, "/api/v1/me/recovery-codes", nil, &out); err != nil {
		return err
	}
	d := c.accountData(r, s)
	d.Codes = out.RecoveryCodes
	c.render(w, r, http.StatusOK, "account", &view{Title: "Your account", S: s, Data: d, Notice: &notice{Text: "New recovery codes; the old ones no longer work."}})
	return nil
}

func (c *Console) totpDisable(r *http.Request, s *session) (string, error) {
	if err := c.call(r, s.token, http.MethodDelete, "/api/v1/me/totp", map[string]string{"password": r.PostForm.Get("password")}, nil); err != nil {
		return "", err
	}
	return "TOTP removed.", nil
}

func (c *Console) webauthnDelete(r *http.Request, s *session) (string, error) {
	id := r.PathValue("id")
	if err := c.call(r, s.token, http.MethodDelete, "/api/v1/me/webauthn/"+url.PathEscape(id), map[string]string{"password": r.PostForm.Get("password")}, nil); err != nil {
		return "", err
	}
	return "Security key removed.", nil
}

func (c *Console) tokenCreate(w http.ResponseWriter, r *http.Request, s *session) error {
	f := r.PostForm
	in := map[string]any{"name": strings.TrimSpace(f.Get("name")), "ttl": strings.TrimSpace(f.Get("ttl"))}
	if roles := f["role"]; len(roles) > 0 {
		in["roles"] = roles
	}
	var out struct {
		Token string   `json:"token"`
		Info  apiToken `json:"info"`
	}
	if err := c.call(r, s.token, http.MethodPost, "/api/v1/me/tokens", in, &out); err != nil {
		return err
	}
	d := c.accountData(r, s)
	d.Secret, d.Created = out.Token, &out.Info
	c.render(w, r, http.StatusOK, "account", &view{Title: "Your account", S: s, Data: d, Notice: &notice{Text: "Token created. Copy it now: it is shown once."}})
	return nil
}

func (c *Console) tokenRevoke(r *http.Request, s *session) (string, error) {
	id := r.PathValue("id")
	if err := c.call(r, s.token, http.MethodDelete, "/api/v1/me/tokens/"+url.PathEscape(id), nil, nil); err != nil {
		return "", err
	}
	return "Revoked token " + id + ".", nil
}
