package continuity

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
)

// Readers: repositories kept open for reading snapshot lists.
//
// Listing a policy's snapshots (the API, the console, the recovery-point
// watch) would otherwise open the repository each time: a key derivation
// that costs about 0.1 s by design, the index, and then every snapshot
// file read and decrypted again. A reader keeps the opened repository for
// ReaderIdle after its last use, and the snapshots it has decoded: a
// snapshot is named by the hash of its content, so one already decoded is
// never read again. Each listing still asks the backend which snapshots
// exist now, so new snapshots appear and forgotten ones disappear at once.
//
// Backups, restore tests, scrubs and copies open their own repository, as
// before: they write, or must see the repository as it is.

// ReaderIdle is how long a reader stays open after its last use, unless
// Service.ReaderIdle says otherwise.
const ReaderIdle = 5 * time.Minute

func (s *Service) readerIdle() time.Duration {
	if s.ReaderIdle > 0 {
		return s.ReaderIdle
	}
	return ReaderIdle
}

type reader struct {
	mu     sync.Mutex // one listing at a time
	r      *repo.Repository
	loc    string
	snaps  map[repo.ID]*repo.Snapshot
	closed bool        // retired: the next use takes a new reader
	idle   *time.Timer // retires it ReaderIdle after its last use
}

type readers struct {
	mu sync.Mutex
	m  map[string]*reader
}

// reader returns the reader of the repository called name, locked, with
// its repository open; the caller unlocks rd.mu.
func (s *Service) reader(ctx context.Context, name string) (*reader, error) {
	rc, _ := s.Config.RepositoryByName(name)
	for range 3 { // a reader retired between the two locks is replaced
		s.readers.mu.Lock()
		if s.readers.m == nil {
			s.readers.m = map[string]*reader{}
		}
		rd := s.readers.m[name]
		if rd != nil && rd.loc != rc.Location { // the configuration moved it
			delete(s.readers.m, name)
			go rd.retire()
			rd = nil
		}
		if rd == nil {
			rd = &reader{loc: rc.Location, snaps: map[repo.ID]*repo.Snapshot{}}
			s.readers.m[name] = rd
			rd.idle = time.AfterFunc(s.readerIdle(), func() { s.retire(name, rd) })
		} else {
			rd.idle.Reset(s.readerIdle())
		}
		s.readers.mu.Unlock()
		rd.mu.Lock()
		if rd.closed {
			rd.mu.Unlock()
			continue
		}
		if rd.r == nil {
			r, err := s.openList(ctx, name)
			if err != nil {
				rd.mu.Unlock()
				return nil, err
			}
			rd.r = r
		}
		return rd, nil
	}
	return nil, fmt.Errorf("repository %s: its reader kept closing", name)
}

// openList opens the repository called name with OpenList (else Open).
func (s *Service) openList(ctx context.Context, name string) (*repo.Repository, error) {
	if s.OpenList == nil {
		return s.openNamed(ctx, name)
	}
	rc, ok := s.Config.RepositoryByName(name)
	if !ok {
		return nil, fmt.Errorf("repository %q is not configured", name)
	}
	r, err := s.OpenList(ctx, rc)
	if err != nil {
		return nil, fmt.Errorf("repository %s (%s): %w", name, rc.Location, err)
	}
	return r, nil
}

// retire removes rd from the readers (unless another took its place) and
// closes it, after any listing in progress.
func (s *Service) retire(name string, rd *reader) {
	s.readers.mu.Lock()
	if s.readers.m[name] == rd {
		delete(s.readers.m, name)
	}
	s.readers.mu.Unlock()
	rd.retire()
}

func (rd *reader) retire() {
	rd.idle.Stop()
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.closed = true
	if rd.r != nil {
		rd.r.Close()
		rd.r = nil
	}
	rd.snaps = nil
}

// CloseReaders closes the repositories kept open for reading.
func (s *Service) CloseReaders() {
	s.readers.mu.Lock()
	m := s.readers.m
	s.readers.m = nil
	s.readers.mu.Unlock()
	for _, rd := range m {
		rd.retire()
	}
}

// readSnapshots returns every snapshot of the repository called name,
// oldest first (repo.SortSnapshots), through its reader, and whether its
// key can read at all. Snapshots that fail to load are left out, as
// repo.Snapshots does.
func (s *Service) readSnapshots(ctx context.Context, name string) (snaps []*repo.Snapshot, canRead bool, err error) {
	rd, err := s.reader(ctx, name)
	if err != nil {
		return nil, false, err
	}
	defer rd.mu.Unlock()
	if !rd.r.CanRead() {
		return nil, false, nil
	}
	ids, _, err := rd.r.SnapshotIDs(ctx)
	if err != nil { // the next listing opens the repository again
		rd.r.Close()
		rd.r, rd.snaps = nil, map[repo.ID]*repo.Snapshot{}
		return nil, true, err
	}
	seen := make(map[repo.ID]bool, len(ids))
	var missing []repo.ID
	for _, id := range ids {
		seen[id] = true
		if rd.snaps[id] == nil {
			missing = append(missing, id)
		}
	}
	for id := range rd.snaps {
		if !seen[id] {
			delete(rd.snaps, id) // forgotten
		}
	}
	loaded := make([]*repo.Snapshot, len(missing))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, id := range missing {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if sn, err := rd.r.LoadSnapshot(ctx, id); err == nil {
				loaded[i] = sn
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, true, err
	}
	for i, id := range missing {
		if loaded[i] != nil {
			rd.snaps[id] = loaded[i]
		}
	}
	out := make([]*repo.Snapshot, 0, len(rd.snaps))
	for _, sn := range rd.snaps {
		out = append(out, sn)
	}
	repo.SortSnapshots(out)
	return out, true, nil
}

// ofPolicy keeps the snapshots of the policy (and of one of its sources,
// when source is not ""), in their order.
func ofPolicy(snaps []*repo.Snapshot, policy, source string) []*repo.Snapshot {
	var out []*repo.Snapshot
	for _, sn := range snaps {
		if sn.HasTag(PolicyTag(policy)) && (source == "" || sn.HasTag(SourceTag(source))) {
			out = append(out, sn)
		}
	}
	return out
}
