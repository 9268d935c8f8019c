// Account recovery codes: single-use codes a user prints or stores when
// enrolling a second factor, for when the authenticator is lost.
//
// Each code is 80 random bits written as 16 characters of lowercase RFC 4648
// base32 (a-z, 2-7: no 0/1/8/9, so no O/0 or l/1 mix-ups) and shown in groups
// of four, "abcd-efgh-ijkl-mnop". Only a hash is stored: the hex SHA-256 of
// the normalised 16 characters. A slow password hash is unnecessary because
// the input is not a human choice: brute-forcing a stolen hash means trying
// 2^80 candidates, which a fast hash does not make feasible, whereas each
// check at login stays cheap (n SHA-256 comparisons).
//
// The caller removes a code's hash (or replaces it with "") once it is used,
// atomically with the login it allowed, and rate-limits attempts.

package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
)

// RecoveryCodeCount is the number of recovery codes issued at a time.
const RecoveryCodeCount = 10

// recoveryCodeLen is the length of a normalised code: 10 bytes in base32.
const (
	recoveryCodeBytes = 10
	recoveryCodeLen   = 16
	recoveryMaxCodes  = 100
)

var recoveryB32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewRecoveryCodes returns n fresh codes for display, grouped as
// "xxxx-xxxx-xxxx-xxxx", and their hashes for storage, in the same order.
// n == 0 means RecoveryCodeCount; n must not exceed 100. Randomness comes
// from rnd (crypto/rand when nil).
func NewRecoveryCodes(n int, rnd io.Reader) (codes []string, hashes []string, err error) {
	if n == 0 {
		n = RecoveryCodeCount
	}
	if n < 0 || n > recoveryMaxCodes {
		return nil, nil, fmt.Errorf("new recovery codes: count %d is outside 1..%d", n, recoveryMaxCodes)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	codes = make([]string, 0, n)
	hashes = make([]string, 0, n)
	seen := make(map[string]bool, n)
	buf := make([]byte, recoveryCodeBytes)
	for range n {
		if _, err := io.ReadFull(rnd, buf); err != nil {
			return nil, nil, fmt.Errorf("new recovery codes: %w", err)
		}
		raw := recoveryB32.EncodeToString(buf)
		// With 80 random bits a repeat means the randomness source is broken.
		if seen[raw] {
			return nil, nil, fmt.Errorf("new recovery codes: the random source repeated itself; it is not random")
		}
		seen[raw] = true
		codes = append(codes, raw[0:4]+"-"+raw[4:8]+"-"+raw[8:12]+"-"+raw[12:16])
		hashes = append(hashes, HashRecoveryCode(raw))
	}
	return codes, hashes, nil
}

// NormalizeRecoveryCode turns what a user typed into the canonical 16
// characters: dashes and spaces are removed and letters lowercased. ok is
// false if the result is not 16 characters of a-z and 2-7.
func NormalizeRecoveryCode(s string) (string, bool) {
	// A generous bound on separators; anything longer is not a code.
	if len(s) > 4*recoveryCodeLen {
		return "", false
	}
	var b strings.Builder
	b.Grow(recoveryCodeLen)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'):
		default:
			return "", false
		}
		if b.Len() == recoveryCodeLen {
			return "", false
		}
		b.WriteByte(c)
	}
	if b.Len() != recoveryCodeLen {
		return "", false
	}
	return b.String(), true
}

// HashRecoveryCode returns the stored form of a normalised code: the
// lowercase hex SHA-256 of its 16 characters.
func HashRecoveryCode(normalized string) string {
	sum := sha256.Sum256([]byte(normalized))
	return hex.EncodeToString(sum[:])
}

// MatchRecoveryCode normalises input and reports which of hashes, if any, it
// matches. Every hash is compared, in constant time, whether or not an
// earlier one matched, so timing reveals neither which code was used nor how
// far the search went. Empty entries (used codes) never match. index is -1
// when ok is false.
func MatchRecoveryCode(input string, hashes []string) (index int, ok bool) {
	norm, valid := NormalizeRecoveryCode(input)
	if !valid {
		return -1, false
	}
	h := []byte(HashRecoveryCode(norm))
	found := -1
	for i, stored := range hashes {
		eq := subtle.ConstantTimeCompare(h, []byte(stored))
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	return found, found >= 0
}
