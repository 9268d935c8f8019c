// The decision procedure. Decide is a pure function of the grants, the time
// and the request, so that every rule below is tested without a database.
//
// Rules, in the order they are applied:
//
//  1. A request must name a concrete module and a valid level, or it is
//     denied (a malformed request never slips through).
//  2. Grants that have expired (ExpiresAt set and not after now) are ignored,
//     allow and deny alike.
//  3. A grant applies to a request when its module is the request's module or
//     "*", and its scope applies: for a resource request (Resource true) the
//     scope must match the resource's tags; for a collection request (a list,
//     or "may I see anything here") an allow applies whatever its scope, since
//     the caller filters the items one by one afterwards, while a deny applies
//     only when it is unscoped (a scoped deny removes items, not the list).
//     A global request (Global true) acts on objects that carry no tags
//     (roles, grants, settings, the whole audit log): only an unscoped allow
//     applies, and a deny applies whatever its scope, so that a tag-scoped
//     grant never reaches beyond its tags.
//  4. A deny at level L applies to requests at L and above: deny read leaves
//     nothing, deny write leaves read and operate. If any deny applies, the
//     request is denied, whatever the allows say.
//  5. An allow at level L applies to requests at L and below. If one applies,
//     the request is allowed.
//  6. Otherwise the request is denied: nothing is allowed by default.

package access

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Request is one thing a principal wants to do.
type Request struct {
	// Module is the module acted on; never ModuleAll.
	Module Module
	// Level is the level the action needs.
	Level Level
	// Tags are the resource's tags; used only when Resource is true.
	Tags map[string]string
	// Resource is true for an action on one resource (scoped grants then
	// apply only when their selector matches Tags), false for a collection.
	Resource bool
	// Global is true for an action on untagged, global objects; it takes
	// precedence over Resource (rule 3).
	Global bool
}

// String describes the request for messages, e.g. `write on backups`.
func (r Request) String() string {
	return fmt.Sprintf("%s on %s", r.Level, r.Module)
}

// Decision is the outcome of Decide.
type Decision struct {
	// Allowed is the answer.
	Allowed bool
	// Reason says why, for logs and for the user who was refused.
	Reason string
	// Grant is the grant that decided, nil when no grant applied.
	Grant *Grant
}

// Decide decides r against grants at time now. Expired grants are ignored;
// any applicable deny (at r.Level or below it) denies; otherwise any
// applicable allow (at r.Level or above it) allows; otherwise r is denied.
// For a resource request a scoped grant applies only when its selector
// matches r.Tags; for a collection request any allow applies but only an
// unscoped deny does. The deciding grant is returned as a copy.
func Decide(grants []Grant, now time.Time, r Request) Decision {
	if !r.Module.concrete() {
		return Decision{Reason: fmt.Sprintf("request names module %q, which is not a module", r.Module)}
	}
	if !r.Level.Valid() {
		return Decision{Reason: fmt.Sprintf("request names %s, which is not read, operate or write", r.Level)}
	}
	for i := range grants {
		g := &grants[i]
		if g.Effect != EffectDeny || g.Expired(now) || !g.Module.covers(r.Module) || r.Level < g.Level {
			continue
		}
		if !r.Global && (r.Resource && !g.Scope.Matches(r.Tags) || !r.Resource && !g.Scope.All()) {
			continue
		}
		d := *g
		return Decision{Reason: "denied by " + describe(d), Grant: &d}
	}
	for i := range grants {
		g := &grants[i]
		if g.Effect != EffectAllow || g.Expired(now) || !g.Module.covers(r.Module) || r.Level > g.Level {
			continue
		}
		if r.Global && !g.Scope.All() || !r.Global && r.Resource && !g.Scope.Matches(r.Tags) {
			continue
		}
		d := *g
		return Decision{Allowed: true, Reason: "allowed by " + describe(d), Grant: &d}
	}
	reason := "no grant allows " + r.String()
	if r.Global {
		reason += " on all resources (a tag-scoped grant does not reach global objects)"
	} else if r.Resource {
		reason += " for a resource tagged " + formatTags(r.Tags)
	}
	return Decision{Reason: reason}
}

func describe(g Grant) string {
	if g.Role != "" {
		return fmt.Sprintf("role %q: %s", g.Role, g)
	}
	return g.String()
}

func formatTags(tags map[string]string) string {
	if len(tags) == 0 {
		return "{} (no tags)"
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%s", k, tags[k])
	}
	b.WriteByte('}')
	return b.String()
}

// Principal is who is asking: a user, possibly through an API token, with
// the roles and grants in force for this request (see Store.EffectiveGrants
// and Store.Principal).
type Principal struct {
	UserID   int64
	Username string
	// Roles are the roles in force (for a token, its subset of them).
	Roles []string
	// Grants are the non-expired grants of Roles at load time; Decide
	// checks expiry again at decision time.
	Grants []Grant
	// TokenID is set when the principal authenticated with an API token.
	TokenID string
}

func (p *Principal) who() string {
	if p.TokenID != "" {
		return fmt.Sprintf("user %q (API token %s)", p.Username, p.TokenID)
	}
	return fmt.Sprintf("user %q", p.Username)
}

// Decide is Decide over the principal's grants. A nil principal is denied.
func (p *Principal) Decide(now time.Time, r Request) Decision {
	if p == nil {
		return Decision{Reason: "not authenticated"}
	}
	return Decide(p.Grants, now, r)
}

// Authorize returns nil when the principal may make the request, otherwise
// an error wrapping ErrDenied that names the module, the level and why.
func (p *Principal) Authorize(now time.Time, r Request) error {
	d := p.Decide(now, r)
	if d.Allowed {
		return nil
	}
	who := "anonymous caller"
	if p != nil {
		who = p.who()
	}
	hint := ""
	if d.Grant == nil {
		hint = "; ask an administrator for a role that grants it"
	}
	return fmt.Errorf("%w: %s may not %s %s: %s%s", ErrDenied, who, r.Level, r.Module, d.Reason, hint)
}

// Can reports whether the principal may act at level on the module's
// collection (a non-resource request), as used to show or hide whole areas
// of the console.
func (p *Principal) Can(now time.Time, module Module, level Level) bool {
	return p.Decide(now, Request{Module: module, Level: level}).Allowed
}
