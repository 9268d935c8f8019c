package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
)

// Cookie names. The session cookie is the API's own (it sets it at
// sign-in); the others belong to the console.
const (
	sessionCookie = "bulwark_session"
	// formCookie carries a random value the sign-in form's token is bound
	// to, before there is a session.
	formCookie = "bulwark_form"
	// noticeCookie carries the one-time notice shown after a POST.
	noticeCookie = "bulwark_notice"
)

// user is the signed-in account as GET /api/v1/me shows it.
type user struct {
	ID           int64                `json:"id"`
	Username     string               `json:"username"`
	DisplayName  string               `json:"display_name"`
	Email        string               `json:"email"`
	CreatedAt    time.Time            `json:"created_at"`
	Disabled     bool                 `json:"disabled"`
	Locked       bool                 `json:"locked"`
	LockedReason string               `json:"locked_reason,omitempty"`
	TOTPEnabled  bool                 `json:"totp_enabled"`
	WebAuthnKeys int                  `json:"webauthn_keys"`
	Tags         map[string]string    `json:"tags"`
	Roles        []access.RoleBinding `json:"roles"`
}

// me is GET /api/v1/me.
type me struct {
	User       user           `json:"user"`
	Roles      []string       `json:"roles"`
	Grants     []access.Grant `json:"grants"`
	TokenID    string         `json:"token_id,omitempty"`
	Restricted bool           `json:"restricted,omitempty"`
	MFA        bool           `json:"mfa"`
}

// session is a signed-in request: who, with which grants, and the form
// token of the session.
type session struct {
	token string
	Me    me
	p     *access.Principal
	now   time.Time
	// CSRF is the token every form of this session carries.
	CSRF string
}

// Can reports whether the user may act at level on the module (its
// collection: a tag-scoped grant counts, the API filters what it shows).
func (s *session) Can(module, level string) bool {
	return s.p.Can(s.now, access.Module(module), lvl(level))
}

// CanAll reports whether the user may act at level on the whole module,
// as routes acting on untagged objects (bans, checks, roles) require.
func (s *session) CanAll(module, level string) bool {
	return s.p.Decide(s.now, access.Request{Module: access.Module(module), Level: lvl(level), Global: true}).Allowed
}

// CanOn reports whether the user may act at level on one resource of the
// module carrying tags.
func (s *session) CanOn(module, level string, tags map[string]string) bool {
	return s.p.Decide(s.now, access.Request{Module: access.Module(module), Level: lvl(level), Resource: true, Tags: tags}).Allowed
}

// lvl reads a level's name as templates write it; an unknown name is a
// level nobody holds.
func lvl(name string) access.Level {
	l, err := access.ParseLevel(name)
	if err != nil {
		return access.Level(1 << 30)
	}
	return l
}

// mac is the HMAC of the parts under the console's key, base64url.
func (c *Console) mac(parts ...string) string {
	m := hmac.New(sha256.New, c.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sessionCSRF is the form token of a session.
func (c *Console) sessionCSRF(token string) string { return c.mac("session", token) }

// validToken compares a form's token with the expected one in constant time.
func validToken(got, want string) bool {
	return got != "" && hmac.Equal([]byte(got), []byte(want))
}

// sameSite refuses requests a browser says come from another site, or
// whose Origin is not this host. Requests without either header (old
// browsers, curl) rely on the form token alone.
func sameSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" && r.Header.Get("Sec-Fetch-Site") == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// errNoSession: the request carries no session, or one the API refuses.
var errNoSession = errors.New("not signed in")

// session loads the request's session from the API (GET /api/v1/me).
func (c *Console) session(r *http.Request) (*session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, errNoSession
	}
	s := &session{token: ck.Value, now: c.o.Now()}
	if err := c.call(r, s.token, http.MethodGet, "/api/v1/me", nil, &s.Me); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			return nil, errNoSession
		}
		return nil, err
	}
	s.p = &access.Principal{UserID: s.Me.User.ID, Username: s.Me.User.Username, Roles: s.Me.Roles, Grants: s.Me.Grants, TokenID: s.Me.TokenID}
	s.CSRF = c.sessionCSRF(s.token)
	return s, nil
}

// setCookie sets one of the console's cookies with the session cookie's
// attributes.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: r.TLS != nil || isLocalhost(r.Host), SameSite: http.SameSiteStrictMode})
}

// isLocalhost: browsers keep Secure cookies on http://localhost.
func isLocalhost(host string) bool {
	h := host
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}

// notice is the one-time message shown after a POST.
type notice struct {
	Error bool
	Text  string
}

func setNotice(w http.ResponseWriter, r *http.Request, isErr bool, text string) {
	kind := "ok"
	if isErr {
		kind = "error"
	}
	if len(text) > 1500 {
		text = text[:1500] + "..."
	}
	setCookie(w, r, noticeCookie, kind+":"+base64.RawURLEncoding.EncodeToString([]byte(text)), 120)
}

// takeNotice reads and clears the notice.
func takeNotice(w http.ResponseWriter, r *http.Request) *notice {
	ck, err := r.Cookie(noticeCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	setCookie(w, r, noticeCookie, "", -1)
	kind, enc, ok := strings.Cut(ck.Value, ":")
	if !ok {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return nil
	}
	return &notice{Error: kind == "error", Text: string(b)}
}

// formNonce returns the sign-in form's random value, setting its cookie
// when the browser has none.
func formNonce(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(formCookie); err == nil && len(ck.Value) >= 16 && len(ck.Value) <= 64 {
		return ck.Value
	}
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	setCookie(w, r, formCookie, v, 3600)
	return v
}
