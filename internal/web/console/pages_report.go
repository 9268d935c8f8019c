package console

import (
	"net/http"

	"github.com/bulwarkhq/bulwark/internal/report"
)

type reportData struct {
	Report *report.Report
	Part   part
}

// reportPage shows the security-practices report as the API gives it to
// this user: the practices and controls of the modules (and policy tags)
// they may read.
func (c *Console) reportPage(w http.ResponseWriter, r *http.Request, s *session) error {
	var d reportData
	var rep report.Report
	if d.Part = c.get(r, s, "/api/v1/report", &rep); d.Part.Err == "" {
		d.Report = &rep
	}
	c.render(w, r, http.StatusOK, "report", &view{Title: "Security practices", S: s, Data: d})
	return nil
}
