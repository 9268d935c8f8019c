// Restoring metadata to a Linux file system.
//
// A restorer walks a tree depth first. For each node it creates the entry
// (CreateSpecial for everything but regular files, whose content the
// restorer writes through a SparseWriter, and hard links, which it makes
// with link(2) for names sharing dev and inode), and then calls
// RestoreMetadata. A directory's RestoreMetadata must come after all its
// children are restored: creating them changes the directory's mtime, and
// its final mode may forbid writing into it.
//
// RestoreMetadata applies, in this order:
//
//  1. Owner, with lchown(2), only when running as root. A name recorded in
//     the node wins when it exists on this host, else the numeric id, as
//     GNU tar does (restic always uses the numeric ids); NumericIDs turns
//     names off. chown comes first because it clears setuid, setgid and
//     security.capability.
//  2. Extended attributes, with lsetxattr(2); attributes on the entry that
//     the node does not list are removed, except in the security. namespace
//     (other than security.capability), which belongs to the security
//     module. They come before the mode so that a non-root restore can
//     still write user.* attributes of a read-only file. The order does not
//     change the result: a POSIX access ACL sets the mode's group bits to its
//     mask, the following chmod sets them to the recorded bits, which are
//     that same mask; chmod keeps security.capability.
//  3. Mode (all 12 bits), with chmod(2), for everything but symlinks. If the
//     owner could not be set, setuid and setgid are dropped rather than
//     granted to the wrong owner.
//  4. Times, last, with utimensat(2) and AT_SYMLINK_NOFOLLOW, to the
//     nanosecond. The format holds no atime; it is left alone (UTIME_OMIT).
//
// Failures that only mean "this system cannot hold that" are Warnings
// (IsWarning): ENOTSUP/EOPNOTSUPP and EPERM/EACCES from xattr calls. Other
// failures are errors; every step is still attempted, and all problems come
// back joined.
//
// Sockets are recreated with mknod(2) S_IFSOCK, as GNU tar and rsync do: the
// entry then keeps its name, owner, mode and times, though nothing listens
// on it. Devices need CAP_MKNOD; without it CreateSpecial fails with EPERM.
// New entries are created with owner-only permissions (0600, directories
// 0700) until RestoreMetadata sets the recorded mode.
//
// SparseWriter keeps restored files sparse: it writes a file front to back
// but seeks over every aligned block of zeros instead of writing it, writes
// nothing for explicit holes (content refs "z:N"), and Finish sets the final
// length so that a trailing hole exists.

package tree

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"unsafe"

	"github.com/bulwarkhq/bulwark/internal/fsmeta"
	"golang.org/x/sys/unix"
)

// CreateSpecial creates the entry at path for a node that is not a regular
// file: a directory (an existing directory is accepted), symlink, fifo,
// character or block device, or socket. The entry gets no metadata beyond
// owner-only permissions; call RestoreMetadata for that.
func CreateSpecial(path string, n Node) error {
	var err error
	switch n.Type {
	case TypeDir:
		err = unix.Mkdir(path, 0o700)
		if errors.Is(err, unix.EEXIST) {
			if fi, lerr := os.Lstat(path); lerr == nil && fi.IsDir() {
				return nil
			}
		}
	case TypeSymlink:
		if n.Target == "" {
			return fmt.Errorf("create %q: symlink without target", path)
		}
		err = unix.Symlink(n.Target, path)
	case TypeFIFO:
		err = unix.Mkfifo(path, 0o600)
	case TypeCharDev:
		err = unix.Mknod(path, unix.S_IFCHR|0o600, int(n.Rdev))
	case TypeBlockDev:
		err = unix.Mknod(path, unix.S_IFBLK|0o600, int(n.Rdev))
	case TypeSocket:
		err = unix.Mknod(path, unix.S_IFSOCK|0o600, 0)
	case TypeFile:
		return fmt.Errorf("create %q: a regular file is created with its content, not by CreateSpecial", path)
	default:
		return fmt.Errorf("create %q: unknown node type %q", path, n.Type)
	}
	if err != nil {
		return fmt.Errorf("create %s %q: %w", n.Type, path, err)
	}
	return nil
}

// RestoreOptions tune RestoreMetadataWith.
type RestoreOptions struct {
	// AsRoot sets owners. Without it the entry keeps the caller's ids.
	AsRoot bool
	// Names resolves the node's User and Group on this host. Nil means
	// uncached lookups; pass one cache to a whole restore.
	Names *NameCache
	// NumericIDs ignores User and Group and uses UID and GID.
	NumericIDs bool
	// NoXattrs leaves extended attributes alone.
	NoXattrs bool
}

// RestoreMetadata sets owner (if asRoot), extended attributes, mode and
// times of the entry at path from n, never following a symlink at path. For
// a directory, call it after the directory's children are restored. See the
// file comment for the order and for which failures are Warnings.
func RestoreMetadata(path string, n Node, asRoot bool) error {
	return RestoreMetadataWith(path, n, RestoreOptions{AsRoot: asRoot})
}

// RestoreMetadataWith is RestoreMetadata with options.
func RestoreMetadataWith(path string, n Node, opts RestoreOptions) error {
	return restoreMetadata(pathOps(path), path, n, opts)
}

// RestoreFileMetadata is RestoreMetadataWith for a regular file the caller
// holds open as fd (named path in messages): the same steps through
// fchown, fsetxattr, fchmod and futimens, which need no path lookup. The
// restorer uses it for a file it has just written in one piece.
func RestoreFileMetadata(fd int, path string, n Node, opts RestoreOptions) error {
	if n.Type != TypeFile {
		return fmt.Errorf("restore %q: RestoreFileMetadata takes regular files, not %s", path, n.Type)
	}
	return restoreMetadata(fdOps(fd), path, n, opts)
}

// metaOps are the system calls that set an entry's metadata: by path
// (never following a symlink) or on an open file.
type metaOps interface {
	chown(uid, gid int) error
	chmod(mode uint32) error
	setTimes(ts []unix.Timespec) error
	list(dest []byte) (int, error)
	set(name string, value []byte) error
	remove(name string) error
	prefix() string // "l" or "f", for operation names in messages
}

type pathOps string

func (p pathOps) chown(uid, gid int) error { return unix.Lchown(string(p), uid, gid) }
func (p pathOps) chmod(mode uint32) error  { return unix.Chmod(string(p), mode) }
func (p pathOps) setTimes(ts []unix.Timespec) error {
	return unix.UtimesNanoAt(unix.AT_FDCWD, string(p), ts, unix.AT_SYMLINK_NOFOLLOW)
}
func (p pathOps) list(dest []byte) (int, error)   { return unix.Llistxattr(string(p), dest) }
func (p pathOps) set(name string, v []byte) error { return unix.Lsetxattr(string(p), name, v, 0) }
func (p pathOps) remove(name string) error        { return unix.Lremovexattr(string(p), name) }
func (pathOps) prefix() string                    { return "l" }

type fdOps int

func (f fdOps) chown(uid, gid int) error { return unix.Fchown(int(f), uid, gid) }
func (f fdOps) chmod(mode uint32) error  { return unix.Fchmod(int(f), mode) }

// setTimes is futimens(3): utimensat(2) on the descriptor with a NULL path.
func (f fdOps) setTimes(ts []unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(f), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
func (f fdOps) list(dest []byte) (int, error)   { return unix.Flistxattr(int(f), dest) }
func (f fdOps) set(name string, v []byte) error { return unix.Fsetxattr(int(f), name, v, 0) }
func (f fdOps) remove(name string) error        { return unix.Fremovexattr(int(f), name) }
func (fdOps) prefix() string                    { return "f" }

func restoreMetadata(ops metaOps, path string, n Node, opts RestoreOptions) error {
	var errs []error
	mode := n.Mode & 0o7777
	if opts.AsRoot {
		uid, gid := owner(n, opts)
		if err := ops.chown(int(uid), int(gid)); err != nil {
			errs = append(errs, fmt.Errorf("restore %q: %schown %d:%d: %w", path, ops.prefix(), uid, gid, err))
			mode &^= unix.S_ISUID | unix.S_ISGID
		}
	}
	if !opts.NoXattrs {
		errs = append(errs, restoreXattrs(ops, path, n.Xattrs)...)
	}
	if n.Type != TypeSymlink {
		if err := ops.chmod(mode); err != nil {
			errs = append(errs, fmt.Errorf("restore %q: chmod %#o: %w", path, mode, err))
		}
	}
	ts := []unix.Timespec{
		{Nsec: unix.UTIME_OMIT},
		{Sec: n.ModTime.Unix(), Nsec: int64(n.ModTime.Nanosecond())},
	}
	if err := ops.setTimes(ts); err != nil {
		errs = append(errs, fmt.Errorf("restore %q: utimensat: %w", path, err))
	}
	return errors.Join(errs...)
}

func owner(n Node, opts RestoreOptions) (uid, gid uint32) {
	uid, gid = n.UID, n.GID
	if opts.NumericIDs {
		return uid, gid
	}
	names := opts.Names
	if names == nil {
		names = NewNameCache()
	}
	if id, ok := names.UID(n.User); ok {
		uid = id
	}
	if id, ok := names.GID(n.Group); ok {
		gid = id
	}
	return uid, gid
}

// restoreXattrs makes the entry's attributes those of want (see the file
// comment for what is kept).
func restoreXattrs(ops metaOps, path string, want []Xattr) []error {
	var errs []error
	fail := func(op string, err error) {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			errs = append(errs, &Warning{Path: path, Op: op, Err: err})
		} else {
			errs = append(errs, fmt.Errorf("restore %q: %s: %w", path, op, err))
		}
	}
	l := ops.prefix()
	have, err := fsmeta.XattrNames(ops.list)
	if err != nil && !errors.Is(err, unix.ENOTSUP) {
		fail(l+"listxattr", err)
	}
	for _, name := range have {
		if strings.HasPrefix(name, "security.") && name != "security.capability" {
			continue
		}
		if slices.ContainsFunc(want, func(x Xattr) bool { return x.Name == name }) {
			continue
		}
		if err := ops.remove(name); err != nil && !errors.Is(err, unix.ENODATA) {
			fail(l+"removexattr "+name, err)
		}
	}
	for _, x := range want {
		if err := ops.set(x.Name, x.Value); err != nil {
			fail(l+"setxattr "+x.Name, err)
		}
	}
	return errs
}

// SparseBlock is the granularity at which SparseWriter detects zeros.
const SparseBlock = 4096

// SparseWriter writes a file so that runs of zeros become holes. Every
// SparseBlock-aligned block of zeros that lies beyond all data written so
// far is skipped instead of written; blocks of zeros below that point are
// written, so writing in any order is correct and writing front to back (the
// restorer's case) keeps every zero block a hole. It is not safe for
// concurrent use.
type SparseWriter struct {
	f    *os.File
	end  int64 // no data has been written at or beyond end
	zero []byte
}

// NewSparseWriter truncates f to zero length and returns a writer for it.
func NewSparseWriter(f *os.File) (*SparseWriter, error) {
	if err := f.Truncate(0); err != nil {
		return nil, fmt.Errorf("sparse writer: %w", err)
	}
	return &SparseWriter{f: f, zero: make([]byte, SparseBlock)}, nil
}

// WriteAt writes p at off, skipping zero blocks as described on
// SparseWriter. It implements io.WriterAt.
func (w *SparseWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("sparse write %q: negative offset %d", w.f.Name(), off)
	}
	limit := w.end // zero blocks at or beyond limit need not be written
	run := -1      // start in p of pending data, or -1
	flush := func(to int) error {
		if run < 0 {
			return nil
		}
		if _, err := w.f.WriteAt(p[run:to], off+int64(run)); err != nil {
			return fmt.Errorf("sparse write %q: %w", w.f.Name(), err)
		}
		w.end = max(w.end, off+int64(to))
		run = -1
		return nil
	}
	for i := 0; i < len(p); {
		o := off + int64(i)
		j := min(len(p), i+int(SparseBlock-o%SparseBlock))
		if o >= limit && bytes.Equal(p[i:j], w.zero[:j-i]) {
			if err := flush(i); err != nil {
				return run, err
			}
		} else if run < 0 {
			run = i
		}
		i = j
	}
	if err := flush(len(p)); err != nil {
		return run, err
	}
	return len(p), nil
}

// WriteHole records n zero bytes at off (a "z:N" content ref). Beyond all
// data written so far it writes nothing; over earlier data it punches a
// hole, or writes zeros where the file system cannot punch.
func (w *SparseWriter) WriteHole(off, n int64) error {
	if off < 0 || n <= 0 || off > (1<<63-1)-n {
		return fmt.Errorf("sparse hole %q: bad range %d+%d", w.f.Name(), off, n)
	}
	if off >= w.end {
		return nil
	}
	length := min(n, w.end-off)
	rc, err := w.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("sparse hole %q: %w", w.f.Name(), err)
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		ferr = unix.Fallocate(int(fd), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
	}); err != nil {
		return fmt.Errorf("sparse hole %q: %w", w.f.Name(), err)
	}
	if ferr == nil {
		return nil
	}
	if !errors.Is(ferr, unix.EOPNOTSUPP) && !errors.Is(ferr, unix.ENOSYS) {
		return fmt.Errorf("sparse hole %q: punch %d+%d: %w", w.f.Name(), off, length, ferr)
	}
	for length > 0 {
		k := min(length, int64(len(w.zero)))
		if _, err := w.f.WriteAt(w.zero[:k], off); err != nil {
			return fmt.Errorf("sparse hole %q: %w", w.f.Name(), err)
		}
		off += k
		length -= k
	}
	return nil
}

// Finish sets the file's length to size, which leaves a trailing hole when
// the file ends in zeros. It does not close or sync the file.
func (w *SparseWriter) Finish(size int64) error {
	if err := w.f.Truncate(size); err != nil {
		return fmt.Errorf("sparse finish %q: %w", w.f.Name(), err)
	}
	w.end = min(w.end, size)
	return nil
}
