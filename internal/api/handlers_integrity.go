package api

import (
	"net/http"
	"strconv"

	"github.com/bulwarkhq/bulwark/internal/integrity"
)

// File integrity. Its findings and its baseline carry no tags: these
// routes need a grant on the whole integrity module.

// integrityService is the running service, or 503 when integrity is not
// enabled.
func (s *Server) integrityService() (*integrity.Service, error) {
	if s.d.Integrity == nil {
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "file integrity is not enabled in this server (integrity.enabled in the configuration)"}
	}
	return s.d.Integrity, nil
}

func (s *Server) integrityStatus(w http.ResponseWriter, r *http.Request, c *Call) error {
	svc, err := s.integrityService()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, svc.Status())
	return nil
}

// integrityFindingsResponse lists the paths that differ from the baseline
// now.
type integrityFindingsResponse struct {
	Items []integrity.CurrentFinding `json:"items"`
	// Total is how many paths (of ?severity) differ; Items holds the
	// first ?limit of them.
	Total int `json:"total"`
}

func (s *Server) integrityFindings(w http.ResponseWriter, r *http.Request, c *Call) error {
	svc, err := s.integrityService()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	sev := q.Get("severity")
	switch sev {
	case "", integrity.SeverityHigh, integrity.SeverityMedium, integrity.SeverityLow:
	default:
		return badRequest("severity", "severity must be high, medium or low")
	}
	limit := min(500, s.d.PageSizeMax)
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > s.d.PageSizeMax {
			return badRequest("limit", "limit must be an integer from 1 to %d", s.d.PageSizeMax)
		}
		limit = n
	}
	items, total := svc.Findings(sev, limit)
	writeJSON(w, http.StatusOK, integrityFindingsResponse{Items: items, Total: total})
	return nil
}

// integrityAcceptRequest folds reviewed changes into the baseline.
type integrityAcceptRequest struct {
	// Paths are absolute and clean. Each is accepted exactly (itself,
	// nothing below it) and only in the state its current finding
	// reports; none: every current finding, each as reported.
	Paths []string `json:"paths"`
	// Recursive makes each path cover everything below it as a new scan
	// finds it (the command line's accept); none: every change.
	Recursive bool `json:"recursive,omitempty"`
	// States pins paths (each one of Paths, not with Recursive) to the
	// state of the finding reviewed (its "state"): a path reported again
	// since is skipped.
	States map[string]string `json:"states,omitempty"`
	// Comment says why (required, at most 1,000 bytes).
	Comment string `json:"comment"`
}

// acceptAuditItems is how many skipped paths and scan errors the audit
// entry of an accept names (their totals count them all).
const acceptAuditItems = 5

func (s *Server) integrityAccept(w http.ResponseWriter, r *http.Request, c *Call) error {
	c.Resource = "integrity"
	svc, err := s.integrityService()
	if err != nil {
		return err
	}
	var req integrityAcceptRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Paths == nil {
		req.Paths = []string{}
	}
	// The baseline's header names who accepted as the audit log does.
	by := "user:" + c.Principal.Username
	if c.Principal.TokenID != "" {
		by += " token:" + c.Principal.TokenID
	}
	ar := integrity.AcceptRequest{Paths: req.Paths, Recursive: req.Recursive, States: req.States, By: by, Comment: req.Comment}
	if err := ar.Check(); err != nil {
		return err
	}
	c.Details = map[string]any{"baseline": svc.BaselinePath(), "paths": req.Paths, "recursive": req.Recursive, "comment": req.Comment}
	if len(req.States) > 0 {
		c.Details["states"] = len(req.States)
	}
	res, err := svc.Accept(r.Context(), ar)
	if err != nil {
		return err
	}
	c.Details["changes"], c.Details["entries"] = res.Accepted, res.Entries
	c.Details["previous_digest"], c.Details["digest"] = res.PreviousDigest, res.Digest
	c.Details["skipped_total"], c.Details["skipped"] = res.SkippedTotal, res.Skipped[:min(len(res.Skipped), acceptAuditItems)]
	c.Details["scan_errors_total"], c.Details["scan_errors"] = res.ScanErrorsTotal, res.ScanErrors[:min(len(res.ScanErrors), acceptAuditItems)]
	writeJSON(w, http.StatusOK, res)
	return nil
}
