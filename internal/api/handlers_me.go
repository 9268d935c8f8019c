package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/bulwarkhq/bulwark/internal/identity"
)

type passwordChange struct {
	Current string `json:"current"`
	New     string `json:"new"`
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req passwordChange
	if err := decode(r, &req); err != nil {
		return err
	}
	c.Resource = "user/" + c.Auth.User.Username
	if err := s.d.Identity.ChangeOwnPassword(r.Context(), c.Auth.User.ID, req.Current, req.New, c.Source); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// reauth is the body of requests that change an enrolled factor: the
// current password, so that a stolen session cannot replace or remove the
// account's second factor.
type reauth struct {
	Password string `json:"password"`
}

// requirePassword decodes a reauth body (optional when !needed) and checks
// the password under the login throttle.
func (s *Server) requirePassword(r *http.Request, c *Call, needed bool) error {
	var req reauth
	if r.ContentLength != 0 || needed {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	if !needed {
		return nil
	}
	if req.Password == "" {
		return badRequest("password", "give your current password to change an enrolled factor")
	}
	return s.d.Identity.CheckPassword(r.Context(), c.Auth.User.ID, req.Password, c.Source)
}

func (s *Server) totpBegin(w http.ResponseWriter, r *http.Request, c *Call) error {
	c.Resource = "user/" + c.Auth.User.Username
	if err := s.requirePassword(r, c, c.Auth.User.TOTPEnabled); err != nil {
		return err
	}
	e, err := s.d.Identity.BeginTOTP(r.Context(), c.Auth.User.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (s *Server) totpQR(w http.ResponseWriter, r *http.Request, c *Call) error {
	e, err := s.d.Identity.PendingTOTP(r.Context(), c.Auth.User.ID)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "image/png")
	_, err = w.Write(e.QRPNG)
	return err
}

type codeRequest struct {
	Code string `json:"code"`
}

type recoveryCodes struct {
	RecoveryCodes []string `json:"recovery_codes"`
	Note          string   `json:"note"`
}

const recoveryNote = "Store these codes somewhere safe: each signs you in once without your second factor. They are not shown again."

func (s *Server) totpConfirm(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req codeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	c.Resource = "user/" + c.Auth.User.Username
	codes, err := s.d.Identity.ConfirmTOTP(r.Context(), c.Auth.User.ID, req.Code)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, recoveryCodes{RecoveryCodes: codes, Note: recoveryNote})
	return nil
}

func (s *Server) totpDisable(w http.ResponseWriter, r *http.Request, c *Call) error {
	c.Resource = "user/" + c.Auth.User.Username
	if err := s.requirePassword(r, c, true); err != nil {
		return err
	}
	if err := s.d.Identity.DisableTOTP(r.Context(), c.Auth.User.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) recoveryCodes(w http.ResponseWriter, r *http.Request, c *Call) error {
	c.Resource = "user/" + c.Auth.User.Username
	if err := s.requirePassword(r, c, true); err != nil {
		return err
	}
	codes, err := s.d.Identity.RegenerateRecoveryCodes(r.Context(), c.Auth.User.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, recoveryCodes{RecoveryCodes: codes, Note: recoveryNote})
	return nil
}

func (s *Server) webauthnKeys(w http.ResponseWriter, r *http.Request, c *Call) error {
	keys, err := s.d.Identity.ListWebAuthnKeys(r.Context(), c.Auth.User.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, List[identity.KeyInfo]{Items: keys})
	return nil
}

func (s *Server) webauthnRegisterBegin(w http.ResponseWriter, r *http.Request, c *Call) error {
	c.Resource = "user/" + c.Auth.User.Username
	opts, ceremony, err := s.d.Identity.BeginWebAuthnRegistration(r.Context(), c.Auth.User.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"ceremony": ceremony, "options": opts})
	return nil
}

type webauthnRegisterRequest struct {
	Ceremony string          `json:"ceremony"`
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

func (s *Server) webauthnRegisterFinish(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req webauthnRegisterRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	c.Resource = "user/" + c.Auth.User.Username
	k, err := s.d.Identity.FinishWebAuthnRegistration(r.Context(), c.Auth.User.ID, req.Ceremony, req.Name, req.Response)
	if err != nil {
		return err
	}
	c.Details = map[string]any{"key": k.ID, "name": k.Name}
	writeJSON(w, http.StatusCreated, k)
	return nil
}

func (s *Server) webauthnDelete(w http.ResponseWriter, r *http.Request, c *Call) error {
	id := r.PathValue("id")
	c.Resource = "user/" + c.Auth.User.Username + "/webauthn/" + id
	if err := s.requirePassword(r, c, true); err != nil {
		return err
	}
	if err := s.d.Identity.DeleteWebAuthnKey(r.Context(), c.Auth.User.ID, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type tokenRequest struct {
	Name      string    `json:"name"`
	Roles     []string  `json:"roles,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// TTL is an alternative to ExpiresAt, as a Go duration ("720h").
	TTL string `json:"ttl,omitempty"`
}

type tokenCreated struct {
	Token string            `json:"token"`
	Info  identity.APIToken `json:"info"`
	Note  string            `json:"note"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, c *Call) error {
	var req tokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if c.Auth.TokenID != "" {
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "an API token cannot mint tokens; sign in with a password"}
	}
	exp := req.ExpiresAt
	if req.TTL != "" {
		if !exp.IsZero() {
			return badRequest("ttl", "give expires_at or ttl, not both")
		}
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return badRequest("ttl", "ttl must be a positive Go duration such as 720h")
		}
		exp = s.now().Add(d)
	}
	secret, t, err := s.d.Identity.CreateToken(r.Context(), c.Auth.User.ID, req.Name, req.Roles, exp)
	if err != nil {
		return err
	}
	c.Resource = "token/" + t.ID
	c.Details = map[string]any{"name": t.Name, "roles": t.Roles, "expires_at": t.ExpiresAt}
	writeJSON(w, http.StatusCreated, tokenCreated{Token: secret, Info: t, Note: "The token is shown once; only its hash is stored."})
	return nil
}

func (s *Server) myTokens(w http.ResponseWriter, r *http.Request, c *Call) error {
	ts, err := s.d.Identity.ListTokens(r.Context(), c.Auth.User.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, List[identity.APIToken]{Items: ts})
	return nil
}

func (s *Server) revokeMyToken(w http.ResponseWriter, r *http.Request, c *Call) error {
	id := r.PathValue("id")
	c.Resource = "token/" + id
	if err := s.d.Identity.RevokeToken(r.Context(), id, c.Auth.User.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
