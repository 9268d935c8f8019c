package api

import "net/http"

func (s *Server) integrityStatus(w http.ResponseWriter, r *http.Request, c *Call) error {
	if s.d.Integrity == nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "file integrity is not enabled in this server (integrity.enabled in the configuration)"}
	}
	writeJSON(w, http.StatusOK, s.d.Integrity.Status())
	return nil
}
