package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/continuity"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Backup policies. Two access modules meet here: "backups" covers the
// policies, their backup runs and starting a backup; "continuity" covers
// restore tests, scrubs and the recovery-point watch. Each policy is a
// resource tagged policy=NAME plus its key=value snapshot tags, so a grant
// scoped to policy=web reaches that policy only. A policy the caller may
// read under neither module is reported as not found.

// policyModule is the module that governs runs of kind.
func policyModule(k continuity.Kind) access.Module {
	if k == continuity.KindBackup {
		return access.ModuleBackups
	}
	return access.ModuleContinuity
}

func (s *Server) policies() []config.Policy {
	if s.d.Continuity == nil {
		return nil
	}
	return s.d.Continuity.Policies()
}

// loadPolicy finds {name}, hides it from callers who may read it under
// neither module, and checks level l on module m.
func (s *Server) loadPolicy(r *http.Request, c *Call, m access.Module, l access.Level) (config.Policy, map[string]string, error) {
	name := r.PathValue("name")
	c.Resource = "policy/" + name
	notFound := &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("no backup policy %q (GET /api/v1/policies lists those you may see)", name)}
	if s.d.Continuity == nil {
		return config.Policy{}, nil, notFound
	}
	p, err := s.d.Continuity.Policy(name)
	if err != nil {
		return p, nil, notFound
	}
	tags := continuity.ResourceTags(p)
	if s.checkResource(c, access.ModuleBackups, access.LevelRead, tags) != nil && s.checkResource(c, access.ModuleContinuity, access.LevelRead, tags) != nil {
		return p, nil, notFound
	}
	return p, tags, s.checkResource(c, m, l, tags)
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request, c *Call) error {
	out := List[continuity.PolicySummary]{Items: []continuity.PolicySummary{}}
	for _, p := range s.policies() {
		if s.checkResource(c, access.ModuleBackups, access.LevelRead, continuity.ResourceTags(p)) != nil {
			continue
		}
		sum, err := s.d.Continuity.Summary(r.Context(), p)
		if err != nil {
			return err
		}
		out.Items = append(out.Items, sum)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request, c *Call) error {
	p, _, err := s.loadPolicy(r, c, access.ModuleBackups, access.LevelRead)
	if err != nil {
		return err
	}
	sum, err := s.d.Continuity.Summary(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sum)
	return nil
}

// readableKinds returns the run kinds the caller may read on a policy
// tagged tags.
func (s *Server) readableKinds(c *Call, tags map[string]string) []continuity.Kind {
	var out []continuity.Kind
	for _, k := range []continuity.Kind{continuity.KindBackup, continuity.KindRestoreTest, continuity.KindScrub} {
		if s.checkResource(c, policyModule(k), access.LevelRead, tags) == nil {
			out = append(out, k)
		}
	}
	return out
}

func (s *Server) listPolicyRuns(w http.ResponseWriter, r *http.Request, c *Call) error {
	p, tags, err := s.loadPolicy(r, c, access.ModuleBackups, access.LevelRead)
	if err != nil {
		return err
	}
	after, limit, err := s.page(r)
	if err != nil {
		return err
	}
	q := continuity.RunQuery{Policy: p.Name, Limit: limit, Kinds: s.readableKinds(c, tags)}
	if len(q.Kinds) == 0 { // (no kinds would mean every kind)
		writeJSON(w, http.StatusOK, List[continuity.Run]{Items: []continuity.Run{}})
		return nil
	}
	if after != "" {
		if q.Before, err = strconv.ParseInt(after, 10, 64); err != nil || q.Before <= 0 {
			return badRequest("after", "after must be a run id (the next field of the previous page)")
		}
	}
	if k := r.URL.Query().Get("kind"); k != "" {
		kind := continuity.Kind(k)
		if kind != continuity.KindBackup && kind != continuity.KindRestoreTest && kind != continuity.KindScrub {
			return badRequest("kind", "kind must be backup, restore_test or scrub")
		}
		if err := s.checkResource(c, policyModule(kind), access.LevelRead, tags); err != nil {
			return err
		}
		q.Kinds = []continuity.Kind{kind}
	}
	runs, err := s.d.Continuity.History.Query(r.Context(), q)
	if err != nil {
		return err
	}
	out := List[continuity.Run]{Items: append([]continuity.Run{}, runs...)}
	if len(runs) == limit {
		out.Next = strconv.FormatInt(runs[len(runs)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getPolicyRun(w http.ResponseWriter, r *http.Request, c *Call) error {
	p, tags, err := s.loadPolicy(r, c, access.ModuleBackups, access.LevelRead)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return badRequest("id", "run id must be a positive integer")
	}
	c.Resource = fmt.Sprintf("policy/%s/run/%d", p.Name, id)
	run, err := s.d.Continuity.History.Get(r.Context(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// A run of another policy, or of a kind the caller may not read, is
	// not found here.
	if err != nil || run.Policy != p.Name || !slices.Contains(s.readableKinds(c, tags), run.Kind) {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: fmt.Sprintf("policy %s has no run %d you may see", p.Name, id)}
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

// listPolicySnapshots lists the policy's snapshots in its primary
// repository, or in ?repo=NAME (one of its offsite repositories), newest
// first: ?limit (default 100), ?after=ID (the next field of the previous
// page).
func (s *Server) listPolicySnapshots(w http.ResponseWriter, r *http.Request, c *Call) error {
	p, _, err := s.loadPolicy(r, c, access.ModuleBackups, access.LevelRead)
	if err != nil {
		return err
	}
	after, limit, err := s.page(r)
	if err != nil {
		return err
	}
	repoName := r.URL.Query().Get("repo")
	if repoName != "" && repoName != p.Repository && !slices.Contains(p.Offsite, repoName) {
		return badRequest("repo", "repo must be the policy's repository %q or one of its offsite repositories %q", p.Repository, p.Offsite)
	}
	snaps, err := s.d.Continuity.Snapshots(r.Context(), p.Name, repoName)
	if err != nil {
		return err
	}
	if after != "" {
		i := slices.IndexFunc(snaps, func(sn continuity.SnapshotInfo) bool { return sn.ID == after })
		if i < 0 {
			return badRequest("after", "after must be the id of a snapshot of the policy (the next field of the previous page)")
		}
		snaps = snaps[i+1:]
	}
	out := List[continuity.SnapshotInfo]{Items: snaps}
	if len(snaps) > limit {
		out.Items = snaps[:limit]
		out.Next = snaps[limit-1].ID
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// startJob returns the handler that starts a job of kind now: 202 with the
// run as recorded at its start and its address in Location.
func (s *Server) startJob(kind continuity.Kind) func(http.ResponseWriter, *http.Request, *Call) error {
	return func(w http.ResponseWriter, r *http.Request, c *Call) error {
		p, _, err := s.loadPolicy(r, c, policyModule(kind), access.LevelOperate)
		if err != nil {
			return err
		}
		if s.d.Scheduler == nil {
			return continuity.ErrNotRunning
		}
		run, err := s.d.Scheduler.Trigger(p.Name, kind, "user:"+c.Principal.Username)
		if err != nil {
			return err
		}
		c.Details = map[string]any{"run": run.ID, "kind": string(kind)}
		w.Header().Set("Location", fmt.Sprintf("/api/v1/policies/%s/runs/%d", p.Name, run.ID))
		writeJSON(w, http.StatusAccepted, run)
		return nil
	}
}

func (s *Server) policyRPO(w http.ResponseWriter, r *http.Request, c *Call) error {
	p, _, err := s.loadPolicy(r, c, access.ModuleContinuity, access.LevelRead)
	if err != nil {
		return err
	}
	// A breach or recovery this measurement finds is raised as an event
	// in the caller's name.
	st, err := s.d.Continuity.CheckRPO(continuity.WithActor(r.Context(), "user:"+c.Principal.Username), p.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rpoResponse{Policy: p.Name, RPOSeconds: p.RPO.D().Seconds(), Repositories: append([]continuity.RPOStatus{}, st...)})
	return nil
}

type rpoResponse struct {
	Policy string `json:"policy"`
	// RPOSeconds is the objective; 0 means none is set (nothing watched).
	RPOSeconds   float64                `json:"rpo_seconds"`
	Repositories []continuity.RPOStatus `json:"repositories"`
}
