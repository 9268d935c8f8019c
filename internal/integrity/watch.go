package integrity

import "time"

// WatchEvent is what Watch reports: a path that came to differ from the
// baseline (added, removed, changed), one that went back to what the
// baseline holds (restored), a finished full scan (scan), or a problem
// that does not stop watching (warning).
type WatchEvent struct {
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	*Finding
	// Source says what found a difference: inotify (an event of the
	// kernel, seconds after the change at most) or scan (a full scan: at
	// the start, after the kernel's event queue overflowed, on schedule);
	// accept when a path still differs from a baseline an accept replaced.
	Source string `json:"source,omitempty"`
	// DelayMS is how long after the change (the entry's ctime, or its
	// mtime when ctime is not recorded) it was reported; inotify findings
	// of entries that exist only.
	DelayMS *float64     `json:"delay_ms,omitempty"`
	Scan    *ScanSummary `json:"scan,omitempty"`
	Message string       `json:"message,omitempty"`
	// state is the token of what an added, removed or changed finding
	// reports (stateOf): an exact accept folds that state only.
	state string
}

// ScanSummary describes one full scan of a watch.
type ScanSummary struct {
	Reason  string  `json:"reason"` // start, overflow, schedule
	Entries int     `json:"entries"`
	Errors  int     `json:"errors"`
	Seconds float64 `json:"seconds"`
	// Differences is how many paths differ from the baseline after the
	// scan (every one has been reported).
	Differences int `json:"differences"`
	// Watches is how many directories the kernel watches.
	Watches int `json:"watches"`
}

// WatchOptions tune Watch.
type WatchOptions struct {
	// Rescan is the period of full scans after the first (default
	// DefaultRescan; negative: none). They catch what inotify cannot see:
	// paths that a rule's glob matches only now, directories beyond the
	// watch limit, changes made while nothing watched.
	Rescan time.Duration
	// Settle is how long events are gathered before they are examined
	// (default 20 ms): a file written in many pieces is hashed once.
	Settle time.Duration
	// Workers hash in parallel (scans, and bursts of events).
	Workers int
	// Events receives every event, in order, from one goroutine.
	Events func(WatchEvent)
	// Packages, when set, explains changes of package files (dpkg.go),
	// and while dpkg runs, changes wait until it is done (at most
	// MaxPackageWait) so that its new checksums judge them. Since is the
	// baseline's time.
	Packages *Packages
	Since    time.Time

	pauseRead <-chan struct{} // tests: events are read once it is closed
	// rebase replaces the baseline being watched (Service.Accept): the
	// watching goroutine takes each request between two examinations.
	rebase <-chan *rebaseRequest
}

// rebaseRequest asks a watch to compare with a new baseline from now on;
// done is closed once it does, every event of the change emitted.
type rebaseRequest struct {
	base  []Entry // sorted by path
	since time.Time
	done  chan struct{}
}

// DefaultRescan is the period of a watch's full scans.
const DefaultRescan = 6 * time.Hour

// MaxPackageWait bounds how long changes wait for a running dpkg: one
// holding its lock longer (or a process faking it) does not hide them.
const MaxPackageWait = 10 * time.Minute

// The kinds of WatchEvent.
const (
	KindAdded    = "added"
	KindRemoved  = "removed"
	KindChanged  = "changed"
	KindRestored = "restored"
	KindScan     = "scan"
	KindWarning  = "warning"
	// KindAccepted is a path that no longer differs because an accept
	// folded it into the baseline being watched (Service.Accept).
	KindAccepted = "accepted"
)

// The reasons of a full scan (ScanSummary.Reason).
const (
	ReasonStart    = "start"    // the first, when watching starts
	ReasonOverflow = "overflow" // the kernel's event queue overflowed
	ReasonSchedule = "schedule" // every WatchOptions.Rescan
)
