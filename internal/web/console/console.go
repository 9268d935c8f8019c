// Package console is Bulwark's web console: pages rendered on the server
// with html/template, a little htmx for the parts that refresh themselves,
// and every asset embedded in the binary (no CDN, nothing fetched).
//
// # A client of the API, in process
//
// The console holds no capability of its own. Each page reads the JSON API
// (internal/api) with the signed-in user's session, and each form is turned
// into the API request it stands for. The API is called in process, through
// its http.Handler, with the browser's own address and session, so:
//
//   - what a user may do is decided in one place, the API's route table;
//     the console cannot show or change more than the API allows;
//   - every change made in the console is validated and audited by the API
//     exactly as the same change made with the CLI or curl;
//   - a button the console leaves out is refused by the API anyway.
//
// The console reads the user's grants (GET /api/v1/me) only to leave out
// what the API would refuse: pages of modules the user may not read are not
// linked, buttons for actions above the user's level are not rendered.
//
// # Forms
//
// Forms post to the console, never straight to the API, and work without
// JavaScript (each POST answers with a redirect and a one-time notice).
// Three things stop a forged request: the session cookie is SameSite=Strict;
// a request the browser marks cross-site (Sec-Fetch-Site) or from a foreign
// Origin is refused; and every form carries a token bound to the session,
// an HMAC of the session's token under a key of this process. A POST
// without the right token is refused with 403 before anything is read.
//
// The pages work at 360 px wide and on a desktop, every input has a label,
// and everything is reachable with the keyboard (the skip link, the focus
// ring, native controls). The Content-Security-Policy allows scripts,
// styles, images and requests from the console's own origin only.
package console

import (
	"crypto/rand"
	"embed"
	"log/slog"
	"net/http"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Options configure the console.
type Options struct {
	// API is the JSON API's handler (api.Server): the console's only
	// source of data and the only way it changes anything.
	API http.Handler
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logger receives the console's own failures (rendering, the API's
	// unexpected answers).
	Logger *slog.Logger
	// Key signs form tokens; 32 random bytes when nil (forms shown by an
	// earlier process are then refused after a restart, and say so).
	Key []byte
	// Title names the installation in the page header ("Bulwark").
	Title string
}

// Console is the web console's http.Handler. Paths it does not serve go to
// the API, so one listener serves both.
type Console struct {
	o     Options
	key   []byte
	mux   *http.ServeMux
	pages map[string]*pageTemplate
}

// New builds the console.
func New(o Options) *Console {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Title == "" {
		o.Title = "Bulwark"
	}
	key := o.Key
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			panic("console: no randomness for the form key: " + err.Error())
		}
	}
	c := &Console{o: o, key: key, mux: http.NewServeMux(), pages: parseTemplates()}
	c.routes()
	return c
}

// ServeHTTP serves the console's pages, and hands every other path to the
// API.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := c.mux.Handler(r); pattern == "" {
		c.o.API.ServeHTTP(w, r)
		return
	}
	c.mux.ServeHTTP(w, r) // sets the path's wildcards

}

// securityHeaders are set on every console response.
func securityHeaders(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), publickey-credentials-get=(self), publickey-credentials-create=(self)")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
}
