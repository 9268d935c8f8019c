package guard

// Attempt limits per account at login endpoints. A per-source rate limit
// does not stop a password-spraying botnet, where every address tries an
// account a few times: the limit must follow the account. For each
// configured endpoint the guard reads the account name from the request
// (a form field, a JSON field or a header), before the upstream sees it,
// and counts the try in a sliding window per account (limit.Window). An
// account gets Tries per Window once it is established, and the stricter
// NewAccountTries while it is new: first seen logging in successfully less
// than NewAccountAge ago, or never seen at all, so made-up names and
// freshly registered accounts get the strict limit.
//
// Every try counts, successful or not: the count is taken before the
// upstream answers, so a hundred parallel guesses cannot all slip through
// before the first failure comes back. A refused try counts nothing (the
// window's rule), so hammering a locked account does not extend its lock.
//
// The body is read, up to maxLoginBody, to find the field and then handed
// to the upstream unchanged. A login request with a larger body is
// refused with 413: a login form is small, and letting a big body through
// uncounted would be the way around the limit.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/guard/limit"
)

// maxLoginBody caps the body read from a login request.
const maxLoginBody = 64 << 10

// maxAccount caps an account name as a key.
const maxAccount = 256

// Accounts remembers when the guard first saw each account log in
// successfully; detect.Accounts keeps them in the store.
type Accounts interface {
	// FirstSeen returns when the account first logged in successfully
	// at the site.
	FirstSeen(site, account string) (time.Time, bool)
	// Seen records a successful login (only the first one matters).
	Seen(site, account string, t time.Time)
}

// memAccounts is the Accounts of a guard without a store: first logins
// are remembered for the life of the process, up to a bound.
type memAccounts struct {
	mu sync.Mutex
	m  map[[2]string]time.Time
}

const maxMemAccounts = 1 << 20

func (a *memAccounts) FirstSeen(site, account string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.m[[2]string{site, account}]
	return t, ok
}

func (a *memAccounts) Seen(site, account string, t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[[2]string]time.Time{}
	}
	k := [2]string{site, account}
	if _, ok := a.m[k]; !ok && len(a.m) < maxMemAccounts {
		a.m[k] = t
	}
}

// login is one configured endpoint of a site.
type login struct {
	cfg      config.GuardLogin
	methods  []string
	tries    int
	newTries int
	newAge   time.Duration
	window   *limit.Window[string]
}

func newLogin(c config.GuardLogin, opts limit.Options) *login {
	l := &login{cfg: c, methods: c.Methods, tries: c.Tries, newTries: c.NewAccountTries, newAge: c.NewAccountAge.D()}
	if len(l.methods) == 0 {
		l.methods = []string{http.MethodPost}
	}
	if l.tries == 0 {
		l.tries = 10
	}
	if l.newTries == 0 {
		l.newTries = min(3, l.tries)
	}
	if l.newAge == 0 {
		l.newAge = 7 * 24 * time.Hour
	}
	w := c.Window.D()
	if w == 0 {
		w = 15 * time.Minute
	}
	l.window = limit.NewWindow[string](w, opts)
	return l
}

// loginFor returns the site's login endpoint that r is a try at, or nil.
func (s *site) loginFor(r *http.Request) *login {
	for _, l := range s.logins {
		if r.URL.Path == l.cfg.Path && slices.Contains(l.methods, r.Method) {
			return l
		}
	}
	return nil
}

var errLoginBody = errors.New("login request body too large")

// account reads the account name from r, replacing r.Body with an
// equivalent reader when it had to read it. An absent field is "".
func (l *login) account(r *http.Request) (string, error) {
	f := l.cfg.Account
	if f.Header != "" {
		return normalAccount(r.Header.Get(f.Header)), nil
	}
	if r.Body == nil || r.Body == http.NoBody {
		return "", nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxLoginBody+1))
	if err != nil {
		return "", err
	}
	if len(body) > maxLoginBody {
		return "", errLoginBody
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	if f.JSON != "" {
		return normalAccount(jsonField(body, f.JSON)), nil
	}
	return normalAccount(formField(r.Header.Get("Content-Type"), body, f.Form)), nil
}

// formField finds a field in a urlencoded or multipart body.
func formField(contentType string, body []byte, name string) string {
	mt, params, _ := mime.ParseMediaType(contentType)
	if mt == "multipart/form-data" && params["boundary"] != "" {
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for range 100 { // bounded: the body is at most 64 KiB anyway
			p, err := mr.NextPart()
			if err != nil {
				return ""
			}
			if p.FormName() == name && p.FileName() == "" {
				v, _ := io.ReadAll(io.LimitReader(p, maxAccount))
				return string(v)
			}
		}
		return ""
	}
	vals, err := url.ParseQuery(string(body))
	if err != nil && len(vals) == 0 {
		return ""
	}
	return vals.Get(name)
}

// jsonField finds a string (or number) field of a JSON object by a dotted
// path.
func jsonField(body []byte, path string) string {
	var v any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return ""
	}
	for part := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[part]
	}
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}

// normalAccount is the key of an account name: trimmed, lower case,
// capped.
func normalAccount(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) > maxAccount {
		s = s[:maxAccount]
	}
	return s
}

// try counts a try at the endpoint for account and reports whether it may
// go on, with the wait before the next allowed try when not.
func (l *login) try(accounts Accounts, site, account string, now time.Time) (bool, time.Duration) {
	limit := l.newTries
	if first, ok := accounts.FirstSeen(site, account); ok && now.Sub(first) >= l.newAge {
		limit = l.tries
	}
	return l.window.Hit(account, limit, now)
}

// succeeded reports whether an upstream status means the login worked:
// one of SuccessStatus, or without them 2xx and 3xx (a redirect to the
// dashboard), not 401 or 403.
func (l *login) succeeded(status int) bool {
	if len(l.cfg.SuccessStatus) > 0 {
		return slices.Contains(l.cfg.SuccessStatus, status)
	}
	return status >= 200 && status < 400
}
