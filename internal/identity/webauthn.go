// WebAuthn security keys as a second factor.
//
// A WebAuthn ceremony has two round trips through the browser. Begin* builds
// the options the browser hands to navigator.credentials.create (registration)
// or navigator.credentials.get (login) and a server-side state holding the
// random challenge; Finish* checks the browser's answer against that state:
//
//   - clientDataJSON: ceremony type, our challenge, an origin we serve;
//   - authenticatorData: SHA-256 of our RP ID, user-presence flag, the
//     signature counter;
//   - registration: the attestation object ("none" attestation: we trust the
//     key the authenticator hands us, not its maker) and the COSE public key;
//   - login: an ECDSA/RSA/EdDSA signature over authenticatorData ||
//     SHA-256(clientDataJSON) by the key stored at registration, and a
//     signature counter strictly greater than the stored one (a counter that
//     does not advance means two copies of the private key exist).
//
// The protocol work is done by github.com/go-webauthn/webauthn; this file
// adapts it to Bulwark: no storage, JSON in and JSON out, time and randomness
// injected, response size capped, and errors reduced to a few sentinels the
// API maps to status codes.
//
// The state returned by Begin* is the library's SessionData as JSON. It is
// trusted (the caller keeps it server-side) and MUST be used at most once: the
// caller deletes it before calling Finish*. Finish* cannot enforce that without
// storage; for keys whose counter advances, a replayed assertion is also caught
// by the counter check once the caller has stored the new count.
package identity

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// WebAuthnMaxResponseBytes caps the browser's JSON answer before it is
// parsed. Real responses are 1-3 KiB; the cap keeps an attacker from making
// the server decode megabytes of JSON and CBOR.
const WebAuthnMaxResponseBytes = 64 << 10

// WebAuthnMaxKeyNameRunes bounds the user-chosen label of a key.
const WebAuthnMaxKeyNameRunes = 64

// WebAuthnDefaultTimeout is the ceremony lifetime used when
// WebAuthnConfig.Timeout is zero: long enough to find and touch a key.
const WebAuthnDefaultTimeout = 5 * time.Minute

// webauthnChallengeBytes is the challenge size; the library and the
// specification ask for at least 16 random bytes.
const webauthnChallengeBytes = 32

var (
	// ErrWebAuthnNoKeys is returned by BeginLogin when the account has no
	// registered security key, so WebAuthn cannot be its second factor.
	ErrWebAuthnNoKeys = errors.New("webauthn: the account has no registered security key")

	// ErrWebAuthnFailed is returned when a browser's response does not verify:
	// malformed, oversized, wrong challenge, origin or RP ID, unknown key, bad
	// signature. ErrWebAuthnExpired and ErrWebAuthnCloned errors match it too,
	// so a caller that only checks ErrWebAuthnFailed still refuses them.
	ErrWebAuthnFailed = errors.New("webauthn: security key verification failed")

	// ErrWebAuthnCloned is returned by FinishLogin when the key's signature
	// counter did not advance past the stored value: the private key may
	// exist in two places. The login is refused; the caller should alert.
	ErrWebAuthnCloned = errors.New("webauthn: security key signature counter did not advance; the key may be cloned")

	// ErrWebAuthnExpired is returned by Finish* when the ceremony state is
	// older than WebAuthnConfig.Timeout; the user must start again.
	ErrWebAuthnExpired = errors.New("webauthn: the security key request has expired")

	// ErrWebAuthnInvalidKeyName is returned when a key's label is empty, too
	// long or contains control characters.
	ErrWebAuthnInvalidKeyName = errors.New("webauthn: invalid security key name")
)

// WebAuthnConfig describes the relying party (this Bulwark installation) to
// browsers and authenticators.
type WebAuthnConfig struct {
	// RPID is the relying party ID: the registrable domain keys are bound
	// to, e.g. "bulwark.example.com" or "localhost". Keys registered under
	// one RP ID never work under another, so it must not change later.
	RPID string
	// RPName is shown by browsers when asking to touch the key.
	RPName string
	// Origins lists the exact origins ("https://host[:port]") the console
	// is served from. Each host must be RPID or a subdomain of it.
	Origins []string
	// Timeout is how long a ceremony may take; zero means
	// WebAuthnDefaultTimeout.
	Timeout time.Duration
	// Now returns the current time when a ceremony begins; nil means
	// time.Now. Injected so tests control expiry.
	Now func() time.Time
	// Rand supplies challenge bytes; nil means crypto/rand.Reader.
	Rand io.Reader
}

// WebAuthnKey is a registered security key as the caller stores it. It is
// JSON-serialisable; SignCount must be updated after every successful
// FinishLogin.
type WebAuthnKey struct {
	ID              []byte    `json:"id"`
	Name            string    `json:"name"`
	PublicKey       []byte    `json:"publicKey"` // COSE_Key encoding
	AttestationType string    `json:"attestationType"`
	AAGUID          []byte    `json:"aaguid"`
	SignCount       uint32    `json:"signCount"`
	Transports      []string  `json:"transports,omitempty"`
	BackupEligible  bool      `json:"backupEligible"`
	BackupState     bool      `json:"backupState"`
	CreatedAt       time.Time `json:"createdAt"`
}

// WebAuthnAccount is the user as WebAuthn sees it: a stable random handle
// (see NewWebAuthnHandle; never the username, which browsers may store on the
// key), display names, and the keys registered so far.
type WebAuthnAccount struct {
	Handle      []byte
	Name        string
	DisplayName string
	Keys        []WebAuthnKey
}

// WebAuthn runs registration and login ceremonies. It holds no per-user
// state and is safe for concurrent use.
type WebAuthn struct {
	lib     *webauthn.WebAuthn
	timeout time.Duration
	now     func() time.Time
	rand    io.Reader
}

// NewWebAuthnHandle returns a fresh random 32-byte user handle, to be created
// once per user and stored with the account.
func NewWebAuthnHandle(r io.Reader) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	h := make([]byte, 32)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, fmt.Errorf("webauthn: generate user handle: %w", err)
	}
	return h, nil
}

// NewWebAuthn validates c and returns a ready WebAuthn.
func NewWebAuthn(c WebAuthnConfig) (*WebAuthn, error) {
	rpID := strings.ToLower(strings.TrimSpace(c.RPID))
	if rpID == "" {
		return nil, errors.New("webauthn config: rp_id is empty; set it to the domain the console is served from, e.g. \"bulwark.example.com\"")
	}
	if strings.ContainsAny(rpID, ":/") {
		return nil, fmt.Errorf("webauthn config: rp_id %q must be a bare domain without scheme, port or path", c.RPID)
	}
	if len(c.Origins) == 0 {
		return nil, fmt.Errorf("webauthn config: no origins; list the console URL, e.g. \"https://%s\"", rpID)
	}
	origins := make([]string, 0, len(c.Origins))
	for _, o := range c.Origins {
		norm, err := validateWebAuthnOrigin(o, rpID)
		if err != nil {
			return nil, err
		}
		origins = append(origins, norm)
	}
	if c.Timeout < 0 {
		return nil, fmt.Errorf("webauthn config: timeout %s is negative; use a positive duration such as 5m", c.Timeout)
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = WebAuthnDefaultTimeout
	}
	if timeout < time.Millisecond {
		return nil, fmt.Errorf("webauthn config: timeout %s is below a millisecond; use a duration such as 5m", c.Timeout)
	}
	rpName := c.RPName
	if rpName == "" {
		rpName = "Bulwark"
	}
	lib, err := webauthn.New(&webauthn.Config{
		RPID:          rpID,
		RPDisplayName: rpName,
		RPOrigins:     origins,
		// Expiry is enforced here against the caller's clock, not by the
		// library against the wall clock, so Enforce stays off.
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: timeout, TimeoutUVD: timeout},
			Registration: webauthn.TimeoutConfig{Timeout: timeout, TimeoutUVD: timeout},
		},
		AttestationPreference: protocol.PreferNoAttestation,
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn config: %w", err)
	}
	w := &WebAuthn{lib: lib, timeout: timeout, now: c.Now, rand: c.Rand}
	if w.now == nil {
		w.now = time.Now
	}
	if w.rand == nil {
		w.rand = rand.Reader
	}
	return w, nil
}

// validateWebAuthnOrigin checks that o is a bare origin that browsers would
// allow to use rpID, and returns it normalised (lower-case scheme and host).
func validateWebAuthnOrigin(o, rpID string) (string, error) {
	u, err := url.Parse(o)
	if err != nil {
		return "", fmt.Errorf("webauthn config: origin %q does not parse: %w", o, err)
	}
	if u.Host == "" || u.Opaque != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("webauthn config: origin %q must be scheme://host[:port] with no path, e.g. \"https://%s\"", o, rpID)
	}
	host := strings.ToLower(u.Hostname())
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme == "https":
	case scheme == "http" && (host == "localhost" || strings.HasSuffix(host, ".localhost")):
		// Browsers treat http://localhost as a secure context.
	default:
		return "", fmt.Errorf("webauthn config: origin %q must use https (plain http only works for localhost)", o)
	}
	if host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return "", fmt.Errorf("webauthn config: origin %q is not on rp_id %q; browsers refuse it: use an origin on %s or change rp_id", o, rpID, rpID)
	}
	norm := scheme + "://" + strings.ToLower(u.Host)
	return norm, nil
}

// ValidateWebAuthnKeyName returns the trimmed key label or an error matching
// ErrWebAuthnInvalidKeyName. The API can call it before BeginRegistration so
// the user fixes the name before touching the key.
func ValidateWebAuthnKeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", fmt.Errorf("%w: the name is empty; give the key a label such as \"YubiKey on keyring\"", ErrWebAuthnInvalidKeyName)
	case !utf8.ValidString(name):
		return "", fmt.Errorf("%w: the name is not valid UTF-8", ErrWebAuthnInvalidKeyName)
	case utf8.RuneCountInString(name) > WebAuthnMaxKeyNameRunes:
		return "", fmt.Errorf("%w: the name is longer than %d characters; shorten it", ErrWebAuthnInvalidKeyName, WebAuthnMaxKeyNameRunes)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", fmt.Errorf("%w: the name contains control characters; use printable text", ErrWebAuthnInvalidKeyName)
	}
	return name, nil
}

// BeginRegistration starts adding a key to account a. It returns the options
// to send to the browser ({"publicKey":{...}}) and the state to keep
// server-side until FinishRegistration. Keys already registered are listed in
// excludeCredentials so an authenticator refuses to register twice.
func (w *WebAuthn) BeginRegistration(a WebAuthnAccount) (options json.RawMessage, state []byte, err error) {
	if err := validateWebAuthnAccount(a); err != nil {
		return nil, nil, err
	}
	challenge, err := w.challenge()
	if err != nil {
		return nil, nil, err
	}
	creation, session, err := w.lib.BeginRegistration(webauthnUser{a},
		webauthn.WithExclusions(webauthnDescriptors(a.Keys)),
		// A second factor after a password: presence (a touch) is enough, so
		// user verification (PIN/biometric) is discouraged, and the key need
		// not store a discoverable credential.
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementDiscouraged,
			RequireResidentKey: protocol.ResidentKeyNotRequired(),
			UserVerification:   protocol.VerificationDiscouraged,
		}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
		func(o *protocol.PublicKeyCredentialCreationOptions) error {
			o.Challenge = challenge
			return nil
		},
	)
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin registration for %q: %w", a.Name, err)
	}
	session.Expires = w.now().Add(w.timeout)
	return marshalWebAuthnCeremony("registration", creation, session)
}

// FinishRegistration verifies the browser's attestation response for the
// ceremony in state and returns the new key, labelled name and stamped now.
// The caller appends it to the account's keys.
func (w *WebAuthn) FinishRegistration(a WebAuthnAccount, state []byte, response []byte, name string, now time.Time) (WebAuthnKey, error) {
	name, err := ValidateWebAuthnKeyName(name)
	if err != nil {
		return WebAuthnKey{}, err
	}
	session, err := w.openState("registration", state, now)
	if err != nil {
		return WebAuthnKey{}, err
	}
	if len(session.CredParams) == 0 {
		return WebAuthnKey{}, errors.New("webauthn: finish registration: the state is not a registration state (no credential parameters); pass the state returned by BeginRegistration")
	}
	if err := checkWebAuthnResponseSize(response); err != nil {
		return WebAuthnKey{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return WebAuthnKey{}, webauthnFailure("registration response is malformed", err)
	}
	cred, err := w.lib.CreateCredential(webauthnUser{a}, session, parsed)
	if err != nil {
		return WebAuthnKey{}, webauthnFailure("registration response rejected", err)
	}
	for _, k := range a.Keys {
		if bytes.Equal(k.ID, cred.ID) {
			return WebAuthnKey{}, fmt.Errorf("%w: this security key is already registered to the account as %q", ErrWebAuthnFailed, k.Name)
		}
	}
	return WebAuthnKey{
		ID:              bytes.Clone(cred.ID),
		Name:            name,
		PublicKey:       bytes.Clone(cred.PublicKey),
		AttestationType: cred.AttestationType,
		AAGUID:          bytes.Clone(cred.Authenticator.AAGUID),
		SignCount:       cred.Authenticator.SignCount,
		Transports:      webauthnKnownTransports(cred.Transport),
		BackupEligible:  cred.Flags.BackupEligible,
		BackupState:     cred.Flags.BackupState,
		CreatedAt:       now.UTC(),
	}, nil
}

// BeginLogin starts a second-factor check for account a, allowing any of its
// keys. It returns ErrWebAuthnNoKeys when the account has none.
func (w *WebAuthn) BeginLogin(a WebAuthnAccount) (options json.RawMessage, state []byte, err error) {
	if len(a.Keys) == 0 {
		return nil, nil, ErrWebAuthnNoKeys
	}
	if err := validateWebAuthnAccount(a); err != nil {
		return nil, nil, err
	}
	challenge, err := w.challenge()
	if err != nil {
		return nil, nil, err
	}
	assertion, session, err := w.lib.BeginLogin(webauthnUser{a},
		webauthn.WithChallenge(challenge),
		webauthn.WithUserVerification(protocol.VerificationDiscouraged),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: begin login for %q: %w", a.Name, err)
	}
	session.Expires = w.now().Add(w.timeout)
	return marshalWebAuthnCeremony("login", assertion, session)
}

// FinishLogin verifies the browser's assertion for the ceremony in state. On
// success it returns the ID of the key used and its new signature counter,
// which the caller must store. A counter that did not advance yields an
// error matching ErrWebAuthnCloned (and ErrWebAuthnFailed).
func (w *WebAuthn) FinishLogin(a WebAuthnAccount, state []byte, response []byte, now time.Time) (keyID []byte, newSignCount uint32, err error) {
	session, err := w.openState("login", state, now)
	if err != nil {
		return nil, 0, err
	}
	if len(session.AllowedCredentialIDs) == 0 {
		return nil, 0, errors.New("webauthn: finish login: the state is not a login state (no allowed keys); pass the state returned by BeginLogin")
	}
	if err := checkWebAuthnResponseSize(response); err != nil {
		return nil, 0, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, 0, webauthnFailure("login response is malformed", err)
	}
	cred, err := w.lib.ValidateLogin(webauthnUser{a}, session, parsed)
	if err != nil {
		return nil, 0, webauthnFailure("login response rejected", err)
	}
	if cred.Authenticator.CloneWarning {
		var stored uint32
		for _, k := range a.Keys {
			if bytes.Equal(k.ID, cred.ID) {
				stored = k.SignCount
			}
		}
		return nil, 0, &webauthnError{
			msg: fmt.Sprintf("%v: the key's counter %d is not above the stored %d; revoke the key and check where it has been",
				ErrWebAuthnCloned, parsed.Response.AuthenticatorData.Counter, stored),
			wrap: []error{ErrWebAuthnCloned, ErrWebAuthnFailed},
		}
	}
	return bytes.Clone(cred.ID), cred.Authenticator.SignCount, nil
}

// openState decodes a Begin* state and checks its expiry against now. The
// expiry is cleared afterwards so the library does not re-check it against
// the wall clock.
func (w *WebAuthn) openState(ceremony string, state []byte, now time.Time) (webauthn.SessionData, error) {
	var s webauthn.SessionData
	if err := json.Unmarshal(state, &s); err != nil {
		return s, fmt.Errorf("webauthn: finish %s: the stored state is unreadable: %w", ceremony, err)
	}
	if s.Expires.IsZero() {
		return s, fmt.Errorf("webauthn: finish %s: the stored state has no expiry; pass the state returned by Begin", ceremony)
	}
	if !now.Before(s.Expires) {
		return s, &webauthnError{
			msg:  fmt.Sprintf("%v: the %s began more than %s ago; start again", ErrWebAuthnExpired, ceremony, w.timeout),
			wrap: []error{ErrWebAuthnExpired, ErrWebAuthnFailed},
		}
	}
	s.Expires = time.Time{}
	return s, nil
}

func (w *WebAuthn) challenge() ([]byte, error) {
	c := make([]byte, webauthnChallengeBytes)
	if _, err := io.ReadFull(w.rand, c); err != nil {
		return nil, fmt.Errorf("webauthn: generate challenge: %w", err)
	}
	return c, nil
}

func marshalWebAuthnCeremony(ceremony string, options any, session *webauthn.SessionData) (json.RawMessage, []byte, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: encode %s options: %w", ceremony, err)
	}
	state, err := json.Marshal(session)
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: encode %s state: %w", ceremony, err)
	}
	return opts, state, nil
}

func checkWebAuthnResponseSize(response []byte) error {
	if len(response) > WebAuthnMaxResponseBytes {
		return fmt.Errorf("%w: response is %d bytes, over the %d-byte limit", ErrWebAuthnFailed, len(response), WebAuthnMaxResponseBytes)
	}
	return nil
}

// webauthnFailure wraps a library error as ErrWebAuthnFailed. The library's
// *protocol.Error stays reachable with errors.As for logging its DevInfo.
func webauthnFailure(what string, err error) error {
	detail := err.Error()
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		// DevInfo may span lines and quote client input: flatten and bound it.
		info := strings.Join(strings.Fields(pe.DevInfo), " ")
		if len(info) > 160 {
			info = strings.ToValidUTF8(info[:160], "") + "..."
		}
		detail += " (" + info + ")"
	}
	return &webauthnError{
		msg:  fmt.Sprintf("%v: %s: %s", ErrWebAuthnFailed, what, detail),
		wrap: []error{ErrWebAuthnFailed, err},
	}
}

// webauthnError carries one message while matching several sentinels, e.g.
// ErrWebAuthnCloned and ErrWebAuthnFailed, without repeating their texts.
type webauthnError struct {
	msg  string
	wrap []error
}

func (e *webauthnError) Error() string   { return e.msg }
func (e *webauthnError) Unwrap() []error { return e.wrap }

func validateWebAuthnAccount(a WebAuthnAccount) error {
	if n := len(a.Handle); n < 1 || n > 64 {
		return fmt.Errorf("webauthn: account %q has a %d-byte user handle; it must be 1 to 64 bytes (use NewWebAuthnHandle)", a.Name, n)
	}
	if strings.TrimSpace(a.Name) == "" {
		return errors.New("webauthn: account name is empty; pass the username")
	}
	return nil
}

func webauthnDescriptors(keys []WebAuthnKey) []protocol.CredentialDescriptor {
	out := make([]protocol.CredentialDescriptor, 0, len(keys))
	for _, k := range keys {
		out = append(out, protocol.CredentialDescriptor{
			Type:         protocol.PublicKeyCredentialType,
			CredentialID: k.ID,
			Transport:    webauthnTransports(k.Transports),
		})
	}
	return out
}

func webauthnTransports(ts []string) []protocol.AuthenticatorTransport {
	if len(ts) == 0 {
		return nil
	}
	out := make([]protocol.AuthenticatorTransport, len(ts))
	for i, t := range ts {
		out[i] = protocol.AuthenticatorTransport(t)
	}
	return out
}

// webauthnKnownTransports keeps the transports defined by the specification.
// The list comes from the client and is echoed back in later options, so
// unknown or duplicate entries are dropped rather than stored.
func webauthnKnownTransports(ts []protocol.AuthenticatorTransport) []string {
	var out []string
	for _, t := range ts {
		switch t {
		case protocol.USB, protocol.NFC, protocol.BLE, protocol.SmartCard, protocol.Hybrid, protocol.Internal:
			s := string(t)
			dup := false
			for _, o := range out {
				dup = dup || o == s
			}
			if !dup {
				out = append(out, s)
			}
		}
	}
	return out
}

// webauthnUser adapts WebAuthnAccount to the library's webauthn.User.
type webauthnUser struct{ a WebAuthnAccount }

var _ webauthn.User = webauthnUser{}

func (u webauthnUser) WebAuthnID() []byte   { return u.a.Handle }
func (u webauthnUser) WebAuthnName() string { return u.a.Name }

func (u webauthnUser) WebAuthnDisplayName() string {
	if u.a.DisplayName == "" {
		return u.a.Name
	}
	return u.a.DisplayName
}

func (u webauthnUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, 0, len(u.a.Keys))
	for _, k := range u.a.Keys {
		out = append(out, webauthn.Credential{
			ID:              k.ID,
			PublicKey:       k.PublicKey,
			AttestationType: k.AttestationType,
			Transport:       webauthnTransports(k.Transports),
			Flags: webauthn.CredentialFlags{
				UserPresent:    true,
				BackupEligible: k.BackupEligible,
				BackupState:    k.BackupState,
			},
			Authenticator: webauthn.Authenticator{
				AAGUID:    k.AAGUID,
				SignCount: k.SignCount,
			},
		})
	}
	return out
}
