package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/detect"
	"github.com/bulwarkhq/bulwark/internal/guard/rules"
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
	net, err := config.ParseNet(req.Net)
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
	net, err := config.ParseNet(raw)
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

// The guard's runtime rules (module guard): allow and deny list entries
// and bandwidth (shaping) rules, read to list, operate to change. A change
// applies at once in this process's guard and within five seconds in
// others sharing the store.

func (s *Server) guardRules() (*rules.Rules, error) {
	if s.d.Rules == nil {
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "the guard's runtime rules are not available in this server"}
	}
	return s.d.Rules, nil
}

type listEntryRequest struct {
	// List is "allow" or "deny".
	List string `json:"list"`
	// Net is an address or CIDR.
	Net string `json:"net"`
	// Duration is how long, as a Go duration ("24h"); empty: until removed.
	Duration string `json:"duration,omitempty"`
	// Reason says why.
	Reason string `json:"reason"`
}

func (s *Server) listEntries(w http.ResponseWriter, r *http.Request, c *Call) error {
	rs, err := s.guardRules()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	list := q.Get("list")
	if list != "" && list != rules.Allow && list != rules.Deny {
		return badRequest("list", "list must be allow or deny (or absent: both); got %q", list)
	}
	expired := q.Get("expired") == "true" || q.Get("expired") == "1"
	out, err := rs.Entries(r.Context(), list, expired)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, List[rules.Entry]{Items: out})
	return nil
}

func (s *Server) addEntry(w http.ResponseWriter, r *http.Request, c *Call) error {
	rs, err := s.guardRules()
	if err != nil {
		return err
	}
	var req listEntryRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	net, err := config.ParseNet(req.Net)
	if err != nil {
		return badRequest("net", "%v", err)
	}
	var d time.Duration
	if req.Duration != "" {
		// 0 would mean "until removed", which is said by leaving it out.
		if d, err = time.ParseDuration(req.Duration); err != nil || d <= 0 {
			return badRequest("duration", "duration must be empty (until removed) or a positive Go duration such as 24h, at most %s; got %q", rules.MaxDuration, req.Duration)
		}
	}
	// AddEntry checks the list, the reason and the longest duration,
	// naming the field (rules.InvalidError, a 400).
	c.Resource = req.List + "/" + net.String()
	e, err := rs.AddEntry(r.Context(), rules.Entry{List: req.List, Net: net, Reason: req.Reason, Origin: "user:" + c.Principal.Username}, d)
	if err != nil {
		return err
	}
	c.Details = map[string]any{"id": e.ID, "expires": e.Expires, "reason": e.Reason}
	writeJSON(w, http.StatusCreated, e)
	return nil
}

func (s *Server) removeEntry(w http.ResponseWriter, r *http.Request, c *Call) error {
	rs, err := s.guardRules()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	list := q.Get("list") // RemoveEntry refuses anything but allow and deny
	net, err := config.ParseNet(q.Get("net"))
	if err != nil {
		return badRequest("net", "give ?net=ADDR or ?net=CIDR: %v", err)
	}
	c.Resource = list + "/" + net.String()
	e, err := rs.RemoveEntry(r.Context(), list, net, "user:"+c.Principal.Username)
	if errors.Is(err, rules.ErrNotFound) {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

type shapeRequest struct {
	// Sites are host names of configured sites; empty: every site.
	Sites []string `json:"sites,omitempty"`
	// Nets are addresses or CIDRs, Accounts account names (as the
	// upstream names them in the site's account header); with neither,
	// the rule caps its sites as a whole.
	Nets     []string `json:"nets,omitempty"`
	Accounts []string `json:"accounts,omitempty"`
	// Bandwidth is bytes per second: a number, or a size such as "10MiB".
	Bandwidth bandwidth `json:"bandwidth"`
	Reason    string    `json:"reason,omitempty"`
}

// bandwidth is bytes per second, given as a number or a size string.
type bandwidth int64

func (b *bandwidth) UnmarshalJSON(data []byte) error {
	var n int64
	if err := json.Unmarshal(data, &n); err == nil {
		*b = bandwidth(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return errors.New(`a number of bytes per second or a size such as "10MiB"`)
	}
	sz, err := config.ParseSize(s)
	if err != nil {
		return err
	}
	*b = bandwidth(sz.Bytes())
	return nil
}

func (s *Server) listShapes(w http.ResponseWriter, r *http.Request, c *Call) error {
	rs, err := s.guardRules()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, List[rules.Shape]{Items: rs.Shapes()})
	return nil
}

func (s *Server) putShape(w http.ResponseWriter, r *http.Request, c *Call) error {
	rs, err := s.guardRules()
	if err != nil {
		return err
	}
	var req shapeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	sh := rules.Shape{Name: r.PathValue("name"), Sites: req.Sites, Accounts: req.Accounts, Bandwidth: int64(req.Bandwidth),
		Reason: req.Reason, Origin: "user:" + c.Principal.Username}
	c.Resource = "shape/" + sh.Name
	for i, n := range req.Nets {
		p, err := config.ParseNet(n)
		if err != nil {
			return badRequest(fmt.Sprintf("nets[%d]", i), "%v", err)
		}
		sh.Nets = append(sh.Nets, p)
	}
	if err := s.checkSites(sh.Sites); err != nil {
		return err
	}
	stored, created, err := rs.PutShape(r.Context(), sh)
	if err != nil {
		return err
	}
	c.Details = map[string]any{"bandwidth": stored.Bandwidth, "sites": stored.Sites, "nets": len(stored.Nets), "accounts": len(stored.Accounts)}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, stored)
	return nil
}

// checkSites refuses host names no configured site answers.
func (s *Server) checkSites(sites []string) error {
	if s.d.GuardHost == nil {
		return nil
	}
	for i, h := range sites {
		if !s.d.GuardHost(h) {
			return badRequest(fmt.Sprintf("sites[%d]", i), "%q is not a host of a configured site (guard.sites[].hosts)", h)
		}
	}
	return nil
}

func (s *Server) removeShape(w http.ResponseWriter, r *http.Request, c *Call) error {
	rs, err := s.guardRules()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	c.Resource = "shape/" + name
	sh, err := rs.RemoveShape(r.Context(), name, "user:"+c.Principal.Username)
	if errors.Is(err, rules.ErrNotFound) {
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sh)
	return nil
}
