package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/argon2"
)

// KDFParams are argon2id's cost parameters, stored in each key file.
type KDFParams struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// DefaultKDF costs about 0.1 s and 64 MiB on a current server core: well
// above OWASP's argon2id minimum (19 MiB, t=2) while keeping `bulwark
// backup` quick to start.
var DefaultKDF = KDFParams{Time: 2, MemoryKiB: 64 * 1024, Threads: 2}

// Bounds a key file's parameters must respect before we spend CPU and RAM
// on them: too weak is refused (a tampered key file could otherwise make us
// accept a cheap derivation), too costly is refused (a hostile key file
// must not make us allocate gigabytes).
const (
	minMemoryKiB = 19 * 1024
	maxMemoryKiB = 4 * 1024 * 1024
	maxTime      = 64
)

// Validate names the first parameter out of bounds.
func (p KDFParams) Validate() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("kdf_params.time %d outside 1..%d", p.Time, maxTime)
	case p.MemoryKiB < minMemoryKiB || p.MemoryKiB > maxMemoryKiB:
		return fmt.Errorf("kdf_params.memory_kib %d outside %d..%d", p.MemoryKiB, minMemoryKiB, maxMemoryKiB)
	case p.Threads < 1:
		return fmt.Errorf("kdf_params.threads must be at least 1")
	}
	return nil
}

// KeyFile is the JSON stored in keys/<id>.
type KeyFile struct {
	Version   int       `json:"version"`
	Kind      Kind      `json:"kind"`
	Created   time.Time `json:"created"`
	Host      string    `json:"host,omitempty"`
	Username  string    `json:"username,omitempty"`
	KDF       string    `json:"kdf"`
	KDFParams KDFParams `json:"kdf_params"`
	Salt      []byte    `json:"salt"`
	Data      []byte    `json:"data"`
}

const keyAAD = "bulwark key v1"

// ErrWrongPassword means the password does not open this key file.
var ErrWrongPassword = errors.New("wrong password")

type secretsJSON struct {
	Version     int    `json:"version"`
	Kind        Kind   `json:"kind"`
	ChunkerSeed []byte `json:"chunker_seed"`
	IDKey       []byte `json:"id_key"`
	SharedKey   []byte `json:"shared_key"`
	PublicKey   []byte `json:"public_key"`
	PrivateKey  []byte `json:"private_key,omitempty"`
	SignPublic  []byte `json:"sign_public"`
	SignPrivate []byte `json:"sign_private,omitempty"`
}

// SealKeyFile wraps s under password. meta supplies Created, Host and
// Username; the rest is filled in.
func SealKeyFile(s *Secrets, password []byte, params KDFParams, meta KeyFile) ([]byte, error) {
	if err := params.Validate(); err != nil {
		return nil, err
	}
	if len(password) == 0 {
		return nil, errors.New("empty password")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	sj := secretsJSON{Version: 1, Kind: s.Kind, ChunkerSeed: s.ChunkerSeed[:], IDKey: s.IDKey[:],
		SharedKey: s.SharedKey[:], PublicKey: s.PublicKey[:], SignPublic: s.SignPublic[:]}
	if s.Kind == Full {
		sj.PrivateKey, sj.SignPrivate = s.PrivateKey[:], s.SignPrivate[:]
	}
	plain, err := json.Marshal(sj)
	if err != nil {
		return nil, err
	}
	kf := meta
	kf.Version, kf.Kind, kf.KDF, kf.KDFParams = 1, s.Kind, "argon2id", params
	kf.Salt = make([]byte, 16)
	if _, err := rand.Read(kf.Salt); err != nil {
		return nil, err
	}
	aead, err := kek(password, kf.Salt, params)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, 12, 12+len(plain)+16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	kf.Data = aead.Seal(nonce, nonce, plain, []byte(keyAAD))
	return json.MarshalIndent(kf, "", "  ")
}

// ParseKeyFile decodes and validates a key file's clear part.
func ParseKeyFile(data []byte) (*KeyFile, error) {
	var kf KeyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return nil, fmt.Errorf("not a key file: %w", err)
	}
	switch {
	case kf.Version != 1:
		return nil, fmt.Errorf("key file version %d not supported", kf.Version)
	case kf.KDF != "argon2id":
		return nil, fmt.Errorf("key file kdf %q not supported", kf.KDF)
	case len(kf.Salt) < 16:
		return nil, fmt.Errorf("key file salt too short (%d bytes)", len(kf.Salt))
	case len(kf.Data) < 12+16:
		return nil, errors.New("key file data too short")
	}
	if err := kf.KDFParams.Validate(); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	return &kf, nil
}

// OpenKeyFile derives the key-encryption key from password and opens the
// secrets. A wrong password returns ErrWrongPassword.
func OpenKeyFile(data, password []byte) (*Secrets, *KeyFile, error) {
	kf, err := ParseKeyFile(data)
	if err != nil {
		return nil, nil, err
	}
	aead, err := kek(password, kf.Salt, kf.KDFParams)
	if err != nil {
		return nil, nil, err
	}
	plain, err := aead.Open(nil, kf.Data[:12], kf.Data[12:], []byte(keyAAD))
	if err != nil {
		return nil, kf, ErrWrongPassword
	}
	s, err := decodeSecrets(plain)
	if err != nil {
		return nil, kf, err
	}
	return s, kf, nil
}

func decodeSecrets(plain []byte) (*Secrets, error) {
	var sj secretsJSON
	if err := json.Unmarshal(plain, &sj); err != nil {
		return nil, fmt.Errorf("key secrets: %w", err)
	}
	if sj.Version != 1 {
		return nil, fmt.Errorf("key secrets version %d not supported", sj.Version)
	}
	s := &Secrets{Kind: sj.Kind}
	fields := []struct {
		name string
		dst  []byte
		src  []byte
		need bool
	}{
		{"chunker_seed", s.ChunkerSeed[:], sj.ChunkerSeed, true},
		{"id_key", s.IDKey[:], sj.IDKey, true},
		{"shared_key", s.SharedKey[:], sj.SharedKey, true},
		{"public_key", s.PublicKey[:], sj.PublicKey, true},
		{"sign_public", s.SignPublic[:], sj.SignPublic, true},
		{"private_key", s.PrivateKey[:], sj.PrivateKey, sj.Kind == Full},
		{"sign_private", s.SignPrivate[:], sj.SignPrivate, sj.Kind == Full},
	}
	for _, f := range fields {
		if !f.need {
			if len(f.src) != 0 {
				return nil, fmt.Errorf("key secrets: %s present in a %s key", f.name, sj.Kind)
			}
			continue
		}
		if len(f.src) != len(f.dst) {
			return nil, fmt.Errorf("key secrets: %s is %d bytes, want %d", f.name, len(f.src), len(f.dst))
		}
		copy(f.dst, f.src)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("key secrets: %w", err)
	}
	return s, nil
}

func kek(password, salt []byte, p KDFParams) (cipher.AEAD, error) {
	primeHugePages(int(p.MemoryKiB) << 10)
	key := argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, KeySize)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Base64 is the encoding of binary fields in the format's JSON (standard,
// padded); encoding/json uses it for []byte.
var Base64 = base64.StdEncoding
