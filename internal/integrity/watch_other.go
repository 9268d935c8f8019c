//go:build !linux

package integrity

import (
	"context"
	"errors"
)

// Watch needs Linux's inotify; elsewhere it fails at once.
func Watch(ctx context.Context, p Policy, baseline []Entry, o WatchOptions) error {
	return errors.New("integrity watch needs Linux (inotify); run integrity check on a schedule instead")
}
