// The webhook signature: X-Bulwark-Signature is "sha256=" and the lowercase
// hex of HMAC-SHA-256(secret, T + "." + BODY), T being the decimal Unix
// seconds sent in X-Bulwark-Timestamp and BODY the exact request body.
// Binding the timestamp into the MAC lets a receiver refuse a captured
// request replayed later: it checks the MAC, then that T is within a
// tolerance of its own clock.

package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The headers of a signed webhook request.
const (
	TimestampHeader = "X-Bulwark-Timestamp"
	SignatureHeader = "X-Bulwark-Signature"
)

// signaturePrefix names the MAC in the signature header, so that another
// algorithm can be introduced beside it later.
const signaturePrefix = "sha256="

// DefaultSignatureTolerance is the tolerance VerifySignature applies when
// given 0: how far a request's timestamp may be from the receiver's clock.
const DefaultSignatureTolerance = 5 * time.Minute

// maxTimestampDigits bounds the timestamp header: Unix seconds have 10
// digits until the year 2286; 15 keeps every arithmetic on it far from
// overflow.
const maxTimestampDigits = 15

// Errors of VerifySignature, matched with errors.Is.
var (
	// ErrSignatureMalformed: a header is missing or not in the format.
	ErrSignatureMalformed = errors.New("malformed webhook signature")
	// ErrSignatureExpired: the timestamp is too old (a replay) or too far
	// in the future.
	ErrSignatureExpired = errors.New("webhook timestamp outside the tolerance")
	// ErrSignatureMismatch: the MAC is wrong (another key, or the body or
	// timestamp was changed).
	ErrSignatureMismatch = errors.New("webhook signature mismatch")
)

// Sign returns the X-Bulwark-Signature value of body sent at timestamp (the
// X-Bulwark-Timestamp value, decimal Unix seconds) with secret.
func Sign(secret []byte, timestamp string, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// VerifySignature checks a webhook request for a receiver: timestamp and
// signature are the X-Bulwark-Timestamp and X-Bulwark-Signature header
// values, body the request body as received, now the receiver's clock. It
// returns nil when signature is the HMAC-SHA-256 of timestamp + "." + body
// under secret (compared in constant time) and the timestamp lies within
// tolerance of now, either way (0 means DefaultSignatureTolerance).
// Otherwise the error matches ErrSignatureMalformed, ErrSignatureExpired
// or ErrSignatureMismatch. An empty secret is refused: it would accept
// anyone's signature.
func VerifySignature(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return errors.New("notify: verify webhook signature: empty secret; configure the channel's secret on both sides")
	}
	if tolerance <= 0 {
		tolerance = DefaultSignatureTolerance
	}
	ts, err := parseTimestamp(timestamp)
	if err != nil {
		return err
	}
	got, err := parseSignature(signature)
	if err != nil {
		return err
	}
	if !hmac.Equal(got, mac(secret, timestamp, body)) {
		return ErrSignatureMismatch
	}
	// The window is checked after the MAC so that only an authentic
	// request learns how far its clock is off.
	switch d := now.Sub(time.Unix(ts, 0)); {
	case d > tolerance:
		return fmt.Errorf("%w: sent %s ago, more than %s (a replayed request?)", ErrSignatureExpired, d.Round(time.Second), tolerance)
	case d < -tolerance:
		return fmt.Errorf("%w: sent %s in the future, more than %s (check both clocks)", ErrSignatureExpired, (-d).Round(time.Second), tolerance)
	}
	return nil
}

// parseTimestamp accepts 1 to maxTimestampDigits ASCII digits, nothing
// else (no sign, no spaces): what Sign's caller sends.
func parseTimestamp(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: %s header missing", ErrSignatureMalformed, TimestampHeader)
	}
	if len(s) > maxTimestampDigits {
		return 0, fmt.Errorf("%w: %s header too long", ErrSignatureMalformed, TimestampHeader)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %s header is not decimal Unix seconds", ErrSignatureMalformed, TimestampHeader)
		}
	}
	ts, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s header: %v", ErrSignatureMalformed, TimestampHeader, err)
	}
	return ts, nil
}

// parseSignature accepts "sha256=" and 64 hex digits.
func parseSignature(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: %s header missing", ErrSignatureMalformed, SignatureHeader)
	}
	hexSum, ok := strings.CutPrefix(s, signaturePrefix)
	if !ok {
		return nil, fmt.Errorf("%w: %s header must start with %q", ErrSignatureMalformed, SignatureHeader, signaturePrefix)
	}
	if len(hexSum) != 2*sha256.Size {
		return nil, fmt.Errorf("%w: %s header must hold %d hex digits after %q", ErrSignatureMalformed, SignatureHeader, 2*sha256.Size, signaturePrefix)
	}
	b, err := hex.DecodeString(hexSum)
	if err != nil {
		return nil, fmt.Errorf("%w: %s header is not hex after %q", ErrSignatureMalformed, SignatureHeader, signaturePrefix)
	}
	return b, nil
}
