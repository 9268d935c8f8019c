// An anchor is the log's head (seq and hash) signed with the audit key and
// kept somewhere the database's and data directory's attackers cannot
// reach. Its file format is one JSON object:
//
//	{"format":"bulwark-audit-anchor/1","seq":1234,"hash":"<64 hex>",
//	 "time":"2025-01-02T03:04:05.123456Z","key_id":"<16 hex>","signature":"<128 hex>"}
//
// The signature covers anchorMessage(seq, time in microseconds, hash); see
// canonical.go. ReadAnchor parses strictly (unknown fields, trailing data,
// wrong lengths and oversized input are errors) because the file comes from
// outside.

package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// AnchorFormat identifies the anchor file format.
const AnchorFormat = "bulwark-audit-anchor/1"

// MaxAnchorBytes caps what ReadAnchor accepts.
const MaxAnchorBytes = 4096

// Anchor is a signed statement that the log's entry Seq had hash Hash at
// Time. Seq 0 (an empty log) carries 32 zero bytes as Hash.
type Anchor struct {
	Seq       int64
	Hash      []byte
	Time      time.Time
	KeyID     string
	Signature []byte
}

type anchorJSON struct {
	Format    string `json:"format"`
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`
	Time      string `json:"time"`
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"`
}

// MarshalJSON encodes the anchor in its file format.
func (a Anchor) MarshalJSON() ([]byte, error) {
	return json.Marshal(anchorJSON{
		Format:    AnchorFormat,
		Seq:       a.Seq,
		Hash:      hex.EncodeToString(a.Hash),
		Time:      a.Time.UTC().Format(time.RFC3339Nano),
		KeyID:     a.KeyID,
		Signature: hex.EncodeToString(a.Signature),
	})
}

// Anchor signs the current head. Export it with WriteAnchor to a place you
// keep apart from this machine; Verify with it then detects the loss of any
// entry up to its seq, and any rewrite of them, even by a key holder.
func (l *Log) Anchor(ctx context.Context) (Anchor, error) {
	if l.key == nil {
		return Anchor{}, ErrNoKey
	}
	seq, hash, err := l.Head(ctx)
	if err != nil {
		return Anchor{}, err
	}
	if hash == nil {
		hash = genesis
	}
	micros := store.Micros(l.now())
	return Anchor{
		Seq:       seq,
		Hash:      hash,
		Time:      store.FromMicros(micros),
		KeyID:     l.keyID,
		Signature: ed25519.Sign(l.key, anchorMessage(seq, micros, hash)),
	}, nil
}

// verifyAnchor checks the anchor's signature against pub.
func verifyAnchor(a Anchor, pub ed25519.PublicKey) error {
	if id := KeyID(pub); a.KeyID != id {
		return fmt.Errorf("anchor was signed by key %s, but the log is verified with key %s", a.KeyID, id)
	}
	if !ed25519.Verify(pub, anchorMessage(a.Seq, store.Micros(a.Time), a.Hash), a.Signature) {
		return errors.New("anchor signature is invalid")
	}
	return nil
}

// ReadAnchor parses an anchor file. It checks the format, not the
// signature; Verify checks that.
func ReadAnchor(r io.Reader) (Anchor, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxAnchorBytes+1))
	if err != nil {
		return Anchor{}, fmt.Errorf("audit: read anchor: %w", err)
	}
	if len(data) > MaxAnchorBytes {
		return Anchor{}, fmt.Errorf("audit: anchor is larger than %d bytes; is it the right file?", MaxAnchorBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j anchorJSON
	if err := dec.Decode(&j); err != nil {
		return Anchor{}, fmt.Errorf("audit: anchor is not valid anchor JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Anchor{}, errors.New("audit: anchor has data after its JSON object")
	}
	if j.Format != AnchorFormat {
		return Anchor{}, fmt.Errorf("audit: anchor format %q, want %q", j.Format, AnchorFormat)
	}
	if j.Seq < 0 {
		return Anchor{}, fmt.Errorf("audit: anchor seq %d is negative", j.Seq)
	}
	a := Anchor{Seq: j.Seq, KeyID: j.KeyID}
	if a.Hash, err = decodeHex("hash", j.Hash, HashSize); err != nil {
		return Anchor{}, err
	}
	if a.Signature, err = decodeHex("signature", j.Signature, ed25519.SignatureSize); err != nil {
		return Anchor{}, err
	}
	if _, err := decodeHex("key_id", j.KeyID, 8); err != nil {
		return Anchor{}, err
	}
	if a.Time, err = time.Parse(time.RFC3339Nano, j.Time); err != nil {
		return Anchor{}, fmt.Errorf("audit: anchor time: %w", err)
	}
	if a.Time.Truncate(time.Microsecond) != a.Time || store.Micros(a.Time) < 0 {
		return Anchor{}, fmt.Errorf("audit: anchor time %q is not whole microseconds after 1970", j.Time)
	}
	a.Time = a.Time.UTC()
	return a, nil
}

func decodeHex(field, s string, n int) ([]byte, error) {
	if len(s) != 2*n || strings.ToLower(s) != s {
		return nil, fmt.Errorf("audit: anchor %s must be %d lowercase hex digits", field, 2*n)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("audit: anchor %s: %w", field, err)
	}
	return b, nil
}

// WriteAnchor stores a at dest: an https:// URL receives it as an HTTP PUT
// of the JSON (plain http:// only to a loopback host); anything else is a
// file path, written atomically with mode 0600. client nil means a client
// with a 30 s timeout.
func WriteAnchor(ctx context.Context, a Anchor, dest string, client *http.Client) error {
	body, err := json.MarshalIndent(a, "", "  ")
	if err != nil {
		return fmt.Errorf("audit: encode anchor: %w", err)
	}
	body = append(body, '\n')
	if !strings.Contains(dest, "://") {
		if dest == "" {
			return errors.New("audit: anchor destination is empty; give a file path or an https:// URL")
		}
		return writeFileAtomic(dest, body, 0o600)
	}
	u, err := url.Parse(dest)
	if err != nil {
		return fmt.Errorf("audit: anchor destination %q: %w", dest, err)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return fmt.Errorf("audit: anchor destination %s uses plain http; use https:// (http is allowed only to loopback)", u.Redacted())
	default:
		return fmt.Errorf("audit: anchor destination scheme %q; use an https:// URL or a file path", u.Scheme)
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("audit: anchor request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("audit: put anchor to %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("audit: put anchor to %s: server answered %s: %s", u.Redacted(), resp.Status, bytes.TrimSpace(msg))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
