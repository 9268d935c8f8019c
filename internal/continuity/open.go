package continuity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/retry"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/s3"
	vclient "github.com/bulwarkhq/bulwark/internal/repo/backend/vault"
)

// OpenBackend opens the storage of a configured repository: a directory,
// a vault (https://HOST:PORT/NAME, with vault_token) or S3
// (s3:https://HOST/BUCKET/PREFIX, with s3_access_key/s3_secret_key or the
// AWS environment). Remote ones retry transient failures.
func OpenBackend(ctx context.Context, rc config.Repository, getenv func(string) string, readFile func(string) ([]byte, error)) (backend.Backend, error) {
	loc := rc.Location
	switch {
	case strings.HasPrefix(loc, "s3:"):
		c := s3.ConfigFromEnv(loc, getenv)
		if rc.S3AccessKey.IsSet() {
			var err error
			if c.AccessKeyID, err = rc.S3AccessKey.Resolve(getenv, readFile); err != nil {
				return nil, fmt.Errorf("s3_access_key: %w", err)
			}
			if c.SecretAccessKey, err = rc.S3SecretKey.Resolve(getenv, readFile); err != nil {
				return nil, fmt.Errorf("s3_secret_key: %w", err)
			}
			c.SessionToken = ""
		}
		c.CAFile, c.Insecure = rc.CACert, rc.Insecure
		return s3.OpenRetrying(ctx, c, false, retry.DefaultPolicy)
	case strings.HasPrefix(loc, "https://"), strings.HasPrefix(loc, "http://"):
		if !rc.VaultToken.IsSet() {
			return nil, errors.New("a vault location needs vault_token")
		}
		tok, err := rc.VaultToken.Resolve(getenv, readFile)
		if err != nil {
			return nil, fmt.Errorf("vault_token: %w", err)
		}
		return vclient.Open(loc, vclient.Options{Token: tok, CAFile: rc.CACert, Insecure: rc.Insecure})
	}
	return local.Open(loc)
}

// RepositoryOpener opens configured repositories with their password
// secrets, keeping each one's cache under cacheDir ("" or "-": no cache).
func RepositoryOpener(getenv func(string) string, readFile func(string) ([]byte, error), cacheDir string) Opener {
	return opener(getenv, readFile, cacheDir, true)
}

// RepositoryLister opens them as RepositoryOpener does, without loading
// the index: enough to list snapshots (Service.OpenList), and it keeps
// no index in memory while the repository stays open for that.
func RepositoryLister(getenv func(string) string, readFile func(string) ([]byte, error), cacheDir string) Opener {
	return opener(getenv, readFile, cacheDir, false)
}

func opener(getenv func(string) string, readFile func(string) ([]byte, error), cacheDir string, index bool) Opener {
	if readFile == nil {
		readFile = os.ReadFile
	}
	return func(ctx context.Context, rc config.Repository) (*repo.Repository, error) {
		pw, err := rc.Password.Resolve(getenv, readFile)
		if err != nil {
			return nil, fmt.Errorf("password: %w", err)
		}
		be, err := OpenBackend(ctx, rc, getenv, readFile)
		if err != nil {
			return nil, err
		}
		cache := "-"
		if cacheDir != "" && cacheDir != "-" {
			cache = filepath.Join(cacheDir, rc.Name)
		}
		r, err := repo.Open(ctx, be, []byte(pw), repo.OpenOptions{CacheDir: cache})
		if err != nil {
			be.Close()
			return nil, err
		}
		if !index {
			return r, nil
		}
		if err := r.LoadIndex(ctx); err != nil {
			r.Close()
			return nil, err
		}
		return r, nil
	}
}
