package notify

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The known-answer vector, computed independently of this package with
//
//	printf '%s' '1767225600.{"version":1,"type":"notification","title":"Disk almost full"}' |
//	    openssl dgst -sha256 -hmac 'whsec_bulwark-known-answer'
const (
	kaSecret    = "whsec_bulwark-known-answer"
	kaTimestamp = "1767225600" // 2026-01-01T00:00:00Z
	kaBody      = `{"version":1,"type":"notification","title":"Disk almost full"}`
	kaSignature = "sha256=9843824b3956793a4aa1f47001eca0a0625267eeb57f20e7e7c5d6739c21daee"
)

func TestSignKnownAnswer(t *testing.T) {
	if got := Sign([]byte(kaSecret), kaTimestamp, []byte(kaBody)); got != kaSignature {
		t.Fatalf("Sign = %s, want %s", got, kaSignature)
	}
	now := time.Unix(1767225600, 0).Add(30 * time.Second)
	if err := VerifySignature([]byte(kaSecret), kaTimestamp, kaSignature, []byte(kaBody), now, 0); err != nil {
		t.Fatalf("VerifySignature of the known answer: %v", err)
	}
}

// TestVerifySignatureAttacks takes an attacker's view: every way of
// getting a request accepted without the key, or accepted again later,
// must fail with the right error.
func TestVerifySignatureAttacks(t *testing.T) {
	secret := []byte(kaSecret)
	body := []byte(kaBody)
	now := time.Unix(1767225600, 0)
	ts := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	signAt := func(d time.Duration) (string, string) { return ts(d), Sign(secret, ts(d), body) }
	validTS, validSig := signAt(0)
	oldTS, oldSig := signAt(-10 * time.Minute)
	futureTS, futureSig := signAt(10 * time.Minute)
	nearTS, nearSig := signAt(4 * time.Minute)
	staleDefaultTS, staleDefaultSig := signAt(-6 * time.Minute)

	tampered := []byte(strings.Replace(kaBody, "Disk", "Dusk", 1))
	tests := []struct {
		name      string
		secret    []byte
		timestamp string
		signature string
		body      []byte
		tolerance time.Duration
		want      error // nil: accepted
	}{
		{name: "valid", timestamp: validTS, signature: validSig},
		{name: "valid uppercase hex", timestamp: validTS, signature: "sha256=" + strings.ToUpper(strings.TrimPrefix(validSig, "sha256="))},
		{name: "within tolerance ahead", timestamp: nearTS, signature: nearSig},
		{name: "wrong key", secret: []byte("whsec_guessed"), timestamp: validTS, signature: validSig, want: ErrSignatureMismatch},
		{name: "tampered body", timestamp: validTS, signature: validSig, body: tampered, want: ErrSignatureMismatch},
		{name: "empty body", timestamp: validTS, signature: validSig, body: []byte{}, want: ErrSignatureMismatch},
		{name: "timestamp moved, signature kept", timestamp: ts(time.Second), signature: validSig, want: ErrSignatureMismatch},
		{name: "signature of another request", timestamp: validTS, signature: Sign(secret, validTS, tampered), want: ErrSignatureMismatch},
		{name: "replayed old request", timestamp: oldTS, signature: oldSig, want: ErrSignatureExpired},
		{name: "future beyond tolerance", timestamp: futureTS, signature: futureSig, want: ErrSignatureExpired},
		{name: "default tolerance is 5m", timestamp: staleDefaultTS, signature: staleDefaultSig, want: ErrSignatureExpired},
		{name: "wider tolerance accepts", timestamp: oldTS, signature: oldSig, tolerance: 15 * time.Minute},
		{name: "missing timestamp", timestamp: "", signature: validSig, want: ErrSignatureMalformed},
		{name: "missing signature", timestamp: validTS, signature: "", want: ErrSignatureMalformed},
		{name: "no prefix", timestamp: validTS, signature: strings.TrimPrefix(validSig, "sha256="), want: ErrSignatureMalformed},
		{name: "other algorithm", timestamp: validTS, signature: "sha1=" + strings.TrimPrefix(validSig, "sha256="), want: ErrSignatureMalformed},
		{name: "prefix case", timestamp: validTS, signature: "SHA256=" + strings.TrimPrefix(validSig, "sha256="), want: ErrSignatureMalformed},
		{name: "truncated mac", timestamp: validTS, signature: validSig[:len(validSig)-2], want: ErrSignatureMalformed},
		{name: "extended mac", timestamp: validTS, signature: validSig + "00", want: ErrSignatureMalformed},
		{name: "not hex", timestamp: validTS, signature: "sha256=" + strings.Repeat("zz", 32), want: ErrSignatureMalformed},
		{name: "two signatures", timestamp: validTS, signature: validSig + "," + validSig, want: ErrSignatureMalformed},
		{name: "signature with space", timestamp: validTS, signature: validSig + " ", want: ErrSignatureMalformed},
		{name: "signed timestamp", timestamp: "+" + validTS, signature: Sign(secret, "+"+validTS, body), want: ErrSignatureMalformed},
		{name: "negative timestamp", timestamp: "-1", signature: Sign(secret, "-1", body), want: ErrSignatureMalformed},
		{name: "timestamp with space", timestamp: " " + validTS, signature: validSig, want: ErrSignatureMalformed},
		{name: "fractional timestamp", timestamp: validTS + ".5", signature: validSig, want: ErrSignatureMalformed},
		{name: "exponent timestamp", timestamp: "1.7e9", signature: validSig, want: ErrSignatureMalformed},
		{name: "huge timestamp", timestamp: strings.Repeat("9", 40), signature: validSig, want: ErrSignatureMalformed},
		{name: "max digits, far future", timestamp: strings.Repeat("9", 15), signature: Sign(secret, strings.Repeat("9", 15), body), want: ErrSignatureExpired},
		{name: "zero timestamp", timestamp: "0", signature: Sign(secret, "0", body), want: ErrSignatureExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sec := secret
			if tt.secret != nil {
				sec = tt.secret
			}
			b := body
			if tt.body != nil {
				b = tt.body
			}
			err := VerifySignature(sec, tt.timestamp, tt.signature, b, now, tt.tolerance)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("VerifySignature = %v, want accepted", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("VerifySignature = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifySignatureEmptySecret(t *testing.T) {
	// With an empty key anyone can compute the MAC: refuse to verify.
	ts := kaTimestamp
	sig := Sign(nil, ts, []byte(kaBody))
	if err := VerifySignature(nil, ts, sig, []byte(kaBody), time.Unix(1767225600, 0), 0); err == nil {
		t.Fatal("VerifySignature with an empty secret accepted a request")
	}
}

// FuzzVerifySignature feeds arbitrary headers and bodies: VerifySignature
// must never panic, and must accept only what Sign produced for a
// timestamp within the tolerance.
func FuzzVerifySignature(f *testing.F) {
	secret := []byte(kaSecret)
	now := time.Unix(1767225600, 0)
	f.Add(kaTimestamp, kaSignature, []byte(kaBody))
	f.Add(kaTimestamp, kaSignature, []byte(kaBody+" "))
	f.Add("", "", []byte{})
	f.Add("1767225600", "sha256=", []byte("x"))
	f.Add("-1", "sha256="+strings.Repeat("0", 64), []byte("{}"))
	f.Add("99999999999999999999", "sha256="+strings.Repeat("g", 64), []byte(nil))
	f.Add("1767225601", "sha256=9843824b3956793a4aa1f47001eca0a0625267eeb57f20e7e7c5d6739c21daeE", []byte(kaBody))
	f.Fuzz(func(t *testing.T, timestamp, signature string, body []byte) {
		err := VerifySignature(secret, timestamp, signature, body, now, time.Minute)
		if err == nil {
			if !strings.EqualFold(signature, Sign(secret, timestamp, body)) {
				t.Fatalf("accepted signature %q that Sign did not produce for %q", signature, timestamp)
			}
			sec, perr := strconv.ParseInt(timestamp, 10, 64)
			if perr != nil || timestamp[0] < '0' || timestamp[0] > '9' {
				t.Fatalf("accepted timestamp %q", timestamp)
			}
			if d := now.Sub(time.Unix(sec, 0)); d > time.Minute || d < -time.Minute {
				t.Fatalf("accepted timestamp %q, %s from now", timestamp, d)
			}
			return
		}
		if !errors.Is(err, ErrSignatureMalformed) && !errors.Is(err, ErrSignatureExpired) && !errors.Is(err, ErrSignatureMismatch) {
			t.Fatalf("error %v matches none of the sentinels", err)
		}
	})
}
