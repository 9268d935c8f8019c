//go:build !linux

package local

import (
	"errors"
	"os"
)

// renameNoReplace is only available on Linux; elsewhere Save relies on
// hard links.
func renameNoReplace(oldname, newname string) error {
	return &os.LinkError{Op: "renameat2", Old: oldname, New: newname, Err: errors.ErrUnsupported}
}
