// Package waf inspects requests for the guard with Coraza and the OWASP
// Core Rule Set (CRS) 4, compiled once into the binary from
// github.com/corazawaf/coraza-coreruleset (no rule files on disk).
//
// What is inspected: the request line, the headers and the first BodyLimit
// bytes of the body, by the CRS request rules (REQUEST-9xx, phases 1 and
// 2). Responses are not inspected: no phase 3 or 4, response bodies are
// never buffered, and the RESPONSE-9xx rules are not even loaded. No audit
// log and no debug log are kept: the Verdict handed to the caller is the
// record. GET and HEAD requests for static assets are not inspected.
//
// Scoring: the CRS runs in anomaly scoring mode. Each matching rule adds
// its severity's points (critical 5, error 4, warning 3, notice 2) and the
// request is refused when the total reaches the threshold (5 by default:
// one critical match). In detect mode the same evaluation runs and nothing
// is refused. At paranoia level 1 the CRS allows the methods GET, HEAD,
// POST and OPTIONS only (rule 911100): a site that takes PUT, PATCH or
// DELETE needs an exclusion of 911100 for its paths.
//
// Cost (see waf_bench_test.go): the CRS rules themselves are nearly all of
// it, about 0.9 ms of CPU (garbage collection included) for an ordinary
// dynamic request at paranoia 1 (1.7 ms before the regular expressions'
// answers were cached: rxcache.go), and about 5.5 ms more per KiB of form
// or JSON field value (a 128 KiB field costs 0.7 s: the guard's rate
// limits are what bound that; values over 256 bytes are never answered
// from the cache). What this package saves over Coraza's own middleware
// with the recommended setup is the response phases and logging (about 16%
// of a dynamic request), most @rx matching of the values every request
// repeats (headers, cookie and argument names, paths), and all of a static
// asset's cost. Coraza's experimental SecRxPreFilter would save more on a
// cache miss, but it lost three cases of the CRS regression suite
// (CRS-REGRESSION.md), so it stays off; the cache changes no answer (the
// suite's results are the same with and without it).
//
// Coraza checks at New that the temporary directory (os.TempDir) is
// writable: it copies multipart file parts there during inspection.
package waf

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"

	coreruleset "github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/types"
)

// Mode is what the WAF does with the requests it inspects.
type Mode string

// The modes.
const (
	// ModeOff inspects nothing: Handler returns the next handler itself.
	ModeOff Mode = "off"
	// ModeDetect inspects every request and reports the verdict, but never
	// refuses a request.
	ModeDetect Mode = "detect"
	// ModeBlock inspects every request and answers the ones the CRS
	// refuses itself (403, or 400 for a body that cannot be parsed).
	ModeBlock Mode = "block"
)

// Exclusion removes rules from inspection, for every request or for the
// requests under a path.
type Exclusion struct {
	// IDs are CRS rule ids (e.g. 942100); each must be a rule of the set.
	IDs []int
	// PathPrefix limits the exclusion to paths under it, segment by
	// segment: "/api" covers /api and /api/x but not /apix. "" (or "/")
	// covers every path. The request path is compared after percent
	// decoding, with backslashes read as slashes and dot segments removed,
	// and must be under the prefix both before and after decoding, so an
	// encoded "../" cannot borrow the exclusion for another path.
	PathPrefix string
}

// Config configures a WAF. The zero value of each field is its default.
type Config struct {
	// Mode is off, detect or block; "" is detect.
	Mode Mode
	// Paranoia is the CRS paranoia level, 1 to 4; 0 is 1. Higher levels
	// run more rules and find more attacks, with more false positives.
	Paranoia int
	// Exclusions remove rules, everywhere or under a path.
	Exclusions []Exclusion
	// BodyLimit is how many bytes of a request body are inspected (0: 128
	// KiB, at most 1 GiB). A larger body is not refused: its first
	// BodyLimit bytes are inspected and the whole body, those bytes
	// included, is passed on unchanged. The bytes inspected are held in
	// memory until the next handler has read them, never written to disk,
	// except that Coraza copies multipart file parts (within those bytes)
	// to temporary files it removes at the end of the inspection. A body
	// cut at the limit that no longer parses (JSON, XML) is not refused for
	// that, and its fields go uninspected (only rules on the raw body see
	// it): a client can pad a JSON body past the limit to hide a payload
	// from the field rules, so keep the limit at least as large as the
	// JSON bodies a site takes. See Verdict.Partial.
	BodyLimit int64
	// SkipExtensions are file extensions (".css") whose GET and HEAD
	// requests are not inspected at all, headers included; nil is
	// DefaultSkipExtensions, an empty slice skips nothing. A request is
	// skipped only when it has no body and its path and query are plain
	// (letters, digits and "/._~-", plus "=&" in the query; no dot
	// segments), so an attack needs the path or query to be ordinary.
	SkipExtensions []string
	// AnomalyThreshold is the inbound anomaly score at which the CRS
	// refuses a request (0: 5).
	AnomalyThreshold int
}

// DefaultSkipExtensions are the static asset extensions skipped when
// Config.SkipExtensions is nil: the many small files of a page load.
// Media and downloads are left out on purpose: they are few, large, and
// the target of Range header abuse (CRS 920660), which is worth a look.
var DefaultSkipExtensions = []string{
	".css", ".js", ".mjs", ".map",
	".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".ico", ".svg", ".bmp",
	".woff", ".woff2", ".ttf", ".otf", ".eot",
}

// Match is one rule that matched a request.
type Match struct {
	// RuleID is the CRS rule id (e.g. 942100 for SQL injection by
	// libinjection, 949110 for the anomaly score reaching the threshold).
	RuleID int
	// Message is the rule's message (at most 256 bytes).
	Message string
	// Severity is the rule's severity ("critical", "warning", ...; "" when
	// the rule has none).
	Severity string
	// Data is what matched, as the rule logs it (at most 256 bytes).
	Data string
}

// Verdict is the outcome of inspecting one request.
type Verdict struct {
	// Blocked: the WAF answered the request itself (block mode only).
	Blocked bool
	// Status is the status the WAF answered with, or in detect mode the
	// one it would have answered with in block mode; 0: the request passes.
	Status int
	// Matches are the rules that matched, in the order they ran.
	Matches []Match
	// Score is the inbound anomaly score.
	Score int
	// Partial: the body was longer than BodyLimit and only its first
	// BodyLimit bytes were inspected.
	Partial bool
}

// WAF is a compiled rule set, shared by every request. It is safe for
// concurrent use.
type WAF struct {
	mode      Mode
	limit     int64
	threshold int
	engine    coraza.WAF
	skip      map[string]struct{}
	paths     []pathExclusion
}

// pathExclusion is an Exclusion with a path prefix, applied per request.
type pathExclusion struct {
	prefix string // cleaned, without a trailing slash
	ids    []int
}

const (
	defaultBodyLimit = 128 << 10
	maxBodyLimit     = 1 << 30
	defaultThreshold = 5
)

// New validates cfg and compiles the CRS. Compiling takes 0.1 to 0.3 s and
// holds some 12 MiB; do it once and share the WAF. Errors name the
// setting at fault (as the configuration file would, e.g. body_limit).
func New(cfg Config) (*WAF, error) {
	return newWAF(cfg, "")
}

// newWAF is New with extra directives placed after the CRS setup and before
// the rules (the regression test's settings).
func newWAF(cfg Config, extra string) (*WAF, error) {
	w := &WAF{mode: cfg.Mode, limit: cfg.BodyLimit, threshold: cfg.AnomalyThreshold}
	switch w.mode {
	case "":
		w.mode = ModeDetect
	case ModeOff, ModeDetect, ModeBlock:
	default:
		return nil, fmt.Errorf("waf: mode %q: want off, detect or block", cfg.Mode)
	}
	paranoia := cfg.Paranoia
	if paranoia == 0 {
		paranoia = 1
	}
	if paranoia < 1 || paranoia > 4 {
		return nil, fmt.Errorf("waf: paranoia %d: want 1 to 4", cfg.Paranoia)
	}
	switch {
	case w.limit == 0:
		w.limit = defaultBodyLimit
	case w.limit < 0 || w.limit > maxBodyLimit:
		return nil, fmt.Errorf("waf: body_limit %d: want 1 byte to 1 GiB", cfg.BodyLimit)
	}
	switch {
	case w.threshold == 0:
		w.threshold = defaultThreshold
	case w.threshold < 0:
		return nil, fmt.Errorf("waf: anomaly_threshold %d: want a positive score", cfg.AnomalyThreshold)
	}
	exts := cfg.SkipExtensions
	if exts == nil {
		exts = DefaultSkipExtensions
	}
	w.skip = make(map[string]struct{}, len(exts))
	for i, e := range exts {
		if len(e) < 2 || e[0] != '.' || strings.ContainsAny(e[1:], "./\\") {
			return nil, fmt.Errorf("waf: skip_extensions[%d] %q: want a dot and a name, like \".css\"", i, e)
		}
		w.skip[strings.ToLower(e)] = struct{}{}
	}
	var global []int
	for i, ex := range cfg.Exclusions {
		if len(ex.IDs) == 0 {
			return nil, fmt.Errorf("waf: exclusions[%d]: no rule ids", i)
		}
		for j, id := range ex.IDs {
			if id <= 0 {
				return nil, fmt.Errorf("waf: exclusions[%d].ids[%d] %d: want a rule id", i, j, id)
			}
		}
		p := ex.PathPrefix
		if p != "" && (p[0] != '/' || strings.ContainsAny(p, "?#\\") || path.Clean(p) != strings.TrimSuffix(p, "/") && p != "/") {
			return nil, fmt.Errorf("waf: exclusions[%d].path_prefix %q: want a clean absolute path like /api", i, p)
		}
		p = strings.TrimSuffix(p, "/")
		if p == "" {
			global = append(global, ex.IDs...)
			continue
		}
		w.paths = append(w.paths, pathExclusion{prefix: p, ids: slices.Clone(ex.IDs)})
	}
	if w.mode == ModeOff {
		return w, nil
	}

	remove := ""
	if len(global) > 0 {
		// SecRuleRemoveById after the rules are loaded drops them from the
		// compiled set: free at run time.
		ids := make([]string, len(global))
		for i, id := range global {
			ids[i] = strconv.Itoa(id)
		}
		remove = "SecRuleRemoveById " + strings.Join(ids, " ") + "\n"
	}
	rules := map[int]bool{}
	conf := coraza.NewWAFConfig().
		WithRootFS(crsFS{coreruleset.FS}).
		WithDirectives(directives(w.mode, paranoia, w.threshold, int(w.limit), extra) + remove)
	conf = experimental.WAFConfigWithRuleObserver(conf, func(r types.RuleMetadata) { rules[r.ID()] = true })
	engine, err := coraza.NewWAF(conf)
	if err != nil {
		return nil, fmt.Errorf("waf: compiling the rule set: %w", err)
	}
	if len(rules) > 0 { // the observer saw every rule as it was added: check the ids
		for i, ex := range cfg.Exclusions {
			for j, id := range ex.IDs {
				if !rules[id] {
					return nil, fmt.Errorf("waf: exclusions[%d].ids[%d]: no request rule %d in the CRS", i, j, id)
				}
			}
		}
	}
	if len(w.paths) > 0 {
		tx := engine.NewTransaction()
		_, ok := tx.(ruleRemover)
		tx.Close()
		if !ok {
			return nil, errors.New("waf: exclusions by path: this Coraza version cannot remove a rule per request")
		}
	}
	w.engine = engine
	return w, nil
}

// ruleRemover is the per-transaction rule removal behind
// ctl:ruleRemoveById, which Coraza's transactions have but its Transaction
// interface does not name.
type ruleRemover interface{ RemoveRuleByID(id int) }

// Mode reports the WAF's mode.
func (w *WAF) Mode() Mode { return w.mode }

// directives is the configuration handed to Coraza. It follows Coraza's
// coraza.conf-recommended for the request side, without its audit log and
// response body settings, then the CRS setup with the paranoia level and
// threshold, then the request rules. RESPONSE-*.conf is not loaded: those
// rules run in phases 3 to 5, which are never run.
func directives(mode Mode, paranoia, threshold, limit int, extra string) string {
	engine := "On"
	if mode == ModeDetect {
		engine = "DetectionOnly"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `SecRuleEngine %s
SecRequestBodyAccess On
SecRequestBodyLimit %d
SecRequestBodyInMemoryLimit %d
SecRequestBodyLimitAction ProcessPartial
SecRequestBodyJsonDepthLimit 1024
SecArgumentsLimit 1000
SecResponseBodyAccess Off
SecAuditEngine Off

SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\+|/)|text/)xml" \
    "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" \
    "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "^application/[a-z0-9.-]+[+]json" \
    "id:200006,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule URI_PARSE_ERROR "@eq 1" \
    "id:200009,phase:1,t:none,log,deny,status:400,msg:'URI failed to parse.'"
SecRule ARGUMENTS_LIMIT_REACHED "@eq 1" \
    "id:200004,phase:1,t:none,log,deny,status:400,msg:'Argument limit reached; request rejected (GET/PATH args)'"

# A body cut at the inspection limit (INBOUND_DATA_ERROR, also set by a
# body of exactly the limit) may not parse; that is not the client's fault,
# so it is not refused for it.
SecRule REQBODY_ERROR "!@eq 0" \
    "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%%{reqbody_error_msg}',severity:2,chain"
    SecRule INBOUND_DATA_ERROR "@eq 0" "t:none"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" \
    "id:200003,phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed strict validation.'"
SecRule ARGUMENTS_LIMIT_REACHED "@eq 1" \
    "id:200005,phase:2,t:none,log,deny,status:400,msg:'Argument limit reached; request rejected (POST args)'"

Include @crs-setup.conf.example
SecAction "id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=%d"
SecAction "id:900001,phase:1,pass,t:none,nolog,setvar:tx.detection_paranoia_level=%d"
SecAction "id:900110,phase:1,pass,t:none,nolog,setvar:tx.inbound_anomaly_score_threshold=%d,setvar:tx.outbound_anomaly_score_threshold=4"
`, engine, limit, limit, paranoia, paranoia, threshold)
	b.WriteString(extra)
	b.WriteString("\n")
	for _, f := range requestRuleFiles() {
		b.WriteString("Include @owasp_crs/" + f + "\n")
	}
	return b.String()
}

// requestRuleFiles lists the CRS request rule files in order.
func requestRuleFiles() []string {
	files, err := fs.Glob(coreruleset.FS, "@owasp_crs/REQUEST-*.conf")
	if err != nil || len(files) == 0 {
		panic(fmt.Sprintf("waf: the embedded CRS has no request rules (%v)", err))
	}
	for i, f := range files {
		files[i] = path.Base(f)
	}
	slices.Sort(files)
	return files
}

type clientKey struct{}

// WithClient returns a context that tells the WAF the client's address
// (the guard resolves it from trusted forwarding headers). Without it the
// WAF uses the request's RemoteAddr.
func WithClient(ctx context.Context, client netip.Addr) context.Context {
	return context.WithValue(ctx, clientKey{}, client)
}
