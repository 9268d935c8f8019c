package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/retry"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/s3"
)

// openS3 opens an S3 repository, s3:https://HOST[:PORT]/BUCKET[/PREFIX].
// Credentials and region come from the AWS environment variables (or the
// shared credentials file), TLS trust from --cacert/$BULWARK_CACERT, and on
// a bucket with object lock the retention from $BULWARK_S3_RETENTION (a Go
// duration or Nd, default 40d) and $BULWARK_S3_LOCK_MODE (COMPLIANCE, the
// default, or GOVERNANCE). create makes a new repository under the prefix;
// the bucket must exist. The backend is wrapped in retry.New; its
// Retainer methods stay reachable on the result (s3.Retrying).
func openS3(ctx context.Context, e *Env, t *transportFlags, loc string, create bool) (backend.Backend, error) {
	c := s3.ConfigFromEnv(loc, e.Getenv)
	c.CAFile = t.caFile(e)
	c.Insecure = t.insecure
	if v := e.Getenv("BULWARK_S3_RETENTION"); v != "" {
		d, err := parseDays(v)
		if err != nil {
			return nil, usageError("BULWARK_S3_RETENTION=%q: %v (want a duration such as 40d or 960h)", v, err)
		}
		c.Retention = d
	}
	if v := e.Getenv("BULWARK_S3_LOCK_MODE"); v != "" {
		c.Mode = s3.Mode(strings.ToUpper(v))
		if c.Mode != s3.Compliance && c.Mode != s3.Governance {
			return nil, usageError("BULWARK_S3_LOCK_MODE=%q: want COMPLIANCE or GOVERNANCE", v)
		}
	}
	if _, err := s3.ParseLocation(loc); err != nil {
		return nil, usageError("%v", err)
	}
	b, err := s3.OpenRetrying(ctx, c, create, retry.DefaultPolicy)
	if err != nil {
		if !create && errors.Is(err, backend.ErrNotExist) {
			return nil, fmt.Errorf("repository %s: %w", loc, err)
		}
		return nil, err
	}
	return b, nil
}

// parseDays parses a Go duration or a number of days ("30d").
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 || days > 36500 {
			return 0, errors.New("not a number of days from 1 to 36500")
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, errors.New("not positive")
	}
	return d, nil
}
