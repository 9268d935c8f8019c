package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/identity"
)

// loginAnswer is the body of POST /api/v1/auth/login and /login/mfa.
type loginAnswer struct {
	Token             string         `json:"token"`
	ExpiresAt         *time.Time     `json:"expires_at"`
	User              *identity.User `json:"user"`
	Restricted        bool           `json:"restricted"`
	MFAToken          string         `json:"mfa_token"`
	Methods           []string       `json:"methods"`
	RecoveryCodesLeft *int           `json:"recovery_codes_left"`
}

func loginCommand() *Command {
	var f clientFlags
	var username, totp, recovery string
	var trustFlag, passwordStdin bool
	return &Command{
		Name:    "login",
		Summary: "sign in to a server and store the session for later commands",
		Usage:   "bulwark login --server URL [--username NAME] [--ca FILE | --fingerprint HEX | --trust] [--password-stdin] [--totp CODE | --recovery-code CODE]",
		Long: `Asks for the password (without echo on a terminal; otherwise it reads one
line from standard input), then for a TOTP or recovery code when the account
has a second factor (or pass --totp / --recovery-code; without a terminal the
code is read from the next line of standard input). The session token is
stored in $BULWARK_CLI_CONFIG, or the user configuration directory's
bulwark/cli.json, readable only by you. Logging in again ends the session it
replaces.

The server's certificate must be trusted. Bulwark's default certificate is
self-signed: pass --ca with a copy of the server's DATA/tls/cert.pem, or
compare the fingerprint this command shows with the server's and pass it as
--fingerprint (or --trust to accept what is shown). The pin is stored, and a
later change of certificate is refused until you log in again with the new
fingerprint.

For scripts and CI, skip login: set BULWARK_SERVER and BULWARK_TOKEN (an API
token from 'bulwark token create'), plus BULWARK_CA or BULWARK_FINGERPRINT.`,
		Examples: []string{
			"bulwark login --server https://127.0.0.1:8443 --username admin --ca /var/lib/bulwark/tls/cert.pem",
			"bulwark login --server https://cp.example.net:8443 --username alice --fingerprint 3f:a9:...:11",
			"printf '%s\\n' \"$PW\" | bulwark login --server https://127.0.0.1:8443 --username ci --password-stdin --trust",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.StringVar(&username, "username", "", "account `NAME` (default: the one stored at the last login to this server)")
			fs.BoolVar(&trustFlag, "trust", false, "accept the server's certificate as shown, when no CA vouches for it, and pin it")
			fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
			fs.StringVar(&totp, "totp", "", "TOTP `CODE` from your authenticator app")
			fs.StringVar(&recovery, "recovery-code", "", "single-use recovery `CODE` instead of a TOTP code")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("login takes no arguments; give --server URL and --username NAME")
			}
			if totp != "" && recovery != "" {
				return usageError("give --totp or --recovery-code, not both")
			}
			if trustFlag && (f.ca != "" || f.fingerprint != "") {
				return usageError("--trust accepts an unverified certificate; it makes no sense with --ca or --fingerprint")
			}
			r, err := f.resolve(e)
			if err != nil {
				return err
			}
			if r.trust.caFile != "" {
				if r.trust.caFile, err = filepath.Abs(r.trust.caFile); err != nil {
					return err
				}
			}
			c, err := establishTrust(ctx, e, r, &f, trustFlag)
			if err != nil {
				return err
			}
			lines := newLineReader(e)
			if username == "" && r.sameAsFile {
				username = r.cfg.Username
			}
			if username == "" {
				if !isTerminal(e.Stdin) {
					return usageError("give --username NAME")
				}
				if username, err = lines.prompt(ctx, "Username: "); err != nil {
					return err
				}
			}
			var password string
			if passwordStdin {
				if password, err = lines.readLine(ctx); errors.Is(err, io.EOF) {
					return usageError("--password-stdin: standard input is empty; send the password on its first line")
				} else if err != nil {
					return err
				}
			} else if password, err = lines.secret(ctx, fmt.Sprintf("Password for %s at %s: ", clean(username), r.server)); err != nil {
				return err
			}
			if password == "" {
				return usageError("empty password")
			}
			var ans loginAnswer
			_, err = c.callToken(ctx, http.MethodPost, "/api/v1/auth/login", nil,
				map[string]string{"username": username, "password": password, "totp": totp, "recovery_code": recovery}, &ans, "")
			if err != nil {
				return fmt.Errorf("sign in as %s: %w", username, err)
			}
			if ans.Token == "" && ans.MFAToken != "" {
				if ans, err = secondFactor(ctx, e, c, lines, ans); err != nil {
					return fmt.Errorf("sign in as %s: %w", username, err)
				}
			}
			if ans.Token == "" {
				return fmt.Errorf("sign in as %s: the server answered without a session token", username)
			}
			cfg := cliConfig{Server: r.server, Username: username, Token: ans.Token, CAFile: c.trust.caFile, Fingerprint: c.trust.fingerprint}
			if ans.ExpiresAt != nil {
				cfg.ExpiresAt = ans.ExpiresAt.UTC().Format(time.RFC3339)
			}
			if err := saveCLIConfig(r.path, cfg); err != nil {
				return err
			}
			if r.sameAsFile && r.cfg.Token != "" && r.cfg.Token != ans.Token {
				// End the session this login replaces rather than leave it
				// alive until it times out; it may have expired already.
				_, _ = c.callToken(ctx, http.MethodPost, "/api/v1/auth/logout", nil, nil, nil, r.cfg.Token)
			}
			msg := fmt.Sprintf("Signed in to %s as %s", r.server, clean(username))
			if ans.ExpiresAt != nil {
				msg += "; the session lasts until " + fmtTime(*ans.ExpiresAt) + " at most"
			}
			fmt.Fprintln(e.Stdout, msg+".")
			if ans.Restricted {
				fmt.Fprintln(e.Stderr, "warning: your account must enrol a second factor before it can do anything else: sign in to the web console and add TOTP or a security key, then log in again")
			}
			if ans.RecoveryCodesLeft != nil {
				fmt.Fprintf(e.Stderr, "note: a recovery code was used; %d left. Generate new ones in the console when few remain.\n", *ans.RecoveryCodesLeft)
			}
			if e.Getenv("BULWARK_TOKEN") != "" {
				fmt.Fprintln(e.Stderr, "note: BULWARK_TOKEN is set and takes precedence over this session; unset it to use the session")
			}
			return nil
		},
	}
}

// establishTrust makes sure the server's certificate is trusted before a
// password is sent, applying trust on first use when nothing vouches for it.
func establishTrust(ctx context.Context, e *Env, r resolved, f *clientFlags, trustFlag bool) (*apiClient, error) {
	c, err := newClient(e, r.server, r.trust, f.timeout)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(r.server, "http://") {
		return c, nil
	}
	_, err = c.callToken(ctx, http.MethodGet, "/healthz", nil, nil, nil, "")
	if err == nil {
		return c, nil
	}
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) || r.trust.caFile != "" || r.trust.fingerprint != "" {
		// A pin mismatch or a CA that does not vouch is never overridden
		// by --trust: that is exactly the attack pinning is for.
		return nil, err
	}
	fp, perr := peerFingerprint(ctx, r.server, 10*time.Second)
	if perr != nil {
		return nil, perr
	}
	if !trustFlag {
		fmt.Fprintf(e.Stderr, "The certificate of %s is not signed by an authority this system trusts\n(%v).\nIts SHA-256 fingerprint is:\n  %s\n  (%s)\n", r.server, cve.Err, fp, colonHex(fp))
		fmt.Fprintln(e.Stderr, "Compare it with the server's (on the server: openssl x509 -noout -fingerprint -sha256 -in DATA/tls/cert.pem).")
		return nil, usageError("certificate not trusted: if the fingerprint matches, run again with --fingerprint %s (or --trust), or give --ca FILE", fp)
	}
	fmt.Fprintf(e.Stderr, "Trusting and pinning the certificate of %s, SHA-256 fingerprint %s\n", r.server, fp)
	c, err = newClient(e, r.server, trust{fingerprint: fp}, f.timeout)
	if err != nil {
		return nil, err
	}
	if _, err := c.callToken(ctx, http.MethodGet, "/healthz", nil, nil, nil, ""); err != nil {
		return nil, err
	}
	return c, nil
}

// secondFactor answers an MFA challenge with a TOTP or recovery code read
// from standard input.
func secondFactor(ctx context.Context, e *Env, c *apiClient, lines *lineReader, ch loginAnswer) (loginAnswer, error) {
	if !slices.Contains(ch.Methods, "totp") && !slices.Contains(ch.Methods, "recovery_code") {
		return loginAnswer{}, fmt.Errorf("the account's second factor (%s) cannot be used from the command line: sign in with the web console", strings.Join(ch.Methods, ", "))
	}
	q := "Recovery code: "
	if slices.Contains(ch.Methods, "totp") {
		q = "Authentication code (or a recovery code): "
	}
	code, err := lines.prompt(ctx, q)
	if err != nil {
		return loginAnswer{}, fmt.Errorf("a second factor is required: %w (pass --totp CODE or --recovery-code CODE)", err)
	}
	if code == "" {
		return loginAnswer{}, usageError("a second factor is required: pass --totp CODE or --recovery-code CODE")
	}
	req := map[string]string{"mfa_token": ch.MFAToken}
	if isDigits(code) {
		req["totp"] = strings.ReplaceAll(code, " ", "") // authenticator apps show "123 456"
	} else {
		req["recovery_code"] = code
	}
	var ans loginAnswer
	if _, err := c.callToken(ctx, http.MethodPost, "/api/v1/auth/login/mfa", nil, req, &ans, ""); err != nil {
		return loginAnswer{}, err
	}
	return ans, nil
}

func isDigits(s string) bool {
	s = strings.ReplaceAll(s, " ", "")
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func logoutCommand() *Command {
	var f clientFlags
	return &Command{
		Name:    "logout",
		Summary: "end the stored session on the server and forget its token",
		Usage:   "bulwark logout [--server URL]",
		Long: `Ends the session stored by 'bulwark login' and removes its token from the
credentials file; the server address and certificate pin stay. An API token in
BULWARK_TOKEN is not affected: revoke it with 'bulwark token revoke'.`,
		Examples: []string{"bulwark logout"},
		Flags:    func(fs *flag.FlagSet) { f.register(fs) },
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("logout takes no arguments")
			}
			r, err := f.resolve(e)
			if err != nil {
				return err
			}
			if !r.sameAsFile || r.cfg.Token == "" {
				fmt.Fprintf(e.Stdout, "Not signed in to %s; nothing to do.\n", r.server)
				return nil
			}
			c, err := newClient(e, r.server, r.trust, f.timeout)
			if err != nil {
				return err
			}
			_, callErr := c.callToken(ctx, http.MethodPost, "/api/v1/auth/logout", nil, nil, nil, r.cfg.Token)
			var ae *APIError
			if callErr != nil && !(errors.As(callErr, &ae) && ae.Status == http.StatusUnauthorized) {
				// The session may still be alive: keep the token so the
				// user can retry rather than leave a live session behind.
				return fmt.Errorf("log out of %s: %w (the token is kept; try again)", r.server, callErr)
			}
			r.cfg.Token, r.cfg.ExpiresAt = "", ""
			if err := saveCLIConfig(r.path, r.cfg); err != nil {
				return err
			}
			if callErr != nil {
				fmt.Fprintf(e.Stdout, "The session at %s had already ended; its token is forgotten.\n", r.server)
			} else {
				fmt.Fprintf(e.Stdout, "Signed out of %s.\n", r.server)
			}
			if e.Getenv("BULWARK_TOKEN") != "" {
				fmt.Fprintln(e.Stderr, "note: BULWARK_TOKEN is still set; commands keep using it")
			}
			return nil
		},
	}
}

// meAnswer is GET /api/v1/me.
type meAnswer struct {
	User       identity.User  `json:"user"`
	Roles      []string       `json:"roles"`
	Grants     []access.Grant `json:"grants"`
	TokenID    string         `json:"token_id"`
	Restricted bool           `json:"restricted"`
	MFA        bool           `json:"mfa"`
}

func meCommand() *Command {
	var f clientFlags
	var asJSON bool
	return &Command{
		Name:     "me",
		Summary:  "show who you are signed in as, your roles and effective grants",
		Usage:    "bulwark me [--json]",
		Examples: []string{"bulwark me", "bulwark me --json | jq .grants"},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("me takes no arguments")
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			var me meAnswer
			raw, err := c.call(ctx, http.MethodGet, "/api/v1/me", nil, nil, &me)
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(e.Stdout, raw)
			}
			u := me.User
			name := u.Username
			if u.DisplayName != "" {
				name += " (" + u.DisplayName + ")"
			}
			if u.Email != "" {
				name += " <" + u.Email + ">"
			}
			via := "session"
			if me.TokenID != "" {
				via = "API token " + me.TokenID
			}
			fmt.Fprintf(e.Stdout, "user:     %s\nserver:   %s\nvia:      %s\n2FA:      %s\nroles:    %s\n",
				clean(name), c.base, clean(via), yesNo(me.MFA, "verified this session", "not used this session"), clean(orDash(strings.Join(me.Roles, ", "))))
			if me.Restricted {
				fmt.Fprintln(e.Stdout, "status:   restricted until a second factor is enrolled")
			}
			fmt.Fprintln(e.Stdout)
			return grantTable(e, me.Grants, true)
		},
	}
}

// grantTable prints grants; withRole adds the role column.
func grantTable(e *Env, gs []access.Grant, withRole bool) error {
	if len(gs) == 0 {
		fmt.Fprintln(e.Stdout, "no grants")
		return nil
	}
	header := []string{"ID", "EFFECT", "MODULE", "LEVEL", "SCOPE", "EXPIRES"}
	if withRole {
		header = append([]string{"ROLE"}, header...)
	}
	var rows [][]string
	for _, g := range gs {
		scope := "all"
		if !g.Scope.All() {
			scope = g.Scope.String()
		}
		row := []string{fmt.Sprint(g.ID), string(g.Effect), string(g.Module), g.Level.String(), scope, fmtTime(g.ExpiresAt)}
		if withRole {
			row = append([]string{g.Role}, row...)
		}
		rows = append(rows, row)
	}
	return table(e.Stdout, header, rows)
}

func yesNo(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
