package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/identity"
)

type loginRequest struct {
	Username     string `json:"username"`
	Password     string `json:"password"`
	TOTP         string `json:"totp,omitempty"`
	RecoveryCode string `json:"recovery_code,omitempty"`
}

type loginResponse struct {
	Token      string         `json:"token,omitempty"`
	ExpiresAt  *time.Time     `json:"expires_at,omitempty"`
	User       *identity.User `json:"user,omitempty"`
	Restricted bool           `json:"restricted,omitempty"`
	MFAToken   string         `json:"mfa_token,omitempty"`
	Methods    []string       `json:"methods,omitempty"`
	// RecoveryCodesLeft is reported after a recovery code was used.
	RecoveryCodesLeft *int `json:"recovery_codes_left,omitempty"`
}

type mfaRequest struct {
	MFAToken     string `json:"mfa_token"`
	TOTP         string `json:"totp,omitempty"`
	RecoveryCode string `json:"recovery_code,omitempty"`
}

type webauthnFinishRequest struct {
	MFAToken string          `json:"mfa_token"`
	Response json.RawMessage `json:"response"`
}

func (s *Server) loginCtx(r *http.Request, c *Call, username string) identity.Login {
	c.Actor = "user:" + username
	c.Resource = "user/" + username
	return identity.Login{Username: username, Source: c.Source, UserAgent: r.UserAgent()}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req loginRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Username == "" {
		return badRequest("username", "username is required")
	}
	if len(req.Username) > 128 {
		return badRequest("username", "username longer than 128 bytes")
	}
	l := s.loginCtx(r, c, req.Username)
	l.Password, l.TOTP, l.RecoveryCode = req.Password, req.TOTP, req.RecoveryCode
	res, err := s.d.Identity.Login(r.Context(), l)
	if err != nil {
		return err
	}
	return s.finishLogin(w, r, c, res)
}

func (s *Server) finishLogin(w http.ResponseWriter, r *http.Request, c *Call, res identity.LoginResult) error {
	out := loginResponse{Token: res.Token, User: &res.User, Restricted: res.Restricted, MFAToken: res.MFAToken, Methods: res.Methods}
	if res.Token == "" {
		c.Details = map[string]any{"mfa_required": true}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	exp := res.ExpiresAt
	out.ExpiresAt = &exp
	if res.UsedRecoveryCode {
		n, err := s.d.Identity.RecoveryCodesLeft(r.Context(), res.User.ID)
		if err != nil {
			return err
		}
		out.RecoveryCodesLeft = &n
		c.Details = map[string]any{"recovery_code_used": true, "recovery_codes_left": n}
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: res.Token, Path: "/", Expires: res.ExpiresAt,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) loginMFA(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req mfaRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.MFAToken == "" {
		return badRequest("mfa_token", "mfa_token from the login response is required")
	}
	c.Actor = "mfa-challenge"
	res, err := s.d.Identity.LoginMFA(r.Context(), req.MFAToken, req.TOTP, req.RecoveryCode, identity.Login{Source: c.Source, UserAgent: r.UserAgent()})
	return s.settleSecondStep(w, r, c, res, err)
}

// settleSecondStep ends a second-factor step: the audit entry names the
// account whenever the challenge identified it, failures included.
func (s *Server) settleSecondStep(w http.ResponseWriter, r *http.Request, c *Call, res identity.LoginResult, err error) error {
	if res.User.Username != "" {
		s.loginCtx(r, c, res.User.Username)
	}
	if err != nil {
		return err
	}
	return s.finishLogin(w, r, c, res)
}

func (s *Server) webauthnLoginBegin(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req mfaRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	c.Actor = "mfa-challenge"
	opts, err := s.d.Identity.BeginWebAuthnLogin(r.Context(), req.MFAToken)
	if err != nil {
		return err
	}
	c.skipAudit = true // no decision yet; the finish step is audited
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(opts)
	return err
}

func (s *Server) webauthnLoginFinish(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req webauthnFinishRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	c.Actor = "mfa-challenge"
	res, err := s.d.Identity.FinishWebAuthnLogin(r.Context(), req.MFAToken, req.Response, identity.Login{Source: c.Source, UserAgent: r.UserAgent()})
	return s.settleSecondStep(w, r, c, res, err)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, c *Call) error {
	if c.Auth.SessionID == "" {
		return badRequest("", "this is an API token, not a session: revoke it with DELETE /api/v1/me/tokens/{id}")
	}
	if err := s.d.Identity.Logout(r.Context(), c.Auth.SessionID); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type meResponse struct {
	User       identity.User  `json:"user"`
	Roles      []string       `json:"roles"`
	Grants     []access.Grant `json:"grants"`
	TokenID    string         `json:"token_id,omitempty"`
	Restricted bool           `json:"restricted,omitempty"`
	MFA        bool           `json:"mfa"`
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, c *Call) error {
	out := meResponse{User: c.Auth.User, Roles: c.Principal.Roles, Grants: c.Principal.Grants, TokenID: c.Auth.TokenID, Restricted: c.Auth.Restricted, MFA: c.Auth.MFA}
	if out.Roles == nil {
		out.Roles = []string{}
	}
	if out.Grants == nil {
		out.Grants = []access.Grant{}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, c *Call) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.d.Version})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, c *Call) error {
	if s.d.Ready != nil {
		if err := s.d.Ready(r.Context()); err != nil {
			s.log.Warn("not ready", "err", err)
			return &Error{Status: http.StatusServiceUnavailable, Code: "not_ready", Message: "database unreachable"}
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}
