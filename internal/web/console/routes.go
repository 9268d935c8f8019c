package console

import (
	"io/fs"
	"net/http"
)

// routes declares the console's pages and forms. Every other path goes to
// the API (ServeHTTP).
func (c *Console) routes() {
	m := c.mux
	assets, _ := fs.Sub(assetFS, "assets")
	files := http.StripPrefix("/assets/", http.FileServerFS(assets))
	m.Handle("GET /assets/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w, r)
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))

	// Signing in and out.
	m.HandleFunc("GET /login", c.loginPage)
	m.HandleFunc("POST /login", c.login)
	m.HandleFunc("POST /login/mfa", c.loginMFA)
	m.HandleFunc("POST /logout", c.logout)

	// Pages.
	m.Handle("GET /{$}", c.page(c.overview))
	m.Handle("GET /backups", c.page(c.backups))
	m.Handle("GET /backups/{name}", c.page(c.policy))
	m.Handle("GET /guard", c.page(c.guard))
	m.Handle("GET /integrity", c.page(c.integrity))
	m.Handle("GET /monitoring", c.page(c.monitoring))
	m.Handle("GET /access", c.page(c.accessPage))
	m.Handle("GET /audit", c.page(c.auditPage))
	m.Handle("GET /events", c.page(c.eventsPage))
	m.Handle("GET /report", c.page(c.reportPage))
	m.Handle("GET /account", c.page(c.account))

	// Forms: each is one API request.
	m.Handle("POST /backups/{name}/run", c.action("/backups", c.policyJob("run", "backup")))
	m.Handle("POST /backups/{name}/restore-test", c.action("/backups", c.policyJob("restore-test", "restore test")))
	m.Handle("POST /backups/{name}/scrub", c.action("/backups", c.policyJob("scrub", "scrub")))
	m.Handle("POST /guard/bans", c.action("/guard", c.banAdd))
	m.Handle("POST /guard/bans/remove", c.action("/guard", c.banRemove))
	m.Handle("POST /integrity/accept", c.action("/integrity", c.integrityAccept))
	m.Handle("POST /monitoring/ack", c.action("/monitoring", c.alertAck))
	m.Handle("POST /monitoring/silences", c.action("/monitoring", c.silenceAdd))
	m.Handle("POST /monitoring/silences/{id}/remove", c.action("/monitoring", c.silenceRemove))
	m.Handle("POST /access/users", c.action("/access", c.userCreate))
	m.Handle("POST /access/users/{name}/delete", c.action("/access", c.userDelete))
	m.Handle("POST /access/users/{name}/unlock", c.action("/access", c.userUnlock))
	m.Handle("POST /access/roles/{name}/grants", c.action("/access", c.grantAdd))
	m.Handle("POST /access/roles/{name}/grants/{id}/remove", c.action("/access", c.grantRemove))
	m.Handle("POST /access/tokens/{id}/revoke", c.action("/access", c.tokenRevokeAny))
	m.Handle("POST /account/password", c.action("/account", c.passwordChange))
	m.Handle("POST /account/tokens/{id}/revoke", c.action("/account", c.tokenRevoke))
	m.Handle("POST /account/webauthn/{id}/delete", c.action("/account", c.webauthnDelete))
	m.Handle("POST /account/totp/disable", c.action("/account", c.totpDisable))
	// Forms whose answer is a page shown once (a secret, recovery codes).
	m.Handle("POST /account/totp", c.form(c.totpBegin))
	m.Handle("POST /account/totp/confirm", c.form(c.totpConfirm))
	m.Handle("POST /account/tokens", c.form(c.tokenCreate))
	m.Handle("POST /account/recovery-codes", c.form(c.recoveryCodes))
}
