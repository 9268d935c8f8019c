// Password hashing with argon2id (RFC 9106) and the password policy.
//
// A hash is stored as a PHC string, the format of the reference implementation
// and of most other argon2 libraries, so that a stored row is self-describing
// and can be checked by other tools:
//
//	$argon2id$v=19$m=<memory KiB>,t=<passes>,p=<lanes>$<salt>$<key>
//
// salt and key are unpadded standard base64 (RawStdEncoding). The parameters
// travel with the hash, so raising DefaultArgon2 later does not break existing
// rows: VerifyPassword reports needsRehash and the caller re-hashes on the next
// successful login.
//
// The stored string is treated as untrusted input: whoever can write the users
// table could otherwise make a login allocate terabytes (m) or spin for hours
// (t), so the decoder is strict (canonical numbers and base64 only) and every
// parameter is capped before argon2 runs.
//
// Passwords are normalised to Unicode NFKC before hashing and before the policy
// counts characters (NIST SP 800-63B §3.1.1.2), so that "é" typed as one code
// point on one keyboard and as e + combining accent on another is the same
// password. This is a property of every stored hash: changing it later would
// lock out users with non-ASCII passwords.

package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Argon2Params are the argon2id cost parameters and output sizes.
type Argon2Params struct {
	// Memory is the memory cost in KiB (the PHC "m").
	Memory uint32
	// Time is the number of passes over memory (the PHC "t").
	Time uint32
	// Threads is the number of lanes (the PHC "p"); it changes the result.
	Threads uint8
	// SaltLen is the length of the random salt in bytes.
	SaltLen uint32
	// KeyLen is the length of the derived key (the stored tag) in bytes.
	KeyLen uint32
}

// DefaultArgon2 is the cost used for new password hashes: 64 MiB, 2 passes,
// 1 lane, a 16-byte salt and a 32-byte key. That is over three times OWASP's
// minimum memory (19 MiB, t=2, p=1) and RFC 9106's second recommended option
// (64 MiB) with fewer passes and lanes to fit interactive logins on small
// hosts.
//
// Measured on the project's 2-core machine (BenchmarkArgon2, Go 1.26,
// x/crypto v0.58.0, two idle runs of -count=3): 119-154 ms and 64 MiB per
// hash, against 29-37 ms and 19 MiB for MinimumArgon2; the reference argon2
// CLI takes ~200 ms for the same parameters. One lane, because a lane per
// core would let one login occupy both cores; with p=1 two logins run side by
// side. Callers must bound concurrent hashing (a semaphore of a few slots):
// each hash holds 64 MiB while it runs.
var DefaultArgon2 = Argon2Params{Memory: 64 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// MinimumArgon2 is OWASP's minimum argon2id configuration (19 MiB, t=2, p=1).
// Tests use it for speed; production uses DefaultArgon2.
var MinimumArgon2 = Argon2Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Caps on parameters read from a stored hash. A stored row is attacker-
// controlled input for this purpose; these keep a forged row from allocating
// without bound or running for minutes. The ranges are far above anything we
// write and below anything absurd.
const (
	argon2MaxMemoryKiB = 4 * 1024 * 1024 // 4 GiB
	argon2MaxTime      = 100
	argon2MaxThreads   = 64
	argon2MinSaltLen   = 8  // the reference implementation's minimum
	argon2MaxSaltLen   = 64 // we write 16
	argon2MinKeyLen    = 16 // a shorter tag makes a guessed match plausible
	argon2MaxKeyLen    = 128
	argon2MaxEncoded   = 512 // longer than any valid string with the caps above
)

// argon2Prefix is the algorithm and version part of every PHC string we accept.
// Version 19 (0x13) is the only one x/crypto implements; argon2 1.0 hashes
// (v=16, or no version field) are refused rather than silently misverified.
const argon2Prefix = "$argon2id$v=19$"

// ErrMalformedPasswordHash reports a stored password hash that cannot be
// decoded or whose parameters are outside the accepted range.
var ErrMalformedPasswordHash = errors.New("malformed argon2id password hash")

// validate checks p against the caps that both hashing and verification apply.
func (p Argon2Params) validate() error {
	switch {
	case p.Time < 1 || p.Time > argon2MaxTime:
		return fmt.Errorf("argon2 time t=%d is outside 1..%d", p.Time, argon2MaxTime)
	case p.Threads < 1 || p.Threads > argon2MaxThreads:
		return fmt.Errorf("argon2 parallelism p=%d is outside 1..%d", p.Threads, argon2MaxThreads)
	// The reference implementation requires m >= 8p; x/crypto would silently
	// round a smaller m up and produce a hash nobody else can verify.
	case p.Memory < 8*uint32(p.Threads) || p.Memory > argon2MaxMemoryKiB:
		return fmt.Errorf("argon2 memory m=%d KiB is outside %d..%d", p.Memory, 8*uint32(p.Threads), argon2MaxMemoryKiB)
	case p.SaltLen < argon2MinSaltLen || p.SaltLen > argon2MaxSaltLen:
		return fmt.Errorf("argon2 salt length %d bytes is outside %d..%d", p.SaltLen, argon2MinSaltLen, argon2MaxSaltLen)
	case p.KeyLen < argon2MinKeyLen || p.KeyLen > argon2MaxKeyLen:
		return fmt.Errorf("argon2 key length %d bytes is outside %d..%d", p.KeyLen, argon2MinKeyLen, argon2MaxKeyLen)
	}
	return nil
}

// normalizePassword applies NFKC; see the file comment for why.
func normalizePassword(password string) string {
	return norm.NFKC.String(password)
}

// HashPassword derives an argon2id hash of password with parameters p and a
// fresh salt read from rnd (crypto/rand when rnd is nil), and returns it as a
// PHC string such as "$argon2id$v=19$m=65536,t=2,p=1$<salt>$<key>".
func HashPassword(password string, p Argon2Params, rnd io.Reader) (string, error) {
	if err := p.validate(); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	salt := make([]byte, p.SaltLen)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return "", fmt.Errorf("hash password: read salt: %w", err)
	}
	key := argon2.IDKey([]byte(normalizePassword(password)), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return encodeArgon2PHC(p, salt, key), nil
}

// VerifyPassword reports whether password matches the PHC string encoded.
// The key comparison is constant-time. needsRehash is true when the password
// matched but the stored hash is weaker than want (less memory, fewer passes,
// a shorter salt or key); the caller should then store HashPassword(password,
// want, ...). A lower lane count alone does not count as weaker: lanes trade
// latency for cores, not attacker cost. err is non-nil (wrapping
// ErrMalformedPasswordHash) only when encoded cannot be decoded or its
// parameters exceed the caps; a wrong password is ok == false, err == nil.
func VerifyPassword(encoded, password string, want Argon2Params) (ok, needsRehash bool, err error) {
	p, salt, key, err := decodeArgon2PHC(encoded)
	if err != nil {
		return false, false, fmt.Errorf("verify password: %w", err)
	}
	got := argon2.IDKey([]byte(normalizePassword(password)), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return false, false, nil
	}
	weaker := p.Memory < want.Memory || p.Time < want.Time ||
		p.SaltLen < want.SaltLen || p.KeyLen < want.KeyLen
	return true, weaker, nil
}

// encodeArgon2PHC renders the PHC string for p, salt and key.
func encodeArgon2PHC(p Argon2Params, salt, key []byte) string {
	var b strings.Builder
	b.WriteString(argon2Prefix)
	fmt.Fprintf(&b, "m=%d,t=%d,p=%d$", p.Memory, p.Time, p.Threads)
	b.WriteString(base64.RawStdEncoding.EncodeToString(salt))
	b.WriteByte('$')
	b.WriteString(base64.RawStdEncoding.EncodeToString(key))
	return b.String()
}

// argon2B64 rejects non-canonical base64 (non-zero trailing bits), so every
// accepted string re-encodes to itself and there is one spelling per hash.
var argon2B64 = base64.RawStdEncoding.Strict()

// decodeArgon2PHC parses and bounds-checks a PHC argon2id string. It accepts
// only the canonical form that encodeArgon2PHC writes (parameters in m,t,p
// order, decimal without leading zeros, no optional "keyid"/"data" fields).
func decodeArgon2PHC(encoded string) (Argon2Params, []byte, []byte, error) {
	var p Argon2Params
	if len(encoded) > argon2MaxEncoded {
		return p, nil, nil, fmt.Errorf("%w: %d bytes long, at most %d expected", ErrMalformedPasswordHash, len(encoded), argon2MaxEncoded)
	}
	rest, found := strings.CutPrefix(encoded, argon2Prefix)
	if !found {
		return p, nil, nil, fmt.Errorf("%w: does not start with %q", ErrMalformedPasswordHash, argon2Prefix)
	}
	fields := strings.Split(rest, "$")
	if len(fields) != 3 {
		return p, nil, nil, fmt.Errorf("%w: want params$salt$key after the version, got %d fields", ErrMalformedPasswordHash, len(fields))
	}
	params := strings.Split(fields[0], ",")
	if len(params) != 3 {
		return p, nil, nil, fmt.Errorf("%w: want m=,t=,p= parameters, got %q", ErrMalformedPasswordHash, fields[0])
	}
	var vals [3]uint32
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return p, nil, nil, fmt.Errorf("%w: parameter %d is %q, want %s=<number>", ErrMalformedPasswordHash, i+1, params[i], name)
		}
		n, err := parseArgon2Uint(v)
		if err != nil {
			return p, nil, nil, fmt.Errorf("%w: parameter %s: %v", ErrMalformedPasswordHash, name, err)
		}
		vals[i] = n
	}
	if vals[2] > argon2MaxThreads {
		return p, nil, nil, fmt.Errorf("%w: argon2 parallelism p=%d is outside 1..%d", ErrMalformedPasswordHash, vals[2], argon2MaxThreads)
	}
	// Check encoded lengths before decoding so that nothing large is allocated.
	if len(fields[1]) > argon2B64.EncodedLen(argon2MaxSaltLen) || len(fields[2]) > argon2B64.EncodedLen(argon2MaxKeyLen) {
		return p, nil, nil, fmt.Errorf("%w: salt or key too long", ErrMalformedPasswordHash)
	}
	salt, err := argon2B64.DecodeString(fields[1])
	if err != nil {
		return p, nil, nil, fmt.Errorf("%w: salt is not unpadded base64: %v", ErrMalformedPasswordHash, err)
	}
	key, err := argon2B64.DecodeString(fields[2])
	if err != nil {
		return p, nil, nil, fmt.Errorf("%w: key is not unpadded base64: %v", ErrMalformedPasswordHash, err)
	}
	p = Argon2Params{
		Memory:  vals[0],
		Time:    vals[1],
		Threads: uint8(vals[2]),
		SaltLen: uint32(len(salt)),
		KeyLen:  uint32(len(key)),
	}
	if err := p.validate(); err != nil {
		return Argon2Params{}, nil, nil, fmt.Errorf("%w: %v", ErrMalformedPasswordHash, err)
	}
	return p, salt, key, nil
}

// parseArgon2Uint parses a canonical decimal uint32: digits only, no sign, no
// leading zero, at most 10 digits.
func parseArgon2Uint(s string) (uint32, error) {
	if s == "" || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("%q is not a canonical decimal number", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", s)
	}
	return uint32(n), nil
}

// ErrWeakPassword is wrapped by every *PolicyError that PasswordPolicy.Check
// returns, so callers can test errors.Is(err, ErrWeakPassword).
var ErrWeakPassword = errors.New("password does not meet the password policy")

// PolicyError says why PasswordPolicy.Check refused a password. Reason is a
// sentence fragment meant for the user ("must be at least 12 characters").
type PolicyError struct {
	Reason string
}

// Error returns "password <reason>".
func (e *PolicyError) Error() string { return "password " + e.Reason }

// Unwrap returns ErrWeakPassword.
func (e *PolicyError) Unwrap() error { return ErrWeakPassword }

// DefaultPasswordMinLength is the minimum length in characters used when
// PasswordPolicy.MinLength is zero. NIST SP 800-63B-4 asks for 15 when the
// password is the only factor and 8 with a second factor; 12 is the middle,
// and Bulwark offers TOTP and passkeys to every account.
const DefaultPasswordMinLength = 12

// DefaultPasswordMaxLength is the maximum length in characters used when
// PasswordPolicy.MaxLength is zero. It exists to bound work, not to limit
// users: passphrases are welcome.
const DefaultPasswordMaxLength = 1024

// PasswordPolicy is the rule set for new passwords. It follows NIST SP
// 800-63B: length and a blocklist, no composition rules, no expiry.
type PasswordPolicy struct {
	// MinLength is the minimum number of characters (Unicode code points after
	// NFKC); zero means DefaultPasswordMinLength.
	MinLength int
	// MaxLength is the maximum number of characters; zero means
	// DefaultPasswordMaxLength.
	MaxLength int
}

// Check returns nil if password is acceptable for the account username, and
// otherwise a *PolicyError wrapping ErrWeakPassword that says why: too short,
// too long, not valid UTF-8, the same as the username (ignoring case), one of
// the 10,000 most common passwords (ignoring case), or a single character
// repeated.
func (p PasswordPolicy) Check(password, username string) error {
	minLen, maxLen := p.MinLength, p.MaxLength
	if minLen <= 0 {
		minLen = DefaultPasswordMinLength
	}
	if maxLen <= 0 {
		maxLen = DefaultPasswordMaxLength
	}
	// Refuse absurd inputs before normalising them: NFKC can grow a string,
	// but by a bounded factor, so 4 bytes per allowed character is plenty.
	if len(password) > 4*maxLen {
		return &PolicyError{Reason: fmt.Sprintf("must be at most %d characters", maxLen)}
	}
	if !utf8.ValidString(password) {
		return &PolicyError{Reason: "is not valid UTF-8 text"}
	}
	pw := normalizePassword(password)
	n := utf8.RuneCountInString(pw)
	switch {
	case n > maxLen:
		return &PolicyError{Reason: fmt.Sprintf("must be at most %d characters (got %d)", maxLen, n)}
	case n < minLen:
		return &PolicyError{Reason: fmt.Sprintf("must be at least %d characters (got %d)", minLen, n)}
	case username != "" && strings.EqualFold(pw, normalizePassword(username)):
		return &PolicyError{Reason: "must not be the same as the username"}
	case passwordIsOneCharacter(pw):
		return &PolicyError{Reason: "must not be a single character repeated"}
	case IsCommonPassword(pw):
		return &PolicyError{Reason: "is one of the 10,000 most common passwords; choose a longer or less predictable one"}
	}
	return nil
}

// passwordIsOneCharacter reports whether pw is one rune repeated.
func passwordIsOneCharacter(pw string) bool {
	first, size := utf8.DecodeRuneInString(pw)
	if size == 0 {
		return false
	}
	for _, r := range pw[size:] {
		if r != first {
			return false
		}
	}
	return true
}
