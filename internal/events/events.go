// Package events is the typed event API every Bulwark capability uses to
// report what happened: a backup completed, an address was banned, a watched
// file changed, a check failed. Events are validated, stored in the database
// (one table, see migrations/), queryable with a Filter, and fanned out to
// subscribers (Sinks) such as the audit log and alerting.
//
// The package depends only on the store: the audit log, alerting and the
// HTTP API depend on it, never the reverse. Consumers plug in by
// implementing Sink and calling Bus.Subscribe.
package events

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Migrations is the events schema, to be passed to store.DB.Migrate.
var Migrations = store.Migrations{Name: "events", FS: migrationFS, Dir: "migrations"}

// Size limits enforced on every published event.
const (
	// MaxTypeBytes bounds an event type.
	MaxTypeBytes = 64
	// MaxMessageBytes bounds the one-line human message (4 KiB).
	MaxMessageBytes = 4 << 10
	// MaxDataBytes bounds the JSON encoding of Data (64 KiB).
	MaxDataBytes = 64 << 10
	// MaxActorBytes bounds the actor.
	MaxActorBytes = 256
	// MaxResourceBytes bounds the resource name.
	MaxResourceBytes = 512
	// MaxTags bounds the number of tags on one event or filter.
	MaxTags = 32
	// MaxTagKeyBytes bounds one tag key (as in access selectors).
	MaxTagKeyBytes = 128
	// MaxTagValueBytes bounds one tag value (as in access selectors).
	MaxTagValueBytes = 256
)

// ErrInvalid is matched (errors.Is) by every validation error of this
// package, so the API can map them to 400 Bad Request in one place.
var ErrInvalid = errors.New("invalid")

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("events: bus is closed")

// ValidationError says which field of an event or filter was wrong and why.
// It matches ErrInvalid.
type ValidationError struct {
	// Field is the event field ("type", "data") or query parameter ("since").
	Field string
	// Problem says what was wrong and what to do, in one phrase.
	Problem string
}

// Error implements error.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("events: invalid %s: %s", e.Field, e.Problem)
}

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Type names what happened as dotted lowercase words, subject first:
// "backup.completed", "ban.added". It matches
// ^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$ and is at most MaxTypeBytes long.
type Type string

// The well-known event types. Use these constants rather than string
// literals so a misspelt type fails to compile instead of silently creating
// a new kind that no filter or alert rule matches.
const (
	TypeBackupCompleted  Type = "backup.completed"
	TypeBackupFailed     Type = "backup.failed"
	TypeRestoreCompleted Type = "restore.completed"
	TypeRestoreFailed    Type = "restore.failed"
	TypeBanAdded         Type = "ban.added"
	TypeBanRemoved       Type = "ban.removed"
	TypeListAdded        Type = "list.added"
	TypeListRemoved      Type = "list.removed"
	TypeShapeSet         Type = "shape.set"
	TypeShapeRemoved     Type = "shape.removed"
	TypeIntegrityChanged Type = "integrity.changed"
	// File integrity: a path added, removed or changed against the
	// baseline (integrity.changed above), back as the baseline has it,
	// a full scan done (the evidence of coverage), the baseline recorded
	// or refused, a problem that does not stop watching.
	TypeIntegrityAdded           Type = "integrity.added"
	TypeIntegrityRemoved         Type = "integrity.removed"
	TypeIntegrityRestored        Type = "integrity.restored"
	TypeIntegrityScanCompleted   Type = "integrity.scan_completed"
	TypeIntegrityBaselineCreated Type = "integrity.baseline_created"
	TypeIntegrityBaselineInvalid Type = "integrity.baseline_invalid"
	TypeIntegrityWarning         Type = "integrity.warning"
	// Security events of the authentication log (module integrity):
	// logins, sudo and su, accounts and groups.
	TypeAuthLogin              Type = "auth.login"
	TypeAuthLoginFailed        Type = "auth.login_failed"
	TypeAuthSudo               Type = "auth.sudo"
	TypeAuthSudoFailed         Type = "auth.sudo_failed"
	TypeAuthSu                 Type = "auth.su"
	TypeAuthSuFailed           Type = "auth.su_failed"
	TypeAccountUserAdded       Type = "account.user_added"
	TypeAccountUserDeleted     Type = "account.user_deleted"
	TypeAccountUserChanged     Type = "account.user_changed"
	TypeAccountGroupAdded      Type = "account.group_added"
	TypeAccountGroupDeleted    Type = "account.group_deleted"
	TypeAccountGroupChanged    Type = "account.group_changed"
	TypeAccountPasswordChanged Type = "account.password_changed"
	TypeCheckFailed            Type = "check.failed"
	TypeCheckRecovered         Type = "check.recovered"
	// Supervision: alerts and their notifications (internal/monitor,
	// internal/notify).
	TypeAlertFired            Type = "alert.fired"
	TypeAlertResolved         Type = "alert.resolved"
	TypeAlertAcknowledged     Type = "alert.acknowledged"
	TypeAlertEscalated        Type = "alert.escalated"
	TypeAlertSilenced         Type = "alert.silenced"
	TypeStatusIncident        Type = "status.incident"
	TypeNotificationDelivered Type = "notification.delivered"
	TypeNotificationFailed    Type = "notification.failed"
	TypeUserLocked            Type = "user.locked"
	TypeUserLoginFailed       Type = "user.login_failed"
	TypeAuditVerifyFailed     Type = "audit.verify_failed"
	TypeSystemStarted         Type = "system.started"
	TypeSystemStopping        Type = "system.stopping"

	// Continuity: offsite copies, restore tests, scrubs and repairs, and
	// the recovery-point objective.
	TypeCopyCompleted     Type = "copy.completed"
	TypeCopyFailed        Type = "copy.failed"
	TypeRestoreTestPassed Type = "restore_test.passed"
	TypeRestoreTestFailed Type = "restore_test.failed"
	TypeScrubCompleted    Type = "scrub.completed"
	TypeScrubFailed       Type = "scrub.failed"
	TypeRepairCompleted   Type = "repair.completed"
	TypeRPOBreached       Type = "rpo.breached"
	TypeRPORecovered      Type = "rpo.recovered"
)

var knownTypes = []Type{
	TypeBackupCompleted, TypeBackupFailed, TypeRestoreCompleted, TypeRestoreFailed,
	TypeBanAdded, TypeBanRemoved, TypeListAdded, TypeListRemoved, TypeShapeSet, TypeShapeRemoved, TypeIntegrityChanged, TypeCheckFailed, TypeCheckRecovered,
	TypeAlertFired, TypeAlertResolved, TypeAlertAcknowledged, TypeAlertEscalated, TypeAlertSilenced, TypeStatusIncident, TypeNotificationDelivered, TypeNotificationFailed,
	TypeUserLocked, TypeUserLoginFailed, TypeAuditVerifyFailed, TypeSystemStarted, TypeSystemStopping,
	TypeCopyCompleted, TypeCopyFailed, TypeRestoreTestPassed, TypeRestoreTestFailed,
	TypeScrubCompleted, TypeScrubFailed, TypeRepairCompleted, TypeRPOBreached, TypeRPORecovered,
	TypeIntegrityAdded, TypeIntegrityRemoved, TypeIntegrityRestored, TypeIntegrityScanCompleted,
	TypeIntegrityBaselineCreated, TypeIntegrityBaselineInvalid, TypeIntegrityWarning,
	TypeAuthLogin, TypeAuthLoginFailed, TypeAuthSudo, TypeAuthSudoFailed, TypeAuthSu, TypeAuthSuFailed,
	TypeAccountUserAdded, TypeAccountUserDeleted, TypeAccountUserChanged, TypeAccountGroupAdded,
	TypeAccountGroupDeleted, TypeAccountGroupChanged, TypeAccountPasswordChanged,
}

// KnownTypes returns the well-known types, for pickers in the console and
// for documentation. Capabilities may publish other valid types too.
func KnownTypes() []Type { return slices.Clone(knownTypes) }

var (
	typePattern   = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)
	prefixPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.$`)
)

// Validate reports whether t is a well-formed type.
func (t Type) Validate() error {
	switch {
	case t == "":
		return invalid("type", "missing; name what happened, like %q", TypeBackupCompleted)
	case len(t) > MaxTypeBytes:
		return invalid("type", "%d bytes long, the limit is %d", len(t), MaxTypeBytes)
	case !typePattern.MatchString(string(t)):
		return invalid("type", "%q must be dotted lowercase words (letters, digits, _) like %q", truncate(string(t)), TypeBackupCompleted)
	}
	return nil
}

// Modules that may emit events: the capabilities of Bulwark.
const (
	ModuleBackups    = "backups"
	ModuleContinuity = "continuity"
	ModuleGuard      = "guard"
	ModuleIntegrity  = "integrity"
	ModuleMonitoring = "monitoring"
	ModulePosture    = "posture"
	ModuleAccess     = "access"
	ModuleAudit      = "audit"
	ModuleBilling    = "billing"
	ModuleSystem     = "system"
)

var knownModules = []string{
	ModuleBackups, ModuleContinuity, ModuleGuard, ModuleIntegrity, ModuleMonitoring,
	ModulePosture, ModuleAccess, ModuleAudit, ModuleBilling, ModuleSystem,
}

// KnownModules returns the module names an event may carry.
func KnownModules() []string { return slices.Clone(knownModules) }

func validModule(field, m string) error {
	if m == "" {
		return invalid(field, "missing; want one of %s", strings.Join(knownModules, ", "))
	}
	if !slices.Contains(knownModules, m) {
		return invalid(field, "unknown module %q; want one of %s", truncate(m), strings.Join(knownModules, ", "))
	}
	return nil
}

// Severity grades an event. Severities are ordered:
// info < notice < warning < error < critical.
type Severity string

// The severities, lowest first.
const (
	SeverityInfo     Severity = "info"
	SeverityNotice   Severity = "notice"
	SeverityWarning  Severity = "warning"
	SeverityError    Severity = "error"
	SeverityCritical Severity = "critical"
)

// severities lists the severities in rank order; the stored rank is the
// index plus one, so 0 never means a real severity.
var severities = []Severity{SeverityInfo, SeverityNotice, SeverityWarning, SeverityError, SeverityCritical}

// rank returns 1..5 for a known severity and 0 otherwise.
func (s Severity) rank() int { return slices.Index(severities, s) + 1 }

func severityOfRank(r int) (Severity, bool) {
	if r < 1 || r > len(severities) {
		return "", false
	}
	return severities[r-1], true
}

// ParseSeverity parses a severity name, case-insensitively.
func ParseSeverity(s string) (Severity, error) {
	v := Severity(strings.ToLower(strings.TrimSpace(s)))
	if v.rank() == 0 {
		return "", invalid("severity", "unknown severity %q; want one of info, notice, warning, error, critical", truncate(s))
	}
	return v, nil
}

// Valid reports whether s is one of the five severities.
func (s Severity) Valid() bool { return s.rank() != 0 }

// Less reports whether s ranks below o.
func (s Severity) Less(o Severity) bool { return s.rank() < o.rank() }

// AtLeast reports whether s ranks at or above o.
func (s Severity) AtLeast(o Severity) bool { return s.rank() >= o.rank() }

// Event is one thing that happened. Publish fills ID and, when zero, Time
// and Severity; the rest comes from the emitting capability.
type Event struct {
	// ID is assigned by the store; leave it zero when publishing.
	ID int64 `json:"id"`
	// Time is when it happened (UTC, microsecond precision); zero means now.
	Time time.Time `json:"time"`
	// Type names what happened, e.g. TypeBackupCompleted.
	Type Type `json:"type"`
	// Severity grades it; empty means info.
	Severity Severity `json:"severity"`
	// Module is the capability that emitted it (see KnownModules).
	Module string `json:"module"`
	// Actor is who or what caused it, as kind:name: "user:alice",
	// "system:scheduler", "token:ci-deploy".
	Actor string `json:"actor"`
	// Resource is what it happened to, e.g. "policy/web-daily"; optional.
	Resource string `json:"resource,omitempty"`
	// Tags are the resource's tags; access scoping uses them (a team sees
	// the events of the resources tagged for it). Keys and values use the
	// access selector alphabet: letters, digits and . _ / -; keys up to
	// MaxTagKeyBytes, values 1 to MaxTagValueBytes.
	Tags map[string]string `json:"tags,omitempty"`
	// Message is one human-readable line. Use OneLine for text that comes
	// from elsewhere (error strings, command output).
	Message string `json:"message"`
	// Data holds structured details. It must encode as JSON within
	// MaxDataBytes; after publishing, numbers are json.Number and nested
	// objects map[string]any, exactly as Query returns them.
	Data map[string]any `json:"data,omitempty"`
}

// UserActor returns the actor string for a signed-in user.
func UserActor(name string) string { return "user:" + name }

// SystemActor returns the actor string for a component of Bulwark itself,
// such as "scheduler" or "detect".
func SystemActor(component string) string { return "system:" + component }

var (
	actorPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}:.`)
	// tagPattern is the alphabet of access selectors (internal/access), so
	// every event tag can be selected by a grant's scope; it also leaves
	// nothing to escape in the JSON the tag filter searches.
	tagPattern = regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)
)

// normalize validates e and returns the form that is stored: UTC time at
// microsecond precision, default severity, nil for empty maps, and Data as
// it will decode from the database. tagsJSON and dataJSON are the stored
// encodings.
func normalize(e Event, now func() time.Time) (_ Event, tagsJSON, dataJSON string, err error) {
	if e.ID != 0 {
		return e, "", "", invalid("id", "is assigned by the store; publish with id 0 (got %d)", e.ID)
	}
	if err := e.Type.Validate(); err != nil {
		return e, "", "", err
	}
	if e.Severity == "" {
		e.Severity = SeverityInfo
	}
	if !e.Severity.Valid() {
		return e, "", "", invalid("severity", "unknown severity %q; want one of info, notice, warning, error, critical", truncate(string(e.Severity)))
	}
	if err := validModule("module", e.Module); err != nil {
		return e, "", "", err
	}
	if e.Time.IsZero() {
		e.Time = now()
	}
	if y := e.Time.UTC().Year(); e.Time.UnixMicro() <= 0 || y > 9999 {
		return e, "", "", invalid("time", "%s is outside the years 1970 to 9999; check the clock", e.Time.Format(time.RFC3339))
	}
	e.Time = store.FromMicros(store.Micros(e.Time))
	switch {
	case e.Actor == "":
		return e, "", "", invalid("actor", `missing; say who caused it as kind:name, like "user:alice" or "system:scheduler"`)
	case len(e.Actor) > MaxActorBytes:
		return e, "", "", invalid("actor", "%d bytes long, the limit is %d", len(e.Actor), MaxActorBytes)
	case !actorPattern.MatchString(e.Actor):
		return e, "", "", invalid("actor", `%q must be kind:name, like "user:alice" or "system:scheduler"`, truncate(e.Actor))
	}
	if err := plainText("actor", e.Actor); err != nil {
		return e, "", "", err
	}
	if len(e.Resource) > MaxResourceBytes {
		return e, "", "", invalid("resource", "%d bytes long, the limit is %d", len(e.Resource), MaxResourceBytes)
	}
	if err := plainText("resource", e.Resource); err != nil {
		return e, "", "", err
	}
	switch {
	case strings.TrimSpace(e.Message) == "":
		return e, "", "", invalid("message", "missing; say what happened in one line")
	case len(e.Message) > MaxMessageBytes:
		return e, "", "", invalid("message", "%d bytes long, the limit is %d; put details in data", len(e.Message), MaxMessageBytes)
	}
	if err := plainText("message", e.Message); err != nil {
		return e, "", "", fmt.Errorf("%w (events.OneLine flattens text from elsewhere; put multi-line details in data)", err)
	}
	if err := validTags("tags", e.Tags); err != nil {
		return e, "", "", err
	}
	if len(e.Tags) == 0 {
		e.Tags = nil
		tagsJSON = "{}"
	} else {
		b, err := canonicalJSON(e.Tags)
		if err != nil {
			return e, "", "", invalid("tags", "cannot encode as JSON: %v", err)
		}
		tagsJSON = string(b)
		// Copy so that a caller mutating its map after Publish cannot
		// change what sinks receive.
		e.Tags = maps.Clone(e.Tags)
	}
	if len(e.Data) == 0 {
		e.Data = nil
		dataJSON = "{}"
	} else {
		b, err := canonicalJSON(e.Data)
		if err != nil {
			return e, "", "", invalid("data", "cannot encode as JSON: %v", err)
		}
		if len(b) > MaxDataBytes {
			return e, "", "", invalid("data", "encodes to %d bytes of JSON, the limit is %d; store large details elsewhere and reference them", len(b), MaxDataBytes)
		}
		dataJSON = string(b)
		// Decode what will be stored, so that sinks see exactly what a
		// later Query returns (numbers as json.Number, structs as maps).
		if e.Data, err = decodeData(dataJSON); err != nil {
			return e, "", "", invalid("data", "does not round-trip through JSON: %v", err)
		}
	}
	return e, tagsJSON, dataJSON, nil
}

func validTags(field string, tags map[string]string) error {
	if len(tags) > MaxTags {
		return invalid(field, "%d tags, the limit is %d", len(tags), MaxTags)
	}
	for k, v := range tags {
		if err := validTag(field, k, v); err != nil {
			return err
		}
	}
	return nil
}

// ValidTag reports whether k=v is a tag events accept.
func ValidTag(k, v string) bool { return validTag("tags", k, v) == nil }

func validTag(field, k, v string) error {
	if len(k) > MaxTagKeyBytes || !tagPattern.MatchString(k) {
		return invalid(field, "key %q must be 1 to %d letters, digits, '.', '_', '/' or '-'", truncate(k), MaxTagKeyBytes)
	}
	if len(v) > MaxTagValueBytes || !tagPattern.MatchString(v) {
		return invalid(field, "value %q of %s must be 1 to %d letters, digits, '.', '_', '/' or '-'", truncate(v), k, MaxTagValueBytes)
	}
	return nil
}

// plainText rejects invalid UTF-8 and control characters (newlines
// included), which would let one event forge extra lines in text logs.
func plainText(field, s string) error {
	if !utf8.ValidString(s) {
		return invalid(field, "is not valid UTF-8")
	}
	for i, r := range s {
		if unicode.IsControl(r) {
			return invalid(field, "contains control character %U at byte %d; keep it to one plain line", r, i)
		}
	}
	return nil
}

// OneLine turns arbitrary text (an error string, a command's output) into a
// valid Message: invalid UTF-8 becomes U+FFFD, runs of whitespace and
// control characters become one space, and the result is cut to
// MaxMessageBytes on a rune boundary, ending in "…" when cut.
func OneLine(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	out := b.String()
	if len(out) <= MaxMessageBytes {
		return out
	}
	const ellipsis = "…"
	cut := MaxMessageBytes - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return out[:cut] + ellipsis
}

// canonicalJSON encodes v with sorted map keys (encoding/json's map order)
// and without HTML escaping, so equal values always give equal bytes; tag
// filters rely on that to prefilter in SQL.
func canonicalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func decodeData(s string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

func decodeTags(s string) (map[string]string, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// truncate shortens user input quoted back in an error message.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
