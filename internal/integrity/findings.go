package integrity

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// CurrentFinding is a path that differs from the baseline now (not
// accepted), as the watch last reported it.
type CurrentFinding struct {
	Path string `json:"path"`
	// Kind is added, removed or changed.
	Kind       string   `json:"kind"`
	Severity   string   `json:"severity"`
	Type       string   `json:"type"`
	Attributes []string `json:"attributes"`
	Reasons    []string `json:"reasons"`
	Package    string   `json:"package"`
	Expected   bool     `json:"expected"`
	// Source is what found it: inotify, scan, or accept (still differing
	// after an accept).
	Source string    `json:"source"`
	Time   time.Time `json:"time"`
	// State is a token of the state reported (the kind and every
	// attribute recorded of the entry): an accept given it (states)
	// folds the path only if it is still in that state.
	State string `json:"state"`
	// Partial is set when only the kind, severity and time are kept:
	// more than MaxFindingDetails paths differed when it was reported.
	Partial bool `json:"partial,omitempty"`
}

// severityRank orders severities, high first.
func severityRank(s string) int {
	switch s {
	case SeverityHigh:
		return 0
	case SeverityMedium:
		return 1
	case SeverityLow:
		return 2
	}
	return 3
}

// Findings returns the paths that differ from the baseline now, high
// severity first, then by path: those of severity (every one when ""),
// at most limit of them (every one when limit <= 0), and how many there
// are of that severity.
func (s *Service) Findings(severity string, limit int) ([]CurrentFinding, int) {
	s.mu.Lock()
	out := make([]CurrentFinding, 0, len(s.differ))
	for p, d := range s.differ {
		if severity != "" && d.severity != severity {
			continue
		}
		f := CurrentFinding{Path: p, Kind: d.kind, Severity: d.severity, Source: d.source, Time: d.time, State: d.state, Partial: d.f == nil}
		if d.f != nil {
			// Kept slices are never changed, only replaced: shared.
			f.Type, f.Attributes, f.Reasons, f.Package, f.Expected = d.f.Type, d.f.Attributes, d.f.Reasons, d.f.Package, d.f.Expected
		}
		out = append(out, f)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b CurrentFinding) int {
		return cmp.Or(cmp.Compare(severityRank(a.Severity), severityRank(b.Severity)), strings.Compare(a.Path, b.Path))
	})
	total := len(out)
	if limit > 0 && len(out) > limit {
		out = slices.Clip(out[:limit])
	}
	for i := range out {
		if out[i].Attributes == nil {
			out[i].Attributes = []string{}
		}
		if out[i].Reasons == nil {
			out[i].Reasons = []string{}
		}
	}
	return out, total
}
