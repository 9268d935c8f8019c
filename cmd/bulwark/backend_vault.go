package main

import (
	"context"
	"fmt"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	vclient "github.com/bulwarkhq/bulwark/internal/repo/backend/vault"
)

// openVault opens a repository on a Bulwark vault, https://HOST:PORT/NAME,
// with the token in $BULWARK_VAULT_TOKEN. create asks the vault to make the
// repository first (repo init).
func openVault(ctx context.Context, e *Env, t *transportFlags, loc string, create bool) (backend.Backend, error) {
	tok := e.Getenv("BULWARK_VAULT_TOKEN")
	if tok == "" {
		return nil, usageError("repository %s: no vault token: set BULWARK_VAULT_TOKEN to a token from 'bulwark vault token add' on the vault", loc)
	}
	o := vclient.Options{Token: tok, CAFile: t.caFile(e), Insecure: t.insecure}
	if create {
		be, err := vclient.Create(ctx, loc, o)
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", loc, err)
		}
		return be, nil
	}
	be, err := vclient.Open(loc, o)
	if err != nil {
		return nil, usageError("repository %s: %v", loc, err)
	}
	return be, nil
}
