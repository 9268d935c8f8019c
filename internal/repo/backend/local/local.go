// Package local stores a repository in a directory of a local (or locally
// mounted) file system. It implements backend.Backend.
//
// Layout (see docs/repository-format.md):
//
//	config
//	keys/<name>  index/<name>  snapshots/<name>  locks/<name>
//	data/<id[0:2]>/<id>  parity/<id[0:2]>/<id>
//
// Files are created 0600 and directories 0700.
//
// Writes. Save writes the object to a temporary file ".tmp-<random>" in the
// directory of its type (data/, index/, ...; created with O_EXCL), fsyncs
// it, then links it to its final name (in its shard, for data and parity)
// with link(2), which fails with EEXIST instead of replacing an existing
// file, so of several processes saving one name exactly one wins; it then
// removes the temporary name and fsyncs the directory. If the file system
// has no hard links (link fails with EPERM, ENOTSUP or ENOSYS, e.g. vfat or
// some FUSE and SMB mounts), Save falls back to renameat2(RENAME_NOREPLACE),
// which is just as atomic and exclusive. If that is unsupported too, Save
// fails with an error saying so rather than risk replacing an object.
// Replace writes a temporary file the same way and rename(2)s it over the
// final name. Stage (backend.Stager) is Save in two steps: the temporary
// file is written piece by piece, and Commit names it. The temporary file
// and the object are on one file system: a shard directory mounted
// elsewhere would fail the link with EXDEV. Any failure (a full disk
// included) removes the temporary file, so nothing partial is left;
// readers skip dot files anyway, so a temporary file left by a crash is
// invisible until CleanTemp removes it.
//
// Directories. Create makes the root and the six type directories eagerly
// and the 256 shard directories under data/ and parity/ lazily, on the first
// Save into each. Lazily because an empty repository then stays small, List
// does not visit hundreds of empty directories, and a copy made by a tool
// that drops empty directories stays valid; Save has to handle a missing
// shard directory then anyway. Save creates only that one missing level: it
// never recreates a missing type directory or root, so a repository on an
// unmounted disk fails loudly instead of being rebuilt on the mount point.
//
// Durability. A new file is fsynced before it is linked into place, and the
// directory is fsynced after every link, rename, remove and mkdir. A
// directory fsync that the file system rejects as unsupported (EINVAL,
// ENOTSUP) is ignored, as it has nothing to flush.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
)

const (
	fileMode = 0o600
	dirMode  = 0o700

	// tempPrefix starts the name of every in-flight write.
	tempPrefix = ".tmp-"

	// writeChunk is how much Save writes between checks of its context.
	writeChunk = 1 << 20
)

// Backend is a repository in a local directory. Its methods are safe for
// concurrent use, also by several processes.
type Backend struct {
	dir string // absolute path of the repository root

	// link and renameNoReplace are os.Link and renameat2(RENAME_NOREPLACE);
	// tests replace them to exercise the fallbacks.
	link            func(oldname, newname string) error
	renameNoReplace func(oldname, newname string) error
}

var _ backend.Backend = (*Backend)(nil)

func newBackend(dir string) *Backend {
	return &Backend{dir: dir, link: os.Link, renameNoReplace: renameNoReplace}
}

// dirTypes returns the types stored in a directory of their own: all but
// config.
func dirTypes() []backend.Type { return backend.Types()[1:] }

// Create makes a repository layout in dir and returns a backend for it.
// dir may be missing (it is created, with its parents), empty, or already
// hold a repository or a partly created one (only layout names and
// ".tmp-*" files in it): then Create only adds what is missing, and the
// caller's Save of the config object, which fails with ErrExists if there
// already is one, decides whether the repository is new. Any other non-empty
// directory is refused.
func Create(dir string) (*Backend, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local %s: create: %w", dir, err)
	}
	fail := func(format string, args ...any) (*Backend, error) {
		return nil, fmt.Errorf("local %s: create: "+format, append([]any{abs}, args...)...)
	}
	created := false
	switch err := os.Mkdir(abs, dirMode); {
	case err == nil:
		created = true
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(abs, dirMode); err != nil {
			return fail("%w", err)
		}
		created = true
	case errors.Is(err, fs.ErrExist):
		fi, err := os.Stat(abs)
		if err != nil {
			return fail("%w", err)
		}
		if !fi.IsDir() {
			return fail("not a directory")
		}
	default:
		return fail("%w", err)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return fail("%w", err)
	}
	for _, e := range entries {
		if !isLayoutName(e.Name()) && !strings.HasPrefix(e.Name(), tempPrefix) {
			return fail("directory is not empty and not a repository (found %q)", e.Name())
		}
	}
	for _, t := range dirTypes() {
		p := filepath.Join(abs, string(t))
		err := os.Mkdir(p, dirMode)
		if errors.Is(err, fs.ErrExist) {
			var fi fs.FileInfo
			if fi, err = os.Stat(p); err == nil && !fi.IsDir() {
				err = errors.New("exists and is not a directory")
			}
		}
		if err != nil {
			return fail("%s: %w", t, err)
		}
	}
	if err := syncDir(abs); err != nil {
		return fail("%w", err)
	}
	if created {
		if err := syncDir(filepath.Dir(abs)); err != nil {
			return fail("%w", err)
		}
	}
	return newBackend(abs), nil
}

func isLayoutName(name string) bool {
	if name == string(backend.ConfigFile) {
		return true
	}
	for _, t := range dirTypes() {
		if name == string(t) {
			return true
		}
	}
	return false
}

// Open returns a backend for the existing repository in dir. It writes
// nothing; it fails (matching backend.ErrNotExist) if dir has no config
// object.
func Open(dir string) (*Backend, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local %s: open: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("local %s: open: %w", abs, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("local %s: open: not a directory", abs)
	}
	fi, err = os.Stat(filepath.Join(abs, string(backend.ConfigFile)))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("local %s: open: not a repository: config: %w", abs, backend.ErrNotExist)
	case err != nil:
		return nil, fmt.Errorf("local %s: open: %w", abs, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("local %s: open: config is not a regular file", abs)
	}
	return newBackend(abs), nil
}

// Location returns the repository's absolute directory.
func (b *Backend) Location() string { return b.dir }

// Close does nothing; the backend holds no resources.
func (b *Backend) Close() error { return nil }

// path returns where h is stored. h must be valid.
func (b *Backend) path(h backend.Handle) string {
	switch {
	case h.Type == backend.ConfigFile:
		return filepath.Join(b.dir, string(backend.ConfigFile))
	case h.Type.Sharded():
		return filepath.Join(b.dir, string(h.Type), h.Name[:2], h.Name)
	default:
		return filepath.Join(b.dir, string(h.Type), h.Name)
	}
}

// check validates h and ctx before an operation op.
func check(ctx context.Context, op string, h backend.Handle) error {
	if err := h.Validate(); err != nil {
		return fmt.Errorf("%s %s: %w", op, h, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, h, err)
	}
	return nil
}

// Save stores data under h; see backend.Backend.
func (b *Backend) Save(ctx context.Context, h backend.Handle, data []byte) error {
	return b.SaveEarly(ctx, h, data, func() {})
}

// SaveEarly implements backend.EarlySaver: done is called once data is in
// the temp file, before the fsync.
func (b *Backend) SaveEarly(ctx context.Context, h backend.Handle, data []byte, done func()) error {
	release := sync.OnceFunc(done)
	defer release()
	if err := check(ctx, "save", h); err != nil {
		return err
	}
	s, err := b.stage(h.Type)
	if err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	err = writeAll(ctx, s.f, data)
	release()
	if err != nil {
		s.Abort()
		return fmt.Errorf("save %s: %w", h, err)
	}
	return s.Commit(ctx, h.Name)
}

// linkUnsupported reports whether err says the file system lacks the
// operation (rather than that the operation failed).
func linkUnsupported(err error) bool {
	return errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) ||
		errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) ||
		errors.Is(err, errors.ErrUnsupported)
}

// Replace overwrites or creates h; see backend.Backend.
func (b *Backend) Replace(ctx context.Context, h backend.Handle, data []byte) error {
	if err := check(ctx, "replace", h); err != nil {
		return err
	}
	s, err := b.stage(h.Type)
	if err != nil {
		return fmt.Errorf("replace %s: %w", h, err)
	}
	err = writeAll(ctx, s.f, data)
	var tmp string
	if err == nil {
		tmp, err = s.finish(ctx)
	}
	if err != nil {
		s.Abort()
		return fmt.Errorf("replace %s: %w", h, err)
	}
	final := b.path(h)
	if err := b.intoShard(h, func() error { return os.Rename(tmp, final) }); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", h, err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return fmt.Errorf("replace %s: %w", h, err)
	}
	return nil
}

// Stage implements backend.Stager: what is written goes to a temp file in
// the type's directory, which Commit fsyncs and links into place (in its
// shard) as Save does.
func (b *Backend) Stage(ctx context.Context, t backend.Type) (backend.Staged, error) {
	if !slices.Contains(backend.Types(), t) {
		return nil, fmt.Errorf("stage %s: %w", t, backend.ErrInvalidName)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("stage %s: %w", t, err)
	}
	s, err := b.stage(t)
	if err != nil {
		return nil, fmt.Errorf("stage %s: %w", t, err)
	}
	return s, nil
}

// staged is a write in progress: a temp file (mode 0600) in the directory
// of its type. f is nil once it is committed or aborted.
type staged struct {
	b   *Backend
	t   backend.Type
	f   *os.File
	tmp string
	err error // the first failed Write
}

// errFinished is the error of a Write or Commit after Commit or Abort.
var errFinished = errors.New("staged object already committed or aborted")

// stage creates the temp file of a write of type t.
func (b *Backend) stage(t backend.Type) (*staged, error) {
	dir := b.dir
	if t != backend.ConfigFile {
		dir = filepath.Join(b.dir, string(t))
	}
	f, err := os.CreateTemp(dir, tempPrefix+"*") // O_EXCL, mode 0600
	if err != nil {
		return nil, err
	}
	return &staged{b: b, t: t, f: f, tmp: f.Name()}, nil
}

func (s *staged) Write(p []byte) (int, error) {
	switch {
	case s.f == nil:
		return 0, fmt.Errorf("stage %s: %w", s.t, errFinished)
	case s.err != nil:
		return 0, s.err
	}
	n, err := s.f.Write(p)
	if err != nil {
		s.err = fmt.Errorf("stage %s: %w", s.t, err)
	}
	return n, s.err
}

// finish fsyncs and closes the temp file and returns its path; ctx is
// checked last, so that a cancelled write stores nothing. On error the
// temp file is removed.
func (s *staged) finish(ctx context.Context) (string, error) {
	if s.f == nil {
		return "", errFinished
	}
	f := s.f
	s.f = nil
	err := s.err
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = ctx.Err() // last chance to cancel before the object appears
	}
	if err != nil {
		_ = os.Remove(s.tmp)
		return "", err
	}
	return s.tmp, nil
}

// Commit implements backend.Staged: the temp file is fsynced and linked
// under its name without replacing an existing object (a hard link, or
// renameat2(RENAME_NOREPLACE) where the file system has no hard links),
// and the directory is fsynced.
func (s *staged) Commit(ctx context.Context, name string) error {
	h := backend.Handle{Type: s.t, Name: name}
	if err := check(ctx, "save", h); err != nil {
		s.Abort()
		return err
	}
	tmp, err := s.finish(ctx)
	if err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	b := s.b
	final := b.path(h)
	err = b.intoShard(h, func() error { return linkNew(b.link, b.renameNoReplace, tmp, final) })
	if err != nil {
		_ = os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("save %s: %w", h, backend.ErrExists)
		}
		return fmt.Errorf("save %s: %w", h, err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return fmt.Errorf("save %s: %w", h, err)
	}
	return nil
}

// LinkNew puts the file tmp at final without ever replacing a file there:
// with a hard link, after which tmp is removed, or where the file system
// has no hard links with renameat2(RENAME_NOREPLACE). An existing final
// fails it with an error matching fs.ErrExist; a file system with neither
// primitive with an error saying so. On error tmp is left for the caller
// to remove. The vault's object store places its uploads with it too.
func LinkNew(tmp, final string) error { return linkNew(os.Link, renameNoReplace, tmp, final) }

// linkNew is LinkNew with the link and rename functions given (tests
// replace them to exercise the fallbacks).
func linkNew(link, rename func(oldname, newname string) error, tmp, final string) error {
	err := link(tmp, final)
	if err == nil {
		// The object is in place. A temp name that cannot be removed is
		// only clutter for CleanTemp, not a failed Save.
		_ = os.Remove(tmp)
		return nil
	}
	if !linkUnsupported(err) {
		return err
	}
	err = rename(tmp, final)
	if linkUnsupported(err) || errors.Is(err, syscall.EINVAL) {
		err = fmt.Errorf("file system supports neither hard links nor renameat2(RENAME_NOREPLACE), "+
			"so the object cannot be saved without risking overwriting another: %w", err)
	}
	return err
}

// Abort implements backend.Staged.
func (s *staged) Abort() {
	if s.f == nil {
		return
	}
	_ = s.f.Close()
	_ = os.Remove(s.tmp)
	s.f = nil
}

// intoShard runs place, which puts a file at h's path, and when h's shard
// directory is missing creates it and runs place again.
func (b *Backend) intoShard(h backend.Handle, place func() error) error {
	err := place()
	if errors.Is(err, fs.ErrNotExist) && h.Type.Sharded() {
		if err = b.mkShard(filepath.Dir(b.path(h))); err == nil {
			err = place()
		}
	}
	return err
}

func writeAll(ctx context.Context, f *os.File, data []byte) error {
	for len(data) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(len(data), writeChunk)
		if _, err := f.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// mkShard creates the shard directory dir (one level: its type directory
// must exist) and makes the new entry durable.
func (b *Backend) mkShard(dir string) error {
	err := os.Mkdir(dir, dirMode)
	if errors.Is(err, fs.ErrExist) {
		return nil // a concurrent Save created it
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// Load returns a range of h; see backend.Backend.
func (b *Backend) Load(ctx context.Context, h backend.Handle, offset int64, length int) ([]byte, error) {
	return b.load(ctx, h, offset, length, nil)
}

// LoadInto reads length bytes of h at offset into buf; see
// backend.LoaderInto.
func (b *Backend) LoadInto(ctx context.Context, h backend.Handle, offset int64, length int, buf []byte) ([]byte, error) {
	if length <= 0 {
		return b.Load(ctx, h, offset, length)
	}
	return b.load(ctx, h, offset, length, buf)
}

// load reads a range of h into buf, or into a new slice when buf is too
// small.
func (b *Backend) load(ctx context.Context, h backend.Handle, offset int64, length int, buf []byte) ([]byte, error) {
	if err := check(ctx, "load", h); err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("load %s: invalid range: offset %d, length %d", h, offset, length)
	}
	f, err := openRange(b.path(h))
	if err != nil {
		return nil, b.opError("load", h, err)
	}
	defer f.Close()
	size, regular, err := f.stat()
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", h, err)
	}
	if !regular {
		return nil, fmt.Errorf("load %s: not a regular file", h)
	}
	n := int64(length)
	if length == 0 {
		n = size - offset
	}
	if offset > size || n > size-offset {
		return nil, fmt.Errorf("load %s: range %d+%d beyond size %d: %w", h, offset, n, size, io.ErrUnexpectedEOF)
	}
	if int64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := f.ReadAt(buf, offset); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the file shrank under us
		}
		return nil, fmt.Errorf("load %s: %w", h, err)
	}
	return buf, nil
}

// rangeFile is a file open for load (load_linux.go, load_other.go).
type rangeFile interface {
	io.ReaderAt
	io.Closer
	stat() (size int64, regular bool, err error)
}

// Stat returns h's size; see backend.Backend.
func (b *Backend) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := check(ctx, "stat", h); err != nil {
		return backend.FileInfo{}, err
	}
	fi, err := os.Stat(b.path(h))
	if err != nil {
		return backend.FileInfo{}, b.opError("stat", h, err)
	}
	if !fi.Mode().IsRegular() {
		return backend.FileInfo{}, fmt.Errorf("stat %s: not a regular file", h)
	}
	return backend.FileInfo{Name: h.Name, Size: fi.Size()}, nil
}

// Remove deletes h; see backend.Backend.
func (b *Backend) Remove(ctx context.Context, h backend.Handle) error {
	if err := check(ctx, "remove", h); err != nil {
		return err
	}
	p := b.path(h)
	if err := os.Remove(p); err != nil {
		return b.opError("remove", h, err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("remove %s: %w", h, err)
	}
	return nil
}

// opError turns a missing file into backend.ErrNotExist.
func (b *Backend) opError(op string, h backend.Handle, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %s: %w", op, h, backend.ErrNotExist)
	}
	return fmt.Errorf("%s %s: %w", op, h, err)
}

// List reports the objects of type t; see backend.Backend. A missing type
// directory is an error (the repository is damaged or not mounted), not an
// empty list.
func (b *Backend) List(ctx context.Context, t backend.Type, fn func(backend.FileInfo) error) error {
	if !t.Valid() {
		return fmt.Errorf("list %q: %w", string(t), backend.ErrInvalidName)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	if t == backend.ConfigFile {
		fi, err := os.Lstat(b.path(backend.Handle{Type: t}))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", t, err)
		}
		name := ""
		if fi.IsDir() {
			name = "/" // foreign: a directory where the config file should be
		}
		return fn(backend.FileInfo{Name: name, Size: fi.Size()})
	}
	top := filepath.Join(b.dir, string(t))
	entries, err := os.ReadDir(top)
	if err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		if t.Sharded() && e.IsDir() && isShard(name) {
			if err := b.listShard(ctx, t, top, name, fn); err != nil {
				return err
			}
			continue
		}
		if err := report(ctx, t, e, name, fn); err != nil {
			return err
		}
	}
	return nil
}

func (b *Backend) listShard(ctx context.Context, t backend.Type, top, shard string, fn func(backend.FileInfo) error) error {
	entries, err := os.ReadDir(filepath.Join(top, shard))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed since we read its parent
	}
	if err != nil {
		return fmt.Errorf("list %s: %s: %w", t, shard, err)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		rel := shard + "/" + name
		if !e.IsDir() && backend.IsID(name) && name[:2] == shard {
			rel = name
		}
		if err := report(ctx, t, e, rel, fn); err != nil {
			return err
		}
	}
	return nil
}

// report calls fn for the entry e named rel, unless it has vanished.
func report(ctx context.Context, t backend.Type, e fs.DirEntry, rel string, fn func(backend.FileInfo) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %s: %w", t, err)
	}
	fi, err := e.Info()
	if errors.Is(err, fs.ErrNotExist) {
		return nil // removed since we read the directory
	}
	if err != nil {
		return fmt.Errorf("list %s: %s: %w", t, rel, err)
	}
	if fi.IsDir() {
		rel += "/"
	}
	return fn(backend.FileInfo{Name: rel, Size: fi.Size()})
}

// isShard reports whether name is a shard directory name: two lower-case
// hex characters.
func isShard(name string) bool {
	return len(name) == 2 && backend.IsID(name+strings.Repeat("0", backend.IDLen-2))
}

// CleanTemp removes the temporary files of writes that started more than
// olderThan ago (by modification time) and never finished, e.g. because the
// process crashed, and returns how many it removed. One hour is a safe
// olderThan: a live write younger than that is left alone, and a write that
// takes longer and loses its temp file fails cleanly instead of saving a
// partial object. Open does not call it, so that opening writes nothing.
func (b *Backend) CleanTemp(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	dirs := []string{b.dir}
	for _, t := range dirTypes() {
		top := filepath.Join(b.dir, string(t))
		dirs = append(dirs, top)
		if !t.Sharded() {
			continue
		}
		entries, err := os.ReadDir(top)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("local %s: clean temp files: %w", b.dir, err)
		}
		for _, e := range entries {
			if e.IsDir() && isShard(e.Name()) {
				dirs = append(dirs, filepath.Join(top, e.Name()))
			}
		}
	}
	removed := 0
	for _, dir := range dirs {
		if err := ctx.Err(); err != nil {
			return removed, fmt.Errorf("local %s: clean temp files: %w", b.dir, err)
		}
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return removed, fmt.Errorf("local %s: clean temp files: %w", b.dir, err)
		}
		n := 0
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), tempPrefix) || !e.Type().IsRegular() {
				continue
			}
			fi, err := e.Info()
			if err != nil || !fi.ModTime().Before(cutoff) {
				continue // vanished (finished or cleaned concurrently), or recent
			}
			err = os.Remove(filepath.Join(dir, e.Name()))
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return removed, fmt.Errorf("local %s: clean temp files: %w", b.dir, err)
			}
			n++
		}
		if n > 0 {
			removed += n
			if err := syncDir(dir); err != nil {
				return removed, fmt.Errorf("local %s: clean temp files: %w", b.dir, err)
			}
		}
	}
	return removed, nil
}

// syncDir fsyncs directory dir so that entries added or removed in it are
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
