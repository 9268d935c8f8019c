package vault

// Receipts: meta/NAME/received.jsonl holds one JSON line per snapshot
// object the vault stored, {"name":ID,"received":RFC 3339,"token":NAME},
// appended with O_APPEND and fsynced before the upload is answered. A line
// torn by a crash is skipped when read; when a name appears twice (it
// cannot, since objects are never overwritten, unless an administrator
// removed and re-added it) the last line wins.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo/backend"
	"github.com/bulwarkhq/bulwark/internal/repo/backend/local"
	"github.com/bulwarkhq/bulwark/internal/repo/prune"
)

// Receipt records when the vault received a snapshot object.
type Receipt struct {
	Name     string    `json:"name"`
	Received time.Time `json:"received"`
	Token    string    `json:"token,omitempty"`
}

func receiptsPath(meta string) string { return filepath.Join(meta, "received.jsonl") }

func (s *Server) recordReceipt(rs *repoState, name, token string) error {
	b, err := json.Marshal(Receipt{Name: name, Received: s.now().UTC(), Token: token})
	if err != nil {
		return err
	}
	rs.recMu.Lock()
	defer rs.recMu.Unlock()
	f, err := os.OpenFile(receiptsPath(rs.meta), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readReceipts returns name -> receipt time from a repository's receipts.
func readReceipts(meta string) (map[string]time.Time, error) {
	f, err := os.Open(receiptsPath(meta))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]time.Time{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]time.Time{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		var r Receipt
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Name == "" || r.Received.IsZero() {
			continue // torn by a crash
		}
		out[r.Name] = r.Received
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", receiptsPath(meta), err)
	}
	return out, nil
}

// RetentionOptions say which snapshots retention keeps.
type RetentionOptions struct {
	// KeepWithin keeps every snapshot received within this duration of the
	// newest receipt. Zero keeps none by age (KeepLast must be set).
	KeepWithin prune.Duration
	// KeepLast keeps the n most recently received snapshots.
	KeepLast int
	// DryRun reports and deletes nothing.
	DryRun bool
}

// RetainedSnapshot is one snapshot retention looked at.
type RetainedSnapshot struct {
	Name     string    `json:"name"`
	Received time.Time `json:"received"`
	// FromFile is set when no receipt exists and the file's time was used.
	FromFile bool `json:"from_file_time,omitempty"`
}

// RetentionReport is what Retention did.
type RetentionReport struct {
	Repo    string             `json:"repo"`
	Cutoff  time.Time          `json:"cutoff"`
	Keep    []RetainedSnapshot `json:"keep"`
	Remove  []RetainedSnapshot `json:"remove"`
	Removed int                `json:"removed"`
	DryRun  bool               `json:"dry_run"`
}

// ErrNoRetentionRule: Retention was given no rule, which would delete
// every snapshot.
var ErrNoRetentionRule = errors.New("no retention rule: give a keep-within duration or keep-last")

// Retention deletes the snapshot objects of repository name in the vault
// data directory data that o does not keep, judging each by the time the
// vault received it (see the package documentation). It deletes snapshot
// objects only. It may run while the vault serves.
func Retention(ctx context.Context, data, name string, o RetentionOptions) (*RetentionReport, error) {
	if o.KeepWithin.IsZero() && o.KeepLast <= 0 {
		return nil, ErrNoRetentionRule
	}
	if !ValidRepoName(name) {
		return nil, fmt.Errorf("retention: invalid repository name %q", name)
	}
	dir := filepath.Join(data, "repos", name)
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("retention: repository %q: %w", name, err)
	}
	be, err := local.Create(dir) // adds nothing to an existing layout
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	defer be.Close()
	receipts, err := readReceipts(filepath.Join(data, "meta", name))
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	var snaps []RetainedSnapshot
	err = be.List(ctx, backend.SnapshotFile, func(fi backend.FileInfo) error {
		if (backend.Handle{Type: backend.SnapshotFile, Name: fi.Name}).Validate() != nil {
			return nil // foreign entry: not a snapshot, not ours to delete
		}
		rs := RetainedSnapshot{Name: fi.Name}
		if t, ok := receipts[fi.Name]; ok {
			rs.Received = t
		} else {
			st, err := os.Stat(filepath.Join(dir, string(backend.SnapshotFile), fi.Name))
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			rs.Received, rs.FromFile = st.ModTime().UTC(), true
		}
		snaps = append(snaps, rs)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retention: %w", err)
	}
	sort.Slice(snaps, func(i, j int) bool {
		if !snaps[i].Received.Equal(snaps[j].Received) {
			return snaps[i].Received.After(snaps[j].Received)
		}
		return snaps[i].Name < snaps[j].Name
	})
	rep := &RetentionReport{Repo: name, DryRun: o.DryRun, Keep: []RetainedSnapshot{}, Remove: []RetainedSnapshot{}}
	if len(snaps) == 0 {
		return rep, nil
	}
	if !o.KeepWithin.IsZero() {
		rep.Cutoff = o.KeepWithin.Before(snaps[0].Received)
	}
	for i, sn := range snaps {
		keep := i < o.KeepLast || (!o.KeepWithin.IsZero() && !sn.Received.Before(rep.Cutoff))
		if keep {
			rep.Keep = append(rep.Keep, sn)
		} else {
			rep.Remove = append(rep.Remove, sn)
		}
	}
	if o.DryRun {
		return rep, nil
	}
	for _, sn := range rep.Remove {
		err := be.Remove(ctx, backend.Handle{Type: backend.SnapshotFile, Name: sn.Name})
		if err != nil && !errors.Is(err, backend.ErrNotExist) {
			return rep, fmt.Errorf("retention: removed %d of %d snapshots, then: %w", rep.Removed, len(rep.Remove), err)
		}
		rep.Removed++
	}
	return rep, nil
}

// Repos returns the names of the repositories in the vault data directory
// data.
func Repos(data string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(data, "repos"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("vault %s: %w", data, err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && ValidRepoName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}
