//go:build !linux

package vault

import (
	"errors"
	"os"
)

// renameNoReplace is unsupported here: Save then fails rather than risk
// replacing an object.
func renameNoReplace(oldname, newname string) error {
	return &os.LinkError{Op: "renameat2", Old: oldname, New: newname, Err: errors.ErrUnsupported}
}

// startWriteback does nothing here; the upload's fsync does all the work.
func startWriteback(*os.File, int64, int64) {}
