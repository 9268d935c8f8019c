// Time-based one-time passwords, RFC 6238 (TOTP) over RFC 4226 (HOTP).
//
// HOTP(K, C) = Truncate(HMAC-H(K, C)) mod 10^Digits, where C is the 8-byte
// big-endian counter and Truncate ("dynamic truncation", RFC 4226 §5.3) takes
// the low 4 bits of the last MAC byte as an offset o and reads the 31-bit
// big-endian integer at MAC[o:o+4] with its top bit cleared. TOTP uses
// C = floor(unixTime / Period), the "time step". H is SHA-1 for every
// authenticator app; SHA-256 and SHA-512 exist in the RFC and in a few apps.
//
// Verification accepts the current step and Skew steps either side, to absorb
// clock drift and the time it takes to type. To make each code single-use,
// the caller stores the step that last verified and passes it back: only a
// strictly later step is accepted, which also refuses an older code presented
// after a newer one. The caller must store the returned step atomically with
// the check (compare-and-set), or two concurrent requests could both accept
// one code, and must rate-limit attempts: with Skew 1 a random 6-digit guess
// succeeds with probability 3 in 10^6.
//
// The secret is shared with the user's authenticator through an otpauth://
// URI (Google's "Key Uri Format"), usually as a QR code.

package identity

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/boombuler/barcode"
	"github.com/boombuler/barcode/qr"
)

// TOTPAlgorithm is the HMAC hash function of a TOTP configuration.
type TOTPAlgorithm int

// The TOTP hash functions of RFC 6238. The zero value is SHA-1, the only one
// every authenticator app supports.
const (
	TOTPSHA1 TOTPAlgorithm = iota
	TOTPSHA256
	TOTPSHA512
)

// String returns the name used in otpauth URIs: "SHA1", "SHA256" or "SHA512".
func (a TOTPAlgorithm) String() string {
	switch a {
	case TOTPSHA1:
		return "SHA1"
	case TOTPSHA256:
		return "SHA256"
	case TOTPSHA512:
		return "SHA512"
	}
	return "TOTPAlgorithm(" + strconv.Itoa(int(a)) + ")"
}

// hashFunc returns the hash constructor for a, or nil if a is unknown.
func (a TOTPAlgorithm) hashFunc() func() hash.Hash {
	switch a {
	case TOTPSHA1:
		return sha1.New
	case TOTPSHA256:
		return sha256.New
	case TOTPSHA512:
		return sha512.New
	}
	return nil
}

// TOTPConfig are the parameters shared by the server and the authenticator.
type TOTPConfig struct {
	// Algorithm is the HMAC hash function.
	Algorithm TOTPAlgorithm
	// Digits is the code length, 6 to 8.
	Digits int
	// Period is the time step in seconds, 1 to 3600 (30 in practice).
	Period int64
	// Skew is how many steps before and after the current one VerifyTOTP
	// accepts, 0 to 10.
	Skew int64
}

// DefaultTOTP is what authenticator apps expect when a URI names nothing
// else: SHA-1, 6 digits, 30-second steps, one step of skew either way.
var DefaultTOTP = TOTPConfig{Algorithm: TOTPSHA1, Digits: 6, Period: 30, Skew: 1}

// TOTPSecretSize is the length in bytes of secrets from NewTOTPSecret: 160
// bits, the HMAC-SHA1 block-size-friendly length RFC 4226 recommends.
const TOTPSecretSize = 20

// totpMinSecret is RFC 4226 R6's minimum of 128 bits; totpMaxSecret bounds
// what a decoder will accept (SHA-512's block size is 128 bytes).
const (
	totpMinSecret = 16
	totpMaxSecret = 128
)

var (
	// ErrTOTPInvalid is returned by VerifyTOTP when the code is malformed or
	// matches no step in the accepted window.
	ErrTOTPInvalid = errors.New("invalid one-time code")
	// ErrTOTPReplayed is returned by VerifyTOTP when the code is correct for a
	// step at or before the last step already used: a replay, or an older
	// code presented after a newer one.
	ErrTOTPReplayed = errors.New("one-time code already used")
	// ErrTOTPInvalidSecret reports a TOTP secret that cannot be decoded or is
	// shorter than 128 bits or longer than 128 bytes.
	ErrTOTPInvalidSecret = errors.New("invalid TOTP secret")
	// ErrTOTPInvalidConfig reports a TOTPConfig outside the supported ranges.
	ErrTOTPInvalidConfig = errors.New("invalid TOTP configuration")
)

// Validate reports whether c is usable, wrapping ErrTOTPInvalidConfig if not.
func (c TOTPConfig) Validate() error {
	switch {
	case c.Algorithm.hashFunc() == nil:
		return fmt.Errorf("%w: unknown algorithm %v", ErrTOTPInvalidConfig, c.Algorithm)
	case c.Digits < 6 || c.Digits > 8:
		return fmt.Errorf("%w: digits %d is outside 6..8", ErrTOTPInvalidConfig, c.Digits)
	case c.Period < 1 || c.Period > 3600:
		return fmt.Errorf("%w: period %d s is outside 1..3600", ErrTOTPInvalidConfig, c.Period)
	case c.Skew < 0 || c.Skew > 10:
		return fmt.Errorf("%w: skew %d is outside 0..10", ErrTOTPInvalidConfig, c.Skew)
	}
	return nil
}

// NewTOTPSecret returns a fresh TOTPSecretSize-byte secret read from rnd
// (crypto/rand when rnd is nil).
func NewTOTPSecret(rnd io.Reader) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	secret := make([]byte, TOTPSecretSize)
	if _, err := io.ReadFull(rnd, secret); err != nil {
		return nil, fmt.Errorf("new TOTP secret: %w", err)
	}
	return secret, nil
}

// totpStep returns floor(t / period), the RFC 6238 counter for t.
func totpStep(t time.Time, period int64) int64 {
	u := t.Unix()
	s := u / period
	if u%period < 0 {
		s--
	}
	return s
}

var totpPow10 = [...]uint32{1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000}

// totpHOTP computes the RFC 4226 HOTP value for counter, zero-padded to
// digits. The caller has validated alg and digits.
func totpHOTP(secret []byte, counter uint64, alg TOTPAlgorithm, digits int) string {
	mac := hmac.New(alg.hashFunc(), secret)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	s := strconv.FormatUint(uint64(bin%totpPow10[digits]), 10)
	return strings.Repeat("0", digits-len(s)) + s
}

// TOTPCode returns the code for time t. It returns "" if c is invalid (see
// TOTPConfig.Validate) or t is before 1970, so that a bad stored configuration
// yields a code that never matches rather than a panic.
func TOTPCode(secret []byte, t time.Time, c TOTPConfig) string {
	if c.Validate() != nil {
		return ""
	}
	step := totpStep(t, c.Period)
	if step < 0 {
		return ""
	}
	return totpHOTP(secret, uint64(step), c.Algorithm, c.Digits)
}

// VerifyTOTP checks code against the steps from now-Skew to now+Skew and
// returns the step it matched, which the caller stores as the new lastStep.
// Only steps greater than lastStep are accepted (pass 0 for a secret never
// used). Every step in the window is computed and compared in constant time
// whatever the outcome. Errors wrap ErrTOTPInvalid for a malformed or wrong
// code, ErrTOTPReplayed for a correct code whose step is not after lastStep,
// ErrTOTPInvalidSecret for a secret shorter than 128 bits and
// ErrTOTPInvalidConfig for a bad c.
func VerifyTOTP(secret []byte, code string, now time.Time, lastStep int64, c TOTPConfig) (step int64, err error) {
	if err := c.Validate(); err != nil {
		return 0, fmt.Errorf("verify TOTP: %w", err)
	}
	if len(secret) < totpMinSecret || len(secret) > totpMaxSecret {
		return 0, fmt.Errorf("verify TOTP: %w: %d bytes, want %d..%d", ErrTOTPInvalidSecret, len(secret), totpMinSecret, totpMaxSecret)
	}
	if len(code) != c.Digits {
		return 0, fmt.Errorf("%w: the code must be %d digits", ErrTOTPInvalid, c.Digits)
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return 0, fmt.Errorf("%w: the code must contain only digits", ErrTOTPInvalid)
		}
	}
	cur := totpStep(now, c.Period)
	var fresh, matched int64 = -1, -1
	// Loop over the offset, not the step, so that a step near MaxInt64
	// cannot overflow the loop bound; overflowed or pre-1970 steps are skipped.
	for i := -c.Skew; i <= c.Skew; i++ {
		s := cur + i
		if s < 0 {
			continue
		}
		want := totpHOTP(secret, uint64(s), c.Algorithm, c.Digits)
		eq := int64(subtle.ConstantTimeCompare([]byte(want), []byte(code)))
		// Branch-free bookkeeping on eq so the loop's timing does not depend
		// on which step, if any, matched. (Steps and lastStep are not secret.)
		// The largest matching step wins, advancing lastStep as far as the
		// code allows.
		var after int64
		if s > lastStep {
			after = 1
		}
		matched = totpSelect(eq, s, matched)
		fresh = totpSelect(eq&after, s, fresh)
	}
	switch {
	case fresh >= 0:
		return fresh, nil
	case matched >= 0:
		return 0, fmt.Errorf("%w: this code (time step %d) was already used or a newer one has been; wait for the next code", ErrTOTPReplayed, matched)
	}
	return 0, fmt.Errorf("%w: the code does not match; check the device clock", ErrTOTPInvalid)
}

// totpSelect returns x if v == 1 and y if v == 0, without branching.
func totpSelect(v, x, y int64) int64 {
	mask := -v // all ones or all zeros
	return x&mask | y&^mask
}

// totpB32 is the RFC 4648 base32 alphabet without padding, as authenticator
// apps expect in otpauth URIs.
var totpB32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// EncodeTOTPSecret returns secret as unpadded upper-case base32, the form
// authenticator apps accept in a URI or typed by hand.
func EncodeTOTPSecret(secret []byte) string {
	return totpB32.EncodeToString(secret)
}

// DecodeTOTPSecret parses base32 as written by EncodeTOTPSecret, ignoring
// case, spaces and trailing '=' padding (people paste grouped and padded
// forms). The result must be 16 to 128 bytes; errors wrap
// ErrTOTPInvalidSecret.
func DecodeTOTPSecret(s string) ([]byte, error) {
	if len(s) > 2*totpB32.EncodedLen(totpMaxSecret) {
		return nil, fmt.Errorf("%w: %d characters is too long", ErrTOTPInvalidSecret, len(s))
	}
	s = strings.TrimRight(strings.ToUpper(strings.ReplaceAll(s, " ", "")), "=")
	secret, err := totpB32.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: not base32 (letters A-Z and digits 2-7): %v", ErrTOTPInvalidSecret, err)
	}
	// Go's decoder ignores a dangling final character and non-zero unused
	// bits; requiring the canonical spelling catches those, which are
	// usually a mistyped or truncated secret.
	if totpB32.EncodeToString(secret) != s {
		return nil, fmt.Errorf("%w: %d characters is not a whole base32 encoding; check for a missing or extra character at the end", ErrTOTPInvalidSecret, len(s))
	}
	if len(secret) < totpMinSecret || len(secret) > totpMaxSecret {
		return nil, fmt.Errorf("%w: %d bytes, want %d..%d", ErrTOTPInvalidSecret, len(secret), totpMinSecret, totpMaxSecret)
	}
	return secret, nil
}

// totpEscape percent-encodes s for an otpauth URI label or query value.
// Spaces become %20, never '+', which some authenticator apps show
// literally; ':' is escaped because it separates issuer from account.
func totpEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// TOTPURI returns the otpauth:// URI that provisions secret in an
// authenticator app, in Google's Key Uri Format:
//
//	otpauth://totp/Issuer:account?secret=BASE32&issuer=Issuer&algorithm=SHA1&digits=6&period=30
//
// The issuer appears both in the label and as a parameter, as the format
// recommends; an empty issuer is left out of both. The format forbids ':' in
// either name; one is percent-encoded here, but apps that split the decoded
// label at the first colon will still mis-read it, so callers should not use
// such names.
func TOTPURI(secret []byte, issuer, account string, c TOTPConfig) string {
	var b strings.Builder
	b.WriteString("otpauth://totp/")
	if issuer != "" {
		b.WriteString(totpEscape(issuer))
		b.WriteByte(':')
	}
	b.WriteString(totpEscape(account))
	b.WriteString("?secret=")
	b.WriteString(EncodeTOTPSecret(secret))
	if issuer != "" {
		b.WriteString("&issuer=")
		b.WriteString(totpEscape(issuer))
	}
	fmt.Fprintf(&b, "&algorithm=%s&digits=%d&period=%d", c.Algorithm, c.Digits, c.Period)
	return b.String()
}

// totpQRMaxSize bounds TOTPQRCodePNG's image so a caller passing a size from
// a request cannot make us allocate gigabytes.
const totpQRMaxSize = 2048

// TOTPQRCodePNG renders uri as a size x size PNG QR code (error correction
// level M) with at least the 4-module white quiet zone the QR standard asks
// for, so it scans on any page background. size must be large enough for one
// pixel per module plus the quiet zone (about 60 pixels for a TOTP URI) and
// at most 2048.
func TOTPQRCodePNG(uri string, size int) ([]byte, error) {
	if size < 1 || size > totpQRMaxSize {
		return nil, fmt.Errorf("TOTP QR code: size %d is outside 1..%d pixels", size, totpQRMaxSize)
	}
	code, err := qr.Encode(uri, qr.M, qr.Auto)
	if err != nil {
		return nil, fmt.Errorf("TOTP QR code: %w", err)
	}
	modules := code.Bounds().Dx()
	scale := size / (modules + 8)
	if scale < 1 {
		return nil, fmt.Errorf("TOTP QR code: %d pixels is too small for %d modules plus the quiet zone; use at least %d", size, modules, modules+8)
	}
	scaled, err := barcode.Scale(code, modules*scale, modules*scale)
	if err != nil {
		return nil, fmt.Errorf("TOTP QR code: %w", err)
	}
	img := image.NewGray(image.Rect(0, 0, size, size))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	off := (size - modules*scale) / 2
	draw.Draw(img, image.Rect(off, off, off+modules*scale, off+modules*scale), scaled, image.Point{}, draw.Src)
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("TOTP QR code: encode PNG: %w", err)
	}
	return buf.Bytes(), nil
}
