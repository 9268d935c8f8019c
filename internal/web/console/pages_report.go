package console

import (
	"net/http"
	"time"
)

// reportDoc is the security-practices report as GET /api/v1/report gives
// it (internal/report).
type reportDoc struct {
	Generated time.Time  `json:"generated"`
	Practices []practice `json:"practices"`
}

type practice struct {
	ID          string     `json:"id"`
	Title       string     `json:"title"`
	Status      string     `json:"status"`
	Summary     string     `json:"summary"`
	Remediation string     `json:"remediation,omitempty"`
	Evidence    []evidence `json:"evidence"`
}

type evidence struct {
	Control     string    `json:"control"`
	Status      string    `json:"status"`
	Detail      string    `json:"detail"`
	At          time.Time `json:"at,omitzero"`
	Remediation string    `json:"remediation,omitempty"`
}

type reportData struct {
	Report *reportDoc
	Part   part
}

func (c *Console) reportPage(w http.ResponseWriter, r *http.Request, s *session) error {
	var d reportData
	var rep reportDoc
	if d.Part = c.get(r, s, "/api/v1/report", &rep); d.Part.Err == "" {
		d.Report = &rep
	}
	c.render(w, r, http.StatusOK, "report", &view{Title: "Security practices", S: s, Data: d})
	return nil
}
