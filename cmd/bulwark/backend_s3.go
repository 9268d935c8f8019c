package main

import (
	"context"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
)

// openS3 opens an S3 repository, s3:https://HOST[:PORT]/BUCKET[/PREFIX].
// (Placeholder until internal/repo/backend/s3 lands.)
func openS3(ctx context.Context, e *Env, t *transportFlags, loc string, create bool) (backend.Backend, error) {
	return nil, usageError("repository %q: S3 repositories are not supported by this build yet", loc)
}
