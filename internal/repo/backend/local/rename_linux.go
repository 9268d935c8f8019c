package local

import (
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames oldname to newname, failing with EEXIST if
// newname exists (renameat2 with RENAME_NOREPLACE, Linux 3.15 and later;
// EINVAL if the file system does not support the flag).
func renameNoReplace(oldname, newname string) error {
	if err := unix.Renameat2(unix.AT_FDCWD, oldname, unix.AT_FDCWD, newname, unix.RENAME_NOREPLACE); err != nil {
		return &os.LinkError{Op: "renameat2", Old: oldname, New: newname, Err: err}
	}
	return nil
}
