package vault

// The token store is DATA/tokens.json, written whole to a temporary file,
// fsynced and renamed into place, under an flock of DATA/tokens.lock so
// that two `vault token` commands do not lose each other's change. The
// running server never writes it; it re-reads it when its stat changes.

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Mode is what a token may do.
type Mode string

// Token modes.
const (
	// ModeFull may read, write, replace and delete.
	ModeFull Mode = "full"
	// ModeAppendOnly may read and create, never overwrite or delete (its
	// own locks excepted).
	ModeAppendOnly Mode = "append-only"
)

// Token is one stored token. The secret itself is never stored.
type Token struct {
	Name string `json:"name"`
	// SHA256 is the hex SHA-256 of the secret.
	SHA256 string `json:"sha256"`
	// Repo limits the token to one repository; "" allows every one.
	Repo string `json:"repo,omitempty"`
	Mode Mode   `json:"mode"`
	// Quota is the most bytes that may be stored through the token; 0 is
	// no limit.
	Quota   int64     `json:"quota,omitempty"`
	Created time.Time `json:"created"`
}

// tokenFile is the JSON document in tokens.json.
type tokenFile struct {
	Tokens []Token `json:"tokens"`
}

// TokenPrefix starts every token, so that secret scanners recognise one.
const TokenPrefix = "bwv_"

// ErrTokenExists is returned by AddToken for a name already in use.
var ErrTokenExists = errors.New("a token with this name already exists")

// ErrNoToken is returned by RevokeToken for an unknown name.
var ErrNoToken = errors.New("no token with this name")

func tokensPath(data string) string { return filepath.Join(data, "tokens.json") }

// hashToken returns the hex SHA-256 of a secret.
func hashToken(secret string) string {
	s := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(s[:])
}

// NewTokenSecret returns a new random token.
func NewTokenSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ValidTokenName reports whether name can name a token (the same rules as
// a repository name).
func ValidTokenName(name string) bool { return ValidRepoName(name) }

// readTokens reads the store; a missing file is an empty store.
func readTokens(data string) ([]Token, error) {
	b, err := os.ReadFile(tokensPath(data))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	var f tokenFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("tokens: %s: %w", tokensPath(data), err)
	}
	return f.Tokens, nil
}

// updateTokens applies fn to the store under the store's lock and writes
// the result durably.
func updateTokens(data string, fn func([]Token) ([]Token, error)) error {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	lf, err := os.OpenFile(filepath.Join(data, "tokens.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("tokens: lock: %w", err)
	}
	toks, err := readTokens(data)
	if err != nil {
		return err
	}
	toks, err = fn(toks)
	if err != nil {
		return err
	}
	sort.Slice(toks, func(i, j int) bool { return toks[i].Name < toks[j].Name })
	b, err := json.MarshalIndent(tokenFile{Tokens: toks}, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(tokensPath(data), append(b, '\n'))
}

// writeFileAtomic writes b to path through a fsynced temporary file and a
// rename, then fsyncs the directory.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}

// TokenSpec describes a token to add.
type TokenSpec struct {
	Name  string
	Repo  string // "" = every repository
	Mode  Mode   // default ModeFull
	Quota int64  // bytes; 0 = none
}

// AddToken creates a token in the vault data directory data and returns
// its secret, which is not stored and cannot be shown again. Usage is
// accounted per secret, so a new token starts at zero even under an old
// name.
func AddToken(data string, spec TokenSpec, now time.Time) (string, error) {
	if !ValidTokenName(spec.Name) {
		return "", fmt.Errorf("token name %q: use 1-%d letters, digits, '.', '_', '-', starting with a letter or digit", spec.Name, MaxRepoNameLen)
	}
	if spec.Repo != "" && !ValidRepoName(spec.Repo) {
		return "", fmt.Errorf("repository name %q: use 1-%d letters, digits, '.', '_', '-', starting with a letter or digit", spec.Repo, MaxRepoNameLen)
	}
	if spec.Mode == "" {
		spec.Mode = ModeFull
	}
	if spec.Mode != ModeFull && spec.Mode != ModeAppendOnly && spec.Mode != ModeStatus {
		return "", fmt.Errorf("token mode %q: use %q, %q or %q", spec.Mode, ModeFull, ModeAppendOnly, ModeStatus)
	}
	if spec.Mode == ModeStatus && spec.Repo != "" {
		return "", errors.New("a status token publishes status pages only: it takes no repository")
	}
	if spec.Quota < 0 {
		return "", fmt.Errorf("quota %d: must not be negative", spec.Quota)
	}
	secret, err := NewTokenSecret()
	if err != nil {
		return "", err
	}
	err = updateTokens(data, func(toks []Token) ([]Token, error) {
		for _, t := range toks {
			if t.Name == spec.Name {
				return nil, fmt.Errorf("token %q: %w (revoke it first)", spec.Name, ErrTokenExists)
			}
		}
		return append(toks, Token{Name: spec.Name, SHA256: hashToken(secret), Repo: spec.Repo, Mode: spec.Mode,
			Quota: spec.Quota, Created: now.UTC()}), nil
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// ListTokens returns the stored tokens (without secrets), by name.
func ListTokens(data string) ([]Token, error) {
	toks, err := readTokens(data)
	if err != nil {
		return nil, err
	}
	sort.Slice(toks, func(i, j int) bool { return toks[i].Name < toks[j].Name })
	return toks, nil
}

// RevokeToken deletes token name. A running vault refuses it from its next
// request on.
func RevokeToken(data, name string) error {
	return updateTokens(data, func(toks []Token) ([]Token, error) {
		for i, t := range toks {
			if t.Name == name {
				return append(toks[:i], toks[i+1:]...), nil
			}
		}
		return nil, fmt.Errorf("token %q: %w", name, ErrNoToken)
	})
}

// tokenCache is the server's view of tokens.json, re-read when the file's
// identity, size or times change.
type tokenCache struct {
	data string
	key  string
	toks []Token
}

// lookup returns the token whose secret is secret, re-reading the store if
// it changed. Every stored hash is compared, in constant time, so the time
// taken does not depend on which token (if any) matched.
func (c *tokenCache) lookup(secret string) (Token, bool, error) {
	fi, err := os.Stat(tokensPath(c.data))
	key := ""
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return Token{}, false, fmt.Errorf("tokens: %w", err)
	default:
		st, _ := fi.Sys().(*syscall.Stat_t)
		key = fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
		if st != nil {
			key += fmt.Sprint(" ", st.Ino, st.Ctim.Nano())
		}
	}
	if key != c.key || key == "" {
		toks, err := readTokens(c.data)
		if err != nil {
			return Token{}, false, err
		}
		c.toks, c.key = toks, key
	}
	if !strings.HasPrefix(secret, TokenPrefix) {
		return Token{}, false, nil
	}
	want := []byte(hashToken(secret))
	var found Token
	ok := 0
	for _, t := range c.toks {
		if subtle.ConstantTimeCompare([]byte(t.SHA256), want) == 1 {
			found = t
			ok = 1
		}
	}
	return found, ok == 1, nil
}
