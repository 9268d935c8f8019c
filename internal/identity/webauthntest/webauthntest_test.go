package webauthntest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/google/go-cmp/cmp"
)

const (
	testOrigin = "https://rp.example"
	testRPID   = "rp.example"
)

func creationJSON(t *testing.T, challenge []byte, exclude [][]byte, algs ...int) json.RawMessage {
	t.Helper()
	params := []map[string]any{}
	for _, a := range algs {
		params = append(params, map[string]any{"type": "public-key", "alg": a})
	}
	ex := []map[string]any{}
	for _, id := range exclude {
		ex = append(ex, map[string]any{"type": "public-key", "id": b64(id)})
	}
	b, err := json.Marshal(map[string]any{"publicKey": map[string]any{
		"rp":                 map[string]any{"id": testRPID, "name": "RP"},
		"user":               map[string]any{"id": b64([]byte("user-handle")), "name": "alice", "displayName": "Alice"},
		"challenge":          b64(challenge),
		"pubKeyCredParams":   params,
		"excludeCredentials": ex,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func requestJSON(t *testing.T, challenge []byte, allow ...[]byte) json.RawMessage {
	t.Helper()
	al := []map[string]any{}
	for _, id := range allow {
		al = append(al, map[string]any{"type": "public-key", "id": b64(id)})
	}
	b, err := json.Marshal(map[string]any{"publicKey": map[string]any{
		"challenge": b64(challenge), "rpId": testRPID, "allowCredentials": al,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCOSEKeyKnownAnswer encodes the credential public key of the WebAuthn
// Level 3 test vector §16.2 ("none" attestation, ES256) and expects the
// exact COSE bytes printed in the specification.
func TestCOSEKeyKnownAnswer(t *testing.T) {
	x, _ := hex.DecodeString("afefa16f97ca9b2d23eb86ccb64098d20db90856062eb249c33a9b672f26df61")
	y, _ := hex.DecodeString("930a56b87a2fca66334b03458abf879717c12cc68ed73290af2e2664796b9220")
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatal(err)
	}
	got, err := COSEKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	want := "a5010203262001215820afefa16f97ca9b2d23eb86ccb64098d20db90856062eb249c33a9b672f26df61225820930a56b87a2fca66334b03458abf879717c12cc68ed73290af2e2664796b9220"
	if hex.EncodeToString(got) != want {
		t.Errorf("COSEKey = %x, want %s", got, want)
	}
}

// TestRegisterParsesWithLibrary checks the registration response is what
// go-webauthn's parser accepts and that authenticatorData has the layout the
// package comment describes.
func TestRegisterParsesWithLibrary(t *testing.T) {
	a := New(testOrigin)
	a.BackupEligible = true
	challenge := bytes.Repeat([]byte{7}, 32)
	resp, err := a.Register(creationJSON(t, challenge, nil, -7))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(resp)
	if err != nil {
		t.Fatalf("library rejected registration response: %v", err)
	}
	cred := a.Credentials()[0]
	ad := parsed.Response.AttestationObject.AuthData
	rpHash := sha256.Sum256([]byte(testRPID))
	type view struct {
		Fmt, Type, Challenge, Origin string
		RPIDHash, CredID             []byte
		UP, UV, BE, BS, AT           bool
		Counter                      uint32
	}
	got := view{
		Fmt: parsed.Response.AttestationObject.Format, Type: string(parsed.Response.CollectedClientData.Type),
		Challenge: parsed.Response.CollectedClientData.Challenge, Origin: parsed.Response.CollectedClientData.Origin,
		RPIDHash: ad.RPIDHash, CredID: ad.AttData.CredentialID,
		UP: ad.Flags.HasUserPresent(), UV: ad.Flags.HasUserVerified(), BE: ad.Flags.HasBackupEligible(),
		BS: ad.Flags.HasBackupState(), AT: ad.Flags.HasAttestedCredentialData(), Counter: ad.Counter,
	}
	want := view{
		Fmt: "none", Type: "webauthn.create", Challenge: base64.RawURLEncoding.EncodeToString(challenge), Origin: testOrigin,
		RPIDHash: rpHash[:], CredID: cred.ID, UP: true, BE: true, AT: true, Counter: 1,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("registration response (-want +got):\n%s", d)
	}
	wantKey, err := COSEKey(&cred.Key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ad.AttData.CredentialPublicKey, wantKey) {
		t.Errorf("credential public key = %x, want %x", ad.AttData.CredentialPublicKey, wantKey)
	}
}

func TestAssert(t *testing.T) {
	challenge := bytes.Repeat([]byte{9}, 32)
	tests := []struct {
		name      string
		setup     func(a *Authenticator)
		allow     func(a *Authenticator) [][]byte
		wantErr   error
		wantValid bool
	}{
		{name: "signs with allowed credential", allow: func(a *Authenticator) [][]byte { return [][]byte{a.Credentials()[0].ID} }, wantValid: true},
		{name: "empty allow list uses resident credential", allow: func(*Authenticator) [][]byte { return nil }, wantValid: true},
		{name: "tampered signature does not verify", setup: func(a *Authenticator) { a.TamperSignature = true },
			allow: func(a *Authenticator) [][]byte { return [][]byte{a.Credentials()[0].ID} }, wantValid: false},
		{name: "unknown credential refused", allow: func(*Authenticator) [][]byte { return [][]byte{[]byte("someone-else")} }, wantErr: ErrNoCredential},
		{name: "ignore allow list", setup: func(a *Authenticator) { a.IgnoreAllowCredentials = true },
			allow: func(*Authenticator) [][]byte { return [][]byte{[]byte("someone-else")} }, wantValid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New(testOrigin)
			if _, err := a.Register(creationJSON(t, challenge, nil, -7)); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(a)
			}
			resp, err := a.Assert(requestJSON(t, challenge, tt.allow(a)...))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Assert error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			parsed, err := protocol.ParseCredentialRequestResponseBytes(resp)
			if err != nil {
				t.Fatalf("library rejected assertion: %v", err)
			}
			if got, want := parsed.Response.AuthenticatorData.Counter, uint32(2); got != want {
				t.Errorf("counter = %d, want %d", got, want)
			}
			cdHash := sha256.Sum256(parsed.Raw.AssertionResponse.ClientDataJSON)
			digest := sha256.Sum256(append(bytes.Clone(parsed.Raw.AssertionResponse.AuthenticatorData), cdHash[:]...))
			valid := ecdsa.VerifyASN1(&a.Credentials()[0].Key.PublicKey, digest[:], parsed.Response.Signature)
			if valid != tt.wantValid {
				t.Errorf("signature valid = %v, want %v", valid, tt.wantValid)
			}
		})
	}
}

func TestRegisterRefusals(t *testing.T) {
	challenge := bytes.Repeat([]byte{1}, 32)
	tests := []struct {
		name    string
		prep    func(a *Authenticator) json.RawMessage
		wantErr error
	}{
		{name: "excluded credential", prep: func(a *Authenticator) json.RawMessage {
			return creationJSON(t, challenge, [][]byte{a.Credentials()[0].ID}, -7)
		}, wantErr: ErrCredentialExcluded},
		{name: "excluded but ignored", prep: func(a *Authenticator) json.RawMessage {
			a.IgnoreExcludeCredentials = true
			return creationJSON(t, challenge, [][]byte{a.Credentials()[0].ID}, -7)
		}},
		{name: "no ES256 offered", prep: func(*Authenticator) json.RawMessage {
			return creationJSON(t, challenge, nil, -257)
		}, wantErr: ErrUnsupportedAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New(testOrigin)
			if _, err := a.Register(creationJSON(t, challenge, nil, -7)); err != nil {
				t.Fatal(err)
			}
			_, err := a.Register(tt.prep(a))
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Register error = %v, want %v", err, tt.wantErr)
			}
			wantCreds := 1
			if tt.wantErr == nil {
				wantCreds = 2
			}
			if got := len(a.Credentials()); got != wantCreds {
				t.Errorf("credentials held = %d, want %d", got, wantCreds)
			}
		})
	}
}
