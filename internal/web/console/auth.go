package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// loginAnswer is the API's answer to a sign-in step.
type loginAnswer struct {
	Token             string   `json:"token"`
	MFAToken          string   `json:"mfa_token"`
	Methods           []string `json:"methods"`
	Restricted        bool     `json:"restricted"`
	RecoveryCodesLeft *int     `json:"recovery_codes_left"`
}

type loginData struct {
	Form     string // the sign-in form's token
	Next     string
	Username string
	Error    string
	// MFAToken and Methods are set at the second step.
	MFAToken string
	Methods  []string
}

func (d loginData) Has(method string) bool {
	for _, m := range d.Methods {
		if m == method {
			return true
		}
	}
	return false
}

func nextPath(r *http.Request) string {
	n := r.FormValue("next")
	if !localPath(n) || strings.HasPrefix(n, "/login") {
		return "/"
	}
	return n
}

// loginPage shows the sign-in form.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if _, err := c.session(r); err == nil {
		http.Redirect(w, r, nextPath(r), http.StatusSeeOther)
		return
	}
	d := loginData{Form: c.mac("login", formNonce(w, r)), Next: nextPath(r)}
	c.render(w, r, http.StatusOK, "login", &view{Title: "Sign in", Data: d})
}

// loginForm checks the sign-in form's origin and token; it renders the
// refusal itself and returns false when they fail.
func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) bool {
	securityHeaders(w, r)
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if !sameSite(r) {
		c.forbidden(w, r, "cross-site request refused")
		return false
	}
	ck, err := r.Cookie(formCookie)
	if err != nil || r.ParseForm() != nil || !validToken(r.PostForm.Get("form"), c.mac("login", ck.Value)) {
		c.forbidden(w, r, "the sign-in form expired or was not sent by this console; reload the page and sign in again")
		return false
	}
	return true
}

// login posts the password step to the API.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !c.loginForm(w, r) {
		return
	}
	d := loginData{Form: r.PostForm.Get("form"), Next: nextPath(r), Username: r.PostForm.Get("username")}
	a, err := c.raw(r, "", http.MethodPost, "/api/v1/auth/login", map[string]string{"username": d.Username, "password": r.PostForm.Get("password")})
	c.settleLogin(w, r, d, a, err)
}

// loginMFA posts the second step (TOTP or recovery code) to the API.
func (c *Console) loginMFA(w http.ResponseWriter, r *http.Request) {
	if !c.loginForm(w, r) {
		return
	}
	d := loginData{Form: r.PostForm.Get("form"), Next: nextPath(r), Username: r.PostForm.Get("username"), MFAToken: r.PostForm.Get("mfa_token"),
		Methods: strings.Fields(r.PostForm.Get("methods"))}
	in := map[string]string{"mfa_token": d.MFAToken}
	code := strings.TrimSpace(r.PostForm.Get("code"))
	if strings.ContainsAny(code, "-") || len(code) > 8 {
		in["recovery_code"] = code
	} else {
		in["totp"] = code
	}
	a, err := c.raw(r, "", http.MethodPost, "/api/v1/auth/login/mfa", in)
	c.settleLogin(w, r, d, a, err)
}

// settleLogin renders the next step: the second factor, the same step
// again with the API's reason, or the page the user came for with the
// API's session cookie.
func (c *Console) settleLogin(w http.ResponseWriter, r *http.Request, d loginData, a *answer, err error) {
	var la loginAnswer
	if err == nil {
		err = a.decode(&la)
	}
	if err != nil {
		status := http.StatusUnauthorized
		var ae *APIError
		if errors.As(err, &ae) {
			status = ae.Status
			if a.header.Get("Retry-After") != "" {
				w.Header().Set("Retry-After", a.header.Get("Retry-After"))
			}
		}
		d.Error = err.Error()
		page := "login"
		if d.MFAToken != "" && status != http.StatusUnauthorized || d.MFAToken != "" && strings.Contains(d.Error, "code") {
			page = "mfa"
		}
		c.render(w, r, status, page, &view{Title: "Sign in", Data: d})
		return
	}
	if la.Token == "" {
		d.MFAToken, d.Methods = la.MFAToken, la.Methods
		c.render(w, r, http.StatusOK, "mfa", &view{Title: "Second factor", Data: d})
		return
	}
	for _, v := range a.header.Values("Set-Cookie") {
		w.Header().Add("Set-Cookie", v)
	}
	setCookie(w, r, formCookie, "", -1)
	if la.RecoveryCodesLeft != nil {
		setNotice(w, r, *la.RecoveryCodesLeft < 3, "You signed in with a recovery code; "+strconv.Itoa(*la.RecoveryCodesLeft)+" are left. Make new ones on the Account page.")
	}
	to := d.Next
	if la.Restricted {
		to = "/account"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// logout ends the session at the API and clears the cookie.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w, r)
	if !sameSite(r) {
		c.forbidden(w, r, "cross-site request refused")
		return
	}
	s, err := c.session(r)
	if err == nil {
		_ = r.ParseForm()
		if !validToken(r.PostForm.Get("csrf"), s.CSRF) {
			c.forbidden(w, r, "the form's security token is missing or does not match your session")
			return
		}
		_ = c.call(r, s.token, http.MethodPost, "/api/v1/auth/logout", nil, nil)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
