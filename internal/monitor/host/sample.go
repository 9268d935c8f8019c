package host

// The sample: what Collector.Sample returns, in JSON with snake_case names.

import (
	"time"
)

// Sample is one reading of the host. Rates (busy_percent) compare it with
// the previous sample the same Collector took and are null on the first.
type Sample struct {
	// Time is when the sample was taken (Options.Now).
	Time   time.Time `json:"time"`
	CPU    CPU       `json:"cpu"`
	Load   Load      `json:"load"`
	Memory Memory    `json:"memory"`
	Swap   Swap      `json:"swap"`
	// MemInfo is every /proc/meminfo field, under node_exporter's names.
	MemInfo     []MemInfoField `json:"meminfo"`
	Filesystems []Filesystem   `json:"filesystems"`
	Disks       []Disk         `json:"disks"`
	Network     []NetInterface `json:"network"`
	Clock       Clock          `json:"clock"`
	Kernel      Kernel         `json:"kernel"`
	Processes   Processes      `json:"processes"`
	// Named are the Options.Processes, in that order.
	Named []NamedProcess `json:"named_processes"`
	// SMART is set when Options.SMART is. It is shared with other samples
	// until the next refresh: treat it as read-only.
	SMART *SMART `json:"smart,omitempty"`
	// Updates is set when Options.Updates is. It is shared with other
	// samples until the next refresh: treat it as read-only.
	Updates *Updates `json:"updates,omitempty"`
	Uname   Uname    `json:"uname"`
}

// CPU is processor time.
type CPU struct {
	// Count is the number of online CPUs.
	Count int `json:"count"`
	// BusyPercent is the share of time all CPUs spent in anything but idle
	// and iowait since the previous sample; null on the first.
	BusyPercent *float64 `json:"busy_percent"`
	// Total sums all CPUs (CPU is -1).
	Total CPUTimes `json:"total"`
	// PerCPU has one entry per online CPU.
	PerCPU []CPUTimes `json:"per_cpu"`
	// Throttles are thermal throttling counts, where the CPU reports them.
	Throttles []Throttle `json:"throttles,omitempty"`
	// Isolated lists the CPUs isolated from the scheduler (isolcpus=).
	Isolated []int `json:"isolated,omitempty"`
}

// Throttle is how many times a CPU core (Core >= 0) or a whole package
// (Core == -1) was thermally throttled.
type Throttle struct {
	Package int    `json:"package"`
	Core    int    `json:"core"`
	Count   uint64 `json:"count"`
}

// Memory is RAM use. Used is Total minus Available: what the kernel could
// not hand to a new program without swapping.
type Memory struct {
	TotalBytes     uint64  `json:"total_bytes"`
	FreeBytes      uint64  `json:"free_bytes"`
	AvailableBytes uint64  `json:"available_bytes"`
	BuffersBytes   uint64  `json:"buffers_bytes"`
	CachedBytes    uint64  `json:"cached_bytes"`
	UsedBytes      uint64  `json:"used_bytes"`
	UsedPercent    float64 `json:"used_percent"`
}

// Swap is swap space use; UsedPercent is 0 without swap.
type Swap struct {
	TotalBytes  uint64  `json:"total_bytes"`
	FreeBytes   uint64  `json:"free_bytes"`
	UsedPercent float64 `json:"used_percent"`
}

// Filesystem is one mounted filesystem. UsedPercent is computed as df(1)
// does, used / (used + available to non-root users).
type Filesystem struct {
	Device            string  `json:"device"`
	MountPoint        string  `json:"mountpoint"`
	FSType            string  `json:"fstype"`
	SizeBytes         uint64  `json:"size_bytes"`
	FreeBytes         uint64  `json:"free_bytes"`
	AvailBytes        uint64  `json:"avail_bytes"`
	Files             uint64  `json:"files"`
	FilesFree         uint64  `json:"files_free"`
	UsedPercent       float64 `json:"used_percent"`
	InodesUsedPercent float64 `json:"inodes_used_percent"`
	ReadOnly          bool    `json:"readonly"`
	// Error is why statfs failed (the sizes are then zero).
	Error string `json:"error,omitempty"`
}

// Disk is one block device's I/O counters since boot. The discard and
// flush counters exist since kernels 4.18 and 5.5.
type Disk struct {
	Device                string  `json:"device"`
	Major                 uint32  `json:"major"`
	Minor                 uint32  `json:"minor"`
	ReadsCompleted        uint64  `json:"reads_completed"`
	ReadsMerged           uint64  `json:"reads_merged"`
	ReadBytes             uint64  `json:"read_bytes"`
	ReadTimeSeconds       float64 `json:"read_time_seconds"`
	WritesCompleted       uint64  `json:"writes_completed"`
	WritesMerged          uint64  `json:"writes_merged"`
	WrittenBytes          uint64  `json:"written_bytes"`
	WriteTimeSeconds      float64 `json:"write_time_seconds"`
	InProgress            uint64  `json:"in_progress"`
	IOTimeSeconds         float64 `json:"io_time_seconds"`
	IOTimeWeightedSeconds float64 `json:"io_time_weighted_seconds"`
	DiscardsCompleted     uint64  `json:"discards_completed"`
	DiscardsMerged        uint64  `json:"discards_merged"`
	DiscardedSectors      uint64  `json:"discarded_sectors"`
	DiscardTimeSeconds    float64 `json:"discard_time_seconds"`
	FlushRequests         uint64  `json:"flush_requests"`
	FlushTimeSeconds      float64 `json:"flush_time_seconds"`
	// Model, Serial, Path, WWN and Revision come from udev when it runs.
	Model    string `json:"model,omitempty"`
	Serial   string `json:"serial,omitempty"`
	Path     string `json:"path,omitempty"`
	WWN      string `json:"wwn,omitempty"`
	Revision string `json:"revision,omitempty"`

	// counters is how many /proc/diskstats counters the kernel printed.
	counters int
	udev     map[string]string
}

// NetInterface is one network interface's counters since boot, as in
// /proc/net/dev. RxNoHandler is null where sysfs lacks it.
type NetInterface struct {
	Device       string  `json:"device"`
	RxBytes      uint64  `json:"rx_bytes"`
	RxPackets    uint64  `json:"rx_packets"`
	RxErrs       uint64  `json:"rx_errs"`
	RxDrop       uint64  `json:"rx_drop"`
	RxFIFO       uint64  `json:"rx_fifo"`
	RxFrame      uint64  `json:"rx_frame"`
	RxCompressed uint64  `json:"rx_compressed"`
	RxMulticast  uint64  `json:"rx_multicast"`
	RxNoHandler  *uint64 `json:"rx_nohandler"`
	TxBytes      uint64  `json:"tx_bytes"`
	TxPackets    uint64  `json:"tx_packets"`
	TxErrs       uint64  `json:"tx_errs"`
	TxDrop       uint64  `json:"tx_drop"`
	TxFIFO       uint64  `json:"tx_fifo"`
	TxColls      uint64  `json:"tx_colls"`
	TxCarrier    uint64  `json:"tx_carrier"`
	TxCompressed uint64  `json:"tx_compressed"`
}

// Clock is the system clock and its discipline.
type Clock struct {
	// Time is the system time when the sample was taken.
	Time time.Time `json:"time"`
	// OffsetSeconds is the offset between the system clock and its
	// reference that the kernel is still correcting (adjtimex).
	OffsetSeconds float64 `json:"offset_seconds"`
	// Synchronised is false when the kernel reports TIME_ERROR: no NTP or
	// PTP daemon keeps the clock synchronised.
	Synchronised bool      `json:"synchronised"`
	BootTime     time.Time `json:"boot_time"`
	// UptimeSeconds is the time since boot, from /proc/uptime.
	UptimeSeconds float64 `json:"uptime_seconds"`
	TimeZone      string  `json:"time_zone"`
	// TimeZoneOffsetSeconds is east of UTC.
	TimeZoneOffsetSeconds int `json:"time_zone_offset_seconds"`
	// ClockSource is the kernel's current clocksource, e.g. tsc.
	ClockSource string `json:"clocksource"`
	// Timex is the rest of what adjtimex reports.
	Timex Timex `json:"timex"`

	clocksources []clocksource
}

type clocksource struct {
	available []string
	current   string
}

// Timex is adjtimex(2)'s reading, in node_exporter's units.
type Timex struct {
	// State is the clock state returned by adjtimex (5 is TIME_ERROR).
	State                 int     `json:"state"`
	Status                int32   `json:"status"`
	FrequencyAdjustment   float64 `json:"frequency_adjustment_ratio"`
	MaxErrorSeconds       float64 `json:"maxerror_seconds"`
	EstimatedErrorSeconds float64 `json:"estimated_error_seconds"`
	LoopTimeConstant      int64   `json:"loop_time_constant"`
	TickSeconds           float64 `json:"tick_seconds"`
	PPSFrequencyHertz     float64 `json:"pps_frequency_hertz"`
	PPSJitterSeconds      float64 `json:"pps_jitter_seconds"`
	PPSShiftSeconds       int32   `json:"pps_shift_seconds"`
	PPSStabilityHertz     float64 `json:"pps_stability_hertz"`
	PPSJitterCount        int64   `json:"pps_jitter_count"`
	PPSCalibrationCount   int64   `json:"pps_calibration_count"`
	PPSErrorCount         int64   `json:"pps_error_count"`
	PPSStabilityExceeded  int64   `json:"pps_stability_exceeded_count"`
	TAIOffsetSeconds      int32   `json:"tai_offset_seconds"`
}

// Kernel holds the scheduler's counters from /proc/stat.
type Kernel struct {
	ContextSwitches uint64 `json:"context_switches"`
	Forks           uint64 `json:"forks"`
	Interrupts      uint64 `json:"interrupts"`
}

// Processes counts processes. Running and Blocked come from /proc/stat
// (runnable and in uninterruptible I/O wait); the rest from /proc/PID.
type Processes struct {
	Running uint64 `json:"running"`
	Blocked uint64 `json:"blocked"`
	// Total is the number of processes (thread group leaders).
	Total   int `json:"total"`
	Threads int `json:"threads"`
	// ByState counts processes per state letter of /proc/PID/stat (R, S,
	// D, Z, T, I...).
	ByState map[string]int `json:"by_state"`
	// MaxProcesses and MaxThreads are the kernel's limits (pid_max,
	// threads-max).
	MaxProcesses uint64 `json:"max_processes"`
	MaxThreads   uint64 `json:"max_threads"`
}

// NamedProcess is one of Options.Processes.
type NamedProcess struct {
	Name string `json:"name"`
	// Up is how many processes of that name run.
	Up int `json:"up"`
	// PIDs are their process IDs, ascending.
	PIDs []int `json:"pids"`
	// Restarts counts restarts since the collector started (see the
	// package documentation for the exact rule).
	Restarts uint64 `json:"restarts"`
}

// Uname is uname(2)'s answer.
type Uname struct {
	SysName    string `json:"sysname"`
	Release    string `json:"release"`
	Version    string `json:"version"`
	Machine    string `json:"machine"`
	NodeName   string `json:"nodename"`
	DomainName string `json:"domainname"`
}

// SectionError is the failure of one part of a sample (one file or
// system call); the other parts are still reported.
type SectionError struct {
	// Section is the part that failed: cpu, meminfo, loadavg, uptime,
	// filesystem, diskstats, netdev, timex, uname, processes, clocksource
	// or throttle.
	Section string
	Err     error
}

// Error names the section and the cause.
func (e *SectionError) Error() string { return e.Section + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *SectionError) Unwrap() error { return e.Err }
