package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/detect"
)

// Ban decisions (module guard): read to list, operate to add and lift.
// A decision taken here is enforced at once by the guard of this process
// (and within five seconds by others sharing the store) and, with
// firewall.enabled, by nftables.

type banRequest struct {
	// Net is an address or CIDR.
	Net string `json:"net"`
	// Duration is how long, as a Go duration ("24h", "30m").
	Duration string `json:"duration"`
	// Reason says why.
	Reason string `json:"reason"`
}

func (s *Server) bans() (*detect.Bans, error) {
	if s.d.Bans == nil {
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "ban decisions are not available in this server"}
	}
	return s.d.Bans, nil
}

func (s *Server) listBans(w http.ResponseWriter, r *http.Request, c *Call) error {
	b, err := s.bans()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	all := q.Get("all") == "true" || q.Get("all") == "1"
	limit := 0
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > s.d.PageSizeMax {
			return badRequest("limit", "limit must be between 1 and %d", s.d.PageSizeMax)
		}
	}
	list, err := b.List(r.Context(), all, limit)
	if err != nil {
		return err
	}
	if list == nil {
		list = []detect.Ban{}
	}
	writeJSON(w, http.StatusOK, List[detect.Ban]{Items: list})
	return nil
}

func (s *Server) addBan(w http.ResponseWriter, r *http.Request, c *Call) error {
	b, err := s.bans()
	if err != nil {
		return err
	}
	var req banRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	net, err := detect.ParseNet(req.Net)
	if err != nil {
		return badRequest("net", "%v", err)
	}
	d, err := time.ParseDuration(req.Duration)
	if err != nil || d <= 0 || d > detect.MaxDuration {
		return badRequest("duration", "duration must be a positive Go duration such as 24h or 30m, at most %s; got %q", detect.MaxDuration, req.Duration)
	}
	if req.Reason == "" || len(req.Reason) > detect.MaxReasonBytes {
		return badRequest("reason", "reason is required (at most %d bytes): say why, for whoever reads the list next", detect.MaxReasonBytes)
	}
	ban, err := b.Add(r.Context(), detect.Ban{Net: net, Reason: req.Reason, Origin: "user:" + c.Principal.Username}, d)
	if err != nil {
		return err
	}
	c.Resource = "ban/" + ban.Net.String()
	c.Details = map[string]any{"id": ban.ID, "expires": ban.Expires, "reason": ban.Reason}
	writeJSON(w, http.StatusCreated, ban)
	return nil
}

func (s *Server) removeBan(w http.ResponseWriter, r *http.Request, c *Call) error {
	b, err := s.bans()
	if err != nil {
		return err
	}
	raw := r.URL.Query().Get("net")
	net, err := detect.ParseNet(raw)
	if err != nil {
		return badRequest("net", "give ?net=ADDR or ?net=CIDR: %v", err)
	}
	c.Resource = "ban/" + net.String()
	lifted, err := b.Remove(r.Context(), net, "user:"+c.Principal.Username)
	if errors.Is(err, detect.ErrNotFound) {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, List[detect.Ban]{Items: lifted})
	return nil
}
