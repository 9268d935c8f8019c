package integrity

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/detect/tail"
	"github.com/bulwarkhq/bulwark/internal/events"
	"github.com/bulwarkhq/bulwark/internal/signkey"
)

// Service runs file-integrity monitoring inside `bulwark up`: it records
// the baseline when there is none (signed with DATA_DIR/integrity.key),
// verifies it, and watches; every finding, every full scan and every
// problem is an event (and so an audit entry, and alertable). The last
// full scan, its coverage and the paths that differ from the baseline are
// kept as evidence (Status, and the integrity.scan_completed events).
type Service struct {
	Config  config.Integrity
	DataDir string
	Bus     *events.Bus
	Logger  *slog.Logger
	// Offsets keeps the positions in the authentication logs across
	// restarts (nil: each start begins at their ends).
	Offsets tail.Offsets

	fails  failLimit // of login_failed events per source
	mu     sync.Mutex
	status Status
	// differ holds every path that differs from the baseline now, with
	// its last finding in full for at most MaxFindingDetails of them
	// (detailed counts those).
	differ   map[string]*differing
	detailed int
	// base is the baseline being watched (nil when not watching), and
	// rebase hands a new one to the watch until watchDone is closed.
	base      *Baseline
	rebase    chan *rebaseRequest
	watchDone chan struct{}
	// acceptMu serialises accepts.
	acceptMu sync.Mutex
}

// MaxFindingDetails bounds how many of the paths that differ from the
// baseline are kept with their last finding in full (type, attributes,
// reasons, package: a few hundred bytes each); beyond it the others are
// kept with their kind, severity and time only, so memory stays bounded
// when a whole tree changes. A detail is kept again for a path reported
// once there is room.
const MaxFindingDetails = 10000

// differing is what is known of a path that differs now.
type differing struct {
	kind, severity, source string
	// state is the token of the state reported (stateOf), kept for every
	// path: an exact accept folds that state only.
	state string
	time  time.Time
	f     *Finding // nil beyond MaxFindingDetails; without Changes
}

// Status is the evidence of the integrity control.
type Status struct {
	Watching bool   `json:"watching"`
	Baseline string `json:"baseline"`
	Entries  int    `json:"baseline_entries"`
	Digest   string `json:"baseline_digest,omitempty"`
	// LastScan is the last complete scan, at LastScanAt.
	LastScan   *ScanSummary `json:"last_scan,omitempty"`
	LastScanAt time.Time    `json:"last_scan_at,omitzero"`
	// Differences counts the paths that differ from the baseline now
	// (not accepted), High those of them graded high.
	Differences int    `json:"differences"`
	High        int    `json:"high"`
	Error       string `json:"error,omitempty"`
}

const actor = "system:integrity"

// BaselinePath is the configured baseline, or DATA_DIR/integrity.baseline.
func (s *Service) BaselinePath() string {
	if s.Config.Baseline != "" {
		return s.Config.Baseline
	}
	return filepath.Join(s.DataDir, "integrity.baseline")
}

// PublicKeyPath is the configured public key, or DATA_DIR/integrity.pub.
func (s *Service) PublicKeyPath() string {
	if s.Config.PublicKey != "" {
		return s.Config.PublicKey
	}
	return filepath.Join(s.DataDir, "integrity.pub")
}

// Status returns the evidence so far.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	if st.LastScan != nil {
		c := *st.LastScan
		st.LastScan = &c
	}
	return st
}

// Run watches, and follows the authentication logs, until ctx ends. When
// watching cannot start (the policy, the key, a baseline that does not
// verify: that one also a critical event) it says so in Status and the
// log, goes on following the logs, and returns that error at the end.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	s.status = Status{Baseline: s.BaselinePath()}
	s.differ, s.detailed = map[string]*differing{}, 0
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range s.Config.AuthLogs {
		wg.Go(func() {
			if err := s.followAuthLog(ctx, l); err != nil && ctx.Err() == nil && s.Logger != nil {
				s.Logger.Error("integrity: authentication log", "path", l, "err", err)
			}
		})
	}
	err := s.run(ctx)
	if err != nil && ctx.Err() == nil {
		s.mu.Lock()
		s.status.Watching, s.status.Error = false, err.Error()
		s.mu.Unlock()
		if s.Logger != nil {
			s.Logger.Error("integrity: not watching files", "err", err)
		}
		if len(s.Config.AuthLogs) > 0 {
			<-ctx.Done()
		}
	}
	wg.Wait()
	return err
}

func (s *Service) run(ctx context.Context) error {
	p, err := PolicyFromConfig(s.Config)
	if err != nil {
		return err
	}
	b, err := s.baseline(ctx, p)
	if err != nil {
		return err
	}
	rebase, done := make(chan *rebaseRequest), make(chan struct{})
	s.mu.Lock()
	s.status.Watching, s.status.Entries, s.status.Digest = true, len(b.Entries), b.Digest
	s.base, s.rebase, s.watchDone = b, rebase, done
	s.mu.Unlock()
	rescan := s.Config.Rescan.D()
	if rescan == 0 {
		rescan = -1
	}
	g := b.Grading()
	err = Watch(ctx, b.Header.Policy, b.Entries, WatchOptions{Rescan: rescan, Packages: g.Packages, Since: g.Since,
		Events: func(ev WatchEvent) { s.handle(ctx, ev) }, rebase: rebase})
	close(done)
	s.mu.Lock()
	s.status.Watching = false
	s.base, s.rebase = nil, nil
	s.mu.Unlock()
	return err
}

// baseline reads and verifies the baseline, or records it when the file
// does not exist.
func (s *Service) baseline(ctx context.Context, p Policy) (*Baseline, error) {
	path := s.BaselinePath()
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		// Recorded on the very first start only: a baseline deleted
		// later (by an intruder, to have the compromised system signed
		// as the new normal) is an alarm, not a fresh start.
		if at, ok := s.recordedBefore(ctx); ok {
			return nil, s.refuse(ctx, path, fmt.Errorf("the baseline is missing, and one was recorded at %s; record a new one with bulwark integrity init if that is intended", at.Format(time.RFC3339)))
		}
		return s.record(ctx, p, path)
	}
	pub, err := s.publicKey()
	if err == nil {
		var b *Baseline
		if b, err = ReadFile(path, pub); err == nil {
			if !samePolicy(b.Header.Policy, p) {
				s.publish(ctx, events.Event{Type: events.TypeIntegrityWarning, Severity: events.SeverityWarning,
					Resource: resource("baseline", path), Message: "the configuration's integrity rules differ from the baseline's; watching with the baseline's (record a new one with bulwark integrity init)"})
			}
			return b, nil
		}
	}
	return nil, s.refuse(ctx, path, err)
}

// refuse says (a critical event) why the baseline at path is not used, and
// returns that as the error.
func (s *Service) refuse(ctx context.Context, path string, err error) error {
	s.publish(ctx, events.Event{Type: events.TypeIntegrityBaselineInvalid, Severity: events.SeverityCritical,
		Resource: resource("baseline", path), Message: events.OneLine("integrity baseline refused, not watching: " + err.Error()),
		Data: map[string]any{"baseline": path, "error": err.Error()}})
	return fmt.Errorf("integrity baseline %s: %w", path, err)
}

func (s *Service) publicKey() (ed25519.PublicKey, error) {
	b, err := os.ReadFile(s.PublicKeyPath())
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return signkey.ReadPublic(b)
}

// recordedBefore tells whether (and when) a baseline was recorded before.
func (s *Service) recordedBefore(ctx context.Context) (time.Time, bool) {
	if s.Bus == nil {
		return time.Time{}, false
	}
	evs, err := s.Bus.Query(ctx, events.Filter{Types: []events.Type{events.TypeIntegrityBaselineCreated}, Limit: 1})
	if err != nil || len(evs) == 0 {
		return time.Time{}, false
	}
	return evs[0].Time, true
}

// record scans and writes the first baseline.
func (s *Service) record(ctx context.Context, p Policy, path string) (*Baseline, error) {
	key, err := signkey.LoadOrCreate(s.DataDir, "integrity")
	if err != nil {
		return nil, err
	}
	// A public key kept apart must be this key's, or what is recorded
	// could never be verified against it.
	if s.Config.PublicKey != "" {
		pub, err := s.publicKey()
		if err != nil {
			return nil, err
		}
		if !pub.Equal(key.Public()) {
			return nil, fmt.Errorf("integrity.public_key %s is not the public half of %s: not recording a baseline it cannot verify",
				s.Config.PublicKey, filepath.Join(s.DataDir, "integrity.key"))
		}
	}
	res, err := Scan(ctx, p, Options{})
	if err != nil {
		return nil, err
	}
	h := NewHeader(p)
	digest, err := WriteFile(path, h, res.Entries, key)
	if err != nil {
		return nil, err
	}
	h.Entries, h.KeyID = len(res.Entries), signkey.ID(key.Public().(ed25519.PublicKey))
	s.publish(ctx, events.Event{Type: events.TypeIntegrityBaselineCreated, Severity: events.SeverityNotice,
		Resource: resource("baseline", path), Message: fmt.Sprintf("integrity baseline recorded: %d entries in %.1fs", len(res.Entries), res.Duration.Seconds()),
		Data: map[string]any{"baseline": path, "entries": len(res.Entries), "errors": len(res.Errors), "seconds": res.Duration.Seconds(),
			"digest": digest, "key_id": h.KeyID}})
	return &Baseline{Header: h, Entries: res.Entries, Digest: digest}, nil
}

// samePolicy reports whether two policies record the same (the config's is
// validated, the baseline's was when it was recorded).
func samePolicy(a, b Policy) bool {
	return a.Hash == b.Hash && a.Root == b.Root && slices.Equal(a.Exclude, b.Exclude) &&
		slices.EqualFunc(a.Rules, b.Rules, func(x, y Rule) bool {
			return x.Path == y.Path && x.Attrs == y.Attrs && slices.Equal(x.Exclude, y.Exclude)
		})
}

// The event severity of a finding's.
var eventSeverity = map[string]events.Severity{
	SeverityHigh: events.SeverityError, SeverityMedium: events.SeverityWarning, SeverityLow: events.SeverityNotice,
}

var findingType = map[string]events.Type{
	KindAdded: events.TypeIntegrityAdded, KindRemoved: events.TypeIntegrityRemoved,
	KindChanged: events.TypeIntegrityChanged, KindRestored: events.TypeIntegrityRestored,
}

// handle turns a watch event into an event of the bus.
func (s *Service) handle(ctx context.Context, ev WatchEvent) {
	switch ev.Kind {
	case KindAccepted:
		// An accept folded the path into the baseline: it is audited
		// (who, which paths, how many changes), not an event per path.
		if ev.Finding != nil {
			s.mu.Lock()
			s.forget(ev.Path)
			s.status.Differences, s.status.High = s.counts()
			s.mu.Unlock()
		}
	case KindWarning:
		s.publish(ctx, events.Event{Type: events.TypeIntegrityWarning, Severity: events.SeverityWarning, Message: events.OneLine(ev.Message)})
	case KindScan:
		s.mu.Lock()
		sum := *ev.Scan
		s.status.LastScan, s.status.LastScanAt = &sum, ev.Time
		d, high := s.counts()
		s.mu.Unlock()
		s.publish(ctx, events.Event{Type: events.TypeIntegrityScanCompleted, Severity: events.SeverityInfo, Time: ev.Time,
			Message: fmt.Sprintf("integrity scan (%s): %d entries in %.1fs, %d differ from the baseline (%d high), %d directories watched",
				sum.Reason, sum.Entries, sum.Seconds, d, high, sum.Watches),
			Data: map[string]any{"reason": sum.Reason, "entries": sum.Entries, "errors": sum.Errors, "seconds": sum.Seconds,
				"differences": d, "high": high, "watches": sum.Watches}})
	default:
		typ, ok := findingType[ev.Kind]
		if !ok || ev.Finding == nil {
			return
		}
		f := ev.Finding
		s.mu.Lock()
		if ev.Kind == KindRestored {
			s.forget(f.Path)
		} else {
			s.remember(ev)
		}
		s.status.Differences, s.status.High = s.counts()
		s.mu.Unlock()
		sev := eventSeverity[f.Severity]
		if ev.Kind == KindRestored {
			sev = events.SeverityInfo
		}
		msg := ev.Kind + " " + f.Path
		if len(f.Attributes) > 0 {
			msg += " (" + strings.Join(f.Attributes, ", ") + ")"
		}
		if len(f.Reasons) > 0 {
			msg += " [high: " + strings.Join(f.Reasons, "; ") + "]"
		}
		data := map[string]any{"kind": ev.Kind, "path": f.Path, "type": f.Type, "severity": f.Severity, "source": ev.Source}
		if f.Package != "" {
			data["package"], data["expected"] = f.Package, f.Expected
		}
		if len(f.Reasons) > 0 {
			data["reasons"] = f.Reasons
		}
		if len(f.Changes) > 0 {
			ch := make([]map[string]string, 0, len(f.Changes))
			for _, c := range f.Changes {
				ch = append(ch, map[string]string{"attribute": c.Attribute, "old": clip(c.Old), "new": clip(c.New)})
			}
			data["changes"] = ch
		}
		if ev.DelayMS != nil {
			data["delay_ms"] = *ev.DelayMS
		}
		s.publish(ctx, events.Event{Type: typ, Severity: sev, Time: ev.Time, Resource: resource("file", f.Path),
			Message: events.OneLine(msg), Data: data})
	}
}

// counts returns how many paths differ, and how many of them are high.
// s.mu is held.
func (s *Service) counts() (int, int) {
	high := 0
	for _, d := range s.differ {
		if d.severity == SeverityHigh {
			high++
		}
	}
	return len(s.differ), high
}

// remember keeps the finding of ev as its path's last. s.mu is held.
func (s *Service) remember(ev WatchEvent) {
	f := ev.Finding
	d := s.differ[f.Path]
	if d == nil {
		d = &differing{}
		s.differ[f.Path] = d
	}
	d.kind, d.severity, d.source, d.state, d.time = ev.Kind, f.Severity, ev.Source, ev.state, ev.Time
	if d.f == nil && s.detailed >= MaxFindingDetails {
		return
	}
	if d.f == nil {
		s.detailed++
	}
	// The changes' old and new values (up to 64 KiB each) are in the
	// event; what is kept here is a few names.
	d.f = &Finding{Path: f.Path, Type: f.Type, Attributes: slices.Clone(f.Attributes), Severity: f.Severity,
		Reasons: slices.Clone(f.Reasons), Package: f.Package, Expected: f.Expected}
}

// forget drops path from what differs. s.mu is held.
func (s *Service) forget(path string) {
	if d, ok := s.differ[path]; ok {
		if d.f != nil {
			s.detailed--
		}
		delete(s.differ, path)
	}
}

// clip keeps an attribute's value within 1 KiB in an event (an extended
// attribute can be 64 KiB; the baseline and check have it whole).
func clip(v string) string {
	if len(v) <= 1024 {
		return v
	}
	return v[:1024] + "..."
}

// resource names a path as an event's resource ("file/etc/passwd"): one
// line of valid UTF-8 within the events' limit.
func resource(kind, path string) string {
	r := events.OneLine(kind + path)
	if len(r) > events.MaxResourceBytes {
		r = strings.ToValidUTF8(r[:events.MaxResourceBytes-3], "") + "..."
	}
	return r
}

func (s *Service) publish(ctx context.Context, e events.Event) {
	e.Module, e.Actor = events.ModuleIntegrity, actor
	if s.Bus == nil {
		return
	}
	if _, err := s.Bus.Publish(ctx, e); err != nil && ctx.Err() == nil && s.Logger != nil {
		s.Logger.Warn("integrity: publish event", "type", string(e.Type), "err", err)
	}
}
