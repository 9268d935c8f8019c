package archiver

// Multi-stream backups: several byte streams that are not files on disk
// (database dumps piped out of pg_dump or mariadb-dump) become one
// snapshot whose tree holds each stream as a regular file.
//
// Streams are read one after another. Each is cut by the content-defined
// chunker in the reading goroutine, while the chunks are hashed, compressed,
// encrypted and packed by a small pool of savers, so a fast producer keeps
// every core busy; the number of chunks in flight is bounded, which bounds
// memory. A stream is complete only when its reader has reached EOF and its
// Close returned nil: for a dump, Close waits for the process and reports
// a non-zero exit. Any error - opening, reading, closing a stream, or
// writing the repository - aborts the whole backup before a snapshot is
// saved, so a failed dump never produces a snapshot that looks complete.
// (The chunks already uploaded stay unreferenced until the next prune.)

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/chunker"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
)

// Stream is one file of a multi-stream snapshot.
type Stream struct {
	// Name is the file's slash-separated path inside the snapshot, without
	// a leading slash ("postgres/app.dump"). Intermediate directories are
	// created. Elements may not be empty, "." or "..", or contain NUL.
	Name string
	// Open starts the stream. BackupStreams reads the returned reader to
	// EOF and then closes it; a non-nil error from Read or Close (for a
	// process: a non-zero exit) aborts the backup. When the backup fails
	// for another reason, the reader is closed early and must then release
	// its resources (kill the process) promptly. ctx is the backup's.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// StreamError is the error of one stream: which stream failed and why.
type StreamError struct {
	Name string
	Err  error
}

func (e *StreamError) Error() string { return fmt.Sprintf("stream %s: %v", e.Name, e.Err) }
func (e *StreamError) Unwrap() error { return e.Err }

// ValidateStreamName reports whether name is usable as a Stream.Name.
func ValidateStreamName(name string) error {
	if name == "" {
		return errors.New("empty stream name")
	}
	if strings.HasPrefix(name, "/") {
		return fmt.Errorf("stream name %q: give a relative path", name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == "" || el == "." || el == ".." || strings.ContainsRune(el, 0) || len(el) > tree.MaxNameLen {
			return fmt.Errorf("stream name %q: element %q is not a valid file name", name, el)
		}
	}
	return nil
}

// BackupStreams makes one snapshot of streams: each becomes a regular file
// (mode 0600, owned by the current user, mtime the snapshot's time) below
// the snapshot's root, in directories of mode 0700. Options' Tags, Host,
// Time, ProgramVersion and Progress apply; the others are ignored. The
// snapshot's Paths are the streams' names with a leading slash. Nothing is
// saved unless every stream completes (see the file comment).
func BackupStreams(ctx context.Context, r *repo.Repository, streams []Stream, o Options) (*Result, error) {
	defer chunkBufs.Drain() // as in Backup
	start := time.Now()
	stored := r.Stats().BytesStored.Load()
	if len(streams) == 0 {
		return nil, errors.New("nothing to back up: no streams")
	}
	seen := map[string]bool{}
	for _, s := range streams {
		if err := ValidateStreamName(s.Name); err != nil {
			return nil, err
		}
		if s.Open == nil {
			return nil, fmt.Errorf("stream %s: no Open function", s.Name)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("stream %s: given twice", s.Name)
		}
		seen[s.Name] = true
	}
	// A name may not be both a file and a directory ("a" and "a/b").
	for name := range seen {
		for i := strings.IndexByte(name, '/'); i >= 0; i = next(name, i) {
			if seen[name[:i]] {
				return nil, fmt.Errorf("stream %s: %s is also a stream, it cannot be a directory", name, name[:i])
			}
		}
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	root := &dirBuild{children: map[string]*dirBuild{}}
	var sum repo.Summary
	for _, s := range streams {
		node, err := saveStream(ctx, r, s, now, o.Progress)
		if err != nil {
			return nil, err
		}
		dir, base := root, s.Name
		for {
			first, rest, ok := strings.Cut(base, "/")
			if !ok {
				break
			}
			sub := dir.children[first]
			if sub == nil {
				sub = &dirBuild{children: map[string]*dirBuild{}}
				dir.children[first] = sub
			}
			dir, base = sub, rest
		}
		node.Name = base
		dir.files = append(dir.files, node)
		sum.FilesNew++
		sum.TotalFiles++
		sum.TotalBytes += int64(node.Size)
		sum.BytesProcessed += int64(node.Size)
		o.Progress.Files.Add(1)
	}
	tid, dirs, err := root.save(ctx, r, now)
	if err != nil {
		return nil, err
	}
	if err := r.Flush(ctx); err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(streams))
	for _, s := range streams {
		paths = append(paths, "/"+s.Name)
	}
	sort.Strings(paths)
	snap := &repo.Snapshot{Time: now, Tree: tid, Paths: paths, Hostname: o.Host, Tags: o.Tags,
		ProgramVersion: o.ProgramVersion, Username: os.Getenv("USER")}
	sum.Dirs = dirs
	sum.BytesAdded = r.Stats().BytesStored.Load() - stored
	sum.Duration = time.Since(start).Seconds()
	snap.Summary = &sum
	if _, err := r.SaveSnapshot(ctx, snap); err != nil {
		return nil, err
	}
	return &Result{Snapshot: snap, Summary: sum}, nil
}

func next(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '/')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// dirBuild collects the nodes of one directory of a stream snapshot.
type dirBuild struct {
	children map[string]*dirBuild
	files    []tree.Node
}

// save writes the trees bottom up and returns the id of d's tree and the
// number of directories below d.
func (d *dirBuild) save(ctx context.Context, r *repo.Repository, now time.Time) (repo.ID, int64, error) {
	t := &tree.Tree{Nodes: append([]tree.Node(nil), d.files...)}
	var dirs int64
	for name, sub := range d.children {
		id, n, err := sub.save(ctx, r, now)
		if err != nil {
			return repo.ID{}, 0, err
		}
		tid := tree.ID(id)
		t.Nodes = append(t.Nodes, tree.Node{Name: name, Type: tree.TypeDir, Mode: 0o700,
			UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), ModTime: now, ChangeTime: now, Links: 2, Subtree: &tid})
		dirs += n + 1
	}
	t.Sort()
	id, err := r.SaveTree(ctx, t)
	return id, dirs, err
}

// saveStream reads one stream to its end and stores its chunks.
func saveStream(ctx context.Context, r *repo.Repository, s Stream, now time.Time, prog *Progress) (node tree.Node, err error) {
	node = tree.Node{Type: tree.TypeFile, Mode: 0o600, UID: uint32(os.Getuid()), GID: uint32(os.Getgid()),
		ModTime: now, ChangeTime: now, Links: 1}
	rc, err := s.Open(ctx)
	if err != nil {
		return node, &StreamError{s.Name, err}
	}
	closed := false
	defer func() {
		if !closed {
			// Stopping early: the stream is abandoned, its own error
			// (typically "killed" or a broken pipe) is a consequence.
			_ = rc.Close()
		}
	}()

	// Savers store chunks concurrently; results are collected in order.
	type saved struct {
		id  repo.ID
		n   int
		err error
	}
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan struct {
		buf *[]byte
		fut chan saved
	}, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				id, _, err := r.SaveBlob(ctx, repo.DataBlob, *j.buf)
				n := len(*j.buf)
				chunkBufs.Put(j.buf)
				prog.Bytes.Add(int64(n))
				j.fut <- saved{id, n, err}
			}
		}()
	}
	// At most 2*workers chunks wait in futs unreaped: bounded memory.
	var futs []chan saved
	reap := func(keep int) error {
		for len(futs) > keep {
			res := <-futs[0]
			futs = futs[1:]
			if res.err != nil {
				return res.err
			}
			node.Content = append(node.Content, tree.Chunk(tree.ID(res.id)))
			node.Size += uint64(res.n)
		}
		return nil
	}
	stop := func() {
		close(jobs)
		wg.Wait()
	}
	ch := chunker.New(rc, r.ChunkerTable(), r.Config().Chunker)
	for {
		chunk, rerr := ch.Next()
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			cancel := ctx.Err()
			stop()
			if cancel != nil {
				return node, cancel
			}
			return node, &StreamError{s.Name, fmt.Errorf("reading: %w", rerr)}
		}
		bp := chunkBufs.Get(len(chunk))
		*bp = append(*bp, chunk...)
		fut := make(chan saved, 1)
		jobs <- struct {
			buf *[]byte
			fut chan saved
		}{bp, fut}
		futs = append(futs, fut)
		if err := reap(2 * workers); err != nil {
			stop()
			return node, err
		}
	}
	stop()
	if err := reap(0); err != nil {
		return node, err
	}
	closed = true
	if err := rc.Close(); err != nil {
		return node, &StreamError{s.Name, err}
	}
	if err := ctx.Err(); err != nil {
		return node, err
	}
	return node, nil
}
