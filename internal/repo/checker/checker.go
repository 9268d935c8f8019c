// Package checker verifies a backup repository: `bulwark repo check`.
//
// A check never changes the repository: it lists, stats and reads objects
// and reports what it finds. It does not take a lock either (a lock is a
// write, and taking one removes stale locks); a caller that wants prune
// kept out while it runs takes a shared lock itself.
//
// # What is checked
//
// The structural check, always run, in this order:
//
//  1. Names. Every object of every type is listed; an entry whose name is
//     not valid for its type (not a 64-hex id, an id in the wrong shard
//     directory, a directory) is a foreign file and an error. It is named,
//     never removed. On a local directory, temporary files of writes that
//     were interrupted more than an hour ago are warnings.
//  2. Keys. Every key file's SHA-256 is its name and its clear part parses.
//  3. Index. Every index file decrypts, decompresses and decodes (with its
//     signature when flagged), and its SHA-256 is its name. Files that
//     another supersedes are checked but not merged, as repo.LoadIndex does.
//  4. Packs. Every pack the index lists exists. Its header is read (one
//     read of the pack's tail) and every index entry must match a header
//     record (same offset, type, id, lengths, flags); the header may list
//     more blobs than the index (duplicates dropped by prune). A write-only
//     key cannot open headers: it checks the trailer and that the index
//     entries fit in the space the trailer leaves for blobs. A pack no index
//     lists is a warning (left by an interrupted backup; prune removes it).
//  5. Parity, when the config has it. Every indexed pack has a parity
//     object whose header parses and describes that pack; parity objects
//     without a pack are warnings.
//  6. Locks. Unreadable and stale locks are warnings.
//  7. Snapshots (full keys). Every snapshot's SHA-256 is its name (write-only
//     keys check that much) and it decrypts and decodes. Every tree
//     reachable from a snapshot is loaded from the repository (never from
//     the local cache), decrypted, verified against its id and decoded,
//     each tree once however many snapshots share it. Every chunk of every
//     file must be in the index, in a pack that exists and, after
//     --read-data, is not damaged; a file that lacks chunks is an error
//     naming the snapshot, the path and the first missing chunk.
//
// With ReadData, the packs (all, or a Subset) are then read whole by a few
// workers in parallel: the SHA-256 must be the pack's name; with parity,
// parity.Check tells which shards are damaged and whether `repo repair` can
// rebuild them (it also catches damage in the parity object itself); the
// header is parsed and compared with the index as above, and every blob is
// decrypted, decompressed and verified against its id. A pack read whole
// skips the separate header read of step 4. Snapshots are walked last so
// that files whose chunks turned out damaged are named.
//
// Errors name the object they concern ("data/<id>", "index/<id>",
// "snapshots/<id>", ...) and say what is wrong; a problem with the
// repository's content is a Problem in the Report, never a returned error,
// so one check lists every problem it can find. Check returns an error
// only when it could not run (the context was cancelled, or Options are
// invalid).
//
// When the set of index files differs at the end from the start (a
// concurrent backup or prune), a warning says so: problems found may then
// be a race, and a second check tells.
//
// Packs no index lists are checked like the others (header, and with
// ReadData their bytes) and reported as warnings: when an index file is
// lost they hold its blobs, and the warning then points to `repo repair`.
package checker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/index"
)

// Options tune a check.
type Options struct {
	// ReadData reads every pack (or Subset of them) whole and verifies its
	// hash, parity and every blob.
	ReadData bool
	// Subset limits ReadData to some packs; the zero value reads all.
	Subset Subset
	// Workers is how many packs are read at once (default: GOMAXPROCS+1,
	// at least 2, at most 8).
	Workers int
	// Progress, when set, is updated as the check runs.
	Progress *Progress
	// Now is the clock for stale locks and temporary files (default
	// time.Now).
	Now func() time.Time
	// Rand picks the packs of a percentage Subset (default: seeded at
	// random).
	Rand *rand.Rand
}

// StaleTemp is the age from which a temporary file of the local backend
// is reported as left by an interrupted write (local.CleanTemp's safe age).
const StaleTemp = time.Hour

// maxBlobErrors bounds the blob errors listed for one pack; the rest are
// counted in one more problem.
const maxBlobErrors = 10

// Problem is one finding.
type Problem struct {
	// Object is the repository object concerned, as "type/name" (e.g.
	// "data/3f2a…", "index/…", "snapshots/…", "keys/…", "locks/…",
	// "parity/…", "config"), or a path of the local backend for files
	// outside the object namespace.
	Object string `json:"object"`
	// Message says what is wrong.
	Message string `json:"message"`
}

func (p Problem) String() string { return p.Object + ": " + p.Message }

// Stats count what a check looked at.
type Stats struct {
	Keys       int `json:"keys"`
	IndexFiles int `json:"index_files"`
	// UnsignedIndexFiles were written by write-only keys: their entries
	// are read but not trusted for deduplication until a full key's prune
	// re-signs them.
	UnsignedIndexFiles int     `json:"index_files_unsigned"`
	Packs              int     `json:"packs"`         // objects in data/
	PacksIndexed       int     `json:"packs_indexed"` // packs the index lists
	PacksRead          int     `json:"packs_read"`    // packs read whole (ReadData)
	BytesRead          int64   `json:"bytes_read"`    // bytes of packs read whole
	Blobs              int     `json:"blobs"`         // distinct blobs in the index
	BlobsRead          int     `json:"blobs_read"`    // blobs decrypted and verified (ReadData)
	Snapshots          int     `json:"snapshots"`
	Trees              int     `json:"trees"` // distinct trees loaded
	Duration           float64 `json:"duration_seconds"`
}

// Report is the outcome of a check.
type Report struct {
	// OK is true when there are no errors (warnings allowed).
	OK bool `json:"ok"`
	// Errors are problems: damaged, missing or foreign objects.
	Errors []Problem `json:"errors"`
	// Warnings are not failures: leftovers of interrupted operations that
	// prune, unlock or the next backup clear up.
	Warnings []Problem `json:"warnings"`
	// Skipped lists checks that could not run, and why (a write-only key
	// cannot open packs and snapshots).
	Skipped []string `json:"skipped,omitempty"`
	Stats   Stats    `json:"stats"`
}

// Progress is updated atomically while a check runs.
type Progress struct {
	phase atomic.Pointer[string]
	// Done and Total count the items of the current phase (packs, index
	// files, snapshots or trees).
	Done, Total atomic.Int64
	// Bytes and TotalBytes count pack bytes while data is read.
	Bytes, TotalBytes atomic.Int64
	// Errors counts the errors found so far.
	Errors atomic.Int64
}

// Phase returns what the check is doing: "listing", "keys", "index",
// "packs", "parity", "locks", "reading data", "snapshots", "trees", then
// "done".
func (p *Progress) Phase() string {
	if s := p.phase.Load(); s != nil {
		return *s
	}
	return ""
}

func (p *Progress) start(phase string, total int) {
	p.phase.Store(&phase)
	p.Total.Store(int64(total))
	p.Done.Store(0)
}

// packInfo is one pack as listed and indexed.
type packInfo struct {
	id      repo.ID
	size    int64 // from the listing; -1 when the pack is missing
	blobs   []indexEntry
	indexes []repo.ID // the index files that list it
	read    bool      // selected for ReadData
	bad     bool      // missing or unreadable: its blobs are not available
}

type blobKey struct {
	id repo.ID
	t  uint8
}

// checker holds the state of one check.
type checker struct {
	r    *repo.Repository
	be   backend.Backend
	o    Options
	prog *Progress

	mu       sync.Mutex
	rep      Report
	listed   map[backend.Type]map[string]int64 // valid names and sizes per type
	idx      *index.Index                      // merged, like repo.LoadIndex
	dups     map[blobKey][]repo.ID             // other packs holding a blob
	packs    map[repo.ID]*packInfo             // indexed packs
	badBlobs map[badBlob]bool                  // blobs that failed verification
	badIndex bool                              // some index file could not be read
	// unreferenced are the packs no index lists.
	unreferenced []*packInfo
	// notIndexed is set when a snapshot needs a blob no index lists.
	notIndexed atomic.Bool
	indexes    []string // index names at the start
}

// Check verifies r; see the package documentation. It does not use r's
// loaded index (if any) or its local cache.
func Check(ctx context.Context, r *repo.Repository, o Options) (*Report, error) {
	start := time.Now()
	if o.Workers <= 0 {
		o.Workers = min(max(runtime.GOMAXPROCS(0)+1, 2), 8)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if o.Progress == nil {
		o.Progress = &Progress{}
	}
	if err := o.Subset.validate(); err != nil {
		return nil, err
	}
	c := &checker{r: r, be: r.Backend(), o: o, prog: o.Progress,
		listed: map[backend.Type]map[string]int64{}, idx: index.New(),
		dups: map[blobKey][]repo.ID{}, packs: map[repo.ID]*packInfo{}, badBlobs: map[badBlob]bool{}}
	if !r.CanRead() {
		c.skip("pack headers and blob contents: a write-only key cannot decrypt packs (checked instead: pack trailers, sizes against the index, and with --read-data each pack's SHA-256 and parity)")
		c.skip("snapshot contents and trees: a write-only key cannot decrypt snapshots (checked instead: each snapshot's SHA-256)")
	}
	steps := []func(context.Context){
		c.list, c.checkKeys, c.loadIndex, c.checkPacks, c.checkParity, c.checkLocks,
	}
	if o.ReadData {
		steps = append(steps, c.readData)
	}
	steps = append(steps, c.checkSnapshots, c.reportUnreferenced, c.checkIndexUnchanged)
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		step(ctx)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.prog.start("done", 0)
	rep := &c.rep
	sortProblems(rep.Errors)
	sortProblems(rep.Warnings)
	if rep.Errors == nil {
		rep.Errors = []Problem{}
	}
	if rep.Warnings == nil {
		rep.Warnings = []Problem{}
	}
	rep.OK = len(rep.Errors) == 0
	rep.Stats.Blobs = c.idx.Len()
	rep.Stats.Duration = time.Since(start).Seconds()
	return rep, nil
}

func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Object != ps[j].Object {
			return ps[i].Object < ps[j].Object
		}
		return ps[i].Message < ps[j].Message
	})
}

func (c *checker) errorf(object, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rep.Errors = append(c.rep.Errors, Problem{object, fmt.Sprintf(format, args...)})
	c.prog.Errors.Add(1)
}

func (c *checker) warnf(object, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rep.Warnings = append(c.rep.Warnings, Problem{object, fmt.Sprintf(format, args...)})
}

func (c *checker) skip(what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rep.Skipped = append(c.rep.Skipped, what)
}

// object names an object as in messages: "data/<hex>".
func object(t backend.Type, id repo.ID) string {
	return backend.Handle{Type: t, Name: repo.Hex(id)}.String()
}

// parallel runs fn for 0..n-1 on the check's workers.
func (c *checker) parallel(ctx context.Context, n int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(c.o.Workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}
