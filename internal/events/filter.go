package events

import (
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Query limits.
const (
	// DefaultLimit is the page size when Filter.Limit is zero.
	DefaultLimit = 100
	// MaxLimit caps Filter.Limit.
	MaxLimit = 1000
)

// Filter selects events, for Query and for Subscribe. A zero Filter
// matches everything. All set fields must match (AND); a list field matches
// when any entry does (OR).
type Filter struct {
	// Types are exact types ("backup.completed") or prefixes ending in a
	// dot ("backup." matches every backup event).
	Types []Type
	// Modules are emitting modules.
	Modules []string
	// MinSeverity keeps events at or above this severity.
	MinSeverity Severity
	// Since keeps events at or after this time (inclusive).
	Since time.Time
	// Until keeps events before this time (exclusive).
	Until time.Time
	// Resource keeps events about exactly this resource.
	Resource string
	// Tags keeps events carrying every one of these tag key=value pairs.
	Tags map[string]string

	// AfterID is the pagination cursor for Query: the ID of the last event
	// of the previous page. Ascending pages return IDs above it, descending
	// (Desc) pages IDs below it. Zero starts from the beginning (or the
	// end, when Desc). Subscriptions ignore it.
	AfterID int64
	// Limit is Query's page size: DefaultLimit when zero, at most MaxLimit.
	// Subscriptions ignore it.
	Limit int
	// Desc lists newest first. Subscriptions ignore it.
	Desc bool
}

// Validate reports the first malformed field of f.
func (f Filter) Validate() error {
	for _, t := range f.Types {
		if err := validTypeSelector(t); err != nil {
			return err
		}
	}
	for _, m := range f.Modules {
		if err := validModule("module", m); err != nil {
			return err
		}
	}
	if f.MinSeverity != "" && !f.MinSeverity.Valid() {
		return invalid("severity", "unknown severity %q; want one of info, notice, warning, error, critical", truncate(string(f.MinSeverity)))
	}
	for _, b := range []struct {
		name string
		t    time.Time
	}{{"since", f.Since}, {"until", f.Until}} {
		if y := b.t.UTC().Year(); !b.t.IsZero() && (y < 1970 || y > 9999) {
			return invalid(b.name, "%s is outside the years 1970 to 9999", b.t.Format(time.RFC3339Nano))
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return invalid("until", "%s is not after since %s", f.Until.Format(time.RFC3339Nano), f.Since.Format(time.RFC3339Nano))
	}
	if len(f.Resource) > MaxResourceBytes {
		return invalid("resource", "%d bytes long, the limit is %d", len(f.Resource), MaxResourceBytes)
	}
	if err := plainText("resource", f.Resource); err != nil {
		return err
	}
	if err := validTags("tag", f.Tags); err != nil {
		return err
	}
	if f.AfterID < 0 {
		return invalid("after", "%d is negative; pass the id of the last event of the previous page", f.AfterID)
	}
	if f.Limit < 0 || f.Limit > MaxLimit {
		return invalid("limit", "%d is out of range; want 1 to %d", f.Limit, MaxLimit)
	}
	return nil
}

func validTypeSelector(t Type) error {
	if strings.HasSuffix(string(t), ".") {
		if len(t) > MaxTypeBytes || !prefixPattern.MatchString(string(t)) {
			return invalid("type", "prefix %q must be dotted lowercase words ending in a dot, like \"backup.\"", truncate(string(t)))
		}
		return nil
	}
	if t != "" && !strings.Contains(string(t), ".") && prefixPattern.MatchString(string(t)+".") {
		return invalid("type", "%q is not a full type; use %q for every %s event", t, string(t)+".", t)
	}
	return t.Validate()
}

// Match reports whether e passes f's selection fields (everything but
// AfterID, Limit and Desc). It assumes f is valid.
func (f Filter) Match(e Event) bool {
	if len(f.Types) > 0 && !slices.ContainsFunc(f.Types, func(t Type) bool {
		if strings.HasSuffix(string(t), ".") {
			return strings.HasPrefix(string(e.Type), string(t))
		}
		return e.Type == t
	}) {
		return false
	}
	if len(f.Modules) > 0 && !slices.Contains(f.Modules, e.Module) {
		return false
	}
	if f.MinSeverity != "" && !e.Severity.AtLeast(f.MinSeverity) {
		return false
	}
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !e.Time.Before(f.Until) {
		return false
	}
	if f.Resource != "" && e.Resource != f.Resource {
		return false
	}
	for k, v := range f.Tags {
		if got, ok := e.Tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Query parameter names understood by ParseFilter.
var filterParams = []string{"type", "module", "severity", "since", "until", "resource", "tag", "after", "limit", "order"}

// ParseFilter reads a Filter from URL query parameters, the form the HTTP
// API accepts on GET /api/v1/events:
//
//	type=backup.completed  exact type, or a prefix ending in "." (repeatable, or comma-separated)
//	module=guard           emitting module (repeatable, or comma-separated)
//	severity=warning       minimum severity
//	since=RFC3339          inclusive lower time bound
//	until=RFC3339          exclusive upper time bound
//	resource=policy/web    exact resource
//	tag=team=blue          required tag (repeatable; all must match)
//	after=ID               cursor: ID of the last event of the previous page
//	limit=N                page size, 1 to MaxLimit
//	order=asc|desc         oldest first (default) or newest first
//
// Unknown parameters are rejected so that a typo does not silently widen
// the result. Every error is a *ValidationError naming the parameter.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(filterParams, k) {
			return Filter{}, invalid(strconv.Quote(truncate(k)), "unknown query parameter; want one of %s", strings.Join(filterParams, ", "))
		}
	}
	single := func(name string) (string, bool, error) {
		vs, ok := q[name]
		if !ok {
			return "", false, nil
		}
		if len(vs) != 1 {
			return "", false, invalid(name, "given %d times; give it once", len(vs))
		}
		if vs[0] == "" {
			return "", false, invalid(name, "is empty; give a value or leave the parameter out")
		}
		return vs[0], true, nil
	}
	list := func(name string) ([]string, error) {
		var out []string
		for _, v := range q[name] {
			for _, item := range strings.Split(v, ",") {
				if item == "" {
					return nil, invalid(name, "has an empty entry in %q", truncate(v))
				}
				out = append(out, item)
			}
		}
		return out, nil
	}

	types, err := list("type")
	if err != nil {
		return Filter{}, err
	}
	for _, t := range types {
		f.Types = append(f.Types, Type(t))
	}
	if f.Modules, err = list("module"); err != nil {
		return Filter{}, err
	}
	if v, ok, err := single("severity"); err != nil {
		return Filter{}, err
	} else if ok {
		if f.MinSeverity, err = ParseSeverity(v); err != nil {
			return Filter{}, err
		}
	}
	for _, name := range []string{"since", "until"} {
		v, ok, err := single(name)
		if err != nil {
			return Filter{}, err
		}
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return Filter{}, invalid(name, "%q is not an RFC 3339 time; write it like 2025-01-02T15:04:05Z", truncate(v))
		}
		if t.IsZero() {
			return Filter{}, invalid(name, "%q is the zero time; leave the parameter out instead", truncate(v))
		}
		if name == "since" {
			f.Since = t
		} else {
			f.Until = t
		}
	}
	if v, ok, err := single("resource"); err != nil {
		return Filter{}, err
	} else if ok {
		f.Resource = v
	}
	for _, v := range q["tag"] {
		k, val, ok := strings.Cut(v, "=")
		if !ok {
			return Filter{}, invalid("tag", "%q must be key=value, like team=blue", truncate(v))
		}
		if f.Tags == nil {
			f.Tags = map[string]string{}
		}
		if old, dup := f.Tags[k]; dup && old != val {
			return Filter{}, invalid("tag", "key %q given twice with different values; an event has one value per key", truncate(k))
		}
		f.Tags[k] = val
	}
	if v, ok, err := single("after"); err != nil {
		return Filter{}, err
	} else if ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return Filter{}, invalid("after", "%q is not an event id; pass the id of the last event of the previous page", truncate(v))
		}
		f.AfterID = n
	}
	if v, ok, err := single("limit"); err != nil {
		return Filter{}, err
	} else if ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxLimit {
			return Filter{}, invalid("limit", "%q is not a number from 1 to %d", truncate(v), MaxLimit)
		}
		f.Limit = n
	}
	if v, ok, err := single("order"); err != nil {
		return Filter{}, err
	} else if ok {
		switch v {
		case "asc":
		case "desc":
			f.Desc = true
		default:
			return Filter{}, invalid("order", "%q is neither asc nor desc", truncate(v))
		}
	}
	if err := f.Validate(); err != nil {
		return Filter{}, err
	}
	return f, nil
}

// Values encodes f as query parameters that ParseFilter reads back to an
// equal Filter; the API uses it to build the link to the next page.
func (f Filter) Values() url.Values {
	q := url.Values{}
	for _, t := range f.Types {
		q.Add("type", string(t))
	}
	for _, m := range f.Modules {
		q.Add("module", m)
	}
	if f.MinSeverity != "" {
		q.Set("severity", string(f.MinSeverity))
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.Resource != "" {
		q.Set("resource", f.Resource)
	}
	for _, k := range slices.Sorted(maps.Keys(f.Tags)) {
		q.Add("tag", k+"="+f.Tags[k])
	}
	if f.AfterID != 0 {
		q.Set("after", strconv.FormatInt(f.AfterID, 10))
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.Desc {
		q.Set("order", "desc")
	}
	return q
}
