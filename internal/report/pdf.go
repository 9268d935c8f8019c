package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The PDF is the HTML page printed by headless Chromium: the page is
// written to a private temporary directory and Chromium, with a throwaway
// profile, no network services of its own (no sync, no component update,
// no background networking, no QUIC) and no header or footer, prints it
// to a file there. The page loads nothing, so nothing is fetched.

// ErrNoChromium is returned when no Chromium executable is found.
var ErrNoChromium = errors.New("chromium is not installed")

// PDFOptions tune PDF printing.
type PDFOptions struct {
	// Chromium is the browser to run (default: chromium, then
	// chromium-browser, google-chrome on PATH, then /usr/bin/chromium).
	Chromium string
	// Timeout bounds the printing (default 60 s).
	Timeout time.Duration
	// TempDir is where the page and the PDF are written (default
	// os.TempDir()); the files are removed afterwards.
	TempDir string
}

// FindChromium returns the Chromium executable opts names or the first
// found, or an error matching ErrNoChromium that says how to install it.
func FindChromium(opts PDFOptions) (string, error) {
	if opts.Chromium != "" {
		p, err := exec.LookPath(opts.Chromium)
		if err != nil {
			return "", fmt.Errorf("%w: %s: %v (install it: apt-get install chromium)", ErrNoChromium, opts.Chromium, err)
		}
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: no chromium, chromium-browser or google-chrome on PATH; install it (apt-get install chromium) or print the HTML report (--format html) with a browser", ErrNoChromium)
}

// RenderPDF prints the report's HTML page to PDF with headless Chromium
// and returns the PDF.
func RenderPDF(ctx context.Context, r Report, html HTMLOptions, opts PDFOptions) ([]byte, error) {
	var page bytes.Buffer
	if err := RenderHTML(&page, r, html); err != nil {
		return nil, err
	}
	return PrintPDF(ctx, page.Bytes(), opts)
}

// PrintPDF prints a self-contained HTML page to PDF with headless
// Chromium.
func PrintPDF(ctx context.Context, page []byte, opts PDFOptions) ([]byte, error) {
	bin, err := FindChromium(opts)
	if err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	dir, err := os.MkdirTemp(opts.TempDir, "bulwark-report-")
	if err != nil {
		return nil, fmt.Errorf("pdf: temporary directory: %w", err)
	}
	defer os.RemoveAll(dir)
	in, out := filepath.Join(dir, "report.html"), filepath.Join(dir, "report.pdf")
	if err := os.WriteFile(in, page, 0o600); err != nil {
		return nil, fmt.Errorf("pdf: write the page: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--no-pdf-header-footer", "--print-to-pdf="+out, "file://"+in)
	cmd.Dir = dir
	// Chromium's own dbus and GPU chatter goes to stderr; keep the end of
	// it for the error, should printing fail.
	var stderr tail
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.Env = append(os.Environ(), "HOME="+dir)
	cmd.WaitDelay = 5 * time.Second
	runErr := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return nil, fmt.Errorf("pdf: %s did not print within %s", bin, timeout)
	}
	b, err := os.ReadFile(out)
	if runErr != nil || err != nil || !bytes.HasPrefix(b, []byte("%PDF-")) {
		why := runErr
		if why == nil {
			why = err
		}
		if why == nil {
			why = errors.New("the output is not a PDF")
		}
		return nil, fmt.Errorf("pdf: %s --print-to-pdf: %v: %s", bin, why, stderr.String())
	}
	return b, nil
}

// tail keeps the last 2 KiB written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2048 {
		t.b = t.b[len(t.b)-2048:]
	}
	return len(p), nil
}

func (t *tail) String() string { return strings.TrimSpace(strings.ToValidUTF8(string(t.b), "")) }
