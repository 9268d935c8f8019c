package main

import (
	"context"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
)

// openVault opens a repository on a Bulwark vault, https://HOST:PORT/NAME.
// (Placeholder until internal/repo/backend/vault lands.)
func openVault(ctx context.Context, e *Env, t *transportFlags, loc string, create bool) (backend.Backend, error) {
	return nil, usageError("repository %q: vault repositories are not supported by this build yet", loc)
}
