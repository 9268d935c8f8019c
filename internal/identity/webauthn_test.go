package identity

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulwarkhq/bulwark/internal/identity/webauthntest"
)

const (
	waRPID    = "bulwark.example"
	waOrigin  = "https://bulwark.example"
	waTimeout = 2 * time.Minute
)

// waT0 is the fixed "now" of every ceremony begun in these tests.
var waT0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newTestWebAuthn(t testing.TB) *WebAuthn {
	t.Helper()
	w, err := NewWebAuthn(WebAuthnConfig{
		RPID: waRPID, RPName: "Bulwark test", Origins: []string{waOrigin},
		Timeout: waTimeout, Now: func() time.Time { return waT0 },
	})
	if err != nil {
		t.Fatalf("NewWebAuthn: %v", err)
	}
	return w
}

func newTestAccount(name string) WebAuthnAccount {
	return WebAuthnAccount{Handle: bytes.Repeat([]byte(name[:1]), 32), Name: name, DisplayName: strings.ToUpper(name)}
}

// registerKey runs a full registration of auth on acct and stores the key.
func registerKey(t testing.TB, w *WebAuthn, acct *WebAuthnAccount, auth *webauthntest.Authenticator, name string) WebAuthnKey {
	t.Helper()
	opts, state, err := w.BeginRegistration(*acct)
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	resp, err := auth.Register(opts)
	if err != nil {
		t.Fatalf("authenticator Register: %v", err)
	}
	key, err := w.FinishRegistration(*acct, state, resp, name, waT0.Add(time.Second))
	if err != nil {
		t.Fatalf("FinishRegistration: %v", err)
	}
	acct.Keys = append(acct.Keys, key)
	return key
}

// storeCount records a login's new counter as the caller would.
func storeCount(acct *WebAuthnAccount, id []byte, count uint32) {
	for i := range acct.Keys {
		if bytes.Equal(acct.Keys[i].ID, id) {
			acct.Keys[i].SignCount = count
		}
	}
}

func TestNewWebAuthnConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     WebAuthnConfig
		wantErr string // substring; "" means success
	}{
		{name: "https origin", cfg: WebAuthnConfig{RPID: "example.com", Origins: []string{"https://example.com"}}},
		{name: "subdomain with port", cfg: WebAuthnConfig{RPID: "example.com", Origins: []string{"https://console.example.com:8443"}}},
		{name: "localhost over http", cfg: WebAuthnConfig{RPID: "localhost", Origins: []string{"http://localhost:8080"}}},
		{name: "empty RP ID", cfg: WebAuthnConfig{Origins: []string{"https://example.com"}}, wantErr: "rp_id is empty"},
		{name: "RP ID with scheme", cfg: WebAuthnConfig{RPID: "https://example.com", Origins: []string{"https://example.com"}}, wantErr: "bare domain"},
		{name: "no origins", cfg: WebAuthnConfig{RPID: "example.com"}, wantErr: "no origins"},
		{name: "origin does not parse", cfg: WebAuthnConfig{RPID: "example.com", Origins: []string{"https://exa mple.com"}}, wantErr: "does not parse"},
		{name: "origin with path", cfg: WebAuthnConfig{RPID: "example.com", Origins: []string{"https://example.com/login"}}, wantErr: "no path"},
		{name: "origin without scheme", cfg: WebAuthnConfig{RPID: "example.com", Origins: []string{"example.com"}}, wantErr: "scheme://host"},
		{name: "plain http off localhost", cfg: WebAuthnConfig{RPID: "example.com", Origins: []string{"http://example.com"}}, wantErr: "must use https"},
		{name: "origin on another domain", cfg: WebAuthnConfig{RPID: "example.com", Origins: []string{"https://evil-example.com"}}, wantErr: "not on rp_id"},
		{name: "negative timeout", cfg: WebAuthnConfig{RPID: "example.com", Origins: []string{"https://example.com"}, Timeout: -time.Second}, wantErr: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := NewWebAuthn(tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("NewWebAuthn error = %v, want nil", err)
			case tt.wantErr == "" && w == nil:
				t.Fatal("NewWebAuthn returned nil without error")
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("NewWebAuthn error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestWebAuthnOptions checks what the browser is told: attestation "none",
// UV discouraged, our RP, the user handle, the timeout, the excluded and
// allowed keys, and a challenge drawn from the injected randomness.
func TestWebAuthnOptions(t *testing.T) {
	seq := bytes.Repeat([]byte{0xA5}, 32)
	w, err := NewWebAuthn(WebAuthnConfig{
		RPID: waRPID, RPName: "Bulwark test", Origins: []string{waOrigin}, Timeout: waTimeout,
		Now: func() time.Time { return waT0 }, Rand: bytes.NewReader(bytes.Repeat(seq, 4)),
	})
	if err != nil {
		t.Fatal(err)
	}
	acct := newTestAccount("alice")
	key := registerKey(t, w, &acct, webauthntest.New(waOrigin), "first")

	type descriptor struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	type publicKey struct {
		RP struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"rp"`
		User struct {
			ID          string `json:"id"`
			Name        string `json:"name"`
			DisplayName string `json:"displayName"`
		} `json:"user"`
		Challenge   string `json:"challenge"`
		Timeout     int    `json:"timeout"`
		Attestation string `json:"attestation"`
		Selection   struct {
			UserVerification string `json:"userVerification"`
			ResidentKey      string `json:"residentKey"`
		} `json:"authenticatorSelection"`
		Exclude          []descriptor `json:"excludeCredentials"`
		RPID             string       `json:"rpId"`
		Allow            []descriptor `json:"allowCredentials"`
		UserVerification string       `json:"userVerification"`
	}
	decode := func(raw json.RawMessage) publicKey {
		t.Helper()
		var o struct {
			PublicKey publicKey `json:"publicKey"`
		}
		if err := json.Unmarshal(raw, &o); err != nil {
			t.Fatalf("options are not JSON: %v", err)
		}
		return o.PublicKey
	}
	b64 := base64.RawURLEncoding.EncodeToString
	desc := []descriptor{{Type: "public-key", ID: b64(key.ID)}}

	regOpts, _, err := w.BeginRegistration(acct)
	if err != nil {
		t.Fatal(err)
	}
	got := decode(regOpts)
	want := publicKey{Challenge: b64(seq), Timeout: 120000, Attestation: "none", Exclude: desc}
	want.RP.ID, want.RP.Name = waRPID, "Bulwark test"
	want.User.ID, want.User.Name, want.User.DisplayName = b64(acct.Handle), "alice", "ALICE"
	want.Selection.UserVerification, want.Selection.ResidentKey = "discouraged", "discouraged"
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("registration options (-want +got):\n%s", d)
	}

	loginOpts, _, err := w.BeginLogin(acct)
	if err != nil {
		t.Fatal(err)
	}
	gotLogin := decode(loginOpts)
	wantLogin := publicKey{Challenge: b64(seq), Timeout: 120000, RPID: waRPID, Allow: desc, UserVerification: "discouraged"}
	if d := cmp.Diff(wantLogin, gotLogin); d != "" {
		t.Errorf("login options (-want +got):\n%s", d)
	}
}

func TestWebAuthnRegisterThenLogin(t *testing.T) {
	tests := []struct {
		name      string
		auth      func() *webauthntest.Authenticator
		wantCount uint32
	}{
		{name: "counting key", auth: func() *webauthntest.Authenticator { return webauthntest.New(waOrigin) }, wantCount: 2},
		{name: "key without counter", auth: func() *webauthntest.Authenticator {
			a := webauthntest.New(waOrigin)
			a.FixedCounter = true
			return a
		}, wantCount: 0},
		{name: "synced passkey flags, no user handle", auth: func() *webauthntest.Authenticator {
			a := webauthntest.New(waOrigin)
			a.BackupEligible, a.BackupState, a.OmitUserHandle = true, true, true
			return a
		}, wantCount: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newTestWebAuthn(t)
			acct := newTestAccount("alice")
			auth := tt.auth()
			key := registerKey(t, w, &acct, auth, "  YubiKey 5  ")

			wantKey := WebAuthnKey{
				ID: auth.Credentials()[0].ID, Name: "YubiKey 5", AttestationType: "none",
				AAGUID: make([]byte, 16), SignCount: tt.wantCount / 2, Transports: []string{"usb"},
				BackupEligible: auth.BackupEligible, BackupState: auth.BackupState,
				CreatedAt: waT0.Add(time.Second),
			}
			gotKey := key
			gotKey.PublicKey = nil
			if d := cmp.Diff(wantKey, gotKey); d != "" {
				t.Errorf("registered key (-want +got):\n%s", d)
			}
			if len(key.PublicKey) == 0 {
				t.Error("registered key has no public key")
			}

			// The caller stores the key as JSON; log in with what comes back.
			stored, err := json.Marshal(acct)
			if err != nil {
				t.Fatal(err)
			}
			var loaded WebAuthnAccount
			if err := json.Unmarshal(stored, &loaded); err != nil {
				t.Fatal(err)
			}

			opts, state, err := w.BeginLogin(loaded)
			if err != nil {
				t.Fatalf("BeginLogin: %v", err)
			}
			resp, err := auth.Assert(opts)
			if err != nil {
				t.Fatalf("Assert: %v", err)
			}
			id, count, err := w.FinishLogin(loaded, state, resp, waT0.Add(time.Minute))
			if err != nil {
				t.Fatalf("FinishLogin: %v", err)
			}
			if !bytes.Equal(id, key.ID) || count != tt.wantCount {
				t.Errorf("FinishLogin = (%x, %d), want (%x, %d)", id, count, key.ID, tt.wantCount)
			}
		})
	}
}

func TestWebAuthnLoginWithSecondKey(t *testing.T) {
	w := newTestWebAuthn(t)
	acct := newTestAccount("bob")
	first, second := webauthntest.New(waOrigin), webauthntest.New(waOrigin)
	registerKey(t, w, &acct, first, "desk")
	k2 := registerKey(t, w, &acct, second, "keyring")

	for i, auth := range []*webauthntest.Authenticator{second, first} {
		opts, state, err := w.BeginLogin(acct)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := auth.Assert(opts)
		if err != nil {
			t.Fatal(err)
		}
		id, count, err := w.FinishLogin(acct, state, resp, waT0)
		if err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		wantID := acct.Keys[0].ID
		if auth == second {
			wantID = k2.ID
		}
		if !bytes.Equal(id, wantID) || count != 2 {
			t.Errorf("login %d = (%x, %d), want (%x, 2)", i, id, count, wantID)
		}
		storeCount(&acct, id, count)
	}
}

// loginCase is one attacker's attempt at FinishLogin against an account
// with one registered key, after one successful login has been stored.
type loginCase struct {
	name string
	// attack returns the account, state, response and time to finish with.
	attack  func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time)
	wantErr error
}

type loginFixture struct {
	w          *WebAuthn
	acct       WebAuthnAccount
	auth       *webauthntest.Authenticator
	oldState   []byte // state of the accepted login
	oldResp    []byte // response of the accepted login
	freshOpts  json.RawMessage
	freshState []byte
}

func newLoginFixture(t *testing.T) *loginFixture {
	t.Helper()
	f := &loginFixture{w: newTestWebAuthn(t), acct: newTestAccount("carol"), auth: webauthntest.New(waOrigin)}
	registerKey(t, f.w, &f.acct, f.auth, "key")
	opts, state, err := f.w.BeginLogin(f.acct)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.auth.Assert(opts)
	if err != nil {
		t.Fatal(err)
	}
	id, count, err := f.w.FinishLogin(f.acct, state, resp, waT0)
	if err != nil {
		t.Fatalf("baseline login: %v", err)
	}
	storeCount(&f.acct, id, count)
	f.oldState, f.oldResp = state, resp
	if f.freshOpts, f.freshState, err = f.w.BeginLogin(f.acct); err != nil {
		t.Fatal(err)
	}
	return f
}

// fresh answers the fresh challenge with the fixture's key after mutate.
func (f *loginFixture) fresh(t *testing.T, mutate func(a *webauthntest.Authenticator)) (WebAuthnAccount, []byte, []byte, time.Time) {
	t.Helper()
	if mutate != nil {
		mutate(f.auth)
	}
	resp, err := f.auth.Assert(f.freshOpts)
	if err != nil {
		t.Fatal(err)
	}
	return f.acct, f.freshState, resp, waT0
}

// editResponse decodes a response, lets edit change it, and re-encodes it.
func editResponse(t *testing.T, resp []byte, edit func(m map[string]any, r map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(resp, &m); err != nil {
		t.Fatal(err)
	}
	edit(m, m["response"].(map[string]any))
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWebAuthnFinishLoginAttacks(t *testing.T) {
	tests := []loginCase{
		{name: "replay: same state and response again", wantErr: ErrWebAuthnCloned,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				return f.acct, f.oldState, f.oldResp, waT0
			}},
		{name: "replay: old response to a fresh challenge", wantErr: ErrWebAuthnFailed,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				return f.acct, f.freshState, f.oldResp, waT0
			}},
		{name: "wrong origin (phishing page)", wantErr: ErrWebAuthnFailed,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				return f.fresh(t, func(a *webauthntest.Authenticator) { a.Origin = "https://bulwark.example.evil" })
			}},
		{name: "wrong RP ID hash", wantErr: ErrWebAuthnFailed,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				return f.fresh(t, func(a *webauthntest.Authenticator) { a.RPID = "evil.example" })
			}},
		{name: "tampered signature", wantErr: ErrWebAuthnFailed,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				return f.fresh(t, func(a *webauthntest.Authenticator) { a.TamperSignature = true })
			}},
		{name: "tampered clientDataJSON (same fields, re-encoded)", wantErr: ErrWebAuthnFailed,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				acct, state, resp, now := f.fresh(t, nil)
				resp = editResponse(t, resp, func(_, r map[string]any) {
					cdj, _ := base64.RawURLEncoding.DecodeString(r["clientDataJSON"].(string))
					// Challenge, origin and type stay valid: only the signature binds these bytes.
					cdj = append([]byte(" "), cdj...)
					r["clientDataJSON"] = base64.RawURLEncoding.EncodeToString(cdj)
				})
				return acct, state, resp, now
			}},
		{name: "tampered authenticatorData (UV flag set)", wantErr: ErrWebAuthnFailed,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				acct, state, resp, now := f.fresh(t, nil)
				resp = editResponse(t, resp, func(_, r map[string]any) {
					ad, _ := base64.RawURLEncoding.DecodeString(r["authenticatorData"].(string))
					ad[32] |= 0x04
					r["authenticatorData"] = base64.RawURLEncoding.EncodeToString(ad)
				})
				return acct, state, resp, now
			}},
		{name: "unknown credential ID", wantErr: ErrWebAuthnFailed,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				stranger := webauthntest.New(waOrigin)
				other := newTestAccount("mallory")
				registerKey(t, f.w, &other, stranger, "theirs")
				stranger.IgnoreAllowCredentials = true
				resp, err := stranger.Assert(f.freshOpts)
				if err != nil {
					t.Fatal(err)
				}
				return f.acct, f.freshState, resp, waT0
			}},
		{name: "another user's handle", wantErr: ErrWebAuthnFailed,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				acct, state, resp, now := f.fresh(t, nil)
				resp = editResponse(t, resp, func(_, r map[string]any) {
					r["userHandle"] = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte("m"), 32))
				})
				return acct, state, resp, now
			}},
		{name: "state begun for another account", wantErr: ErrWebAuthnFailed,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				other := newTestAccount("mallory")
				registerKey(t, f.w, &other, webauthntest.New(waOrigin), "theirs")
				_, otherState, err := f.w.BeginLogin(other)
				if err != nil {
					t.Fatal(err)
				}
				_, _, resp, now := f.fresh(t, nil)
				return f.acct, otherState, resp, now
			}},
		{name: "counter regression", wantErr: ErrWebAuthnCloned,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				return f.fresh(t, func(a *webauthntest.Authenticator) { a.Counter = 0 })
			}},
		{name: "counter stuck at stored value", wantErr: ErrWebAuthnCloned,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				return f.fresh(t, func(a *webauthntest.Authenticator) { a.FixedCounter = true })
			}},
		{name: "expired state, at the deadline", wantErr: ErrWebAuthnExpired,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				acct, state, resp, _ := f.fresh(t, nil)
				return acct, state, resp, waT0.Add(waTimeout)
			}},
		{name: "expired state, a day later", wantErr: ErrWebAuthnExpired,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				acct, state, resp, _ := f.fresh(t, nil)
				return acct, state, resp, waT0.Add(24 * time.Hour)
			}},
		{name: "oversized response", wantErr: ErrWebAuthnFailed,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				acct, state, resp, now := f.fresh(t, nil)
				resp = editResponse(t, resp, func(m, _ map[string]any) {
					m["padding"] = strings.Repeat("A", WebAuthnMaxResponseBytes)
				})
				return acct, state, resp, now
			}},
		{name: "garbage JSON", wantErr: ErrWebAuthnFailed,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				return f.acct, f.freshState, []byte(`{"id": [1,2,`), waT0
			}},
		{name: "empty response", wantErr: ErrWebAuthnFailed,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				return f.acct, f.freshState, nil, waT0
			}},
		{name: "registration response used to log in", wantErr: ErrWebAuthnFailed,
			attack: func(t *testing.T, f *loginFixture) (WebAuthnAccount, []byte, []byte, time.Time) {
				resp, err := webauthntest.New(waOrigin).Register(mustBeginRegistration(t, f.w, f.acct))
				if err != nil {
					t.Fatal(err)
				}
				return f.acct, f.freshState, resp, waT0
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLoginFixture(t)
			acct, state, resp, now := tt.attack(t, f)
			id, count, err := f.w.FinishLogin(acct, state, resp, now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("FinishLogin error = %v, want %v", err, tt.wantErr)
			}
			if !errors.Is(err, ErrWebAuthnFailed) {
				t.Errorf("FinishLogin error = %v, want it to match ErrWebAuthnFailed too", err)
			}
			if id != nil || count != 0 {
				t.Errorf("FinishLogin returned (%x, %d) with an error, want (nil, 0)", id, count)
			}
			t.Logf("error: %v", err)
		})
	}
}

func mustBeginRegistration(t *testing.T, w *WebAuthn, acct WebAuthnAccount) json.RawMessage {
	t.Helper()
	opts, _, err := w.BeginRegistration(acct)
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// TestWebAuthnStateMixups checks a state from the wrong ceremony or a
// corrupt store is reported as a server error, not as the user's failure.
func TestWebAuthnStateMixups(t *testing.T) {
	w := newTestWebAuthn(t)
	acct := newTestAccount("dave")
	auth := webauthntest.New(waOrigin)
	registerKey(t, w, &acct, auth, "key")
	_, regState, err := w.BeginRegistration(acct)
	if err != nil {
		t.Fatal(err)
	}
	loginOpts, loginState, err := w.BeginLogin(acct)
	if err != nil {
		t.Fatal(err)
	}
	assertion, err := auth.Assert(loginOpts)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		finish func() error
	}{
		{name: "registration state to FinishLogin", finish: func() error {
			_, _, err := w.FinishLogin(acct, regState, assertion, waT0)
			return err
		}},
		{name: "login state to FinishRegistration", finish: func() error {
			_, err := w.FinishRegistration(acct, loginState, assertion, "k", waT0)
			return err
		}},
		{name: "corrupt state", finish: func() error {
			_, _, err := w.FinishLogin(acct, []byte("{not json"), assertion, waT0)
			return err
		}},
		{name: "state without expiry", finish: func() error {
			_, _, err := w.FinishLogin(acct, []byte(`{"challenge":"abc"}`), assertion, waT0)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.finish()
			if err == nil || errors.Is(err, ErrWebAuthnFailed) {
				t.Errorf("error = %v, want a non-nil error not matching ErrWebAuthnFailed", err)
			}
		})
	}
}

func TestWebAuthnFinishRegistrationAttacks(t *testing.T) {
	type regAttempt struct {
		acct  WebAuthnAccount
		state []byte
		resp  []byte
		name  string
		now   time.Time
	}
	tests := []struct {
		name    string
		attempt func(t *testing.T, w *WebAuthn, acct WebAuthnAccount) regAttempt
		wantErr error
	}{
		{name: "wrong origin", wantErr: ErrWebAuthnFailed, attempt: func(t *testing.T, w *WebAuthn, acct WebAuthnAccount) regAttempt {
			a := webauthntest.New("https://evil.example")
			opts, state, _ := w.BeginRegistration(acct)
			resp, err := a.Register(opts)
			if err != nil {
				t.Fatal(err)
			}
			return regAttempt{acct, state, resp, "k", waT0}
		}},
		{name: "wrong RP ID hash", wantErr: ErrWebAuthnFailed, attempt: func(t *testing.T, w *WebAuthn, acct WebAuthnAccount) regAttempt {
			a := webauthntest.New(waOrigin)
			a.RPID = "evil.example"
			opts, state, _ := w.BeginRegistration(acct)
			resp, err := a.Register(opts)
			if err != nil {
				t.Fatal(err)
			}
			return regAttempt{acct, state, resp, "k", waT0}
		}},
		{name: "answer to another challenge", wantErr: ErrWebAuthnFailed, attempt: func(t *testing.T, w *WebAuthn, acct WebAuthnAccount) regAttempt {
			opts, _, _ := w.BeginRegistration(acct)
			_, state, _ := w.BeginRegistration(acct)
			resp, err := webauthntest.New(waOrigin).Register(opts)
			if err != nil {
				t.Fatal(err)
			}
			return regAttempt{acct, state, resp, "k", waT0}
		}},
		{name: "state begun for another account", wantErr: ErrWebAuthnFailed, attempt: func(t *testing.T, w *WebAuthn, acct WebAuthnAccount) regAttempt {
			opts, state, _ := w.BeginRegistration(newTestAccount("mallory"))
			resp, err := webauthntest.New(waOrigin).Register(opts)
			if err != nil {
				t.Fatal(err)
			}
			return regAttempt{acct, state, resp, "k", waT0}
		}},
		{name: "expired state", wantErr: ErrWebAuthnExpired, attempt: func(t *testing.T, w *WebAuthn, acct WebAuthnAccount) regAttempt {
			opts, state, _ := w.BeginRegistration(acct)
			resp, err := webauthntest.New(waOrigin).Register(opts)
			if err != nil {
				t.Fatal(err)
			}
			return regAttempt{acct, state, resp, "k", waT0.Add(waTimeout + time.Second)}
		}},
		{name: "replayed after the key was stored", wantErr: ErrWebAuthnFailed, attempt: func(t *testing.T, w *WebAuthn, acct WebAuthnAccount) regAttempt {
			opts, state, _ := w.BeginRegistration(acct)
			resp, err := webauthntest.New(waOrigin).Register(opts)
			if err != nil {
				t.Fatal(err)
			}
			key, err := w.FinishRegistration(acct, state, resp, "k", waT0)
			if err != nil {
				t.Fatal(err)
			}
			acct.Keys = append(acct.Keys, key)
			return regAttempt{acct, state, resp, "k", waT0}
		}},
		{name: "oversized response", wantErr: ErrWebAuthnFailed, attempt: func(t *testing.T, w *WebAuthn, acct WebAuthnAccount) regAttempt {
			_, state, _ := w.BeginRegistration(acct)
			return regAttempt{acct, state, bytes.Repeat([]byte(" "), WebAuthnMaxResponseBytes+1), "k", waT0}
		}},
		{name: "garbage JSON", wantErr: ErrWebAuthnFailed, attempt: func(t *testing.T, w *WebAuthn, acct WebAuthnAccount) regAttempt {
			_, state, _ := w.BeginRegistration(acct)
			return regAttempt{acct, state, []byte(`{"type":"public-key","id":`), "k", waT0}
		}},
		{name: "assertion used to register", wantErr: ErrWebAuthnFailed, attempt: func(t *testing.T, w *WebAuthn, acct WebAuthnAccount) regAttempt {
			a := webauthntest.New(waOrigin)
			registerKey(t, w, &acct, a, "k")
			loginOpts, _, _ := w.BeginLogin(acct)
			_, state, _ := w.BeginRegistration(acct)
			resp, err := a.Assert(loginOpts)
			if err != nil {
				t.Fatal(err)
			}
			return regAttempt{acct, state, resp, "k", waT0}
		}},
		{name: "empty key name", wantErr: ErrWebAuthnInvalidKeyName, attempt: func(t *testing.T, w *WebAuthn, acct WebAuthnAccount) regAttempt {
			opts, state, _ := w.BeginRegistration(acct)
			resp, err := webauthntest.New(waOrigin).Register(opts)
			if err != nil {
				t.Fatal(err)
			}
			return regAttempt{acct, state, resp, "   ", waT0}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newTestWebAuthn(t)
			at := tt.attempt(t, w, newTestAccount("erin"))
			key, err := w.FinishRegistration(at.acct, at.state, at.resp, at.name, at.now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("FinishRegistration error = %v, want %v", err, tt.wantErr)
			}
			if key.ID != nil {
				t.Errorf("FinishRegistration returned key %x with an error", key.ID)
			}
		})
	}
}

// TestWebAuthnExcludeCredentials checks a key cannot be registered twice:
// the options name every registered key and the authenticator refuses.
func TestWebAuthnExcludeCredentials(t *testing.T) {
	w := newTestWebAuthn(t)
	acct := newTestAccount("frank")
	a, b := webauthntest.New(waOrigin), webauthntest.New(waOrigin)
	registerKey(t, w, &acct, a, "a")
	registerKey(t, w, &acct, b, "b")
	for _, auth := range []*webauthntest.Authenticator{a, b} {
		opts, _, err := w.BeginRegistration(acct)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := auth.Register(opts); !errors.Is(err, webauthntest.ErrCredentialExcluded) {
			t.Errorf("re-registering an existing key: error = %v, want %v", err, webauthntest.ErrCredentialExcluded)
		}
	}
	// A third key is still welcome.
	registerKey(t, w, &acct, webauthntest.New(waOrigin), "c")
	if got := len(acct.Keys); got != 3 {
		t.Errorf("keys = %d, want 3", got)
	}
}

func TestWebAuthnBeginErrors(t *testing.T) {
	w := newTestWebAuthn(t)
	tests := []struct {
		name    string
		begin   func() error
		wantErr error  // sentinel, or nil for "any error containing wantMsg"
		wantMsg string // substring
	}{
		{name: "login without keys", begin: func() error {
			_, _, err := w.BeginLogin(newTestAccount("gina"))
			return err
		}, wantErr: ErrWebAuthnNoKeys},
		{name: "registration with empty handle", begin: func() error {
			_, _, err := w.BeginRegistration(WebAuthnAccount{Name: "gina"})
			return err
		}, wantMsg: "user handle"},
		{name: "registration with oversized handle", begin: func() error {
			_, _, err := w.BeginRegistration(WebAuthnAccount{Name: "gina", Handle: make([]byte, 65)})
			return err
		}, wantMsg: "user handle"},
		{name: "registration without name", begin: func() error {
			_, _, err := w.BeginRegistration(WebAuthnAccount{Handle: make([]byte, 32)})
			return err
		}, wantMsg: "name is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.begin()
			if err == nil {
				t.Fatal("error = nil, want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestValidateWebAuthnKeyName(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "YubiKey 5 NFC", want: "YubiKey 5 NFC"},
		{in: "  clé bleue \t", want: "clé bleue"},
		{in: strings.Repeat("é", WebAuthnMaxKeyNameRunes), want: strings.Repeat("é", WebAuthnMaxKeyNameRunes)},
		{in: "", wantErr: true},
		{in: " \n ", wantErr: true},
		{in: strings.Repeat("x", WebAuthnMaxKeyNameRunes+1), wantErr: true},
		{in: "evil\x1b[31mred", wantErr: true},
		{in: "bad\xffutf8", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ValidateWebAuthnKeyName(tt.in)
			if tt.wantErr != errors.Is(err, ErrWebAuthnInvalidKeyName) {
				t.Fatalf("ValidateWebAuthnKeyName(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("ValidateWebAuthnKeyName(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestWebAuthnSpecVector runs the W3C WebAuthn Level 3 test vector §16.2
// ("none" attestation, ES256; https://www.w3.org/TR/webauthn-3/#sctn-test-vectors-none-es256)
// through FinishRegistration and FinishLogin: an independent known answer
// for the whole verification path.
func TestWebAuthnSpecVector(t *testing.T) {
	hx := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b64 := base64.RawURLEncoding.EncodeToString
	var (
		credID    = hx("f91f391db4c9b2fde0ea70189cba3fb63f579ba6122b33ad94ff3ec330084be4")
		coseKey   = hx("a5010203262001215820afefa16f97ca9b2d23eb86ccb64098d20db90856062eb249c33a9b672f26df61225820930a56b87a2fca66334b03458abf879717c12cc68ed73290af2e2664796b9220")
		attObj    = hx("a363666d74646e6f6e656761747453746d74a068617574684461746158a4bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b559000000008446ccb9ab1db374750b2367ff6f3a1f0020f91f391db4c9b2fde0ea70189cba3fb63f579ba6122b33ad94ff3ec330084be4a5010203262001215820afefa16f97ca9b2d23eb86ccb64098d20db90856062eb249c33a9b672f26df61225820930a56b87a2fca66334b03458abf879717c12cc68ed73290af2e2664796b9220")
		regCDJ    = hx("7b2274797065223a22776562617574686e2e637265617465222c226368616c6c656e6765223a22414d4d507434557878475453746e63647134313759447742466938767049612d7077386f4f755657345441222c226f726967696e223a2268747470733a2f2f6578616d706c652e6f7267222c2263726f73734f726967696e223a66616c73652c22657874726144617461223a22636c69656e74446174614a534f4e206d617920626520657874656e6465642077697468206164646974696f6e616c206669656c647320696e20746865206675747572652c207375636820617320746869733a20426b5165446a646354427258426941774a544c453551227d")
		regChall  = hx("00c30fb78531c464d2b6771dab8d7b603c01162f2fa486bea70f283ae556e130")
		authData  = hx("bfabc37432958b063360d3ad6461c9c4735ae7f8edd46592a5e0f01452b2e4b51900000000")
		authCDJ   = hx("7b2274797065223a22776562617574686e2e676574222c226368616c6c656e6765223a224f63446e55685158756c5455506f334a5558543049393770767a7a59425039745a63685879617630314167222c226f726967696e223a2268747470733a2f2f6578616d706c652e6f7267222c2263726f73734f726967696e223a66616c73657d")
		sig       = hx("3046022100f50a4e2e4409249c4a853ba361282f09841df4dd4547a13a87780218deffcd380221008480ac0f0b93538174f575bf11a1dd5d78c6e486013f937295ea13653e331e87")
		authChall = hx("39c0e7521417ba54d43e8dc95174f423dee9bf3cd804ff6d65c857c9abf4d408")
	)
	w, err := NewWebAuthn(WebAuthnConfig{RPID: "example.org", Origins: []string{"https://example.org"}, Now: func() time.Time { return waT0 }})
	if err != nil {
		t.Fatal(err)
	}
	acct := newTestAccount("vector")
	// The vector fixes the challenges, so the states are written by hand in
	// the shape BeginRegistration / BeginLogin produce.
	expires := waT0.Add(time.Minute).Format(time.RFC3339)
	regState := []byte(`{"challenge":"` + b64(regChall) + `","rpId":"example.org","user_id":"` + base64.StdEncoding.EncodeToString(acct.Handle) +
		`","expires":"` + expires + `","userVerification":"discouraged","credParams":[{"type":"public-key","alg":-7}]}`)
	regResp := []byte(`{"id":"` + b64(credID) + `","rawId":"` + b64(credID) + `","type":"public-key","response":{"clientDataJSON":"` +
		b64(regCDJ) + `","attestationObject":"` + b64(attObj) + `"}}`)

	key, err := w.FinishRegistration(acct, regState, regResp, "spec key", waT0)
	if err != nil {
		t.Fatalf("FinishRegistration(spec vector): %v", err)
	}
	want := WebAuthnKey{
		ID: credID, Name: "spec key", PublicKey: coseKey, AttestationType: "none",
		AAGUID: hx("8446ccb9ab1db374750b2367ff6f3a1f"), SignCount: 0,
		BackupEligible: true, BackupState: true, CreatedAt: waT0,
	}
	if d := cmp.Diff(want, key); d != "" {
		t.Errorf("key from spec vector (-want +got):\n%s", d)
	}
	acct.Keys = []WebAuthnKey{key}

	loginState := []byte(`{"challenge":"` + b64(authChall) + `","rpId":"example.org","user_id":"` + base64.StdEncoding.EncodeToString(acct.Handle) +
		`","allowed_credentials":["` + base64.StdEncoding.EncodeToString(credID) + `"],"expires":"` + expires + `","userVerification":"discouraged"}`)
	loginResp := func(signature []byte) []byte {
		return []byte(`{"id":"` + b64(credID) + `","rawId":"` + b64(credID) + `","type":"public-key","response":{"clientDataJSON":"` +
			b64(authCDJ) + `","authenticatorData":"` + b64(authData) + `","signature":"` + b64(signature) + `"}}`)
	}
	id, count, err := w.FinishLogin(acct, loginState, loginResp(sig), waT0)
	if err != nil {
		t.Fatalf("FinishLogin(spec vector): %v", err)
	}
	if !bytes.Equal(id, credID) || count != 0 {
		t.Errorf("FinishLogin(spec vector) = (%x, %d), want (%x, 0)", id, count, credID)
	}

	bad := bytes.Clone(sig)
	bad[len(bad)-1] ^= 1
	if _, _, err := w.FinishLogin(acct, loginState, loginResp(bad), waT0); !errors.Is(err, ErrWebAuthnFailed) {
		t.Errorf("FinishLogin(spec vector, flipped signature bit) error = %v, want %v", err, ErrWebAuthnFailed)
	}
}

// FuzzFinishLogin feeds arbitrary bytes as the browser's assertion. It must
// never panic, must only accept the registered key with an advancing
// counter, and must classify every refusal as ErrWebAuthnFailed.
func FuzzFinishLogin(f *testing.F) {
	w := newTestWebAuthn(f)
	acct := newTestAccount("fuzz")
	auth := webauthntest.New(waOrigin)
	key := registerKey(f, w, &acct, auth, "key")
	opts, state, err := w.BeginLogin(acct)
	if err != nil {
		f.Fatal(err)
	}
	valid, err := auth.Assert(opts)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"id":"AA","rawId":"AA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`))
	f.Add(bytes.Replace(valid, []byte(`"public-key"`), []byte(`"private-key"`), 1))
	f.Add(valid[:len(valid)/2])
	f.Fuzz(func(t *testing.T, resp []byte) {
		id, count, err := w.FinishLogin(acct, state, resp, waT0)
		if err != nil {
			if !errors.Is(err, ErrWebAuthnFailed) {
				t.Fatalf("FinishLogin error = %v, want it to match ErrWebAuthnFailed", err)
			}
			return
		}
		if !bytes.Equal(id, key.ID) || count <= key.SignCount {
			t.Fatalf("FinishLogin accepted (%x, %d), want key %x with counter above %d", id, count, key.ID, key.SignCount)
		}
	})
}

// BenchmarkFinishLogin measures verifying one ES256 assertion.
func BenchmarkFinishLogin(b *testing.B) {
	w := newTestWebAuthn(b)
	acct := newTestAccount("bench")
	auth := webauthntest.New(waOrigin)
	registerKey(b, w, &acct, auth, "key")
	opts, state, err := w.BeginLogin(acct)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := auth.Assert(opts)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, _, err := w.FinishLogin(acct, state, resp, waT0); err != nil {
			b.Fatal(err)
		}
	}
}
