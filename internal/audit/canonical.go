// This file defines the byte formats that the audit log hashes and signs.
// They are part of the on-disk format: changing any of them needs a new
// version byte or domain string, never an edit in place.
//
// Canonical encoding of an entry (version 1), all integers big-endian:
//
//	byte    0x01                      version
//	uint64  seq
//	int64   time, Unix microseconds UTC
//	then, for actor, source, action, resource, result and details in that
//	order: uint32 length || the field's UTF-8 bytes
//
// details is canonical JSON (see canonicalDetails). An entry's hash is
//
//	SHA-256(prev_hash || canonical)
//
// where prev_hash is the previous entry's hash, or 32 zero bytes for seq 1.
// Length prefixes make the encoding injective: no two different entries
// share an encoding, so a hash collision is the only way to alter one.
//
// Signed messages (ed25519) start with a NUL-terminated domain string so a
// signature made for one purpose can never be replayed as another:
//
//	checkpoint: "bulwark audit checkpoint v1\x00" || u64 seq || u64 next || i64 time || hash[32]
//	anchor:     "bulwark audit anchor v1\x00"     || u64 seq || i64 time || hash[32]
//	prune:      "bulwark audit prune v1\x00"      || u64 through || i64 time || u64 removed || hash[32]

package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// canonicalVersion is the first byte of every canonical entry encoding.
const canonicalVersion = 1

// HashSize is the length of entry hashes (SHA-256).
const HashSize = sha256.Size

// genesis is the prev hash of the first entry.
var genesis = make([]byte, HashSize)

const (
	domainCheckpoint = "bulwark audit checkpoint v1\x00"
	domainAnchor     = "bulwark audit anchor v1\x00"
	domainPrune      = "bulwark audit prune v1\x00"
)

// appendCanonical appends the version-1 canonical encoding of an entry to
// dst. details must already be canonical JSON.
func appendCanonical(dst []byte, seq, micros int64, actor, source, action, resource, result, details []byte) []byte {
	dst = append(dst, canonicalVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(seq))
	dst = binary.BigEndian.AppendUint64(dst, uint64(micros))
	for _, f := range [...][]byte{actor, source, action, resource, result, details} {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(f)))
		dst = append(dst, f...)
	}
	return dst
}

// entryHash returns SHA-256(prev || canonical).
func entryHash(prev, canonical []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(canonical)
	return h.Sum(nil)
}

// canonicalDetails renders details as canonical JSON: the output of
// encoding/json for a value decoded back into maps (so every object, nested
// ones and struct values included, has its keys sorted), without
// insignificant whitespace, without HTML escaping, numbers kept exactly as
// encoding/json first wrote them. A nil or empty map is "{}". The stored
// bytes, not a re-encoding, are what the hash covers, so readers never need
// to reproduce this function.
func canonicalDetails(details map[string]any) ([]byte, error) {
	if len(details) == 0 {
		return []byte("{}"), nil
	}
	first, err := marshalNoEscape(details)
	if err != nil {
		return nil, fmt.Errorf("audit: details are not JSON-encodable: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(first))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("audit: details: %w", err)
	}
	return marshalNoEscape(v)
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// decodeDetails parses stored canonical JSON, keeping numbers as
// json.Number so large integers survive exactly.
func decodeDetails(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("audit: stored details are not a JSON object: %w", err)
	}
	return m, nil
}

func checkpointMessage(seq, next, micros int64, hash []byte) []byte {
	b := make([]byte, 0, len(domainCheckpoint)+24+HashSize)
	b = append(b, domainCheckpoint...)
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	b = binary.BigEndian.AppendUint64(b, uint64(next))
	b = binary.BigEndian.AppendUint64(b, uint64(micros))
	return append(b, hash...)
}

func anchorMessage(seq, micros int64, hash []byte) []byte {
	b := make([]byte, 0, len(domainAnchor)+16+HashSize)
	b = append(b, domainAnchor...)
	b = binary.BigEndian.AppendUint64(b, uint64(seq))
	b = binary.BigEndian.AppendUint64(b, uint64(micros))
	return append(b, hash...)
}

func pruneMessage(through, micros, removed int64, hash []byte) []byte {
	b := make([]byte, 0, len(domainPrune)+24+HashSize)
	b = append(b, domainPrune...)
	b = binary.BigEndian.AppendUint64(b, uint64(through))
	b = binary.BigEndian.AppendUint64(b, uint64(micros))
	b = binary.BigEndian.AppendUint64(b, uint64(removed))
	return append(b, hash...)
}
