// The audit signing key is an ed25519 key stored in the data directory as
// audit.key (PEM "PRIVATE KEY", PKCS#8 DER, mode 0600) beside audit.pub (PEM
// "PUBLIC KEY", PKIX DER), kept by internal/signkey. Keys are named by KeyID
// in checkpoints, anchors and prune records so that a verifier can say which
// key signed what.

package audit

import (
	"crypto/ed25519"
	"fmt"
	"io"
	"io/fs"

	"github.com/bulwarkhq/bulwark/internal/signkey"
)

// KeyFile and PublicKeyFile are the names of the checkpoint signing key and
// its public half inside the data directory.
const (
	KeyFile       = "audit.key"
	PublicKeyFile = "audit.pub"
)

// KeyID names a public key in checkpoints and anchors: the first 8 bytes of
// SHA-256 of the raw 32-byte key, in hex.
func KeyID(pub ed25519.PublicKey) string { return signkey.ID(pub) }

// LoadOrCreateKey returns the audit signing key kept in dir/audit.key,
// creating it and dir/audit.pub when the key does not exist yet (see
// signkey.LoadOrCreate).
func LoadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	return signkey.LoadOrCreate(dir, "audit")
}

func loadOrCreateKey(dir string, random io.Reader) (ed25519.PrivateKey, error) {
	return signkey.LoadOrCreateWith(dir, "audit", random)
}

// ReadPublicKey parses a PEM "PUBLIC KEY" (PKIX) ed25519 key such as
// audit.pub, for verifying with a key kept apart from the data directory.
func ReadPublicKey(data []byte) (ed25519.PublicKey, error) {
	pub, err := signkey.ReadPublic(data)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	return pub, nil
}

func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	if err := signkey.WriteFileAtomic(path, data, mode); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}
