package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/bulwarkhq/bulwark/internal/access"
	"github.com/bulwarkhq/bulwark/internal/continuity"
	"github.com/bulwarkhq/bulwark/internal/guard/rules"
	"github.com/bulwarkhq/bulwark/internal/identity"
	"github.com/bulwarkhq/bulwark/internal/integrity"
	"github.com/bulwarkhq/bulwark/internal/monitor"
	"github.com/bulwarkhq/bulwark/internal/notify"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Error is the body of every error response:
//
//	{"error": {"code": "invalid", "message": "...", "field": "password"}}
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// RetryAfter, when set, becomes a Retry-After header (seconds).
	RetryAfter int `json:"retry_after,omitempty"`
}

func (e *Error) Error() string { return e.Message }

// badRequest returns a 400 naming the offending field.
func badRequest(field, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid", Field: field, Message: fmt.Sprintf(format, args...)}
}

// errorFor maps any error to its HTTP status and body. This is the only
// place where domain errors meet status codes.
func errorFor(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var te *identity.ThrottledError
	var ri *rules.InvalidError
	var ia *integrity.InvalidAcceptError
	switch {
	case errors.As(err, &ri):
		return &Error{Status: http.StatusBadRequest, Code: "invalid", Field: ri.Field, Message: ri.Error()}
	case errors.As(err, &ia):
		return &Error{Status: http.StatusBadRequest, Code: "invalid", Field: ia.Field, Message: ia.Error()}
	case errors.Is(err, integrity.ErrNotWatching):
		return &Error{Status: http.StatusConflict, Code: "not_watching", Message: err.Error()}
	case errors.Is(err, integrity.ErrOtherKey), errors.Is(err, integrity.ErrNoKey), errors.Is(err, integrity.ErrBaselineChanged):
		return &Error{Status: http.StatusConflict, Code: "baseline_refused", Message: "nothing accepted: " + err.Error()}
	case errors.Is(err, continuity.ErrNotPolicyRepository):
		return &Error{Status: http.StatusBadRequest, Code: "invalid", Field: "repo", Message: err.Error()}
	case errors.Is(err, continuity.ErrWriteOnly):
		return &Error{Status: http.StatusConflict, Code: "write_only", Message: err.Error()}
	case errors.Is(err, continuity.ErrUnavailable):
		return &Error{Status: http.StatusBadGateway, Code: "repository_unavailable", Message: err.Error()}
	case errors.Is(err, rules.ErrFull):
		return &Error{Status: http.StatusConflict, Code: "full", Message: err.Error()}
	case errors.As(err, &te):
		return &Error{Status: http.StatusTooManyRequests, Code: "throttled", Message: te.Error(), RetryAfter: int(te.RetryAfter.Seconds()) + 1}
	case errors.Is(err, identity.ErrLocked):
		return &Error{Status: http.StatusForbidden, Code: "locked", Message: err.Error()}
	case errors.Is(err, identity.ErrDisabled):
		return &Error{Status: http.StatusForbidden, Code: "disabled", Message: err.Error()}
	case errors.Is(err, identity.ErrBadCredentials):
		return &Error{Status: http.StatusUnauthorized, Code: "bad_credentials", Message: identity.ErrBadCredentials.Error()}
	case errors.Is(err, identity.ErrMFAFailed):
		return &Error{Status: http.StatusUnauthorized, Code: "mfa_failed", Message: err.Error()}
	case errors.Is(err, identity.ErrUnauthenticated), errors.Is(err, identity.ErrExpired):
		return &Error{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: err.Error()}
	case errors.Is(err, access.ErrDenied):
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: err.Error()}
	case errors.Is(err, access.ErrBuiltin):
		return &Error{Status: http.StatusConflict, Code: "builtin", Message: err.Error()}
	case errors.Is(err, identity.ErrExists), errors.Is(err, store.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: "conflict", Message: err.Error()}
	case errors.Is(err, store.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	case errors.Is(err, continuity.ErrNoPolicy):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	case errors.Is(err, continuity.ErrRunning):
		return &Error{Status: http.StatusConflict, Code: "running", Message: err.Error()}
	case errors.Is(err, continuity.ErrNotRunning):
		return &Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "jobs cannot start: the scheduler is not running (it runs inside `bulwark up`)", RetryAfter: 5}
	case errors.Is(err, monitor.ErrNotFound), errors.Is(err, notify.ErrUnknownChannel):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	case errors.Is(err, notify.ErrNotDelivered):
		return &Error{Status: http.StatusBadGateway, Code: "not_delivered", Message: err.Error()}
	case errors.Is(err, identity.ErrInvalid), errors.Is(err, access.ErrInvalid), errors.Is(err, identity.ErrWeakPassword), errors.Is(err, monitor.ErrInvalid):
		return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: err.Error()}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; the server log has details"}
}

// writeError sends err as a JSON error body, logging server-side failures.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := errorFor(err)
	if e.Status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		s.log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "status", e.Status, "err", err)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	if rec, ok := w.(*recorder); ok {
		rec.err = err
	}
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		slog.Debug("write response", "err", err)
	}
}
