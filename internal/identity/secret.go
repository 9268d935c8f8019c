// Opaque bearer tokens for sessions and API tokens.
//
// A token is PREFIX_ID_SECRET, for example
//
//	bws_aaaqeayeauda_CAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJic
//
//   - PREFIX names the kind ("bws" session, "bwt" API token): a leaked token
//     found in a log or a repository says what it is, secret scanners can
//     match it, and a session cookie cannot be used as an API token.
//   - ID is 12 characters of lowercase base32 (60 random bits): the public
//     lookup key, safe to log and to index.
//   - SECRET is 32 random bytes in unpadded base64url (43 characters). Only its
//     hex SHA-256 is stored. A fast hash suffices because the secret has 256
//     bits of entropy; a database leak does not yield usable tokens.
//
// ID and SECRET are separated by '_' even though base64url may contain '_':
// PREFIX and ID never do, so splitting on the first two underscores is exact.
// Parsing is strict (exact lengths, alphabets, canonical base64) so that one
// token has one spelling. The caller looks the row up by ID and compares the
// stored hash with OpaqueSecretMatches. IDs can collide (2^-60 per pair); the
// store's unique index catches that and the caller retries.

package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The token prefixes Bulwark issues.
const (
	// OpaqueSessionPrefix marks browser session tokens.
	OpaqueSessionPrefix = "bws"
	// OpaqueAPITokenPrefix marks API tokens.
	OpaqueAPITokenPrefix = "bwt"
)

const (
	opaqueIDLen       = 12
	opaqueSecretBytes = 32
	opaqueSecretLen   = 43 // base64url of 32 bytes, unpadded
	opaqueMaxPrefix   = 8
)

// ErrMalformedOpaqueToken is wrapped by every error ParseOpaqueToken returns.
// Its messages never contain the token, which is a credential.
var ErrMalformedOpaqueToken = errors.New("malformed token")

var (
	opaqueIDEnc     = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	opaqueSecretEnc = base64.RawURLEncoding.Strict()
)

// checkOpaquePrefix accepts 1 to 8 lowercase ASCII letters.
func checkOpaquePrefix(prefix string) error {
	if prefix == "" || len(prefix) > opaqueMaxPrefix {
		return fmt.Errorf("token prefix must be 1..%d letters, got %d bytes", opaqueMaxPrefix, len(prefix))
	}
	for i := 0; i < len(prefix); i++ {
		if prefix[i] < 'a' || prefix[i] > 'z' {
			return fmt.Errorf("token prefix %q must be lowercase letters a-z", prefix)
		}
	}
	return nil
}

// NewOpaqueToken returns a fresh token "prefix_ID_SECRET" to give to the
// client, its public id, and secretHash (hex SHA-256 of the secret bytes) to
// store. Randomness comes from rnd (crypto/rand when nil).
func NewOpaqueToken(prefix string, rnd io.Reader) (token, id, secretHash string, err error) {
	if err := checkOpaquePrefix(prefix); err != nil {
		return "", "", "", fmt.Errorf("new token: %w", err)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	// 8 bytes encode to 13 base32 characters; the first 12 carry 60 bits.
	var idBytes [8]byte
	if _, err := io.ReadFull(rnd, idBytes[:]); err != nil {
		return "", "", "", fmt.Errorf("new token: read id: %w", err)
	}
	secret := make([]byte, opaqueSecretBytes)
	if _, err := io.ReadFull(rnd, secret); err != nil {
		return "", "", "", fmt.Errorf("new token: read secret: %w", err)
	}
	id = opaqueIDEnc.EncodeToString(idBytes[:])[:opaqueIDLen]
	token = prefix + "_" + id + "_" + opaqueSecretEnc.EncodeToString(secret)
	return token, id, HashOpaqueSecret(secret), nil
}

// ParseOpaqueToken checks that token is a well-formed token with the given
// prefix and returns its id and the hex SHA-256 of its secret, to compare
// with the stored hash using OpaqueSecretMatches. Errors wrap
// ErrMalformedOpaqueToken.
func ParseOpaqueToken(token, prefix string) (id, secretHash string, err error) {
	if err := checkOpaquePrefix(prefix); err != nil {
		return "", "", fmt.Errorf("parse token: %w", err)
	}
	want := len(prefix) + 1 + opaqueIDLen + 1 + opaqueSecretLen
	if len(token) != want {
		return "", "", fmt.Errorf("%w: a %s token is %d characters, got %d", ErrMalformedOpaqueToken, prefix, want, len(token))
	}
	p, rest, _ := strings.Cut(token, "_")
	if p != prefix {
		return "", "", fmt.Errorf("%w: not a %s token (wrong prefix)", ErrMalformedOpaqueToken, prefix)
	}
	id, sec, _ := strings.Cut(rest, "_")
	if len(id) != opaqueIDLen || len(sec) != opaqueSecretLen {
		return "", "", fmt.Errorf("%w: wrong layout, want %s_<id>_<secret>", ErrMalformedOpaqueToken, prefix)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z') && !(c >= '2' && c <= '7') {
			return "", "", fmt.Errorf("%w: the id part must be lowercase base32", ErrMalformedOpaqueToken)
		}
	}
	secret, err := opaqueSecretEnc.DecodeString(sec)
	if err != nil || len(secret) != opaqueSecretBytes {
		return "", "", fmt.Errorf("%w: the secret part is not canonical base64url of %d bytes", ErrMalformedOpaqueToken, opaqueSecretBytes)
	}
	return id, HashOpaqueSecret(secret), nil
}

// HashOpaqueSecret returns the stored form of a token secret: the lowercase
// hex SHA-256 of its raw bytes.
func HashOpaqueSecret(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:])
}

// OpaqueSecretMatches compares a stored secret hash with the one
// ParseOpaqueToken computed, in constant time.
func OpaqueSecretMatches(storedHash, presentedHash string) bool {
	return len(storedHash) == sha256.Size*2 &&
		subtle.ConstantTimeCompare([]byte(storedHash), []byte(presentedHash)) == 1
}
