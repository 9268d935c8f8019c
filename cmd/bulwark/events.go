package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/events"
)

func eventsCommand() *Command {
	var f clientFlags
	var types, modules, tags stringList
	var severity, since, until, resource, after, order string
	var limit int
	var asJSON bool
	return &Command{
		Name:    "events",
		Summary: "search the events of the modules you may read",
		Usage:   "bulwark events [--type PREFIX.] [--module M] [--severity S] [--since T] [--until T] [--limit N] [--json]",
		Long: `Events are what the capabilities report: backups done or failed, requests
blocked, files changed. Filters combine with AND; repeated --type or --module
match any of their values. Times are RFC 3339 or a date (00:00 UTC), or a
duration back from now (--since 24h). Shows one page, oldest first unless
--order desc; the next page's --after cursor is printed on standard error.`,
		Examples: []string{
			"bulwark events --since 24h --severity warning",
			"bulwark events --type backup. --module continuity --limit 20",
			"bulwark events --order desc --limit 10 --json | jq -r '.items[].message'",
		},
		Flags: func(fs *flag.FlagSet) {
			f.register(fs)
			fs.Var(&types, "type", "event `TYPE`, or a prefix ending in '.' (backup.); repeatable")
			fs.Var(&modules, "module", "emitting `MODULE` (guard, continuity, ...); repeatable")
			fs.StringVar(&severity, "severity", "", "minimum `LEVEL`: info, notice, warning, error or critical")
			fs.StringVar(&since, "since", "", "events at or after `TIME` (RFC 3339, date, or a duration ago: 24h)")
			fs.StringVar(&until, "until", "", "events before `TIME`")
			fs.StringVar(&resource, "resource", "", "events about exactly this `RESOURCE`")
			fs.Var(&tags, "tag", "events carrying tag `KEY=VALUE`; repeatable")
			fs.IntVar(&limit, "limit", 100, "at most `N` events (1 to 1000)")
			fs.StringVar(&after, "after", "", "continue after event `ID` (the cursor of the previous page)")
			fs.StringVar(&order, "order", "asc", "asc (oldest first) or desc (newest first)")
			fs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
		},
		Run: func(ctx context.Context, e *Env, _ *flag.FlagSet, args []string) error {
			if len(args) > 0 {
				return usageError("events takes no arguments; filter with flags (see --help)")
			}
			q, err := eventsQuery(types, modules, tags, severity, since, until, resource, after, order, limit, time.Now())
			if err != nil {
				return err
			}
			c, err := f.connect(e)
			if err != nil {
				return err
			}
			var list struct {
				Items []events.Event `json:"items"`
				Next  string         `json:"next"`
			}
			raw, err := c.call(ctx, http.MethodGet, "/api/v1/events", q, nil, &list)
			if err != nil {
				return err
			}
			if asJSON {
				return printRaw(e.Stdout, raw)
			}
			if len(list.Items) == 0 {
				fmt.Fprintln(e.Stdout, "no events match")
				return nil
			}
			var rows [][]string
			for _, ev := range list.Items {
				rows = append(rows, []string{strconv.FormatInt(ev.ID, 10), fmtTime(ev.Time), string(ev.Severity), ev.Module, string(ev.Type), ev.Resource, truncateRunes(ev.Message, 100)})
			}
			if err := table(e.Stdout, []string{"ID", "TIME", "SEVERITY", "MODULE", "TYPE", "RESOURCE", "MESSAGE"}, rows); err != nil {
				return err
			}
			if list.Next != "" {
				fmt.Fprintf(e.Stderr, "more events: add --after %s\n", clean(list.Next))
			}
			return nil
		},
	}
}

// eventsQuery builds the query string of GET /api/v1/events, checking what
// can be checked locally so typos fail before a round trip.
func eventsQuery(types, modules, tags []string, severity, since, until, resource, after, order string, limit int, now time.Time) (url.Values, error) {
	q := url.Values{}
	for _, t := range types {
		q.Add("type", t)
	}
	for _, m := range modules {
		q.Add("module", m)
	}
	for _, t := range tags {
		if _, err := parseTags([]string{t}); err != nil {
			return nil, err
		}
		q.Add("tag", t)
	}
	if severity != "" {
		if _, err := events.ParseSeverity(severity); err != nil {
			return nil, usageError("--severity %q: want info, notice, warning, error or critical", severity)
		}
		q.Set("severity", severity)
	}
	for _, b := range []struct{ name, v string }{{"since", since}, {"until", until}} {
		if b.v == "" {
			continue
		}
		t, err := parseEventTime(b.v, now)
		if err != nil {
			return nil, usageError("--%s %q: %v", b.name, b.v, err)
		}
		q.Set(b.name, t.UTC().Format(time.RFC3339Nano))
	}
	if resource != "" {
		q.Set("resource", resource)
	}
	if limit < 1 || limit > events.MaxLimit {
		return nil, usageError("--limit %d: want 1 to %d", limit, events.MaxLimit)
	}
	q.Set("limit", strconv.Itoa(limit))
	if after != "" {
		if n, err := strconv.ParseInt(after, 10, 64); err != nil || n < 0 {
			return nil, usageError("--after %q: give the event ID printed after the previous page", after)
		}
		q.Set("after", after)
	}
	switch order {
	case "asc":
	case "desc":
		q.Set("order", "desc")
	default:
		return nil, usageError("--order %q: want asc or desc", order)
	}
	return q, nil
}

// parseEventTime reads RFC 3339, a date, or a duration before now.
func parseEventTime(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("a duration back from now must be positive")
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("use RFC 3339 (2026-01-02T15:04:05Z), a date (2026-01-02) or a duration ago (24h)")
}
