package dump

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
)

// SnapshotFile is a regular file found in a snapshot.
type SnapshotFile struct {
	Path string // absolute path in the snapshot ("/postgres/app.dump")
	Node tree.Node
}

// ListFiles returns the regular files directly inside dir ("/postgres") of
// snapshot s, sorted by name. A snapshot without dir has none.
func ListFiles(ctx context.Context, r *repo.Repository, s *repo.Snapshot, dir string) ([]SnapshotFile, error) {
	t, err := r.LoadTree(ctx, s.Tree)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", repo.Short(s.ID), err)
	}
	for _, el := range strings.Split(strings.Trim(dir, "/"), "/") {
		if el == "" {
			continue
		}
		var sub *tree.Node
		for i := range t.Nodes {
			if t.Nodes[i].Name == el && t.Nodes[i].Type == tree.TypeDir {
				sub = &t.Nodes[i]
			}
		}
		if sub == nil {
			return nil, nil
		}
		if t, err = r.LoadTree(ctx, repo.ID(*sub.Subtree)); err != nil {
			return nil, fmt.Errorf("snapshot %s: %s: %w", repo.Short(s.ID), dir, err)
		}
	}
	var out []SnapshotFile
	prefix := "/" + strings.Trim(dir, "/") + "/"
	for _, n := range t.Nodes {
		if n.Type == tree.TypeFile {
			out = append(out, SnapshotFile{Path: prefix + n.Name, Node: n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// NewFileReader returns the content of a file node of r, read chunk by
// chunk as the caller consumes it (no temporary file). The next chunk is
// loaded while the caller works on the current one. Each chunk is
// verified against its id by LoadBlob; a chunk that cannot be loaded makes
// Read fail.
func NewFileReader(ctx context.Context, r *repo.Repository, n *tree.Node) io.ReadCloser {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan piece, 2)
	go func() {
		defer close(ch)
		zero := make([]byte, 64<<10)
		send := func(p piece) bool {
			select {
			case ch <- p:
				return p.err == nil
			case <-ctx.Done():
				return false
			}
		}
		var got uint64
		for _, c := range n.Content {
			if c.IsHole() {
				for left := c.Hole; left > 0; {
					k := min(left, uint64(len(zero)))
					if !send(piece{b: zero[:k]}) {
						return
					}
					left -= k
				}
				got += c.Hole
				continue
			}
			b, err := r.LoadBlob(ctx, repo.DataBlob, repo.ID(c.ID), nil)
			if err != nil {
				send(piece{err: fmt.Errorf("loading chunk %s of %s: %w", tree.ID(c.ID).String()[:8], n.Name, err)})
				return
			}
			got += uint64(len(b))
			if !send(piece{b: b}) {
				return
			}
		}
		if got != n.Size {
			send(piece{err: fmt.Errorf("%s: content holds %d bytes, the snapshot says %d", n.Name, got, n.Size)})
		}
	}()
	return &fileReader{ch: ch, cancel: cancel}
}

// piece is one chunk of a file, or the error that ends it.
type piece struct {
	b   []byte
	err error
}

type fileReader struct {
	ch     <-chan piece
	cur    []byte
	err    error
	cancel context.CancelFunc
}

func (f *fileReader) Read(p []byte) (int, error) {
	for len(f.cur) == 0 {
		if f.err != nil {
			return 0, f.err
		}
		pc, ok := <-f.ch
		if !ok {
			f.err = io.EOF
			continue
		}
		if pc.err != nil {
			f.err = pc.err
			continue
		}
		f.cur = pc.b
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

// Close stops the prefetching goroutine.
func (f *fileReader) Close() error {
	f.cancel()
	for range f.ch {
	}
	return nil
}

// escapeName turns a database name into a file name: '%', '/', '@'
// (reserved for Bulwark's own names, such as MyAllFile) and control
// characters (for readable listings) are percent-encoded.
func escapeName(db string) string {
	var b strings.Builder
	for i := 0; i < len(db); i++ {
		c := db[i]
		if c == '%' || c == '/' || c == '@' || c < 0x20 || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// unescapeName reverses escapeName.
func unescapeName(s string) (string, error) {
	return url.PathUnescape(s)
}
