// Package fsmeta reads file-system metadata with few system calls: a
// directory listed with raw getdents64 and its entries lstat'ed relative to
// the directory's descriptor, and extended attributes. The backup archiver
// and the integrity scanner both walk whole trees this way; see OpenDir for
// the measured difference to os.ReadDir and os.Lstat.
package fsmeta

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// direntBufs holds getdents buffers: 32 KiB take a directory of about 800
// entries in one call (os.ReadDir reads 8 KiB at a time).
var direntBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// OpenDir opens path and lists its entries' names (without "." and ".."),
// sorted by bytes; the caller closes fd, which it uses to lstat the entries
// with fstatat: looked up by name in the directory instead of by the full
// path from the root. It reads with raw open and getdents64: os.Open and
// ReadDir cost five more system calls per directory (fcntl and a failed
// epoll_ctl) and an allocated DirEntry per entry, and an unchanged re-run
// of a backup, or an integrity check, is mostly listing and lstat. O_NOFOLLOW: the caller found a
// directory with lstat, and a symlink put in its place since is not
// followed.
func OpenDir(path string) (fd int, names []string, err error) {
	for {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return -1, nil, fmt.Errorf("open: %w", err)
	}
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	for {
		n, err := unix.Getdents(fd, *bp)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			return -1, nil, fmt.Errorf("getdents: %w", err)
		}
		if n <= 0 {
			break
		}
		if names, err = parseDirents(names, (*bp)[:n]); err != nil {
			unix.Close(fd)
			return -1, nil, err
		}
	}
	slices.Sort(names)
	return fd, names, nil
}

// syscall.Stat_t and unix.Stat_t are both the kernel's struct stat,
// generated from the same header; fail the build if their sizes differ.
var (
	_ [unsafe.Sizeof(unix.Stat_t{}) - unsafe.Sizeof(syscall.Stat_t{})]byte
	_ [unsafe.Sizeof(syscall.Stat_t{}) - unsafe.Sizeof(unix.Stat_t{})]byte
)

// LstatAt is lstat(2) of name in the directory fd, into the syscall form
// os.FileInfo.Sys holds.
func LstatAt(fd int, name string, st *syscall.Stat_t) error {
	for {
		err := unix.Fstatat(fd, name, (*unix.Stat_t)(unsafe.Pointer(st)), unix.AT_SYMLINK_NOFOLLOW)
		if err != unix.EINTR {
			if err != nil {
				return fmt.Errorf("lstat: %w", err)
			}
			return nil
		}
	}
}

// parseDirents appends the names in a getdents64 buffer: records of d_ino
// (8 bytes), d_off (8), d_reclen (2), d_type (1) and a NUL-terminated name,
// each d_reclen bytes long.
func parseDirents(out []string, b []byte) ([]string, error) {
	const nameOff = 19
	for len(b) > 0 {
		if len(b) < nameOff {
			return out, fmt.Errorf("getdents: short record (%d bytes)", len(b))
		}
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen <= nameOff || reclen > len(b) {
			return out, fmt.Errorf("getdents: record length %d of %d bytes", reclen, len(b))
		}
		name := b[nameOff:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		if len(name) > 0 && !(len(name) == 1 && name[0] == '.') && !(len(name) == 2 && name[0] == '.' && name[1] == '.') {
			out = append(out, string(name))
		}
		b = b[reclen:]
	}
	return out, nil
}
