package host

// Reading the host: each read* method fills one part of a sample from
// procfs, sysfs or a system call.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// procFile and sysFile join a path under the configured roots.
func (c *Collector) procFile(elem ...string) string {
	return filepath.Join(append([]string{c.o.ProcPath}, elem...)...)
}

func (c *Collector) sysFile(elem ...string) string {
	return filepath.Join(append([]string{c.o.SysPath}, elem...)...)
}

// read reads a whole file into the collector's buffer; the result is valid
// until the next read.
func (c *Collector) read(path string) ([]byte, error) {
	b, err := readInto(path, c.buf)
	c.buf = b[:0]
	return b, err
}

// readInto reads the file at path into buf, growing it as needed. procfs
// and sysfs files report a size of 0, so it reads until EOF. It uses the
// system calls directly: an *os.File per read would cost allocations, a
// finalizer and a poller registration attempt for nothing.
func readInto(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return buf[:0], &fs.PathError{Op: "open", Path: path, Err: err}
	}
	buf = buf[:0]
	if cap(buf) == 0 {
		buf = make([]byte, 0, 4096)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// The read error is the one to report; closing a read-only
			// descriptor cannot lose data.
			_ = unix.Close(fd)
			return buf, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n <= 0 {
			break
		}
		buf = buf[:len(buf)+n]
	}
	if err := unix.Close(fd); err != nil {
		return buf, &fs.PathError{Op: "close", Path: path, Err: err}
	}
	return buf, nil
}

// lookupStatic reads what the kernel fixes at boot.
func (c *Collector) lookupStatic() {
	// Clocksource devices, in the order sysfs globbing gives (the device
	// label is the index, as in procfs's ClockSources).
	if m, err := filepath.Glob(c.sysFile("devices/system/clocksource/clocksource[0-9]*")); err == nil {
		c.clocksources = m
	}
	c.throttleCPUs = c.findThrottleCPUs()
	if data, err := c.read(c.sysFile("devices/system/cpu/isolated")); err == nil {
		c.isolated = parseCPUList(bytes.TrimSpace(data))
	}
	if st, err := os.Stat(c.o.UdevDataPath); err == nil && st.IsDir() {
		c.udev = true
	}
}

// parseCPUList parses the kernel's CPU list format ("0-3,8,10-11").
// Malformed parts are skipped: the list only labels metrics.
func parseCPUList(b []byte) []int {
	var cpus []int
	for _, part := range bytes.Split(b, []byte(",")) {
		lo, hi, isRange := bytes.Cut(part, []byte("-"))
		a, ok := parseUint(lo)
		if !ok {
			continue
		}
		z := a
		if isRange {
			if z, ok = parseUint(hi); !ok || z < a || z-a > 1<<16 {
				continue
			}
		}
		for i := a; i <= z; i++ {
			cpus = append(cpus, int(i))
		}
	}
	return cpus
}

// jumpBackSeconds is how far a CPU's idle time may go backwards before the
// CPU is taken to have been unplugged and replugged (node_exporter's rule).
const jumpBackSeconds = 3.0

func (c *Collector) readCPU(s *Sample) error {
	data, err := c.read(c.procFile("stat"))
	if err != nil {
		return err
	}
	if err := parseStat(c.procFile("stat"), data, &c.stat); err != nil {
		return err
	}
	st := &c.stat
	s.Kernel = Kernel{ContextSwitches: st.contextSwitches, Forks: st.forks, Interrupts: st.intr}
	s.Processes.Running, s.Processes.Blocked = st.procsRunning, st.procsBlocked
	s.Clock.BootTime = time.Unix(int64(min(st.bootTime, 1<<62)), 0).UTC()
	s.CPU.Count = len(st.cpus)
	s.CPU.Total = st.all
	s.CPU.Isolated = c.isolated
	// Counters of some kernels go backwards a little (iowait notably);
	// like node_exporter, report each counter's highest value so that rate()
	// never sees a reset, unless idle fell by more than jumpBackSeconds.
	s.CPU.PerCPU = make([]CPUTimes, len(st.cpus))
	for i, n := range st.cpus {
		m, ok := c.cpuMax[n.CPU]
		if !ok || m.Idle-n.Idle >= jumpBackSeconds {
			m = n
		}
		m.User = max(m.User, n.User)
		m.Nice = max(m.Nice, n.Nice)
		m.System = max(m.System, n.System)
		m.Idle = max(m.Idle, n.Idle)
		m.Iowait = max(m.Iowait, n.Iowait)
		m.IRQ = max(m.IRQ, n.IRQ)
		m.SoftIRQ = max(m.SoftIRQ, n.SoftIRQ)
		m.Steal = max(m.Steal, n.Steal)
		m.Guest = max(m.Guest, n.Guest)
		m.GuestNice = max(m.GuestNice, n.GuestNice)
		c.cpuMax[n.CPU] = m
		s.CPU.PerCPU[i] = m
	}
	// busy_percent compares the sums of the per-CPU counters, which never
	// go backwards, so each mode's delta is non-negative and the share lies
	// in [0, 100]. After a hotplug reset the deltas mean nothing: null.
	var sum CPUTimes
	for _, t := range s.CPU.PerCPU {
		sum.User += t.User
		sum.Nice += t.Nice
		sum.System += t.System
		sum.Idle += t.Idle
		sum.Iowait += t.Iowait
		sum.IRQ += t.IRQ
		sum.SoftIRQ += t.SoftIRQ
		sum.Steal += t.Steal
	}
	if p := c.prevSum; p != nil {
		dt := sum.total() - p.total()
		didle := (sum.Idle + sum.Iowait) - (p.Idle + p.Iowait)
		if dt > 0 && didle >= 0 && didle <= dt {
			busy := 100 * (dt - didle) / dt
			s.CPU.BusyPercent = &busy
		}
	}
	c.prevSum = &sum
	return nil
}

// meminfo fields the Memory and Swap summaries use.
var meminfoSummary = map[string]func(s *Sample, v uint64){
	"MemTotal_bytes":     func(s *Sample, v uint64) { s.Memory.TotalBytes = v },
	"MemFree_bytes":      func(s *Sample, v uint64) { s.Memory.FreeBytes = v },
	"MemAvailable_bytes": func(s *Sample, v uint64) { s.Memory.AvailableBytes = v },
	"Buffers_bytes":      func(s *Sample, v uint64) { s.Memory.BuffersBytes = v },
	"Cached_bytes":       func(s *Sample, v uint64) { s.Memory.CachedBytes = v },
	"SwapTotal_bytes":    func(s *Sample, v uint64) { s.Swap.TotalBytes = v },
	"SwapFree_bytes":     func(s *Sample, v uint64) { s.Swap.FreeBytes = v },
}

func (c *Collector) readMeminfo(s *Sample) error {
	data, err := c.read(c.procFile("meminfo"))
	if err != nil {
		return err
	}
	c.memRaw, err = parseMeminfo(c.procFile("meminfo"), data, c.memNames, c.memRaw)
	if err != nil {
		return err
	}
	s.MemInfo = append([]MemInfoField(nil), c.memRaw...)
	var sawAvailable bool
	for _, f := range s.MemInfo {
		if set, ok := meminfoSummary[f.Name]; ok {
			set(s, uint64(f.Value))
			sawAvailable = sawAvailable || f.Name == "MemAvailable_bytes"
		}
	}
	m := &s.Memory
	if !sawAvailable {
		// Kernels before 3.14: the old approximation.
		m.AvailableBytes = m.FreeBytes + m.BuffersBytes + m.CachedBytes
	}
	if m.TotalBytes > 0 {
		m.UsedBytes = m.TotalBytes - min(m.AvailableBytes, m.TotalBytes)
		m.UsedPercent = 100 * float64(m.UsedBytes) / float64(m.TotalBytes)
	}
	if w := &s.Swap; w.TotalBytes > 0 {
		w.UsedPercent = 100 * float64(w.TotalBytes-min(w.FreeBytes, w.TotalBytes)) / float64(w.TotalBytes)
	}
	return nil
}

func (c *Collector) readLoad(s *Sample) error {
	data, err := c.read(c.procFile("loadavg"))
	if err != nil {
		return err
	}
	s.Load, err = parseLoadavg(c.procFile("loadavg"), data)
	return err
}

func (c *Collector) readUptime(s *Sample) error {
	data, err := c.read(c.procFile("uptime"))
	if err != nil {
		return err
	}
	s.Clock.UptimeSeconds, err = parseUptime(c.procFile("uptime"), data)
	return err
}

// unixSectorSize is the unit of /proc/diskstats' sector counts, whatever
// the device's own sector size.
const unixSectorSize = 512

// udevKeys are the udev properties the disk metrics use.
var udevKeys = map[string]bool{
	"ID_PATH": true, "ID_WWN": true, "ID_MODEL": true, "ID_SERIAL_SHORT": true, "ID_REVISION": true,
	"ID_FS_TYPE": true, "ID_FS_USAGE": true, "ID_FS_UUID": true, "ID_FS_VERSION": true,
	"DM_NAME": true, "DM_UUID": true, "DM_VG_NAME": true, "DM_LV_NAME": true, "DM_LV_LAYER": true,
	"ID_ATA": true, "ID_ATA_WRITE_CACHE": true, "ID_ATA_WRITE_CACHE_ENABLED": true, "ID_ATA_ROTATION_RATE_RPM": true,
}

func (c *Collector) readDisks(s *Sample) error {
	file := c.procFile("diskstats")
	data, err := c.read(file)
	if err != nil {
		return err
	}
	c.diskRaw, err = parseDiskstats(file, data, c.names, c.diskRaw)
	if err != nil {
		return err
	}
	for _, d := range c.diskRaw {
		skip, ok := c.diskSkip[d.name]
		if !ok {
			skip = c.o.DiskDevicesExclude.MatchString(d.name)
			c.diskSkip[d.name] = skip
		}
		if skip {
			continue
		}
		v := &d.val
		const ms = 1.0 / 1000
		disk := Disk{
			Device: d.name, Major: d.major, Minor: d.minor, counters: d.n,
			ReadsCompleted: v[0], ReadsMerged: v[1], ReadBytes: v[2] * unixSectorSize, ReadTimeSeconds: float64(v[3]) * ms,
			WritesCompleted: v[4], WritesMerged: v[5], WrittenBytes: v[6] * unixSectorSize, WriteTimeSeconds: float64(v[7]) * ms,
			InProgress: v[8], IOTimeSeconds: float64(v[9]) * ms, IOTimeWeightedSeconds: float64(v[10]) * ms,
			DiscardsCompleted: v[11], DiscardsMerged: v[12], DiscardedSectors: v[13], DiscardTimeSeconds: float64(v[14]) * ms,
			FlushRequests: v[15], FlushTimeSeconds: float64(v[16]) * ms,
		}
		if c.udev {
			path := filepath.Join(c.o.UdevDataPath, "b"+strconv.FormatUint(uint64(d.major), 10)+":"+strconv.FormatUint(uint64(d.minor), 10))
			if data, err := c.read(path); err == nil {
				disk.udev = parseUdev(data, func(k string) bool { return udevKeys[k] })
				disk.Model, disk.Path, disk.WWN = disk.udev["ID_MODEL"], disk.udev["ID_PATH"], disk.udev["ID_WWN"]
				disk.Serial, disk.Revision = disk.udev["ID_SERIAL_SHORT"], disk.udev["ID_REVISION"]
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		s.Disks = append(s.Disks, disk)
	}
	return nil
}

func (c *Collector) readNet(s *Sample) error {
	file := c.procFile("net/dev")
	data, err := c.read(file)
	if err != nil {
		return err
	}
	c.netRaw, err = parseNetDev(file, data, c.names, c.netRaw)
	if err != nil {
		return err
	}
	for _, n := range c.netRaw {
		skip, ok := c.netSkip[n.name]
		if !ok {
			skip = c.o.NetDevicesExclude.MatchString(n.name)
			c.netSkip[n.name] = skip
		}
		if skip {
			continue
		}
		v := &n.val
		ni := NetInterface{
			Device:  n.name,
			RxBytes: v[0], RxPackets: v[1], RxErrs: v[2], RxDrop: v[3], RxFIFO: v[4], RxFrame: v[5], RxCompressed: v[6], RxMulticast: v[7],
			TxBytes: v[8], TxPackets: v[9], TxErrs: v[10], TxDrop: v[11], TxFIFO: v[12], TxColls: v[13], TxCarrier: v[14], TxCompressed: v[15],
		}
		// node_exporter reads interfaces through netlink, which also has
		// rx_nohandler; sysfs has the same counter.
		path := c.sysFile("class/net", n.name, "statistics/rx_nohandler")
		if data, err := c.read(path); err == nil {
			nh, ok := parseUint(bytes.TrimSpace(data))
			if !ok {
				return parseErr(path, 1, "invalid counter %q", clip(data))
			}
			ni.RxNoHandler = &nh
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		s.Network = append(s.Network, ni)
	}
	return nil
}

func (c *Collector) readClocksources(s *Sample) error {
	for _, dir := range c.clocksources {
		var cs clocksource
		data, err := c.read(filepath.Join(dir, "available_clocksource"))
		if err != nil {
			return err
		}
		for _, f := range bytes.Fields(data) {
			cs.available = append(cs.available, c.names.get(f))
		}
		data, err = c.read(filepath.Join(dir, "current_clocksource"))
		if err != nil {
			return err
		}
		cs.current = c.names.get(bytes.TrimSpace(data))
		s.Clock.clocksources = append(s.Clock.clocksources, cs)
	}
	if len(s.Clock.clocksources) > 0 {
		s.Clock.ClockSource = s.Clock.clocksources[0].current
	}
	return nil
}

// timeError is adjtimex's TIME_ERROR state: the clock is not synchronised.
const timeError = 5

// staNano is the timex status bit saying offsets are in nanoseconds.
const staNano = 0x2000

// ppm16frac converts adjtimex's scaled parts-per-million (16-bit fraction).
const ppm16frac = 1000000.0 * 65536.0

// readTimex reads the kernel's clock discipline. Modes is zero, so the
// call changes nothing and needs no privilege.
func readTimex(clock *Clock) error {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return fmt.Errorf("adjtimex: %w", err)
	}
	div := 1e6
	if tx.Status&staNano != 0 {
		div = 1e9
	}
	clock.OffsetSeconds = float64(tx.Offset) / div
	clock.Synchronised = state != timeError
	clock.Timex = Timex{
		State:                 state,
		Status:                tx.Status,
		FrequencyAdjustment:   1 + float64(tx.Freq)/ppm16frac,
		MaxErrorSeconds:       float64(tx.Maxerror) / 1e6,
		EstimatedErrorSeconds: float64(tx.Esterror) / 1e6,
		LoopTimeConstant:      int64(tx.Constant),
		TickSeconds:           float64(tx.Tick) / 1e6,
		PPSFrequencyHertz:     float64(tx.Ppsfreq) / ppm16frac,
		PPSJitterSeconds:      float64(tx.Jitter) / div,
		PPSShiftSeconds:       tx.Shift,
		PPSStabilityHertz:     float64(tx.Stabil) / ppm16frac,
		PPSJitterCount:        int64(tx.Jitcnt),
		PPSCalibrationCount:   int64(tx.Calcnt),
		PPSErrorCount:         int64(tx.Errcnt),
		PPSStabilityExceeded:  int64(tx.Stbcnt),
		TAIOffsetSeconds:      tx.Tai,
	}
	return nil
}

func readUname(u *Uname) error {
	var un unix.Utsname
	if err := unix.Uname(&un); err != nil {
		return fmt.Errorf("uname: %w", err)
	}
	str := func(b []byte) string {
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
		return string(b)
	}
	*u = Uname{
		SysName: str(un.Sysname[:]), Release: str(un.Release[:]), Version: str(un.Version[:]),
		Machine: str(un.Machine[:]), NodeName: str(un.Nodename[:]), DomainName: str(un.Domainname[:]),
	}
	return nil
}

// throttleCPU is a CPU directory with thermal_throttle counters.
type throttleCPU struct {
	dir         string
	pkg, core   int
	readCore    bool // first CPU of its core with the counter
	readPackage bool // first CPU of its package with the counter
}

// findThrottleCPUs walks /sys/devices/system/cpu/cpuN once, keeping the
// CPUs that expose thermal_throttle counters, one per core and package.
func (c *Collector) findThrottleCPUs() []throttleCPU {
	dirs, err := filepath.Glob(c.sysFile("devices/system/cpu/cpu[0-9]*"))
	if err != nil {
		return nil
	}
	var out []throttleCPU
	seenCore := map[[2]int]bool{}
	seenPkg := map[int]bool{}
	for _, dir := range dirs {
		read := func(name string) (int, bool) {
			data, err := c.read(filepath.Join(dir, name))
			if err != nil {
				return 0, false
			}
			v, ok := parseUint(bytes.TrimSpace(data))
			return int(min(v, 1<<31-1)), ok
		}
		pkg, ok1 := read("topology/physical_package_id")
		core, ok2 := read("topology/core_id")
		if !ok1 || !ok2 {
			continue
		}
		t := throttleCPU{dir: dir, pkg: pkg, core: core}
		if _, err := os.Stat(filepath.Join(dir, "thermal_throttle/core_throttle_count")); err == nil && !seenCore[[2]int{pkg, core}] {
			t.readCore = true
			seenCore[[2]int{pkg, core}] = true
		}
		if _, err := os.Stat(filepath.Join(dir, "thermal_throttle/package_throttle_count")); err == nil && !seenPkg[pkg] {
			t.readPackage = true
			seenPkg[pkg] = true
		}
		if t.readCore || t.readPackage {
			out = append(out, t)
		}
	}
	return out
}

func (c *Collector) readThrottles(s *Sample) error {
	for _, t := range c.throttleCPUs {
		for _, kind := range []struct {
			on   bool
			file string
			core int
		}{{t.readCore, "thermal_throttle/core_throttle_count", t.core}, {t.readPackage, "thermal_throttle/package_throttle_count", -1}} {
			if !kind.on {
				continue
			}
			path := filepath.Join(t.dir, kind.file)
			data, err := c.read(path)
			if err != nil {
				return err
			}
			v, ok := parseUint(bytes.TrimSpace(data))
			if !ok {
				return parseErr(path, 1, "invalid counter %q", clip(data))
			}
			s.CPU.Throttles = append(s.CPU.Throttles, Throttle{Package: t.pkg, Core: kind.core, Count: v})
		}
	}
	return nil
}

// readFilesystems statfs'es every mount point that is not excluded.
func (c *Collector) readFilesystems(ctx context.Context, s *Sample) error {
	file := c.procFile("1/mounts")
	data, err := c.read(file)
	if errors.Is(err, fs.ErrNotExist) {
		// PID 1 hidden (hidepid) or a fixture without it.
		file = c.procFile("mounts")
		data, err = c.read(file)
	}
	if err != nil {
		return err
	}
	c.mountRaw, err = parseMounts(file, data, c.names, c.mountRaw)
	if err != nil {
		return err
	}
	seen := make(map[[3]string]bool, len(c.mountRaw))
	for _, m := range c.mountRaw {
		mp := c.stripRootfs(m.mountPoint)
		if c.o.MountPointsExclude.MatchString(mp) || c.o.FSTypesExclude.MatchString(m.fsType) {
			continue
		}
		key := [3]string{m.device, mp, m.fsType}
		if seen[key] {
			continue
		}
		seen[key] = true
		f := Filesystem{Device: m.device, MountPoint: mp, FSType: m.fsType, ReadOnly: m.readOnly}
		st, err := c.statfs(ctx, filepath.Join(c.o.RootfsPath, mp))
		if err != nil {
			f.Error = err.Error()
			s.Filesystems = append(s.Filesystems, f)
			continue
		}
		bsize := uint64(st.Bsize)
		f.SizeBytes, f.FreeBytes, f.AvailBytes = st.Blocks*bsize, st.Bfree*bsize, st.Bavail*bsize
		f.Files, f.FilesFree = st.Files, st.Ffree
		if used := f.SizeBytes - min(f.FreeBytes, f.SizeBytes); used+f.AvailBytes > 0 {
			f.UsedPercent = 100 * float64(used) / float64(used+f.AvailBytes)
		}
		if f.Files > 0 {
			f.InodesUsedPercent = 100 * float64(f.Files-min(f.FilesFree, f.Files)) / float64(f.Files)
		}
		s.Filesystems = append(s.Filesystems, f)
	}
	return nil
}

// stripRootfs reports a mount point as the host sees it (node_exporter's
// rootfsStripPrefix).
func (c *Collector) stripRootfs(mp string) string {
	if c.o.RootfsPath == "/" {
		return mp
	}
	stripped := strings.TrimPrefix(mp, c.o.RootfsPath)
	if stripped == "" {
		return "/"
	}
	return stripped
}

// errStuck reports a mount point whose earlier statfs has not returned.
var errStuck = errors.New("statfs has not returned (hung mount?); skipped until it does")

// statfs calls statfs(2) with a time limit. A statfs on a hung network
// filesystem may block forever: after MountTimeout the mount point is
// marked stuck and skipped by later samples until the call returns.
func (c *Collector) statfs(ctx context.Context, path string) (unix.Statfs_t, error) {
	c.stuckMu.Lock()
	_, stuck := c.stuck[path]
	c.stuckMu.Unlock()
	if stuck {
		return unix.Statfs_t{}, errStuck
	}
	type result struct {
		st  unix.Statfs_t
		err error
	}
	var done bool // guarded by stuckMu
	ch := make(chan result, 1)
	go func() {
		var r result
		if err := c.statfsFn(path, &r.st); err != nil {
			r.err = fmt.Errorf("statfs %s: %w", path, err)
		}
		c.stuckMu.Lock()
		done = true
		delete(c.stuck, path)
		c.stuckMu.Unlock()
		ch <- r
	}()
	timer := time.NewTimer(c.o.MountTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.st, r.err
	case <-timer.C:
	case <-ctx.Done():
	}
	c.stuckMu.Lock()
	if !done {
		c.stuck[path] = struct{}{}
	}
	c.stuckMu.Unlock()
	return unix.Statfs_t{}, fmt.Errorf("statfs %s: no answer within %v", path, c.o.MountTimeout)
}
