package report

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The HTML report is one self-contained page: an inline stylesheet, no
// script, no image, no link to load. It reads on a 360-pixel-wide phone
// (blocks that wrap, no table) and prints (A4 margins, no practice split
// across pages). Its only inline content is the stylesheet, allowed by
// its hash, so the page is served under a strict Content-Security-Policy
// (CSP).
//
// The page's body is its own named template (BodyTemplate), executed
// with a View, so that the web console can embed the report in its own
// pages.

//go:embed templates/report.html
var pageText string

//go:embed templates/report.css
var styleText string

// BodyTemplate and PageTemplate name the templates of Template: the body
// alone (a <main> element, for embedding) and the whole page.
const (
	BodyTemplate = "report-body"
	PageTemplate = "report-page"
)

var funcs = template.FuncMap{
	"when":     func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"label":    label,
	"sentence": sentence,
}

var tmpl = template.Must(template.New("report").Funcs(funcs).Parse(pageText))

// sentence capitalises a detail's first letter and ends it with a full
// stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// label is a status for people.
func label(s any) string {
	switch fmt.Sprint(s) {
	case "met":
		return "Met"
	case "ok":
		return "OK"
	case "at_risk":
		return "At risk"
	case "failed":
		return "Failed"
	}
	return fmt.Sprint(s)
}

// Template returns a copy of the report's templates (BodyTemplate,
// PageTemplate), to execute with a View or to add to another set.
func Template() *template.Template { return template.Must(tmpl.Clone()) }

// Style returns the report's stylesheet (inlined in the page).
func Style() string { return styleText }

// StyleSource is the CSP source expression allowing the inline
// stylesheet: 'sha256-...' of its exact text.
func StyleSource() string {
	sum := sha256.Sum256([]byte(styleText))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// CSP is the Content-Security-Policy to serve the page under: nothing may
// load, and only the report's own stylesheet applies.
func CSP() string {
	return "default-src 'none'; style-src " + StyleSource() + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// HTMLOptions tune the HTML rendering.
type HTMLOptions struct {
	// Title is the page's heading (default "Security practices").
	Title string
}

// View is the data the templates are executed with.
type View struct {
	Title       string
	Style       template.CSS
	Public      bool
	Format      string
	GeneratedAt time.Time
	Host        string
	Status      PracticeStatus
	Summary     Counts
	Practices   []Practice
}

func (o HTMLOptions) title() string {
	if o.Title == "" {
		return "Security practices"
	}
	return o.Title
}

// NewView is the view of an internal report.
func NewView(r Report, opts HTMLOptions) View {
	return View{Title: opts.title(), Style: template.CSS(styleText), Format: r.Format, GeneratedAt: r.GeneratedAt, Host: r.Host,
		Status: r.Status, Summary: r.Summary, Practices: r.Practices}
}

// NewPublicView is the view of a public report: practices without
// controls, remediation or host.
func NewPublicView(p Public, opts HTMLOptions) View {
	v := View{Title: opts.title(), Style: template.CSS(styleText), Public: true, GeneratedAt: p.GeneratedAt}
	for _, pp := range p.Practices {
		v.Practices = append(v.Practices, Practice{ID: pp.ID, Title: pp.Title, Promise: pp.Promise, Status: pp.Status, EvidenceAt: pp.EvidenceAt, Summary: pp.Summary})
	}
	return v
}

// RenderHTML writes the report as a whole HTML page.
func RenderHTML(w io.Writer, r Report, opts HTMLOptions) error {
	return tmpl.ExecuteTemplate(w, PageTemplate, NewView(r, opts))
}

// RenderFragment writes the report's body alone (a <main> element
// styled by Style), for embedding in another page.
func RenderFragment(w io.Writer, r Report, opts HTMLOptions) error {
	return tmpl.ExecuteTemplate(w, BodyTemplate, NewView(r, opts))
}

// RenderPublicHTML writes the public variant as a whole HTML page.
func RenderPublicHTML(w io.Writer, p Public, opts HTMLOptions) error {
	if opts.Title == "" {
		opts.Title = "Our security practices"
	}
	return tmpl.ExecuteTemplate(w, PageTemplate, NewPublicView(p, opts))
}
