package continuity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/crypto"
)

// SnapshotInfo describes one snapshot of a policy for lists (the API).
type SnapshotInfo struct {
	ID       string    `json:"id"`
	ShortID  string    `json:"short_id"`
	Time     time.Time `json:"time"`
	Hostname string    `json:"hostname"`
	Paths    []string  `json:"paths"`
	Tags     []string  `json:"tags"`
	// Source is the policy's source it holds (its source=NAME tag).
	Source string `json:"source"`
	// Summary is what the backup recorded (files, bytes), when it did.
	Summary *repo.Summary `json:"summary,omitempty"`
}

// Why a policy's snapshots cannot be listed.
var (
	// ErrNotPolicyRepository: the repository is neither the policy's
	// primary nor one of its offsite ones.
	ErrNotPolicyRepository = errors.New("not a repository of the policy")
	// ErrUnavailable: the repository cannot be opened or read now.
	ErrUnavailable = errors.New("repository unavailable")
	// ErrWriteOnly: the configured key of the repository is write-only,
	// so its snapshots cannot be read.
	ErrWriteOnly = errors.New("the repository's key is write-only: its snapshots cannot be read here")
)

// Snapshots lists the snapshots of the policy (those tagged policy=NAME)
// in repository repoName, its primary when "", newest first.
func (s *Service) Snapshots(ctx context.Context, name, repoName string) ([]SnapshotInfo, error) {
	p, err := s.policy(name)
	if err != nil {
		return nil, err
	}
	if repoName == "" {
		repoName = p.Repository
	}
	if repoName != p.Repository && !slices.Contains(p.Offsite, repoName) {
		return nil, fmt.Errorf("repository %q: %w %s (primary %s, offsite %v)", repoName, ErrNotPolicyRepository, p.Name, p.Repository, p.Offsite)
	}
	all, canRead, err := s.readSnapshots(ctx, repoName)
	switch {
	case err != nil && !canRead:
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	case err != nil && errors.Is(err, crypto.ErrWriteOnly), err == nil && !canRead:
		return nil, fmt.Errorf("%s: %w", repoName, ErrWriteOnly)
	case err != nil:
		return nil, fmt.Errorf("%w: repository %s: listing snapshots: %v", ErrUnavailable, repoName, err)
	}
	snaps := ofPolicy(all, p.Name, "")
	out := make([]SnapshotInfo, 0, len(snaps))
	for _, sn := range slices.Backward(snaps) {
		info := SnapshotInfo{ID: repo.Hex(sn.ID), ShortID: repo.Short(sn.ID), Time: sn.Time, Hostname: sn.Hostname,
			Paths: append([]string{}, sn.Paths...), Tags: append([]string{}, sn.Tags...), Summary: sn.Summary}
		for _, t := range sn.Tags {
			if src, ok := strings.CutPrefix(t, SourceTag("")); ok {
				info.Source = src
				break
			}
		}
		out = append(out, info)
	}
	return out, nil
}
