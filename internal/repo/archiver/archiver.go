// Package archiver makes snapshots: it walks the paths to back up, reuses
// the parent snapshot's content for files that did not change, chunks and
// stores the others, and writes one tree per directory.
//
// Pipeline. One walker goroutine reads directories depth first in name
// order and lstat()s every entry. A file that matches its node in the
// parent tree (same size, mtime, ctime and inode, every chunk still in the
// index) is finished on the spot; every other file becomes a job for a pool
// of workers (one per core plus one), which read, chunk, hash, compress and
// encrypt it; repo.SaveBlob packs the result and uploads full packs in the
// background. Each directory is a future: a small goroutine waits for its
// children's results in order and then saves the directory's tree, so the
// walker never waits for file contents and both cores stay busy until the
// last file. The job queue is bounded, which bounds memory.
package archiver

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
	"syscall"
	"time"

	"github.com/bulwarkhq/bulwark/internal/fsmeta"
	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/bufs"
	"github.com/bulwarkhq/bulwark/internal/repo/chunker"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
	"golang.org/x/sys/unix"
)

// Options tune a backup.
type Options struct {
	Tags           []string
	Host           string // default: os.Hostname
	Excludes       []string
	OneFileSystem  bool
	Parent         *repo.Snapshot // nil: the latest snapshot of the same host and paths
	NoParent       bool           // read every file
	Workers        int            // default: GOMAXPROCS + 1
	ProgramVersion string
	Time           time.Time // snapshot time; default now
	Progress       *Progress
	Scan           bool // count files and bytes first (for an ETA), concurrently
	// Warn is told about entries that could not be read; they are left out
	// of the snapshot and the backup goes on. Nil ignores them. It is
	// called from several goroutines at once.
	Warn func(path string, err error)
}

// Progress is updated atomically while a backup runs.
type Progress struct {
	Files      atomic.Int64 // files finished
	Dirs       atomic.Int64
	Bytes      atomic.Int64 // bytes of finished and partly read files
	TotalFiles atomic.Int64 // from the concurrent scan
	TotalBytes atomic.Int64
	ScanDone   atomic.Bool
	Errors     atomic.Int64
}

// Result is what Backup returns.
type Result struct {
	Snapshot *repo.Snapshot
	Summary  repo.Summary
	Warnings int
}

type status int

const (
	stNew status = iota
	stChanged
	stUnmodified
)

type result struct {
	node   tree.Node
	ok     bool // false: left out (warning)
	err    error
	status status
}

type future chan result

func done(r result) future {
	f := make(future, 1)
	f <- r
	return f
}

type job struct {
	path string
	node tree.Node
	st   status
	fut  future
}

type archiver struct {
	r      *repo.Repository
	o      Options
	names  *tree.NameCache
	jobs   chan job
	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
	ctx    context.Context
	cancel context.CancelFunc
	prog   *Progress
	sum    struct {
		new, changed, unmodified, dirs, processed, files, bytes atomic.Int64
	}
	warnings atomic.Int64
	rootMu   sync.Mutex
	rootDev  map[string]uint64
	walkers  chan struct{}
	walking  sync.WaitGroup        // walker goroutines still able to send jobs
	pending  sync.WaitGroup        // goroutines finishing large files (worker)
	chunkers chan *chunker.Chunker // a pool; nil entries are made on first use
	blobJobs chan blobJob          // chunks of large files, for the savers
}

func (a *archiver) fail(err error) {
	a.errMu.Lock()
	if a.err == nil {
		a.err = err
		a.cancel()
	}
	a.errMu.Unlock()
}

func (a *archiver) warn(path string, err error) {
	a.warnings.Add(1)
	a.prog.Errors.Add(1)
	if a.o.Warn != nil {
		a.o.Warn(path, err)
	}
}

// CleanPaths makes paths absolute and clean, sorts them and drops those
// inside another.
func CleanPaths(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		if p == "" {
			return nil, errors.New("empty path")
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		out = append(out, abs)
	}
	sort.Strings(out)
	var kept []string
	for _, p := range out {
		if len(kept) > 0 {
			last := kept[len(kept)-1]
			if p == last || strings.HasPrefix(p, strings.TrimSuffix(last, "/")+"/") {
				continue
			}
		}
		kept = append(kept, p)
	}
	return kept, nil
}

// Backup snapshots paths into r.
func Backup(ctx context.Context, r *repo.Repository, paths []string, o Options) (*Result, error) {
	defer chunkBufs.Drain() // a daemon between backups keeps none of their buffers
	start := time.Now()
	stored := r.Stats().BytesStored.Load()
	paths, err := CleanPaths(paths)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, errors.New("nothing to back up: give at least one path")
	}
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			return nil, fmt.Errorf("backup path: %w", err)
		}
	}
	for _, pat := range o.Excludes {
		if _, err := filepath.Match(pat, ""); err != nil {
			return nil, fmt.Errorf("--exclude %q: %w", pat, err)
		}
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0) + 1
	}
	if o.Progress == nil {
		o.Progress = &Progress{}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := &archiver{r: r, o: o, names: tree.NewNameCache(), jobs: make(chan job, 4*o.Workers),
		ctx: ctx, cancel: cancel, prog: o.Progress, rootDev: map[string]uint64{},
		walkers: make(chan struct{}, runtime.GOMAXPROCS(0)), chunkers: make(chan *chunker.Chunker, 1),
		blobJobs: make(chan blobJob, runtime.GOMAXPROCS(0))}
	for i := 0; i < cap(a.chunkers); i++ {
		a.chunkers <- nil
	}

	parent := o.Parent
	if parent == nil && !o.NoParent {
		parent = r.FindParent(ctx, o.Host, paths)
	}
	var parentTree *tree.Tree
	if parent != nil {
		if t, err := r.LoadTree(ctx, parent.Tree); err == nil {
			parentTree = t
		}
	}

	if o.Scan {
		go scan(ctx, paths, o, a.prog)
	}
	for i := 0; i < o.Workers; i++ {
		a.wg.Add(1)
		go a.worker()
	}
	var savers sync.WaitGroup
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		savers.Add(1)
		go func() { defer savers.Done(); a.saver() }()
	}
	defer func() { close(a.blobJobs); savers.Wait() }()
	var rootFut future
	if len(paths) == 1 && paths[0] == "/" {
		// The whole file system: the root tree is "/" itself.
		rootFut = a.saveDir("/", tree.Node{Type: tree.TypeDir}, &tree.Node{Type: tree.TypeDir, Subtree: treeIDPtr(parent)})
	} else {
		rootFut = a.finishDir(tree.Node{Type: tree.TypeDir}, a.saveVirtual(paths, "/", parentTree), false, treeIDPtr(parent), parentTree)
	}
	res := <-rootFut
	if res.err != nil {
		a.cancel()
	}
	// The root can fail before every walker is done: wait for them before
	// closing the job queue they send to.
	a.walking.Wait()
	close(a.jobs)
	a.wg.Wait()
	// A failed or cancelled backup resolves the root before every large
	// file is finished: wait for those too, so none reports (a.fail, Warn)
	// after Backup returns. The savers, still running, resolve their chunks.
	a.pending.Wait()
	if a.err != nil {
		return nil, a.err
	}
	if res.err != nil {
		return nil, res.err
	}
	if err := r.Flush(ctx); err != nil {
		return nil, err
	}
	snap := &repo.Snapshot{
		Time: o.Time, Tree: *res.node.Subtree, Paths: paths, Hostname: o.Host,
		Tags: o.Tags, Excludes: o.Excludes, ProgramVersion: o.ProgramVersion,
	}
	if snap.Time.IsZero() {
		snap.Time = r.Now()
	}
	if u := os.Getenv("USER"); u != "" {
		snap.Username = u
	}
	if parent != nil {
		snap.Parent = repo.Hex(parent.ID)
	}
	sum := repo.Summary{
		FilesNew: a.sum.new.Load(), FilesChanged: a.sum.changed.Load(), FilesUnmodified: a.sum.unmodified.Load(),
		Dirs: a.sum.dirs.Load(), BytesAdded: r.Stats().BytesStored.Load() - stored, BytesProcessed: a.sum.processed.Load(),
		TotalFiles: a.sum.files.Load(), TotalBytes: a.sum.bytes.Load(),
	}
	sum.Duration = time.Since(start).Seconds()
	snap.Summary = &sum
	if _, err := r.SaveSnapshot(ctx, snap); err != nil {
		return nil, err
	}
	r.RememberParent(o.Host, paths, snap)
	return &Result{Snapshot: snap, Summary: sum, Warnings: int(a.warnings.Load())}, nil
}

// saveVirtual returns the entries of dir on the way to the backup paths:
// "/" holds "etc" holds ... down to each path, which is saved for real.
func (a *archiver) saveVirtual(paths []string, dir string, parent *tree.Tree) []future {
	children := map[string][]string{}
	var order []string
	for _, p := range paths {
		rel := strings.TrimPrefix(p, dir)
		rel = strings.TrimPrefix(rel, "/")
		first, _, _ := strings.Cut(rel, "/")
		if _, ok := children[first]; !ok {
			order = append(order, first)
		}
		children[first] = append(children[first], p)
	}
	sort.Strings(order)
	var futs []future
	for _, name := range order {
		full := filepath.Join(dir, name)
		pnode := lookup(parent, name)
		if len(children[name]) == 1 && children[name][0] == full {
			futs = append(futs, a.saveEntry(full, name, pnode, true, nil))
			continue
		}
		// An intermediate directory: its own metadata, and only the
		// children on the way to the paths.
		node, err := tree.NodeFromPath(full, name, nil, tree.CaptureOptions{Names: a.names})
		if err != nil && !tree.IsWarning(err) {
			futs = append(futs, done(result{err: err}))
			continue
		}
		ptree := a.subtree(pnode)
		futs = append(futs, a.finishDir(node, a.saveVirtual(children[name], full, ptree), true, subtreeID(pnode), ptree))
	}
	return futs
}

func (a *archiver) subtree(n *tree.Node) *tree.Tree {
	if n == nil || n.Type != tree.TypeDir || n.Subtree == nil {
		return nil
	}
	t, err := a.r.LoadTree(a.ctx, repo.ID(*n.Subtree))
	if err != nil {
		return nil
	}
	return t
}

// subtreeID is the tree id of a directory node, nil for other nodes.
func subtreeID(n *tree.Node) *tree.ID {
	if n == nil || n.Type != tree.TypeDir {
		return nil
	}
	return n.Subtree
}

// sameNodes reports whether t and prev list equal nodes (prev may be nil).
func sameNodes(t, prev *tree.Tree) bool {
	if prev == nil || len(t.Nodes) != len(prev.Nodes) {
		return false
	}
	for i := range t.Nodes {
		if !t.Nodes[i].Equal(&prev.Nodes[i]) {
			return false
		}
	}
	return true
}

func lookup(t *tree.Tree, name string) *tree.Node {
	if t == nil {
		return nil
	}
	i, ok := slices.BinarySearchFunc(t.Nodes, name, func(n tree.Node, name string) int { return strings.Compare(n.Name, name) })
	if !ok {
		return nil
	}
	return &t.Nodes[i]
}

// finishDir waits for the children in order and saves the tree. The
// virtual root passes unwrapped=false and gets a node whose Subtree is the
// root tree. prev is the directory's tree in the parent snapshot, stored as
// prevID (both nil without one): when every child is equal to prev's, the
// directory is prevID again, and encoding, hashing and looking it up are
// skipped (on an unchanged re-run, for every directory).
func (a *archiver) finishDir(node tree.Node, futs []future, count bool, prevID *tree.ID, prev *tree.Tree) future {
	out := make(future, 1)
	go func() {
		t := &tree.Tree{Nodes: make([]tree.Node, 0, len(futs))}
		for _, f := range futs {
			res := <-f
			if res.err != nil {
				out <- result{err: res.err}
				return
			}
			if res.ok {
				t.Nodes = append(t.Nodes, res.node)
			}
		}
		if a.ctx.Err() != nil {
			out <- result{err: a.ctx.Err()}
			return
		}
		var tid tree.ID
		if prevID != nil && sameNodes(t, prev) && a.r.KeepTree(repo.ID(*prevID)) {
			tid = *prevID
		} else {
			id, err := a.r.SaveTree(a.ctx, t)
			if err != nil {
				a.fail(err)
				out <- result{err: err}
				return
			}
			tid = tree.ID(id)
		}
		node.Subtree = &tid
		node.Content = nil
		node.Size = 0
		if count {
			a.sum.dirs.Add(1)
			a.prog.Dirs.Add(1)
		}
		out <- result{node: node, ok: true}
	}()
	return out
}

func (a *archiver) excluded(path, name string) bool {
	for _, pat := range a.o.Excludes {
		if strings.Contains(pat, "/") {
			if ok, _ := filepath.Match(pat, path); ok {
				return true
			}
		} else if ok, _ := filepath.Match(pat, name); ok {
			return true
		}
	}
	return false
}

// saveEntry handles one entry of any type. top marks a backup path (its
// device defines --one-file-system).
func (a *archiver) saveEntry(path, name string, pnode *tree.Node, top bool, st *syscall.Stat_t) future {
	if a.ctx.Err() != nil {
		return done(result{err: a.ctx.Err()})
	}
	if st == nil {
		st = new(syscall.Stat_t)
		if err := syscall.Lstat(path, st); err != nil {
			a.warn(path, fmt.Errorf("lstat: %w", err))
			return done(result{})
		}
	}
	node, err := tree.NodeFromStat(path, name, st, tree.CaptureOptions{Names: a.names, Previous: pnode})
	if err != nil {
		if !tree.IsWarning(err) {
			a.warn(path, err)
			return done(result{})
		}
		a.warn(path, err)
	}
	if top {
		a.rootMu.Lock()
		a.rootDev[path] = node.Device
		a.rootMu.Unlock()
	}
	switch node.Type {
	case tree.TypeDir:
		return a.saveDir(path, node, pnode)
	case tree.TypeFile:
		a.sum.files.Add(1)
		a.sum.bytes.Add(int64(node.Size))
		st := stNew
		if pnode != nil {
			st = stChanged
			if unchanged(pnode, &node) && a.allKnown(pnode.Content) {
				node.Content = pnode.Content
				a.sum.unmodified.Add(1)
				a.prog.Files.Add(1)
				a.prog.Bytes.Add(int64(node.Size))
				return done(result{node: node, ok: true, status: stUnmodified})
			}
		}
		if node.Size == 0 {
			a.count(st, 0)
			return done(result{node: node, ok: true, status: st})
		}
		fut := make(future, 1)
		select {
		case a.jobs <- job{path: path, node: node, st: st, fut: fut}:
		case <-a.ctx.Done():
			return done(result{err: a.ctx.Err()})
		}
		return fut
	default:
		return done(result{node: node, ok: true})
	}
}

func (a *archiver) count(st status, n int64) {
	switch st {
	case stNew:
		a.sum.new.Add(1)
	case stChanged:
		a.sum.changed.Add(1)
	}
	a.prog.Files.Add(1)
	a.sum.processed.Add(n)
}

func unchanged(old, cur *tree.Node) bool {
	return old.Type == tree.TypeFile && old.Size == cur.Size && old.ModTime.Equal(cur.ModTime) &&
		old.ChangeTime.Equal(cur.ChangeTime) && old.Inode == cur.Inode
}

func (a *archiver) allKnown(content []tree.ContentRef) bool {
	idx := a.r.Index()
	for _, c := range content {
		if c.IsHole() {
			continue
		}
		if _, ok := idx.Lookup(repo.DataBlob, repo.ID(c.ID)); !ok {
			return false
		}
	}
	return true
}

func (a *archiver) saveDir(path string, node tree.Node, pnode *tree.Node) future {
	if a.o.OneFileSystem && a.otherDevice(path, node.Device) {
		// A mount point: keep the directory, not its content.
		return a.finishDir(node, nil, true, nil, nil)
	}
	fd, names, err := fsmeta.OpenDir(path)
	if err != nil {
		a.warn(path, err)
		return done(result{})
	}
	defer unix.Close(fd)
	ptree := a.subtree(pnode)
	futs := make([]future, 0, len(names))
	for _, name := range names {
		child := path + "/" + name
		if path == "/" {
			child = "/" + name
		}
		if a.excluded(child, name) {
			continue
		}
		st := new(syscall.Stat_t)
		if err := fsmeta.LstatAt(fd, name, st); err != nil {
			a.warn(child, err)
			continue
		}
		pn := lookup(ptree, name)
		// Subdirectories are walked by another goroutine when one is free,
		// so lstat and readdir use both cores.
		if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			select {
			case a.walkers <- struct{}{}:
				fut := make(future, 1)
				a.walking.Add(1)
				go func() {
					inner := a.saveEntry(child, name, pn, false, st)
					<-a.walkers
					a.walking.Done() // no more sends on a.jobs from here
					fut <- <-inner
				}()
				futs = append(futs, fut)
				continue
			default:
			}
		}
		futs = append(futs, a.saveEntry(child, name, pn, false, st))
	}
	return a.finishDir(node, futs, true, subtreeID(pnode), ptree)
}

// otherDevice reports whether path lies below a backup path on another
// file system than that path's.
func (a *archiver) otherDevice(path string, dev uint64) bool {
	a.rootMu.Lock()
	defer a.rootMu.Unlock()
	for root, rdev := range a.rootDev {
		if (path == root || strings.HasPrefix(path, root+"/")) && dev != rdev {
			return true
		}
	}
	return false
}

func (a *archiver) worker() {
	defer a.wg.Done()
	buf := make([]byte, 0, 512<<10)
	for j := range a.jobs {
		if a.ctx.Err() != nil {
			j.fut <- result{err: a.ctx.Err()}
			continue
		}
		node, pending, err := a.saveFile(j.path, j.node, &buf)
		if pending != nil {
			// A large file is cut; its chunks are still with the savers.
			// Waiting for them here would idle this worker (and, with
			// every worker waiting so, a core) while there are files to
			// read: a goroutine waits instead. Memory stays bounded by the
			// savers' queue, which saveAsync blocks on.
			a.pending.Add(1)
			go func() {
				defer a.pending.Done()
				node, err := pending()
				a.finish(j, node, err)
			}()
			continue
		}
		a.finish(j, node, err)
	}
}

// finish delivers the outcome of a file job to its directory.
func (a *archiver) finish(j job, node tree.Node, err error) {
	if err != nil {
		if a.ctx.Err() != nil || isRepoError(err) {
			a.fail(err)
			j.fut <- result{err: err}
			return
		}
		a.warn(j.path, err)
		j.fut <- result{}
		return
	}
	a.count(j.st, int64(node.Size))
	j.fut <- result{node: node, ok: true, status: j.st}
}

// fileError marks errors reading the source file (a warning), as opposed
// to errors writing the repository (fatal).
type fileError struct{ err error }

func (e fileError) Error() string { return e.err.Error() }
func (e fileError) Unwrap() error { return e.err }

func isRepoError(err error) bool {
	var fe fileError
	return !errors.As(err, &fe)
}

// saveFile stores the file at path. A small file is stored when it
// returns; a large one is read and cut, and pending waits for the savers
// to store its chunks and returns the finished node.
func (a *archiver) saveFile(path string, node tree.Node, buf *[]byte) (_ tree.Node, pending func() (tree.Node, error), _ error) {
	f, err := openRead(path)
	if err != nil {
		return node, nil, fileError{err}
	}
	defer f.close()
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return node, nil, fileError{&os.PathError{Op: "fstat", Path: path, Err: err}}
	}
	if st.Ino != node.Inode || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return node, nil, fileError{errors.New("file replaced while backing it up")}
	}
	size := st.Size
	node.Size = uint64(size)
	node.Content = node.Content[:0]
	p := a.r.Config().Chunker

	// Small files (most of a typical tree) are one chunk: one read, no
	// chunker.
	if size < int64(p.Min) {
		b := (*buf)[:0]
		if int64(cap(b)) < size+1 {
			b = make([]byte, 0, size+1)
		}
		// One read normally does it: a regular file is read whole up to
		// its end, so a count of exactly the size fstat gave is the end
		// (reading on only to see EOF would cost a system call per file).
		// A shorter count (a network or FUSE file system may return less)
		// reads on; size+1 bytes mean the file grew.
		n, err := f.Read(b[:size+1])
		if err == nil && int64(n) < size {
			var m int
			m, err = io.ReadFull(f, b[n:size+1])
			n += m
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return node, nil, fileError{err}
		}
		b = b[:n]
		*buf = b
		if int64(n) <= size {
			node.Size = uint64(n)
			if n > 0 {
				id, _, err := a.r.SaveBlob(a.ctx, repo.DataBlob, b)
				if err != nil {
					return node, nil, err
				}
				node.Content = append(node.Content, tree.Chunk(tree.ID(id)))
			}
			a.prog.Bytes.Add(int64(n))
			return node, nil, nil
		}
	}

	extents := []tree.Extent{{Off: 0, Len: size}}
	if st.Blocks*512 < size { // fewer blocks than bytes: maybe sparse
		if ext, err := tree.DataExtentsFd(f.fd, path, size); err == nil {
			extents = ext
		}
	}
	// A chunker holds a buffer of a few chunks (4 MiB, up to 16 MiB for
	// long chunks) and runs at about 2 GB/s, so one, shared by the workers,
	// is enough: the savers do the costly part of a large file's chunks in
	// parallel.
	c := <-a.chunkers
	if c == nil {
		c = chunker.New(nil, a.r.ChunkerTable(), p)
	}
	// The chunker goes back as soon as the file is cut (saveAsync copies
	// every chunk), not after the savers are done with its chunks: the
	// next large file is cut meanwhile.
	release := sync.OnceFunc(func() { c.Reset(nil); a.chunkers <- c })
	defer release()
	// The chunks of one large file are hashed, compressed and encrypted by
	// the savers, in parallel, while this worker goes on chunking: a single
	// big file (a VM image, a database dump) uses every core.
	var futs []chan blobResult
	var pos int64
	for _, e := range extents {
		if e.Off > pos {
			futs = append(futs, doneBlob(tree.Hole(uint64(e.Off-pos))))
		}
		c.Reset(io.NewSectionReader(f, e.Off, e.Len))
		for {
			chunk, err := c.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				a.drain(futs)
				return node, nil, fileError{err}
			}
			futs = append(futs, a.saveAsync(chunk))
		}
		pos = e.Off + e.Len
	}
	if pos < size {
		futs = append(futs, doneBlob(tree.Hole(uint64(size-pos))))
	}
	release()
	return node, func() (tree.Node, error) {
		var firstErr error
		var got uint64
		for _, fut := range futs {
			res := <-fut
			if res.err != nil && firstErr == nil {
				firstErr = res.err
			}
			node.Content = append(node.Content, res.ref)
			got += res.n
		}
		if firstErr == nil && got != node.Size {
			// The file shrank (or grew) while it was read: record what
			// was read, so the snapshot is consistent, and say so.
			a.warn(path, fmt.Errorf("file changed size while it was read (%d bytes at the start, %d read); the snapshot has what was read", node.Size, got))
			node.Size = got
		}
		return node, firstErr
	}, nil
}

type blobResult struct {
	ref tree.ContentRef
	n   uint64 // bytes covered
	err error
}

func doneBlob(ref tree.ContentRef) chan blobResult {
	c := make(chan blobResult, 1)
	c <- blobResult{ref: ref, n: ref.Hole}
	return c
}

type blobJob struct {
	buf *[]byte
	fut chan blobResult
}

// chunkBufs holds the copies of chunks on their way to a saver: the jobs
// queued and being saved (2*GOMAXPROCS), the one being copied, and, for a
// stream, the chunks waiting to be reaped.
var chunkBufs = bufs.NewList(3*runtime.GOMAXPROCS(0)+1, 4<<20)

// saveAsync copies chunk and hands it to a saver.
func (a *archiver) saveAsync(chunk []byte) chan blobResult {
	bp := chunkBufs.Get(len(chunk))
	*bp = append(*bp, chunk...)
	fut := make(chan blobResult, 1)
	select {
	case a.blobJobs <- blobJob{bp, fut}:
	case <-a.ctx.Done():
		chunkBufs.Put(bp)
		fut <- blobResult{err: a.ctx.Err()}
	}
	return fut
}

func (a *archiver) drain(futs []chan blobResult) {
	for _, f := range futs {
		<-f
	}
}

// saver stores chunks handed over by saveAsync.
func (a *archiver) saver() {
	for j := range a.blobJobs {
		n := len(*j.buf)
		id, _, err := a.r.SaveBlob(a.ctx, repo.DataBlob, *j.buf)
		a.prog.Bytes.Add(int64(n))
		chunkBufs.Put(j.buf)
		j.fut <- blobResult{ref: tree.Chunk(tree.ID(id)), n: uint64(n), err: err}
	}
}

// scan counts files and bytes ahead of the backup for the ETA.
func scan(ctx context.Context, paths []string, o Options, p *Progress) {
	defer p.ScanDone.Store(true)
	for _, root := range paths {
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				return nil
			}
			if d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					p.TotalFiles.Add(1)
					p.TotalBytes.Add(fi.Size())
				}
			}
			return nil
		})
	}
}

// BackupReader snapshots the bytes of rd as one file called name (database
// dumps piped in).
func BackupReader(ctx context.Context, r *repo.Repository, rd io.Reader, name string, o Options) (*Result, error) {
	start := time.Now()
	stored := r.Stats().BytesStored.Load()
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, fmt.Errorf("--stdin-name %q: give a plain file name", name)
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.Progress == nil {
		o.Progress = &Progress{}
	}
	now := r.Now()
	if !o.Time.IsZero() {
		now = o.Time
	}
	node := tree.Node{Name: name, Type: tree.TypeFile, Mode: 0o600, UID: uint32(os.Getuid()), GID: uint32(os.Getgid()),
		ModTime: now, ChangeTime: now, Links: 1}
	ch := chunker.New(rd, r.ChunkerTable(), r.Config().Chunker)
	for {
		chunk, err := ch.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading standard input: %w", err)
		}
		id, _, err := r.SaveBlob(ctx, repo.DataBlob, chunk)
		if err != nil {
			return nil, err
		}
		node.Content = append(node.Content, tree.Chunk(tree.ID(id)))
		node.Size += uint64(len(chunk))
		o.Progress.Bytes.Add(int64(len(chunk)))
	}
	tid, err := r.SaveTree(ctx, &tree.Tree{Nodes: []tree.Node{node}})
	if err != nil {
		return nil, err
	}
	if err := r.Flush(ctx); err != nil {
		return nil, err
	}
	path := "/" + name
	snap := &repo.Snapshot{Time: now, Tree: tid, Paths: []string{path}, Hostname: o.Host, Tags: o.Tags,
		ProgramVersion: o.ProgramVersion, Username: os.Getenv("USER")}
	sum := repo.Summary{FilesNew: 1, BytesAdded: r.Stats().BytesStored.Load() - stored, BytesProcessed: int64(node.Size),
		TotalFiles: 1, TotalBytes: int64(node.Size), Duration: time.Since(start).Seconds()}
	snap.Summary = &sum
	if _, err := r.SaveSnapshot(ctx, snap); err != nil {
		return nil, err
	}
	o.Progress.Files.Add(1)
	return &Result{Snapshot: snap, Summary: sum}, nil
}

func treeIDPtr(s *repo.Snapshot) *tree.ID {
	if s == nil {
		return nil
	}
	id := tree.ID(s.Tree)
	return &id
}

// rawFile reads a file through its descriptor with pread. Backups open
// every file once; os.File would add three system calls to each open
// (registering with the poller, which refuses regular files) for nothing.
type rawFile struct {
	fd   int
	path string
	off  int64 // position of Read
}

// openRead opens path for reading without following a symlink, without
// blocking on a FIFO put there since the walk saw a file, and without
// updating its atime where the caller may (O_NOATIME needs ownership).
func openRead(path string) (*rawFile, error) {
	flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	for noatime := true; ; {
		fl := flags
		if noatime {
			fl |= unix.O_NOATIME
		}
		fd, err := unix.Open(path, fl, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EPERM && noatime:
			noatime = false
			continue
		case err != nil:
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return &rawFile{fd: fd, path: path}, nil
	}
}

func (f *rawFile) close() { unix.Close(f.fd) }

// ReadAt implements io.ReaderAt: it fills p unless the file ends first.
func (f *rawFile) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Pread(f.fd, p[done:], off+int64(done))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return done, &os.PathError{Op: "read", Path: f.path, Err: err}
		case n == 0:
			return done, io.EOF
		}
		done += n
	}
	return done, nil
}

// Read implements io.Reader from the file's start.
func (f *rawFile) Read(p []byte) (int, error) {
	for {
		n, err := unix.Pread(f.fd, p, f.off)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, &os.PathError{Op: "read", Path: f.path, Err: err}
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		f.off += int64(n)
		return n, nil
	}
}
