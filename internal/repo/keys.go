package repo

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
)

// KeyInfo describes one key file without opening it.
type KeyInfo struct {
	ID      string           `json:"id"`
	Current bool             `json:"current"`
	Kind    crypto.Kind      `json:"kind"`
	Host    string           `json:"host"`
	User    string           `json:"username"`
	Created string           `json:"created"`
	KDF     crypto.KDFParams `json:"kdf_params"`
	Err     string           `json:"error,omitempty"`
}

// AddKey writes a new key file for password. writeOnly makes a key that
// can add snapshots but not read or delete (see docs/repository-format.md).
// A write-only key cannot add keys.
func (r *Repository) AddKey(ctx context.Context, password []byte, writeOnly bool, kdf crypto.KDFParams, meta crypto.KeyFile) (string, error) {
	if !r.CanRead() {
		return "", fmt.Errorf("adding a key: %w", crypto.ErrWriteOnly)
	}
	if kdf == (crypto.KDFParams{}) {
		kdf = crypto.DefaultKDF
	}
	sec := r.sec
	if writeOnly {
		sec = sec.WriteOnlyCopy()
	}
	id, err := addKey(ctx, r.be, sec, password, kdf, meta)
	return Hex(id), err
}

// ListKeys lists the key files; files that do not parse are listed with
// their error.
func (r *Repository) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	err := r.be.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		ki := KeyInfo{ID: fi.Name, Current: fi.Name == Hex(r.keyID)}
		data, err := r.be.Load(ctx, backend.Handle{Type: backend.KeyFile, Name: fi.Name}, 0, 0)
		if err != nil {
			ki.Err = err.Error()
		} else if kf, err := crypto.ParseKeyFile(data); err != nil {
			ki.Err = err.Error()
		} else {
			ki.Kind, ki.Host, ki.User, ki.KDF = kf.Kind, kf.Host, kf.Username, kf.KDFParams
			ki.Created = kf.Created.UTC().Format("2006-01-02 15:04:05")
		}
		out = append(out, ki)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created < out[j].Created })
	return out, err
}

// ResolveKey finds the key whose id starts with prefix.
func (r *Repository) ResolveKey(ctx context.Context, prefix string) (KeyInfo, error) {
	keys, err := r.ListKeys(ctx)
	if err != nil {
		return KeyInfo{}, err
	}
	var found []KeyInfo
	for _, k := range keys {
		if strings.HasPrefix(k.ID, strings.ToLower(prefix)) && prefix != "" {
			found = append(found, k)
		}
	}
	switch len(found) {
	case 0:
		return KeyInfo{}, fmt.Errorf("no key %q", prefix)
	case 1:
		return found[0], nil
	}
	return KeyInfo{}, fmt.Errorf("key prefix %q is ambiguous (%d keys)", prefix, len(found))
}

// RemoveKey removes a key file. It refuses the key in use and the last full
// key, so the repository can never be locked out.
func (r *Repository) RemoveKey(ctx context.Context, id string) error {
	if !r.CanRead() {
		return fmt.Errorf("removing a key: %w", crypto.ErrWriteOnly)
	}
	k, err := r.ResolveKey(ctx, id)
	if err != nil {
		return err
	}
	if k.Current {
		return fmt.Errorf("key %s is the one in use; open the repository with another key to remove it", k.ID[:8])
	}
	if k.Kind == crypto.Full || k.Err != "" {
		keys, err := r.ListKeys(ctx)
		if err != nil {
			return err
		}
		full := 0
		for _, o := range keys {
			if o.Kind == crypto.Full && o.ID != k.ID {
				full++
			}
		}
		if full == 0 {
			return fmt.Errorf("key %s is the last full key: refusing to lock the repository", k.ID[:8])
		}
	}
	return r.be.Remove(ctx, backend.Handle{Type: backend.KeyFile, Name: k.ID})
}

// ChangePassword replaces the key in use by one with a new password (same
// secrets, same kind): the new key file is written before the old one is
// removed.
func (r *Repository) ChangePassword(ctx context.Context, password []byte, kdf crypto.KDFParams) (string, error) {
	if kdf == (crypto.KDFParams{}) {
		kdf = crypto.DefaultKDF
	}
	old := Hex(r.keyID)
	data, err := r.be.Load(ctx, backend.Handle{Type: backend.KeyFile, Name: old}, 0, 0)
	if err != nil {
		return "", err
	}
	kf, err := crypto.ParseKeyFile(data)
	if err != nil {
		return "", err
	}
	id, err := addKey(ctx, r.be, r.sec, password, kdf, crypto.KeyFile{Created: kf.Created, Host: kf.Host, Username: kf.Username})
	if err != nil {
		return "", err
	}
	r.keyID = id
	if err := r.be.Remove(ctx, backend.Handle{Type: backend.KeyFile, Name: old}); err != nil {
		return hex.EncodeToString(id[:]), fmt.Errorf("new key written, but removing the old one failed: %w", err)
	}
	return hex.EncodeToString(id[:]), nil
}
