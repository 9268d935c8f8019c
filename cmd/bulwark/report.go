package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bulwarkhq/bulwark/internal/report"
	"github.com/bulwarkhq/bulwark/internal/signkey"
)

func reportCommand() *Command {
	var f serverFlags
	var format, out string
	var noPosture bool
	return &Command{
		Name:    "report",
		Summary: "the security-practices report, with the evidence of every control",
		Usage:   "bulwark report [--format text|json|html|pdf] [--out FILE] [--no-posture] [--config FILE] [--data DIR]",
		Long: `For each practice a hosting provider promises (daily encrypted backups, offsite
copy, restore tests, DDoS and brute-force protection, intrusion prevention,
file integrity, supervision, two-factor login, audit log, patching), its
status (met, at risk, failed), the evidence of each of its controls with the
time it was recorded, and what to do when it is not met (docs/report.md).

The report is made from what the data directory's store recorded (run
history, events, deliveries, the audit log) and from what 'bulwark up' last
recorded of the guard and the firewall. It first runs the host's posture
audit (about two seconds; its patching checks) and records it, so that the
API's report uses it too; --no-posture uses the last one recorded instead.
A missing piece of evidence is a failure.

--format text (the default) prints a summary; json the whole report; html a
self-contained page; pdf that page printed by headless Chromium (install
chromium). --out writes to FILE (mode 0600) instead of standard output.
The report is internal: it names accounts, policies and errors. What may be
public is the /trust page of 'bulwark up' (report.publish).

Exit status 1 when a practice failed, 0 when every practice is met or at
risk, 2 on errors.`,
		Examples: []string{
			"bulwark report",
			"bulwark report --format pdf --out security-report.pdf",
			"bulwark report --format json --no-posture | jq '.practices[] | {id, status}'",
			"bulwark report --format html --out report.html --data /var/lib/bulwark",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs, false)
			fs.StringVar(&format, "format", "text", "output `FORMAT`: text, json, html or pdf")
			fs.StringVar(&out, "out", "", "write the report to `FILE` instead of standard output")
			fs.BoolVar(&noPosture, "no-posture", false, "do not run the posture audit; use the last one recorded")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("report takes no arguments, got %q", args)
			}
			switch format {
			case "text", "json", "html", "pdf":
			default:
				return usageError("--format: %q: want text, json, html or pdf", format)
			}
			if format == "pdf" {
				// Before the report is made: a missing browser is known now.
				if _, err := report.FindChromium(report.PDFOptions{}); err != nil {
					return &ExitError{Code: 2, Err: err}
				}
			}
			a, err := openOffline(ctx, &f, e)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			defer a.Close()
			rep, err := a.Report(ctx, !noPosture)
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			var b bytes.Buffer
			switch format {
			case "text":
				err = writeReportText(&b, rep)
			case "json":
				err = writeJSON(&b, rep)
			case "html":
				err = report.RenderHTML(&b, rep, report.HTMLOptions{})
			case "pdf":
				var pdf []byte
				pdf, err = report.RenderPDF(ctx, rep, report.HTMLOptions{}, report.PDFOptions{})
				b.Write(pdf)
			}
			if err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			if out != "" {
				if err := signkey.WriteFileAtomic(out, b.Bytes(), 0o600); err != nil {
					return &ExitError{Code: 2, Err: err}
				}
			} else if _, err := e.Stdout.Write(b.Bytes()); err != nil {
				return &ExitError{Code: 2, Err: err}
			}
			fmt.Fprintf(e.Stderr, "%d practices: %d met, %d at risk, %d failed\n", len(rep.Practices), rep.Summary.Met, rep.Summary.AtRisk, rep.Summary.Failed)
			if rep.Failed() {
				return &ExitError{Code: 1}
			}
			return nil
		},
	}
}

// writeReportText prints the practices and their controls for a terminal.
func writeReportText(w *bytes.Buffer, r report.Report) error {
	fmt.Fprintf(w, "Security practices, %s", r.GeneratedAt.Local().Format("2006-01-02 15:04 MST"))
	if r.Host != "" {
		fmt.Fprintf(w, " on %s", r.Host)
	}
	fmt.Fprintf(w, ": %s\n\n", strings.ToUpper(strings.ReplaceAll(string(r.Status), "_", " ")))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PRACTICE\tSTATUS\tEVIDENCE AS OF")
	for _, p := range r.Practices {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Title, strings.ReplaceAll(string(p.Status), "_", " "), evidenceTime(p.EvidenceAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Practices {
		fmt.Fprintf(w, "\n%s (%s): %s\n", p.Title, p.ID, strings.ToUpper(strings.ReplaceAll(string(p.Status), "_", " ")))
		for _, c := range p.Controls {
			res := ""
			if c.Resource != "" {
				res = " " + c.Resource
			}
			fmt.Fprintf(w, "  %-8s %s%s: %s\n", strings.ReplaceAll(string(c.Status), "_", " "), c.ID, res, c.Detail)
			if c.Remediation != "" {
				fmt.Fprintf(w, "           fix: %s\n", c.Remediation)
			}
		}
	}
	return nil
}

// evidenceTime is t for the text report.
func evidenceTime(t time.Time) string {
	if t.IsZero() {
		return "no evidence"
	}
	return t.Local().Format("2006-01-02 15:04")
}
