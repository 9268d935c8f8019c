// Package host samples the local machine's health for Bulwark's supervision
// capability: CPU, load, memory and swap, filesystems (space and inodes),
// disk and network I/O, the clock, processes, named daemons, disk SMART
// health and pending package updates. It serves them two ways: Sample
// returns one reading as a Go struct (JSON with snake_case names) for
// history, alert rules and the status page, and Collector is a
// prometheus.Collector for /metrics.
//
// # What is read from where
//
// Everything comes from the kernel's text interfaces and two read-only
// system calls, with no cgo and no helper processes:
//
//   - /proc/stat: CPU seconds per CPU and mode, interrupts, context
//     switches, forks, boot time, running and blocked processes;
//   - /proc/loadavg, /proc/uptime, /proc/meminfo (every field);
//   - /proc/1/mounts (or /proc/mounts when PID 1 is hidden) and statfs(2)
//     on each mount point: filesystem size, free space and inodes;
//   - /proc/diskstats, plus udev's /run/udev/data/bMAJ:MIN for the disk's
//     model, serial and path when udev runs;
//   - /proc/net/dev, plus /sys/class/net/DEV/statistics/rx_nohandler;
//   - adjtimex(2) with Modes 0, which only reads: clock offset and whether
//     the kernel considers the clock synchronised; uname(2);
//   - /sys/devices/system/clocksource and the CPUs' thermal_throttle
//     counters and isolated list;
//   - /proc/PID/stat of every process: state, threads and command name
//     (the same task->comm that /proc/PID/comm shows, so one file per
//     process is read instead of two).
//
// The roots are Options.ProcPath, SysPath and RootfsPath, like
// node_exporter's --path.procfs, --path.sysfs and --path.rootfs, so the
// collector can watch a host from a container and tests can point it at
// fixture trees under testdata/.
//
// Only two optional features run programs: `smartctl --json` for SMART
// health (Options.SMART) and `apt-get --just-print dist-upgrade` for
// pending updates (Options.Updates), parsed like node_exporter's apt
// textfile script. When a program is missing the sample says so in plain
// words rather than failing.
//
// # Why node_exporter's names
//
// Prometheus users already have dashboards and alert rules written against
// node_exporter. For every family node_exporter 1.5 also produces from its
// cpu, loadavg, meminfo, filesystem, diskstats, netdev, timex, time, stat,
// uname and (disabled by default) processes collectors, Collector emits the
// same metric name, help text, type and label names, applies the same
// default exclusions (mount points, filesystem types, disk and network
// devices) and the same unit conversions, so those dashboards work
// unchanged. TestMatchesNodeExporter runs Debian's node_exporter next to
// this collector and fails on any family node_exporter emits that this
// package lacks or disagrees with. Families node_exporter does not have are
// prefixed bulwark_, except apt_upgrades_pending, which keeps the name of
// node_exporter's apt textfile script.
//
// # Restarts
//
// A named process (Options.Processes, compared with the command name as
// the kernel truncates it to 15 bytes) is identified by its PID and start
// time, so a recycled PID is a new process. Between two samples the
// collector notes the processes of that name that vanished and those that
// appeared; each vanished process that is matched by a new one, in the same
// interval or any later one, counts as one restart. So a daemon that dies
// and is started again counts one restart, whether it was down for a
// moment or for an hour; a worker that exits and is replaced counts one; a
// pool that only grows counts none; the first sample counts none. Two
// restarts within one sampling interval count as one: the counter is a
// lower bound.
//
// # What is cached
//
// Nothing that changes is cached: every sample re-reads the files above.
// What the kernel fixes at boot (the clocksource and CPU topology
// directories, the isolated CPUs, whether udev data exists) is looked up
// once, exclusion decisions are remembered per device name, names read on
// every sample are interned and one read buffer is reused, so a sample on
// an idle host allocates little beyond the result. The slow optional checks
// are cached: SMART for Options.SMARTEvery (default 10 minutes) and apt for
// Options.UpdatesEvery (default 1 hour); while one refresh runs, concurrent
// samples use the previous result. The collector keeps the previous
// sample's CPU times to report busy_percent, which is null on the first
// sample.
package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Default exclusions, node_exporter 1.5's defaults (Debian's build), so the
// same series exist here and there.
var (
	// DefaultMountPointsExclude is node_exporter's
	// --collector.filesystem.mount-points-exclude.
	DefaultMountPointsExclude = regexp.MustCompile(`^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`)
	// DefaultFSTypesExclude is node_exporter's
	// --collector.filesystem.fs-types-exclude.
	DefaultFSTypesExclude = regexp.MustCompile(`^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$`)
	// DefaultDiskDevicesExclude is node_exporter's
	// --collector.diskstats.device-exclude: partitions, RAM disks, loop
	// and floppy devices.
	DefaultDiskDevicesExclude = regexp.MustCompile(`^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`)
	// DefaultNetDevicesExclude is node_exporter's
	// --collector.netdev.device-exclude: the loopback interface.
	DefaultNetDevicesExclude = regexp.MustCompile(`^lo$`)
)

// Options configures a Collector. The zero value samples the local host
// with node_exporter's defaults and neither SMART nor apt.
type Options struct {
	// ProcPath is where procfs is mounted; default /proc.
	ProcPath string
	// SysPath is where sysfs is mounted; default /sys.
	SysPath string
	// RootfsPath is the host's root filesystem as seen by this process;
	// default /. Mount points are statfs'ed under it and reported without
	// it, as node_exporter's --path.rootfs.
	RootfsPath string
	// UdevDataPath is udev's database; default /run/udev/data.
	UdevDataPath string

	// Processes are command names (as in /proc/PID/comm) whose processes
	// are counted and whose restarts are tracked.
	Processes []string

	// SMART runs smartctl to report each disk's health.
	SMART bool
	// SMARTEvery is how long a SMART reading is reused; default 10m.
	SMARTEvery time.Duration
	// Updates runs apt-get to count pending package updates.
	Updates bool
	// UpdatesEvery is how long an apt reading is reused; default 1h.
	UpdatesEvery time.Duration
	// CommandTimeout bounds one run of smartctl or apt-get; default 2m.
	CommandTimeout time.Duration

	// MountTimeout is how long statfs may block (a hung NFS server) before
	// the mount point is reported with device_error=1 and skipped until
	// that statfs returns; default 5s.
	MountTimeout time.Duration

	// MountPointsExclude, FSTypesExclude, DiskDevicesExclude and
	// NetDevicesExclude replace the Default* exclusions when not nil.
	MountPointsExclude *regexp.Regexp
	FSTypesExclude     *regexp.Regexp
	DiskDevicesExclude *regexp.Regexp
	NetDevicesExclude  *regexp.Regexp

	// Now returns the current time; default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.ProcPath, "/proc")
	def(&o.SysPath, "/sys")
	def(&o.RootfsPath, "/")
	def(&o.UdevDataPath, "/run/udev/data")
	dur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	dur(&o.SMARTEvery, 10*time.Minute)
	dur(&o.UpdatesEvery, time.Hour)
	dur(&o.CommandTimeout, 2*time.Minute)
	dur(&o.MountTimeout, 5*time.Second)
	re := func(r **regexp.Regexp, v *regexp.Regexp) {
		if *r == nil {
			*r = v
		}
	}
	re(&o.MountPointsExclude, DefaultMountPointsExclude)
	re(&o.FSTypesExclude, DefaultFSTypesExclude)
	re(&o.DiskDevicesExclude, DefaultDiskDevicesExclude)
	re(&o.NetDevicesExclude, DefaultNetDevicesExclude)
	if o.Now == nil {
		o.Now = time.Now
	}
	o.RootfsPath = filepath.Clean(o.RootfsPath)
	return o
}

// Collector samples the host. It is safe for concurrent use: samples are
// taken one at a time, and Collect may be called concurrently.
type Collector struct {
	o Options

	// run and lookPath execute smartctl and apt-get, statfsFn is
	// statfs(2); tests replace them.
	run      func(ctx context.Context, name string, args ...string) ([]byte, error)
	lookPath func(file string) (string, error)
	statfsFn func(path string, st *unix.Statfs_t) error

	// mu serialises samples and guards everything below it.
	mu       sync.Mutex
	buf      []byte
	names    interner
	memNames *meminfoNames
	stat     procStat
	memRaw   []MemInfoField
	diskRaw  []diskStat
	netRaw   []netDevStat
	mountRaw []mount
	pids     []int
	// prevSum is the previous sample's per-CPU times summed, for
	// busy_percent.
	prevSum *CPUTimes
	// cpuMax holds per-CPU counters never going backwards (see readCPU).
	cpuMax map[int]CPUTimes
	// diskSkip and netSkip remember the exclusion decision per device.
	diskSkip map[string]bool
	netSkip  map[string]bool
	named    *namedTracker
	// Looked up once, on the first sample.
	once         bool
	clocksources []string
	throttleCPUs []throttleCPU
	isolated     []int
	udev         bool

	// stuckMu guards stuck: mount points whose statfs has not returned.
	stuckMu sync.Mutex
	stuck   map[string]struct{}

	smart   cached[SMART]
	updates cached[Updates]
}

// New returns a Collector for o.
func New(o Options) *Collector {
	o = o.withDefaults()
	return &Collector{
		o:        o,
		run:      runCommand,
		lookPath: exec.LookPath,
		statfsFn: unix.Statfs,
		names:    interner{},
		memNames: newMeminfoNames(),
		cpuMax:   make(map[int]CPUTimes),
		diskSkip: make(map[string]bool),
		netSkip:  make(map[string]bool),
		named:    newNamedTracker(o.Processes),
		stuck:    make(map[string]struct{}),
	}
}

// Sample takes one reading of the host. When some parts cannot be read it
// still returns the sample, with those parts zero, and an error joining a
// *SectionError per failed part (errors.As finds them).
func (c *Collector) Sample(ctx context.Context) (*Sample, error) {
	s, failed := c.sample(ctx)
	if len(failed) == 0 {
		return s, nil
	}
	errs := make([]error, len(failed))
	for i, f := range failed {
		errs[i] = f
	}
	return s, errors.Join(errs...)
}

// sample takes a reading and lists the sections that failed.
func (c *Collector) sample(ctx context.Context) (*Sample, []*SectionError) {
	var failed []*SectionError
	fail := func(section string, err error) {
		failed = append(failed, &SectionError{Section: section, Err: err})
	}
	s := &Sample{}

	c.mu.Lock()
	now := c.o.Now()
	s.Time = now
	if !c.once {
		c.lookupStatic()
		c.once = true
	}
	if err := c.readCPU(s); err != nil {
		fail("cpu", err)
	}
	if err := c.readMeminfo(s); err != nil {
		fail("meminfo", err)
	}
	if err := c.readLoad(s); err != nil {
		fail("loadavg", err)
	}
	if err := c.readUptime(s); err != nil {
		fail("uptime", err)
	}
	if err := c.readFilesystems(ctx, s); err != nil {
		fail("filesystem", err)
	}
	if err := c.readDisks(s); err != nil {
		fail("diskstats", err)
	}
	if err := c.readNet(s); err != nil {
		fail("netdev", err)
	}
	if err := c.readClocksources(s); err != nil {
		fail("clocksource", err)
	}
	if err := c.readThrottles(s); err != nil {
		fail("throttle", err)
	}
	if err := c.readProcesses(s); err != nil {
		fail("processes", err)
	}
	c.mu.Unlock()

	if err := readTimex(&s.Clock); err != nil {
		fail("timex", err)
	}
	s.Clock.Time = now
	s.Clock.TimeZone, s.Clock.TimeZoneOffsetSeconds = now.Zone()
	if err := readUname(&s.Uname); err != nil {
		fail("uname", err)
	}
	if c.o.SMART {
		s.SMART = c.smart.get(ctx, c.o.Now(), c.o.SMARTEvery, c.checkSMART)
	}
	if c.o.Updates {
		s.Updates = c.updates.get(ctx, c.o.Now(), c.o.UpdatesEvery, c.checkUpdates)
	}
	return s, failed
}

// cached holds the result of a slow check for a while. While one caller
// refreshes it, the others get the previous result (or wait for the first).
type cached[T any] struct {
	mu       sync.Mutex
	val      *T
	at       time.Time
	inflight chan struct{}
}

func (c *cached[T]) get(ctx context.Context, now time.Time, every time.Duration, refresh func(context.Context) *T) *T {
	c.mu.Lock()
	if c.val != nil && now.Sub(c.at) < every && !now.Before(c.at) {
		v := c.val
		c.mu.Unlock()
		return v
	}
	if ch := c.inflight; ch != nil {
		v := c.val
		c.mu.Unlock()
		if v != nil {
			return v
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.val
	}
	ch := make(chan struct{})
	c.inflight = ch
	c.mu.Unlock()

	v := refresh(ctx)

	c.mu.Lock()
	c.val, c.at, c.inflight = v, now, nil
	if ctx.Err() != nil {
		c.at = time.Time{} // cut short: try again next time
	}
	c.mu.Unlock()
	close(ch)
	return v
}

// maxCommandOutput bounds what is kept of a command's output.
const maxCommandOutput = 16 << 20

// runCommand runs a program with the C locale (its output is parsed) and
// returns its standard output. A non-zero exit is an error that carries the
// start of standard error; the output is returned as well, since smartctl
// reports disk problems through its exit status.
func runCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	// Do not wait forever for a grandchild that keeps the pipes open.
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = maxCommandOutput, 4096
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
		}
		return stdout.Bytes(), fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return stdout.Bytes(), nil
}

// limitedBuffer keeps at most max bytes and discards the rest.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
