// Package crypto holds the repository's secrets and every cryptographic
// operation of the repository format (docs/repository-format.md):
//
//   - Secrets: the keys a repository is made of, and the write-only subset.
//   - Key files: Secrets sealed under a password with argon2id.
//   - Shared sealing: AES-256-GCM with shared_key (config, index, locks).
//   - Public sealing: X25519 + HKDF to a per-object AES-256-GCM key, so that
//     a write-only key can write packs and snapshots but never read them.
//   - Blob ids: keyed BLAKE3 with id_key.
//   - Index signatures: Ed25519 with sign_private.
//
// Nothing here touches storage; callers pass bytes in and get bytes out.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/zeebo/blake3"
)

// Kind says what a key may do.
type Kind string

const (
	// Full keys read, write and delete.
	Full Kind = "full"
	// WriteOnly keys add snapshots and deduplicate against existing chunks,
	// but can open neither packs nor snapshots and sign nothing.
	WriteOnly Kind = "write-only"
)

// KeySize is the size of every symmetric secret.
const KeySize = 32

// Errors callers test for.
var (
	// ErrAuth means a ciphertext failed authentication: wrong key or
	// tampered bytes.
	ErrAuth = errors.New("authentication failed (wrong key or corrupted data)")
	// ErrWriteOnly is returned when an operation needs the private key.
	ErrWriteOnly = errors.New("this is a write-only key: it cannot read existing data")
)

// Secrets are a repository's keys. The zero value is unusable; get one from
// NewSecrets or a key file.
type Secrets struct {
	Kind        Kind
	ChunkerSeed [KeySize]byte
	IDKey       [KeySize]byte
	SharedKey   [KeySize]byte
	PublicKey   [KeySize]byte
	PrivateKey  [KeySize]byte // zero for write-only keys
	SignPublic  [ed25519.PublicKeySize]byte
	SignPrivate [ed25519.SeedSize]byte // zero for write-only keys

	once   sync.Once
	shared cipher.AEAD
	priv   *ecdh.PrivateKey
	pub    *ecdh.PublicKey
	ids    sync.Pool
	err    error
}

// NewSecrets draws a fresh full set of secrets from r (crypto/rand.Reader
// when nil).
func NewSecrets(r io.Reader) (*Secrets, error) {
	if r == nil {
		r = rand.Reader
	}
	s := &Secrets{Kind: Full}
	for _, b := range [][]byte{s.ChunkerSeed[:], s.IDKey[:], s.SharedKey[:], s.PrivateKey[:], s.SignPrivate[:]} {
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, fmt.Errorf("reading random bytes: %w", err)
		}
	}
	priv, err := ecdh.X25519().NewPrivateKey(s.PrivateKey[:])
	if err != nil {
		return nil, err
	}
	copy(s.PublicKey[:], priv.PublicKey().Bytes())
	copy(s.SignPublic[:], ed25519.NewKeyFromSeed(s.SignPrivate[:]).Public().(ed25519.PublicKey))
	return s, nil
}

// WithChunking returns a new full set of secrets that shares other's chunker
// seed and id key (repo init --copy-params-from), so chunks deduplicate
// across the two repositories while everything else differs.
func WithChunking(r io.Reader, other *Secrets) (*Secrets, error) {
	s, err := NewSecrets(r)
	if err != nil {
		return nil, err
	}
	s.ChunkerSeed, s.IDKey = other.ChunkerSeed, other.IDKey
	return s, nil
}

// WriteOnlyCopy returns the write-only subset of s.
func (s *Secrets) WriteOnlyCopy() *Secrets {
	return &Secrets{
		Kind: WriteOnly, ChunkerSeed: s.ChunkerSeed, IDKey: s.IDKey, SharedKey: s.SharedKey,
		PublicKey: s.PublicKey, SignPublic: s.SignPublic,
	}
}

// CanRead reports whether s holds the private key.
func (s *Secrets) CanRead() bool { return s.Kind == Full }

func (s *Secrets) init() error {
	s.once.Do(func() {
		block, err := aes.NewCipher(s.SharedKey[:])
		if err != nil {
			s.err = err
			return
		}
		if s.shared, s.err = cipher.NewGCM(block); s.err != nil {
			return
		}
		if s.pub, s.err = ecdh.X25519().NewPublicKey(s.PublicKey[:]); s.err != nil {
			s.err = fmt.Errorf("repository public key: %w", s.err)
			return
		}
		if s.Kind == Full {
			if s.priv, s.err = ecdh.X25519().NewPrivateKey(s.PrivateKey[:]); s.err != nil {
				return
			}
			if !s.priv.PublicKey().Equal(s.pub) {
				s.err = errors.New("private key does not match the repository public key")
				return
			}
			if !ed25519.NewKeyFromSeed(s.SignPrivate[:]).Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(s.SignPublic[:])) {
				s.err = errors.New("signing key does not match the repository signing public key")
				return
			}
		}
		key := s.IDKey
		s.ids.New = func() any {
			h, _ := blake3.NewKeyed(key[:])
			return h
		}
	})
	return s.err
}

// Validate checks that the secrets are consistent (keys match) and returns
// a descriptive error when not.
func (s *Secrets) Validate() error {
	switch s.Kind {
	case Full, WriteOnly:
	default:
		return fmt.Errorf("unknown key kind %q", s.Kind)
	}
	return s.init()
}

// BlobID is keyed BLAKE3(id_key, data). Safe for concurrent use.
func (s *Secrets) BlobID(data []byte) (id [32]byte) {
	if err := s.init(); err != nil {
		panic("crypto: BlobID on invalid secrets: " + err.Error())
	}
	h := s.ids.Get().(*blake3.Hasher)
	h.Reset()
	_, _ = h.Write(data)
	h.Sum(id[:0])
	s.ids.Put(h)
	return id
}

// SealShared encrypts plaintext with shared_key: nonce(12) || ciphertext.
func (s *Secrets) SealShared(aad string, plaintext []byte) ([]byte, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	out := make([]byte, 12, 12+len(plaintext)+16)
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return s.shared.Seal(out, out[:12], plaintext, []byte(aad)), nil
}

// OpenShared reverses SealShared.
func (s *Secrets) OpenShared(aad string, sealed []byte) ([]byte, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	if len(sealed) < 12+16 {
		return nil, fmt.Errorf("sealed data too short (%d bytes)", len(sealed))
	}
	out, err := s.shared.Open(nil, sealed[:12], sealed[12:], []byte(aad))
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// Purposes for public sealing; part of the format.
const (
	PurposePack     = "pack"
	PurposeSnapshot = "snapshot"
)

// SealTo derives a fresh one-object key sealed to the repository public key:
// it returns the AEAD to encrypt with and the ephemeral public key E that
// the object must carry.
func (s *Secrets) SealTo(purpose string) (cipher.AEAD, [32]byte, error) {
	var E [32]byte
	if err := s.init(); err != nil {
		return nil, E, err
	}
	e, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, E, err
	}
	copy(E[:], e.PublicKey().Bytes())
	shared, err := e.ECDH(s.pub)
	if err != nil {
		return nil, E, err
	}
	aead, err := objectAEAD(shared, E, s.PublicKey, purpose)
	return aead, E, err
}

// OpenFrom derives the AEAD of an object sealed to the repository public
// key, given the object's ephemeral public key E. Write-only keys get
// ErrWriteOnly.
func (s *Secrets) OpenFrom(purpose string, E [32]byte) (cipher.AEAD, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	if s.priv == nil {
		return nil, ErrWriteOnly
	}
	pub, err := ecdh.X25519().NewPublicKey(E[:])
	if err != nil {
		return nil, fmt.Errorf("ephemeral key: %w", err)
	}
	shared, err := s.priv.ECDH(pub)
	if err != nil {
		// crypto/ecdh refuses low-order points (all-zero shared secret).
		return nil, fmt.Errorf("ephemeral key: %w", err)
	}
	return objectAEAD(shared, E, s.PublicKey, purpose)
}

func objectAEAD(shared []byte, E, P [32]byte, purpose string) (cipher.AEAD, error) {
	salt := make([]byte, 0, 64)
	salt = append(append(salt, E[:]...), P[:]...)
	key, err := hkdf.Key(sha256.New, shared, salt, "bulwark v1 "+purpose, KeySize)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Sign signs msg with the repository signing key (full keys only).
func (s *Secrets) Sign(msg []byte) ([]byte, error) {
	if s.Kind != Full {
		return nil, ErrWriteOnly
	}
	return ed25519.Sign(ed25519.NewKeyFromSeed(s.SignPrivate[:]), msg), nil
}

// Verify checks a signature made by Sign; every key can verify.
func (s *Secrets) Verify(msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(ed25519.PublicKey(s.SignPublic[:]), msg, sig)
}
