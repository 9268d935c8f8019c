// Package restorer writes a snapshot back to a directory.
//
// Plan, then fetch by pack. The restorer first walks the snapshot's trees
// (loaded ahead of the walk by a few goroutines, see prefetch.go) and
// groups the chunks that regular files need by the pack that holds them;
// planning makes no system calls. Each pack goes to one of a few workers,
// which reads the pack's needed range with one request, decrypts,
// decompresses and verifies every blob, and writes it at every file offset
// that needs it, creating the file (at its full length, when it is written
// in pieces) and any missing parent directories on first use, so creating
// the tree runs in parallel too. Every pack is read once however many files
// share its chunks. All-zero chunks are not written (the file was extended
// to its length first, so they read back as zeros and stay holes), which
// keeps sparse files sparse. Last come what no chunk created (empty
// directories and files, special files), hard links, then metadata: files,
// then directories deepest first, because writing into a directory changes
// its mtime and its final mode may forbid writing.
package restorer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/index"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
	"golang.org/x/sys/unix"
)

// Options tune a restore.
type Options struct {
	// Includes restricts the restore to these snapshot paths (and what is
	// below them); empty restores everything.
	Includes []string
	Verify   bool
	Workers  int
	Progress *Progress
	// Warn reports problems that do not stop the restore (metadata the
	// target cannot hold). Nil ignores them.
	Warn func(path string, err error)
	// NumericIDs restores owners by number, not by name.
	NumericIDs bool
}

// Progress is updated atomically.
type Progress struct {
	Files, TotalFiles atomic.Int64
	Bytes, TotalBytes atomic.Int64
}

// Stats summarises a restore.
type Stats struct {
	Files    int64 `json:"files"`
	Dirs     int64 `json:"dirs"`
	Bytes    int64 `json:"bytes"`
	Verified int64 `json:"files_verified"`
	Warnings int64 `json:"warnings"`
}

type file struct {
	path    string
	node    *tree.Node
	parent  *dir
	mu      sync.Mutex
	fd      int // open descriptor of a file being written in pieces, or -1
	left    int // chunks still to write
	link    string
	multi   bool
	created bool // a file written in pieces exists at full length
	done    bool // metadata already set (a one-piece file, on its descriptor)
}

// dir is a directory to restore. Directories are created when first
// needed, by whichever worker first writes below them (parents first), so
// the plan makes no system calls and creating them runs in parallel.
type dir struct {
	path    string
	node    *tree.Node // nil for the target itself
	parent  *dir
	mu      sync.Mutex
	created atomic.Bool
}

// ensure creates d and its missing ancestors.
func (d *dir) ensure() error {
	if d == nil || d.created.Load() {
		return nil
	}
	if err := d.parent.ensure(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.created.Load() {
		return nil
	}
	if err := tree.CreateSpecial(d.path, *d.node); err != nil {
		return err
	}
	d.created.Store(true)
	return nil
}

type target struct {
	file *file
	off  int64
}

type need struct {
	id      repo.ID
	loc     index.Location
	targets []target
}

type restorer struct {
	r       *repo.Repository
	o       Options
	root    string
	files   []*file
	dirs    []*dir
	empty   []*file // files without chunks to write (empty or all holes)
	special []entry
	packs   map[repo.ID][]*need
	blobs   map[repo.ID]*need
	stats   Stats
	prog    *Progress
	warns   atomic.Int64
	names   *tree.NameCache
	trees   *prefetcher // during plan
	asRoot  bool
	meta    tree.RestoreOptions

	errMu sync.Mutex
	errs  []error // metadata errors (not warnings), reported after all is written
}

type entry struct {
	path   string
	node   *tree.Node
	parent *dir
}

// Restore writes snapshot s below dir.
func Restore(ctx context.Context, r *repo.Repository, s *repo.Snapshot, dir string, o Options) (*Stats, error) {
	if !r.CanRead() {
		return nil, repo.ErrNeedFullKey
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0) + 2
	}
	if o.Progress == nil {
		o.Progress = &Progress{}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	for i, inc := range o.Includes {
		o.Includes[i] = filepath.Clean("/" + inc)
	}
	rs := &restorer{r: r, o: o, root: abs, packs: map[repo.ID][]*need{}, blobs: map[repo.ID]*need{}, prog: o.Progress,
		names: tree.NewNameCache(), asRoot: os.Geteuid() == 0}
	rs.meta = tree.RestoreOptions{AsRoot: rs.asRoot, Names: rs.names, NumericIDs: o.NumericIDs}
	if err := rs.plan(ctx, s.Tree, "/"); err != nil {
		return nil, err
	}
	if err := rs.fetch(ctx); err != nil {
		return nil, err
	}
	if err := rs.finish(); err != nil {
		return nil, err
	}
	if o.Verify {
		if err := rs.verify(ctx); err != nil {
			return nil, err
		}
	}
	rs.stats.Warnings = rs.warns.Load()
	return &rs.stats, nil
}

func (rs *restorer) warn(path string, err error) {
	rs.warns.Add(1)
	if rs.o.Warn != nil {
		rs.o.Warn(path, err)
	}
}

// selected says whether snapshot path p is restored, and whether anything
// below it might be.
func (rs *restorer) selected(p string) (self, below bool) {
	if len(rs.o.Includes) == 0 {
		return true, true
	}
	for _, inc := range rs.o.Includes {
		if inc == "/" || p == inc || strings.HasPrefix(p, inc+"/") {
			return true, true
		}
		if strings.HasPrefix(inc, strings.TrimSuffix(p, "/")+"/") {
			below = true // an ancestor of an include: create it, descend
		}
	}
	return below, below
}

func (rs *restorer) plan(ctx context.Context, id repo.ID, prefix string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rs.trees = newPrefetcher(ctx, treeLoaders, rs.r.LoadTree)
	defer rs.trees.close()
	t, err := rs.trees.get(id)
	if err != nil {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	links := map[[2]uint64]string{}
	top := &dir{path: rs.root}
	top.created.Store(true) // made by Restore
	return rs.planTree(ctx, t, prefix, top, links)
}

// treeLoaders is how many goroutines load trees ahead of the planner.
const treeLoaders = 2

func (rs *restorer) planTree(ctx context.Context, t *tree.Tree, prefix string, parent *dir, links map[[2]uint64]string) error {
	var subs []repo.ID
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.Type == tree.TypeDir && n.Subtree != nil {
			if self, below := rs.selected(prefix + n.Name); self || below {
				subs = append(subs, repo.ID(*n.Subtree))
			}
		}
	}
	rs.trees.want(subs)
	for i := range t.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := &t.Nodes[i]
		sp := prefix + n.Name
		self, below := rs.selected(sp)
		if !self && !below {
			continue
		}
		out := filepath.Join(rs.root, sp)
		switch n.Type {
		case tree.TypeDir:
			d := &dir{path: out, node: n, parent: parent}
			rs.dirs = append(rs.dirs, d)
			rs.stats.Dirs++
			sub, err := rs.trees.get(repo.ID(*n.Subtree))
			if err != nil {
				return fmt.Errorf("%s: %w", sp, err)
			}
			if err := rs.planTree(ctx, sub, sp+"/", d, links); err != nil {
				return err
			}
		case tree.TypeFile:
			if !self {
				continue
			}
			f := &file{path: out, node: n, parent: parent, fd: -1}
			rs.files = append(rs.files, f)
			rs.stats.Files++
			rs.prog.TotalFiles.Add(1)
			rs.prog.TotalBytes.Add(int64(n.Size))
			if n.Links > 1 {
				k := [2]uint64{n.Device, n.Inode}
				if first, ok := links[k]; ok {
					f.link = first
					continue
				}
				links[k] = out
			}
			if err := rs.planFile(f); err != nil {
				return fmt.Errorf("%s: %w", sp, err)
			}
		default:
			if !self {
				continue
			}
			rs.special = append(rs.special, entry{out, n, parent})
		}
	}
	return nil
}

func (rs *restorer) planFile(f *file) error {
	// Each chunk's location, looked up once: it gives the chunk's offset
	// in the file and tells whether the file is one chunk exactly.
	type chunkAt struct {
		id  repo.ID
		loc index.Location
		off int64
	}
	var chunks []chunkAt
	var off int64
	for _, c := range f.node.Content {
		if c.IsHole() {
			off += int64(c.Hole)
			continue
		}
		id := repo.ID(c.ID)
		loc, ok := rs.r.Index().Lookup(repo.DataBlob, id)
		if !ok {
			return fmt.Errorf("chunk %s: %w", repo.Short(id), repo.ErrBlobNotFound)
		}
		chunks = append(chunks, chunkAt{id, loc, off})
		off += int64(loc.RawLength)
	}
	f.left = len(chunks)
	// One piece: a single chunk that is the whole file. A chunk after a
	// hole is written at its offset like the chunks of larger files.
	f.multi = len(chunks) > 1 || (len(chunks) == 1 && chunks[0].off != 0) || uint64(off) != f.node.Size
	if len(chunks) == 0 && f.link == "" {
		rs.empty = append(rs.empty, f) // created by finish
	}
	for _, c := range chunks {
		n := rs.blobs[c.id]
		if n == nil {
			n = &need{id: c.id, loc: c.loc}
			rs.blobs[c.id] = n
			rs.packs[c.loc.Pack] = append(rs.packs[c.loc.Pack], n)
		}
		n.targets = append(n.targets, target{f, c.off})
	}
	return nil
}

func (rs *restorer) fetch(ctx context.Context) error {
	ids := make([]repo.ID, 0, len(rs.packs))
	for id := range rs.packs {
		ids = append(ids, id)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan repo.ID)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for i := 0; i < rs.o.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf, window []byte
			for id := range work {
				if err := rs.fetchPack(ctx, id, &buf, &window); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
	for _, id := range ids {
		select {
		case work <- id:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// fetchPack reads the needed blobs of one pack and writes them to their
// targets. A worker keeps its buffers across packs: window for what is read
// from the pack (up to readWindow), buf for a blob's plaintext.
func (rs *restorer) fetchPack(ctx context.Context, packID repo.ID, buf, window *[]byte) error {
	needs := rs.packs[packID]
	sort.Slice(needs, func(i, j int) bool { return needs[i].loc.Offset < needs[j].loc.Offset })
	aead, err := rs.r.PackAEAD(ctx, packID)
	if err != nil {
		return err
	}
	// Needed blobs are read in windows of at most readWindow bytes: one
	// request for neighbours (most blobs of a pack are usually needed), a
	// new one across a gap, and bounded memory per worker.
	for i := 0; i < len(needs); {
		start := int64(needs[i].loc.Offset)
		end := start + int64(needs[i].loc.Length)
		j := i + 1
		for ; j < len(needs); j++ {
			off, e := int64(needs[j].loc.Offset), int64(needs[j].loc.Offset)+int64(needs[j].loc.Length)
			if e-start > readWindow || off-end > readGap {
				break
			}
			end = max(end, e)
		}
		data, err := backend.LoadInto(ctx, rs.r.Backend(), packHandle(packID), start, int(end-start), *window)
		if err != nil {
			return err
		}
		if cap(data) > cap(*window) {
			*window = data[:0]
		}
		for _, n := range needs[i:j] {
			o := int64(n.loc.Offset) - start
			if o+int64(n.loc.Length) > int64(len(data)) {
				return fmt.Errorf("pack %s: blob %s at %d+%d lies outside the %d bytes read (inconsistent index)", repo.Short(packID), repo.Short(n.id), n.loc.Offset, n.loc.Length, len(data))
			}
			plain, err := rs.r.OpenBlob(aead, n.loc, n.id, data[o:o+int64(n.loc.Length)], *buf)
			if err != nil {
				return err
			}
			if cap(plain) > cap(*buf) {
				*buf = plain[:0]
			}
			zero := allZero(plain)
			for _, t := range n.targets {
				if err := rs.write(t, plain, zero); err != nil {
					return err
				}
			}
		}
		i = j
	}
	return nil
}

// Reads of one pack: at most readWindow bytes per request (unless one blob
// is larger), and gaps of up to readGap unneeded bytes are read through
// rather than split into two requests.
const (
	readWindow = 4 << 20
	readGap    = 256 << 10
)

// createFile creates a regular file for writing and returns its raw
// descriptor (written with pwrite, closed by the restorer: the runtime
// poller has no use for regular files, and skipping os.File saves three
// system calls per file). The path normally does not exist yet and one
// open with O_EXCL does. Otherwise an existing regular file with one link
// is reused (truncated); anything else at the path (a symlink planted in
// the target, which is never followed, a file hard-linked elsewhere, whose
// other names must not change, a directory, a FIFO) is removed and the
// file created afresh.
func createFile(path string) (int, error) {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	fd, err := openFile(path, flags|unix.O_EXCL, 0o600)
	if err == nil || !errors.Is(err, unix.EEXIST) {
		return fd, err
	}
	fd, err = openFile(path, flags, 0o600)
	if err == nil {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink == 1 {
			if st.Size == 0 {
				return fd, nil
			}
			if err = ignoringEINTR(func() error { return unix.Ftruncate(fd, 0) }); err == nil {
				return fd, nil
			}
		}
		unix.Close(fd)
	}
	if rerr := os.Remove(path); rerr != nil && !os.IsNotExist(rerr) {
		if err == nil {
			err = rerr
		}
		return -1, err
	}
	return openFile(path, flags|unix.O_EXCL, 0o600)
}

func openFile(path string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags, perm)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}

// createSized creates f (and its missing parents) at its full length:
// holes and skipped zero chunks read back as zeros.
func createSized(f *file) (int, error) {
	if err := f.parent.ensure(); err != nil {
		return -1, err
	}
	fd, err := createFile(f.path)
	if err != nil {
		return -1, err
	}
	if err = ignoringEINTR(func() error { return unix.Ftruncate(fd, int64(f.node.Size)) }); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "truncate", Path: f.path, Err: err}
	}
	return fd, nil
}

// pwriteAll writes all of b at off.
func pwriteAll(fd int, path string, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := unix.Pwrite(fd, b, off)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return &os.PathError{Op: "write", Path: path, Err: err}
		case n == 0:
			return &os.PathError{Op: "write", Path: path, Err: io.ErrShortWrite}
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

func (rs *restorer) write(t target, data []byte, zero bool) error {
	f := t.file
	if !f.multi {
		// The whole file in one chunk: create, write, set its metadata on
		// the descriptor (no path lookups), close.
		if err := f.parent.ensure(); err != nil {
			return err
		}
		fd, err := createFile(f.path)
		if err != nil {
			return err
		}
		if !zero {
			err = pwriteAll(fd, f.path, data, 0)
		} else if err = ignoringEINTR(func() error { return unix.Ftruncate(fd, int64(len(data))) }); err != nil {
			err = &os.PathError{Op: "truncate", Path: f.path, Err: err}
		}
		if err == nil && f.link == "" {
			rs.metadataResult(f.path, tree.RestoreFileMetadata(fd, f.path, *f.node, rs.meta))
			f.done = true
		}
		if cerr := unix.Close(fd); err == nil && cerr != nil {
			err = &os.PathError{Op: "close", Path: f.path, Err: cerr}
		}
		if err != nil {
			return err
		}
		rs.prog.Files.Add(1)
		rs.prog.Bytes.Add(int64(len(data)))
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		var fd int
		var err error
		if !f.created {
			fd, err = createSized(f)
			f.created = err == nil
		} else {
			fd, err = openFile(f.path, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if err != nil {
			return err
		}
		f.fd = fd
	}
	if !zero {
		if err := pwriteAll(f.fd, f.path, data, t.off); err != nil {
			return err
		}
	}
	rs.prog.Bytes.Add(int64(len(data)))
	f.left--
	if f.left == 0 {
		err := unix.Close(f.fd)
		f.fd = -1
		rs.prog.Files.Add(1)
		if err != nil {
			return &os.PathError{Op: "close", Path: f.path, Err: err}
		}
	}
	return nil
}

// metadataResult records what setting an entry's metadata returned:
// warnings go to Warn, errors are returned once everything is written.
func (rs *restorer) metadataResult(path string, err error) {
	switch {
	case err == nil:
	case tree.IsWarning(err):
		rs.warn(path, err)
	default:
		rs.errMu.Lock()
		rs.errs = append(rs.errs, err)
		rs.errMu.Unlock()
	}
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (rs *restorer) finish() error {
	// What no chunk's write created: empty directories, files without
	// data, special files.
	rs.parallel(len(rs.dirs), func(i int) {
		if err := rs.dirs[i].ensure(); err != nil {
			rs.metadataResult(rs.dirs[i].path, err)
		}
	})
	rs.parallel(len(rs.empty), func(i int) {
		f := rs.empty[i]
		fd, err := createSized(f)
		if err == nil {
			err = unix.Close(fd)
		}
		if err != nil {
			rs.metadataResult(f.path, err)
			return
		}
		rs.prog.Files.Add(1)
	})
	made := make([]bool, len(rs.special))
	rs.parallel(len(rs.special), func(i int) {
		e := rs.special[i]
		err := e.parent.ensure()
		if err == nil {
			_ = os.Remove(e.path)
			err = tree.CreateSpecial(e.path, *e.node)
		}
		if err != nil {
			rs.warn(e.path, err)
			return
		}
		made[i] = true
	})
	if len(rs.errs) > 0 {
		return errors.Join(rs.errs...)
	}
	var todo []entry
	for _, f := range rs.files {
		if f.link != "" {
			if err := f.parent.ensure(); err != nil {
				rs.metadataResult(f.path, err)
				continue
			}
			_ = os.Remove(f.path)
			if err := os.Link(f.link, f.path); err != nil {
				rs.metadataResult(f.path, fmt.Errorf("hard link %s: %w", f.path, err))
			}
			continue
		}
		rs.stats.Bytes += int64(f.node.Size)
		if !f.done {
			todo = append(todo, entry{path: f.path, node: f.node})
		}
	}
	for i, e := range rs.special {
		if made[i] {
			todo = append(todo, e)
		}
	}
	rs.setMetadata(todo)
	// Directories last, one depth at a time, deepest first: a directory's
	// restored mode may deny the search permission that a non-root restore
	// needs to reach the entries below it.
	dirs := make([]entry, len(rs.dirs))
	for i, d := range rs.dirs {
		dirs[i] = entry{path: d.path, node: d.node}
	}
	depth := func(e entry) int { return strings.Count(e.path, "/") }
	slices.SortStableFunc(dirs, func(a, b entry) int { return depth(b) - depth(a) })
	for len(dirs) > 0 {
		n := 1
		for n < len(dirs) && depth(dirs[n]) == depth(dirs[0]) {
			n++
		}
		rs.setMetadata(dirs[:n])
		dirs = dirs[n:]
	}
	return errors.Join(rs.errs...)
}

// setMetadata restores the metadata of entries on Workers goroutines.
func (rs *restorer) setMetadata(entries []entry) {
	rs.parallel(len(entries), func(i int) {
		e := entries[i]
		rs.metadataResult(e.path, tree.RestoreMetadataWith(e.path, *e.node, rs.meta))
	})
}

// parallel calls fn(0) ... fn(n-1) on up to Workers goroutines.
func (rs *restorer) parallel(n int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(rs.o.Workers, n) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				fn(int(i))
			}
		})
	}
	wg.Wait()
}

// verify re-reads every restored file and checks each chunk's id.
func (rs *restorer) verify(ctx context.Context) error {
	var bad []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	work := make(chan *file)
	for i := 0; i < rs.o.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				if err := rs.verifyFile(f); err != nil {
					mu.Lock()
					bad = append(bad, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, f := range rs.files {
		if ctx.Err() != nil {
			break
		}
		work <- f
	}
	close(work)
	wg.Wait()
	rs.stats.Verified = int64(len(rs.files) - len(bad))
	if len(bad) > 0 {
		return fmt.Errorf("verify: %d files differ from the snapshot: %w", len(bad), errors.Join(bad...))
	}
	return ctx.Err()
}

func (rs *restorer) verifyFile(f *file) error {
	fh, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return err
	}
	if uint64(fi.Size()) != f.node.Size {
		return fmt.Errorf("%s: size %d, snapshot has %d", f.path, fi.Size(), f.node.Size)
	}
	var buf []byte
	for _, c := range f.node.Content {
		if c.IsHole() {
			if _, err := fh.Seek(int64(c.Hole), io.SeekCurrent); err != nil {
				return err
			}
			continue
		}
		loc, _ := rs.r.Index().Lookup(repo.DataBlob, repo.ID(c.ID))
		if cap(buf) < int(loc.RawLength) {
			buf = make([]byte, loc.RawLength)
		}
		b := buf[:loc.RawLength]
		if _, err := io.ReadFull(fh, b); err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
		if rs.r.Secrets().BlobID(b) != repo.ID(c.ID) {
			return fmt.Errorf("%s: content differs from the snapshot", f.path)
		}
	}
	return nil
}

func packHandle(id repo.ID) backend.Handle {
	return backend.Handle{Type: backend.PackFile, Name: repo.Hex(id)}
}
