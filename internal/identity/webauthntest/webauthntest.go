// Package webauthntest is a software WebAuthn security key, playing both the
// browser and the authenticator, for tests of code that verifies WebAuthn.
//
// It reads the options a server sends to the browser ({"publicKey":{...}},
// the JSON of protocol.CredentialCreation / CredentialAssertion) and returns
// the JSON a browser posts back (PublicKeyCredential.toJSON()), built the way
// the WebAuthn Level 3 specification lays it out:
//
//	clientDataJSON    = {"type":"webauthn.create"|"webauthn.get","challenge":b64url,"origin":...,"crossOrigin":false}
//	authenticatorData = SHA-256(rpId) (32) | flags (1) | signCount (4, big-endian)
//	                    [| AAGUID (16) | credIdLen (2, big-endian) | credId | COSE_Key]   registration only
//	attestationObject = CBOR {"fmt":"none","attStmt":{},"authData":authenticatorData}   ("none" attestation)
//	signature         = ECDSA-P256-SHA256(authenticatorData || SHA-256(clientDataJSON)), ASN.1 DER
//
// The COSE_Key is an EC2 key: {1(kty):2(EC2), 3(alg):-7(ES256), -1(crv):1(P-256), -2(x), -3(y)},
// encoded in CTAP2 canonical CBOR.
//
// Unlike a browser it checks nothing about the page it runs on: the exported
// knobs let a test play a phishing page, a cloned key or a tampering client.
// An Authenticator is not safe for concurrent use.
package webauthntest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// COSE and authenticator-data constants from the WebAuthn and COSE specs.
const (
	coseAlgES256 = -7
	coseKtyEC2   = 2
	coseCrvP256  = 1

	flagUP = 0x01 // user present
	flagUV = 0x04 // user verified
	flagBE = 0x08 // backup eligible
	flagBS = 0x10 // backup state
	flagAT = 0x40 // attested credential data included
)

var (
	// ErrCredentialExcluded is returned by Register when the options'
	// excludeCredentials names a credential this authenticator holds, as a
	// browser reports InvalidStateError.
	ErrCredentialExcluded = errors.New("webauthntest: authenticator already holds an excluded credential")
	// ErrNoCredential is returned by Assert when no held credential matches
	// the RP ID and allowCredentials, as a browser reports NotAllowedError.
	ErrNoCredential = errors.New("webauthntest: no matching credential on this authenticator")
	// ErrUnsupportedAlgorithm is returned by Register when the options do not
	// offer ES256, the only algorithm this authenticator implements.
	ErrUnsupportedAlgorithm = errors.New("webauthntest: options do not allow ES256 (-7)")
)

// Credential is a key pair held by the Authenticator.
type Credential struct {
	ID         []byte
	RPID       string
	UserHandle []byte
	Key        *ecdsa.PrivateKey
}

// Authenticator is a software security key. Fields may be changed between
// calls to simulate attacks.
type Authenticator struct {
	// Origin is what the "browser" writes into clientDataJSON.origin.
	Origin string
	// RPID, when non-empty, replaces the options' RP ID in the rpIdHash of
	// authenticatorData (a key scoped to another site).
	RPID string
	// Counter is the signature counter. It is incremented before every
	// registration and assertion; set it lower to simulate a cloned key, or
	// keep it at zero with FixedCounter to simulate a key without counter.
	Counter uint32
	// FixedCounter stops Counter from incrementing.
	FixedCounter bool
	// AAGUID identifies the authenticator model; zero by default.
	AAGUID [16]byte
	// UserVerified sets the UV flag (a PIN or biometric was checked).
	UserVerified bool
	// BackupEligible and BackupState set the BE and BS flags.
	BackupEligible, BackupState bool
	// Transports are reported at registration; default ["usb"].
	Transports []string
	// TamperSignature flips a bit of each assertion signature.
	TamperSignature bool
	// IgnoreAllowCredentials makes Assert use the first credential for the
	// RP ID even when allowCredentials does not list it.
	IgnoreAllowCredentials bool
	// IgnoreExcludeCredentials makes Register create a new credential even
	// when excludeCredentials names one it holds.
	IgnoreExcludeCredentials bool
	// OmitUserHandle leaves response.userHandle out of assertions, as most
	// security keys do for non-discoverable credentials.
	OmitUserHandle bool
	// Rand supplies credential IDs; nil means crypto/rand.Reader.
	Rand io.Reader

	creds []*Credential
}

// New returns an authenticator that reports origin, e.g. "https://example.com".
func New(origin string) *Authenticator {
	return &Authenticator{Origin: origin}
}

// Credentials returns the credentials created so far, oldest first.
func (a *Authenticator) Credentials() []*Credential { return a.creds }

// creationOptionsJSON is the part of {"publicKey": PublicKeyCredentialCreationOptionsJSON} a key reads.
type creationOptionsJSON struct {
	PublicKey struct {
		RP struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"rp"`
		User struct {
			ID protocol.URLEncodedBase64 `json:"id"`
		} `json:"user"`
		Challenge protocol.URLEncodedBase64 `json:"challenge"`
		Params    []struct {
			Type string `json:"type"`
			Alg  int64  `json:"alg"`
		} `json:"pubKeyCredParams"`
		Exclude []descriptor `json:"excludeCredentials"`
	} `json:"publicKey"`
}

// requestOptionsJSON is the part of {"publicKey": PublicKeyCredentialRequestOptionsJSON} a key reads.
type requestOptionsJSON struct {
	PublicKey struct {
		Challenge protocol.URLEncodedBase64 `json:"challenge"`
		RPID      string                    `json:"rpId"`
		Allow     []descriptor              `json:"allowCredentials"`
	} `json:"publicKey"`
}

type descriptor struct {
	Type string                    `json:"type"`
	ID   protocol.URLEncodedBase64 `json:"id"`
}

type clientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

// Register answers navigator.credentials.create(creationOptions): it creates
// an ES256 credential and returns the registration response JSON.
func (a *Authenticator) Register(creationOptions json.RawMessage) ([]byte, error) {
	var opts creationOptionsJSON
	if err := json.Unmarshal(creationOptions, &opts); err != nil {
		return nil, fmt.Errorf("webauthntest: register: parse options: %w", err)
	}
	o := opts.PublicKey
	if len(o.Challenge) == 0 {
		return nil, errors.New("webauthntest: register: options have no challenge")
	}
	rpID := o.RP.ID
	if rpID == "" {
		host, err := a.originHost()
		if err != nil {
			return nil, err
		}
		rpID = host
	}
	es256 := false
	for _, p := range o.Params {
		es256 = es256 || (p.Type == "public-key" && p.Alg == coseAlgES256)
	}
	if !es256 {
		return nil, ErrUnsupportedAlgorithm
	}
	if !a.IgnoreExcludeCredentials {
		for _, ex := range o.Exclude {
			if c := a.find(ex.ID, rpID); c != nil {
				return nil, fmt.Errorf("%w: %s", ErrCredentialExcluded, b64(c.ID))
			}
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("webauthntest: register: generate key: %w", err)
	}
	id := make([]byte, 32)
	if _, err := io.ReadFull(a.rand(), id); err != nil {
		return nil, fmt.Errorf("webauthntest: register: credential id: %w", err)
	}
	cose, err := COSEKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("webauthntest: register: encode public key: %w", err)
	}

	authData := a.authData(a.rpIDHash(rpID), flagAT)
	authData = append(authData, a.AAGUID[:]...)
	authData = binary.BigEndian.AppendUint16(authData, uint16(len(id)))
	authData = append(authData, id...)
	authData = append(authData, cose...)

	attObj, err := webauthncbor.Marshal(map[string]any{
		"fmt":      "none",
		"attStmt":  map[string]any{},
		"authData": authData,
	})
	if err != nil {
		return nil, fmt.Errorf("webauthntest: register: encode attestation object: %w", err)
	}
	cdj, err := a.clientDataJSON("webauthn.create", o.Challenge)
	if err != nil {
		return nil, err
	}
	transports := a.Transports
	if transports == nil {
		transports = []string{"usb"}
	}

	a.creds = append(a.creds, &Credential{ID: id, RPID: rpID, UserHandle: bytes.Clone(o.User.ID), Key: key})

	return json.Marshal(map[string]any{
		"id":                      b64(id),
		"rawId":                   b64(id),
		"type":                    "public-key",
		"authenticatorAttachment": "cross-platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{
			"clientDataJSON":     b64(cdj),
			"attestationObject":  b64(attObj),
			"authenticatorData":  b64(authData),
			"publicKey":          b64(spki),
			"publicKeyAlgorithm": coseAlgES256,
			"transports":         transports,
		},
	})
}

// Assert answers navigator.credentials.get(requestOptions): it signs with
// the first held credential listed in allowCredentials (or, with an empty
// list, the first for the RP ID) and returns the assertion response JSON.
func (a *Authenticator) Assert(requestOptions json.RawMessage) ([]byte, error) {
	var opts requestOptionsJSON
	if err := json.Unmarshal(requestOptions, &opts); err != nil {
		return nil, fmt.Errorf("webauthntest: assert: parse options: %w", err)
	}
	o := opts.PublicKey
	if len(o.Challenge) == 0 {
		return nil, errors.New("webauthntest: assert: options have no challenge")
	}
	rpID := o.RPID
	if rpID == "" {
		host, err := a.originHost()
		if err != nil {
			return nil, err
		}
		rpID = host
	}
	var cred *Credential
	for _, d := range o.Allow {
		if cred = a.find(d.ID, rpID); cred != nil {
			break
		}
	}
	if cred == nil && (len(o.Allow) == 0 || a.IgnoreAllowCredentials) {
		for _, c := range a.creds {
			if c.RPID == rpID {
				cred = c
				break
			}
		}
	}
	if cred == nil {
		return nil, fmt.Errorf("%w for RP ID %q", ErrNoCredential, rpID)
	}

	authData := a.authData(a.rpIDHash(rpID), 0)
	cdj, err := a.clientDataJSON("webauthn.get", o.Challenge)
	if err != nil {
		return nil, err
	}
	cdHash := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(bytes.Clone(authData), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, cred.Key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("webauthntest: assert: sign: %w", err)
	}
	if a.TamperSignature {
		// Flip a bit of the last byte, inside s, so the DER stays well-formed
		// and only the signature check can catch it.
		sig[len(sig)-1] ^= 0x01
	}
	resp := map[string]any{
		"clientDataJSON":    b64(cdj),
		"authenticatorData": b64(authData),
		"signature":         b64(sig),
	}
	if !a.OmitUserHandle {
		resp["userHandle"] = b64(cred.UserHandle)
	}
	return json.Marshal(map[string]any{
		"id":                      b64(cred.ID),
		"rawId":                   b64(cred.ID),
		"type":                    "public-key",
		"authenticatorAttachment": "cross-platform",
		"clientExtensionResults":  map[string]any{},
		"response":                resp,
	})
}

// COSEKey encodes an ES256 P-256 public key as a COSE_Key (RFC 9053 EC2).
func COSEKey(pub *ecdsa.PublicKey) ([]byte, error) {
	point, err := pub.Bytes() // 0x04 | X (32) | Y (32)
	if err != nil || len(point) != 65 {
		return nil, fmt.Errorf("webauthntest: encode COSE key: not a P-256 key: %v", err)
	}
	b, err := webauthncbor.Marshal(map[int]any{
		1:  coseKtyEC2,
		3:  coseAlgES256,
		-1: coseCrvP256,
		-2: point[1:33],
		-3: point[33:65],
	})
	if err != nil {
		return nil, fmt.Errorf("webauthntest: encode COSE key: %w", err)
	}
	return b, nil
}

// authData builds rpIdHash | flags | counter, advancing the counter.
func (a *Authenticator) authData(rpIDHash []byte, extra byte) []byte {
	if !a.FixedCounter {
		a.Counter++
	}
	flags := byte(flagUP) | extra
	if a.UserVerified {
		flags |= flagUV
	}
	if a.BackupEligible {
		flags |= flagBE
	}
	if a.BackupState {
		flags |= flagBS
	}
	out := make([]byte, 0, 37)
	out = append(out, rpIDHash...)
	out = append(out, flags)
	return binary.BigEndian.AppendUint32(out, a.Counter)
}

func (a *Authenticator) rpIDHash(rpID string) []byte {
	if a.RPID != "" {
		rpID = a.RPID
	}
	h := sha256.Sum256([]byte(rpID))
	return h[:]
}

func (a *Authenticator) clientDataJSON(typ string, challenge []byte) ([]byte, error) {
	b, err := json.Marshal(clientData{Type: typ, Challenge: b64(challenge), Origin: a.Origin})
	if err != nil {
		return nil, fmt.Errorf("webauthntest: encode client data: %w", err)
	}
	return b, nil
}

func (a *Authenticator) find(id []byte, rpID string) *Credential {
	for _, c := range a.creds {
		if bytes.Equal(c.ID, id) && c.RPID == rpID {
			return c
		}
	}
	return nil
}

func (a *Authenticator) originHost() (string, error) {
	u, err := url.Parse(a.Origin)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("webauthntest: origin %q has no host to default the RP ID from", a.Origin)
	}
	return u.Hostname(), nil
}

func (a *Authenticator) rand() io.Reader {
	if a.Rand != nil {
		return a.Rand
	}
	return rand.Reader
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
