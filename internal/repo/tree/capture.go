// Capturing metadata from a Linux file system.
//
// NodeFromPath reads one entry's metadata from lstat(2) (never following a
// symlink), readlink(2) and the xattr calls. Content is left to the archiver,
// which reads the file and may ask DataExtents where its data is.
//
// Size is st_size for regular files and symlinks and 0 for every other type:
// a directory's st_size depends on the file system, not on anything a restore
// can reproduce. Times keep nanoseconds; atime is not recorded (reading a
// file for backup changes it). A time outside the years 0000 to 9999 (which
// the encoding cannot hold) is clamped to that range with a Warning. Rdev is the Linux dev_t as stat returns it
// (unix.Major/unix.Minor split it).
//
// Extended attributes are read from every namespace the caller can list:
// user., trusted. (root only), security. (including security.capability and
// SELinux labels) and system. (POSIX ACLs as system.posix_acl_access and
// system.posix_acl_default, in the kernel's xattr encoding). A file system
// without xattr support gives none; an attribute that vanishes between the
// listing and the read is skipped; one that cannot be read is skipped with a
// Warning.
//
// Sparse files. DataExtents asks the file system with lseek(2) SEEK_DATA and
// SEEK_HOLE where the data is. Holes shorter than MinHole are folded into the
// data around them: they save little space, and every hole cuts the chunk
// stream, so a file with many small holes (a database, a VM image with 4 KiB
// holes) would otherwise turn into many chunks below the chunker's minimum
// size, and shifting holes would defeat deduplication. The zeros inside the
// merged extents are read as data; SparseWriter makes them holes again on
// restore. A file system without SEEK_DATA support (EINVAL, EOPNOTSUPP)
// reports one extent covering the file.

package tree

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/bulwarkhq/bulwark/internal/fsmeta"
	"golang.org/x/sys/unix"
)

// CaptureOptions tune NodeFromPath.
type CaptureOptions struct {
	// Names resolves owners to names. Nil records no User or Group.
	Names *NameCache
	// NoXattrs skips extended attributes.
	NoXattrs bool
	// Previous, when set, is this entry as an earlier snapshot recorded it.
	// If type, inode, device and change time all match, its extended
	// attributes are taken from Previous instead of read: setting or
	// removing an attribute updates the change time, so they cannot differ.
	// This saves one system call per unchanged entry.
	Previous *Node
}

// NodeFromPath captures the metadata of the entry at path, called name in
// its tree (the base of path when name is empty). fi is the entry's Lstat
// result, or nil to have NodeFromPath call Lstat. Content is not filled.
//
// The error is a Warning (see IsWarning) when the node is complete except
// for extended attributes that could not be read; the node is valid then.
func NodeFromPath(path, name string, fi os.FileInfo, opts CaptureOptions) (Node, error) {
	if fi == nil {
		var err error
		if fi, err = os.Lstat(path); err != nil {
			return Node{}, err
		}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Node{}, fmt.Errorf("capture %q: no stat data in %T", path, fi.Sys())
	}
	return NodeFromStat(path, name, st, opts)
}

// NodeFromStat is NodeFromPath for a caller that has the entry's lstat
// result as a Stat_t (the archiver stats entries relative to their
// directory, with fstatat). path is still used for readlink and xattrs.
func NodeFromStat(path, name string, st *syscall.Stat_t, opts CaptureOptions) (Node, error) {
	if name == "" {
		name = filepath.Base(path)
	}
	if err := checkName(name); err != nil {
		return Node{}, fmt.Errorf("capture %q: %w", path, err)
	}
	n := Node{
		Name:       name,
		Mode:       st.Mode & 0o7777,
		UID:        st.Uid,
		GID:        st.Gid,
		ModTime:    time.Unix(st.Mtim.Sec, st.Mtim.Nsec).UTC(),
		ChangeTime: time.Unix(st.Ctim.Sec, st.Ctim.Nsec).UTC(),
		Inode:      st.Ino,
		Device:     st.Dev,
		Links:      uint64(st.Nlink),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.Type, n.Size = TypeFile, uint64(st.Size)
	case unix.S_IFDIR:
		n.Type = TypeDir
	case unix.S_IFLNK:
		n.Type, n.Size = TypeSymlink, uint64(st.Size)
		target, err := os.Readlink(path)
		if err != nil {
			return Node{}, fmt.Errorf("capture %q: %w", path, err)
		}
		n.Target = target
	case unix.S_IFIFO:
		n.Type = TypeFIFO
	case unix.S_IFCHR:
		n.Type, n.Rdev = TypeCharDev, st.Rdev
	case unix.S_IFBLK:
		n.Type, n.Rdev = TypeBlockDev, st.Rdev
	case unix.S_IFSOCK:
		n.Type = TypeSocket
	default:
		return Node{}, fmt.Errorf("capture %q: unknown file type %#o", path, st.Mode&unix.S_IFMT)
	}
	if opts.Names != nil {
		n.User = opts.Names.User(n.UID)
		n.Group = opts.Names.Group(n.GID)
	}
	var warns []error
	for _, t := range []*time.Time{&n.ModTime, &n.ChangeTime} {
		if c := clampTime(*t); !c.Equal(*t) {
			warns = append(warns, &Warning{Path: path, Op: "time " + t.String(), Err: errors.New("outside years 0000 to 9999, clamped")})
			*t = c
		}
	}
	if pv := opts.Previous; !opts.NoXattrs && pv != nil && pv.Type == n.Type && pv.Inode == n.Inode &&
		pv.Device == n.Device && pv.ChangeTime.Equal(n.ChangeTime) {
		n.Xattrs = pv.Xattrs
	} else if !opts.NoXattrs {
		xs, warn, err := readXattrs(path)
		if err != nil {
			return Node{}, fmt.Errorf("capture %q: %w", path, err)
		}
		n.Xattrs = xs
		warns = append(warns, warn)
	}
	return n, errors.Join(warns...)
}

// clampTime brings t into the years the encoding can hold (some file
// systems store 64-bit seconds).
func clampTime(t time.Time) time.Time {
	lo := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC)
	hi := time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
	switch {
	case t.Before(lo):
		return lo
	case t.After(hi):
		return hi
	}
	return t
}

// readXattrs returns path's extended attributes sorted by name. Attributes
// that cannot be read are left out and reported in warn.
func readXattrs(path string) (xs []Xattr, warn, err error) {
	names, err := listXattrs(path)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("llistxattr: %w", err)
	}
	var warns []error
	for _, name := range names {
		v, err := fsmeta.Lgetxattr(path, name)
		switch {
		case errors.Is(err, unix.ENODATA):
			continue // removed since the listing
		case err != nil:
			warns = append(warns, &Warning{Path: path, Op: "lgetxattr " + name, Err: err})
			continue
		}
		if len(name) > MaxXattrName || len(v) > MaxXattrValue {
			warns = append(warns, &Warning{Path: path, Op: "xattr " + name, Err: errors.New("beyond the format's limits")})
			continue
		}
		xs = append(xs, Xattr{Name: name, Value: v})
	}
	if len(xs) > MaxXattrs {
		warns = append(warns, &Warning{Path: path, Op: "xattrs", Err: fmt.Errorf("%d, keeping the first %d", len(xs), MaxXattrs)})
		xs = xs[:MaxXattrs]
	}
	return xs, errors.Join(warns...), nil
}

// listXattrs returns the sorted attribute names of path (not following a
// symlink), retrying while the list grows between the two calls.
func listXattrs(path string) ([]string, error) {
	return fsmeta.XattrNames(pathOps(path).list)
}

// Extent is a byte range [Off, Off+Len) of a file.
type Extent struct {
	Off, Len int64
}

// MinHole is the shortest hole DataExtents reports; shorter ones are
// merged into the data extents around them (see the file comment).
const MinHole = 64 << 10

// DataExtents returns the ranges of f's first size bytes that hold data, in
// order, separated by holes of at least MinHole bytes. A file that is one
// hole gives no extents. It uses the file's descriptor directly and leaves
// the file offset where it was.
func DataExtents(f *os.File, size int64) ([]Extent, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("data extents of %q: %w", f.Name(), err)
	}
	var ext []Extent
	var serr error
	if err := rc.Control(func(fd uintptr) { ext, serr = DataExtentsFd(int(fd), f.Name(), size) }); err != nil {
		return nil, fmt.Errorf("data extents of %q: %w", f.Name(), err)
	}
	return ext, serr
}

// DataExtentsFd is DataExtents for a raw descriptor (name is for messages).
func DataExtentsFd(fd int, name string, size int64) ([]Extent, error) {
	if size < 0 {
		return nil, fmt.Errorf("data extents of %q: negative size %d", name, size)
	}
	raw, err := seekExtents(fd, size)
	if err != nil {
		return nil, fmt.Errorf("data extents of %q: %w", name, err)
	}
	return mergeExtents(raw, size), nil
}

// seekExtents lists the data extents below size with SEEK_DATA/SEEK_HOLE.
func seekExtents(fd int, size int64) (ext []Extent, err error) {
	cur, err := unix.Seek(fd, 0, unix.SEEK_CUR)
	if err != nil {
		return nil, err
	}
	defer func() {
		if _, serr := unix.Seek(fd, cur, unix.SEEK_SET); serr != nil && err == nil {
			err = serr
		}
	}()
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // nothing but hole from off on
		}
		if err != nil {
			if off == 0 && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)) {
				return []Extent{{0, size}}, nil
			}
			return nil, fmt.Errorf("seek data from %d: %w", off, err)
		}
		if data >= size {
			break
		}
		data = max(data, off)
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil && !errors.Is(err, unix.ENXIO) {
			return nil, fmt.Errorf("seek hole from %d: %w", data, err)
		}
		if err != nil || hole <= data || hole > size {
			hole = size // the file changed under us: call the rest data
		}
		ext = append(ext, Extent{data, hole - data})
		off = hole
	}
	return ext, nil
}

// mergeExtents folds holes shorter than MinHole, including those at the
// start and end of the file, into the neighbouring data extents.
func mergeExtents(raw []Extent, size int64) []Extent {
	var out []Extent
	for _, e := range raw {
		if len(out) == 0 {
			if e.Off < MinHole {
				e.Len += e.Off
				e.Off = 0
			}
			out = append(out, e)
			continue
		}
		last := &out[len(out)-1]
		if end := last.Off + last.Len; e.Off-end < MinHole {
			last.Len = e.Off + e.Len - last.Off
			continue
		}
		out = append(out, e)
	}
	if len(out) > 0 {
		last := &out[len(out)-1]
		if end := last.Off + last.Len; size-end < MinHole {
			last.Len = size - last.Off
		}
	}
	return out
}
