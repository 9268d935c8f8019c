package report_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/bulwarkhq/bulwark/internal/report"
	"github.com/bulwarkhq/bulwark/internal/report/practice"
)

// TestHTMLSelfContained: the page loads nothing (no script, no external
// reference of any kind), its only inline content is the stylesheet whose
// hash the CSP allows, it has a viewport for phones, and the body template
// renders alone as a <main> fragment.
func TestHTMLSelfContained(t *testing.T) {
	f := sqliteFixture(t)
	r, err := report.Generate(ctx, f.src, epoch)
	must(t, err)
	var page, frag, pub bytes.Buffer
	must(t, report.RenderHTML(&page, r, report.HTMLOptions{}))
	must(t, report.RenderFragment(&frag, r, report.HTMLOptions{}))
	must(t, report.RenderPublicHTML(&pub, r.Public(practice.IDs()), report.HTMLOptions{}))
	for name, out := range map[string]string{"page": page.String(), "public": pub.String()} {
		doc, err := html.Parse(strings.NewReader(out))
		must(t, err)
		var styles []string
		var walk func(n *html.Node)
		walk = func(n *html.Node) {
			if n.Type == html.ElementNode {
				switch n.Data {
				case "script", "iframe", "img", "link", "object", "embed", "form", "base":
					t.Errorf("%s: <%s> element", name, n.Data)
				case "style":
					styles = append(styles, n.FirstChild.Data)
				}
				for _, a := range n.Attr {
					if a.Key == "style" || strings.HasPrefix(a.Key, "on") || a.Key == "src" || a.Key == "href" {
						t.Errorf("%s: attribute %s=%q on <%s>", name, a.Key, a.Val, n.Data)
					}
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		walk(doc)
		if len(styles) != 1 {
			t.Fatalf("%s: %d <style> elements, want 1", name, len(styles))
		}
		sum := sha256.Sum256([]byte(styles[0]))
		if want := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; !strings.Contains(report.CSP(), "style-src "+want) {
			t.Errorf("%s: CSP %q does not allow the page's stylesheet (%s)", name, report.CSP(), want)
		}
		if regexp.MustCompile(`url\(|@import|https?://`).MatchString(styles[0]) {
			t.Errorf("%s: the stylesheet loads something", name)
		}
		for _, want := range []string{`<meta name="viewport" content="width=device-width, initial-scale=1">`, "@media print", "max-width:480px"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
	}
	if !strings.HasPrefix(frag.String(), `<main class="bw-report">`) || strings.Contains(frag.String(), "<style") || strings.Contains(frag.String(), "<html") {
		t.Errorf("fragment is not the body alone:\n%.200s", frag.String())
	}
	if !strings.Contains(page.String(), frag.String()) {
		t.Error("the page does not contain the fragment")
	}
	for _, p := range practice.All() {
		if !strings.Contains(page.String(), p.Title) {
			t.Errorf("page lacks practice %q", p.Title)
		}
	}
	if !strings.Contains(page.String(), "Newest successful backup started 1h50m ago") {
		t.Error("page lacks a control's detail written as a sentence")
	}
	if strings.Contains(pub.String(), `class="bw-control"`) || strings.Contains(pub.String(), "What to do") {
		t.Error("public page shows controls or remediation")
	}
}

// TestHTMLEscapes: text from the evidence (an error message) cannot
// inject markup.
func TestHTMLEscapes(t *testing.T) {
	r := report.Report{Format: report.Format, GeneratedAt: epoch, Practices: []report.Practice{{ID: "x", Title: "T", Status: report.PracticeFailed,
		Controls: []report.Control{{ID: "c", Title: "C", Status: report.Failed, Detail: `failed: <script>alert(1)</script><img src=x onerror=alert(2)>`}}}}}
	var b bytes.Buffer
	must(t, report.RenderHTML(&b, r, report.HTMLOptions{}))
	if strings.Contains(b.String(), "<script>") || strings.Contains(b.String(), "<img") {
		t.Errorf("markup from a detail reached the page:\n%s", b.String())
	}
}

// TestPDF prints the report with the real headless Chromium: a PDF whose
// text holds the practices' titles. Without Chromium the test is skipped,
// except under CI=true, where it fails.
func TestPDF(t *testing.T) {
	if _, err := report.FindChromium(report.PDFOptions{}); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %v", err)
		}
		t.Skip(err)
	}
	f := sqliteFixture(t)
	r, err := report.Generate(ctx, f.src, epoch)
	must(t, err)
	start := time.Now()
	pdf, err := report.RenderPDF(ctx, r, report.HTMLOptions{}, report.PDFOptions{Timeout: 90 * time.Second, TempDir: t.TempDir()})
	must(t, err)
	t.Logf("printed %d bytes in %v", len(pdf), time.Since(start).Round(time.Millisecond))
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("output starts with %q, want %%PDF-", pdf[:min(16, len(pdf))])
	}
	if !bytes.Contains(pdf, []byte("/Title (Security practices)")) {
		t.Error("the PDF's title is not the page's")
	}
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Logf("pdftotext not installed (poppler-utils): checked the bytes only")
		return
	}
	path := t.TempDir() + "/r.pdf"
	must(t, os.WriteFile(path, pdf, 0o600))
	text, err := exec.Command("pdftotext", "-layout", path, "-").Output()
	must(t, err)
	norm := strings.Join(strings.Fields(string(text)), " ")
	for _, want := range []string{"Daily encrypted backups", "Tamper-evident audit log", "Security patching", "web1.example.net"} {
		if !strings.Contains(norm, want) {
			t.Errorf("the PDF's text lacks %q:\n%.600s", want, norm)
		}
	}
}

// TestPDFWithoutChromium: a missing browser is a clear error.
func TestPDFWithoutChromium(t *testing.T) {
	_, err := report.PrintPDF(ctx, []byte("<html></html>"), report.PDFOptions{Chromium: "/nonexistent/chromium"})
	if !errors.Is(err, report.ErrNoChromium) || !strings.Contains(err.Error(), "apt-get install chromium") {
		t.Errorf("error %v, want ErrNoChromium saying how to install it", err)
	}
}
