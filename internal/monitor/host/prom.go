package host

// The Prometheus side: node_exporter 1.5's metric names, help texts, types
// and label names for the families it shares, bulwark_ for the others.

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

var _ prometheus.Collector = (*Collector)(nil)

type desc struct {
	d *prometheus.Desc
	t prometheus.ValueType
}

func gauge(name, help string, labels ...string) desc {
	return desc{prometheus.NewDesc(name, help, labels, nil), prometheus.GaugeValue}
}

func counter(name, help string, labels ...string) desc {
	return desc{prometheus.NewDesc(name, help, labels, nil), prometheus.CounterValue}
}

var (
	fsLabels = []string{"device", "mountpoint", "fstype"}

	descCPU          = counter("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", "cpu", "mode")
	descCPUGuest     = counter("node_cpu_guest_seconds_total", "Seconds the CPUs spent in guests (VMs) for each mode.", "cpu", "mode")
	descCoreThrottle = counter("node_cpu_core_throttles_total", "Number of times this CPU core has been throttled.", "package", "core")
	descPkgThrottle  = counter("node_cpu_package_throttles_total", "Number of times this CPU package has been throttled.", "package")
	descCPUIsolated  = gauge("node_cpu_isolated", "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.", "cpu")

	descLoad1  = gauge("node_load1", "1m load average.")
	descLoad5  = gauge("node_load5", "5m load average.")
	descLoad15 = gauge("node_load15", "15m load average.")

	descFSSize      = gauge("node_filesystem_size_bytes", "Filesystem size in bytes.", fsLabels...)
	descFSFree      = gauge("node_filesystem_free_bytes", "Filesystem free space in bytes.", fsLabels...)
	descFSAvail     = gauge("node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes.", fsLabels...)
	descFSFiles     = gauge("node_filesystem_files", "Filesystem total file nodes.", fsLabels...)
	descFSFilesFree = gauge("node_filesystem_files_free", "Filesystem total free file nodes.", fsLabels...)
	descFSReadOnly  = gauge("node_filesystem_readonly", "Filesystem read-only status.", fsLabels...)
	descFSError     = gauge("node_filesystem_device_error", "Whether an error occurred while getting statistics for the given device.", fsLabels...)

	// descDisk follows the order of /proc/diskstats' counters.
	descDisk = [diskStatFields]desc{
		counter("node_disk_reads_completed_total", "The total number of reads completed successfully.", "device"),
		counter("node_disk_reads_merged_total", "The total number of reads merged.", "device"),
		counter("node_disk_read_bytes_total", "The total number of bytes read successfully.", "device"),
		counter("node_disk_read_time_seconds_total", "The total number of seconds spent by all reads.", "device"),
		counter("node_disk_writes_completed_total", "The total number of writes completed successfully.", "device"),
		counter("node_disk_writes_merged_total", "The number of writes merged.", "device"),
		counter("node_disk_written_bytes_total", "The total number of bytes written successfully.", "device"),
		counter("node_disk_write_time_seconds_total", "This is the total number of seconds spent by all writes.", "device"),
		gauge("node_disk_io_now", "The number of I/Os currently in progress.", "device"),
		counter("node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", "device"),
		counter("node_disk_io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.", "device"),
		counter("node_disk_discards_completed_total", "The total number of discards completed successfully.", "device"),
		counter("node_disk_discards_merged_total", "The total number of discards merged.", "device"),
		counter("node_disk_discarded_sectors_total", "The total number of sectors discarded successfully.", "device"),
		counter("node_disk_discard_time_seconds_total", "This is the total number of seconds spent by all discards.", "device"),
		counter("node_disk_flush_requests_total", "The total number of flush requests completed successfully", "device"),
		counter("node_disk_flush_requests_time_seconds_total", "This is the total number of seconds spent by all flush requests.", "device"),
	}
	descDiskInfo   = gauge("node_disk_info", "Info of /sys/block/<block_device>.", "device", "major", "minor", "path", "wwn", "model", "serial", "revision")
	descDiskFSInfo = gauge("node_disk_filesystem_info", "Info about disk filesystem.", "device", "type", "usage", "uuid", "version")
	descDiskDMInfo = gauge("node_disk_device_mapper_info", "Info about disk device mapper.", "device", "name", "uuid", "vg_name", "lv_name", "lv_layer")
	descDiskATA    = []struct {
		key string
		d   desc
	}{
		{"ID_ATA_WRITE_CACHE", gauge("node_disk_ata_write_cache", "ATA disk has a write cache.", "device")},
		{"ID_ATA_WRITE_CACHE_ENABLED", gauge("node_disk_ata_write_cache_enabled", "ATA disk has its write cache enabled.", "device")},
		{"ID_ATA_ROTATION_RATE_RPM", gauge("node_disk_ata_rotation_rate_rpm", "ATA disk rotation rate in RPMs (0 for SSDs).", "device")},
	}

	// descNet follows the order of /proc/net/dev's counters, under the
	// names node_exporter gives them.
	descNet          = netDescs()
	descNetNoHandler = netDesc("receive_nohandler")

	descTimeSeconds     = gauge("node_time_seconds", "System time in seconds since epoch (1970).")
	descTimeZone        = gauge("node_time_zone_offset_seconds", "System time zone offset in seconds.", "time_zone")
	descClockAvailable  = gauge("node_time_clocksource_available_info", "Available clocksources read from '/sys/devices/system/clocksource'.", "device", "clocksource")
	descClockCurrent    = gauge("node_time_clocksource_current_info", "Current clocksource read from '/sys/devices/system/clocksource'.", "device", "clocksource")
	descTimexOffset     = gauge("node_timex_offset_seconds", "Time offset in between local system and reference clock.")
	descTimexFreq       = gauge("node_timex_frequency_adjustment_ratio", "Local clock frequency adjustment.")
	descTimexMaxErr     = gauge("node_timex_maxerror_seconds", "Maximum error in seconds.")
	descTimexEstErr     = gauge("node_timex_estimated_error_seconds", "Estimated error in seconds.")
	descTimexStatus     = gauge("node_timex_status", "Value of the status array bits.")
	descTimexConstant   = gauge("node_timex_loop_time_constant", "Phase-locked loop time constant.")
	descTimexTick       = gauge("node_timex_tick_seconds", "Seconds between clock ticks.")
	descTimexPPSFreq    = gauge("node_timex_pps_frequency_hertz", "Pulse per second frequency.")
	descTimexPPSJitter  = gauge("node_timex_pps_jitter_seconds", "Pulse per second jitter.")
	descTimexPPSShift   = gauge("node_timex_pps_shift_seconds", "Pulse per second interval duration.")
	descTimexPPSStabil  = gauge("node_timex_pps_stability_hertz", "Pulse per second stability, average of recent frequency changes.")
	descTimexJitCnt     = counter("node_timex_pps_jitter_total", "Pulse per second count of jitter limit exceeded events.")
	descTimexCalCnt     = counter("node_timex_pps_calibration_total", "Pulse per second count of calibration intervals.")
	descTimexErrCnt     = counter("node_timex_pps_error_total", "Pulse per second count of calibration errors.")
	descTimexStbCnt     = counter("node_timex_pps_stability_exceeded_total", "Pulse per second count of stability limit exceeded events.")
	descTimexTAI        = gauge("node_timex_tai_offset_seconds", "International Atomic Time (TAI) offset.")
	descTimexSyncStatus = gauge("node_timex_sync_status", "Is clock synchronized to a reliable server (1 = yes, 0 = no).")

	descBootTime      = gauge("node_boot_time_seconds", "Node boot time, in unixtime.")
	descContextSwitch = counter("node_context_switches_total", "Total number of context switches.")
	descForks         = counter("node_forks_total", "Total number of forks.")
	descIntr          = counter("node_intr_total", "Total number of interrupts serviced.")
	descProcsRunning  = gauge("node_procs_running", "Number of processes in runnable state.")
	descProcsBlocked  = gauge("node_procs_blocked", "Number of processes blocked waiting for I/O to complete.")
	descUname         = gauge("node_uname_info", "Labeled system information as provided by the uname system call.", "sysname", "release", "version", "machine", "nodename", "domainname")

	descProcThreads    = gauge("node_processes_threads", "Allocated threads in system")
	descProcMaxThreads = gauge("node_processes_max_threads", "Limit of threads in the system")
	descProcState      = gauge("node_processes_state", "Number of processes in each state.", "state")
	descProcPids       = gauge("node_processes_pids", "Number of PIDs")
	descProcMaxPids    = gauge("node_processes_max_processes", "Number of max PIDs limit")

	descUptime         = gauge("bulwark_host_uptime_seconds", "Seconds since the host booted, from /proc/uptime.")
	descSectionOK      = gauge("bulwark_host_sample_success", "Whether this part of the host's state could be read in the last sample (1 = yes, 0 = no).", "section")
	descProcessUp      = gauge("bulwark_process_up", "Number of running processes with this command name.", "name")
	descProcessRestart = counter("bulwark_process_restarts_total", "Restarts of the processes with this command name since the collector started: processes that vanished and were replaced by a new one.", "name")
	descSMARTAvailable = gauge("bulwark_smart_available", "Whether smartctl could be run to read the disks' SMART health (1 = yes, 0 = no).")
	descSMARTHealthy   = gauge("bulwark_smart_healthy", "SMART overall-health self-assessment of the disk (1 = passed, 0 = failed).", "device")
	descSMARTTemp      = gauge("bulwark_smart_temperature_celsius", "Disk temperature reported by SMART.", "device")
	descAptAvailable   = gauge("bulwark_apt_available", "Whether apt-get could be run to count pending updates (1 = yes, 0 = no).")
	descAptPending     = gauge("apt_upgrades_pending", "Apt package pending updates by origin.", "origin", "arch")
	descAptSecurity    = gauge("bulwark_apt_security_upgrades_pending", "Pending package updates coming from a security archive.")
)

// sections are the parts of a sample, for bulwark_host_sample_success.
var sections = []string{"cpu", "meminfo", "loadavg", "uptime", "filesystem", "diskstats", "netdev", "clocksource", "throttle", "processes", "timex", "uname"}

func netDesc(key string) desc {
	return counter("node_network_"+key+"_total", "Network device statistic "+key+".", "device")
}

func netDescs() [netDevFields]desc {
	keys := [netDevFields]string{
		"receive_bytes", "receive_packets", "receive_errs", "receive_drop", "receive_fifo", "receive_frame", "receive_compressed", "receive_multicast",
		"transmit_bytes", "transmit_packets", "transmit_errs", "transmit_drop", "transmit_fifo", "transmit_colls", "transmit_carrier", "transmit_compressed",
	}
	var d [netDevFields]desc
	for i, k := range keys {
		d[i] = netDesc(k)
	}
	return d
}

// memDescs caches the descriptor of each node_memory_ family.
var memDescs sync.Map // string -> desc

func memDesc(name string) desc {
	if d, ok := memDescs.Load(name); ok {
		return d.(desc)
	}
	t := prometheus.GaugeValue
	if strings.HasSuffix(name, "_total") {
		t = prometheus.CounterValue
	}
	d := desc{prometheus.NewDesc("node_memory_"+name, "Memory information field "+name+".", nil, nil), t}
	memDescs.Store(name, d)
	return d
}

// Describe sends nothing: the collector is unchecked, because the families
// it emits depend on the host (the fields of /proc/meminfo, udev's data,
// thermal counters), which is known only when collecting.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect takes a fresh sample and sends it as metrics. A part of the host
// that could not be read is left out and reported by
// bulwark_host_sample_success{section}.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s, failed := c.sample(context.Background())
	bad := make(map[string]bool, len(failed))
	for _, f := range failed {
		bad[f.Section] = true
	}
	for _, sec := range sections {
		emit(ch, descSectionOK, b2f(!bad[sec]), sec)
	}
	c.collectSample(ch, s, bad)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// emit sends one metric. Label values read from the host (mount points,
// command names) may not be UTF-8, which Prometheus refuses: they are
// repaired rather than dropped.
func emit(ch chan<- prometheus.Metric, d desc, v float64, labels ...string) {
	for i, l := range labels {
		if !utf8.ValidString(l) {
			labels[i] = strings.ToValidUTF8(l, "\uFFFD")
		}
	}
	ch <- prometheus.MustNewConstMetric(d.d, d.t, v, labels...)
}

func (c *Collector) collectSample(ch chan<- prometheus.Metric, s *Sample, bad map[string]bool) {
	if !bad["cpu"] {
		for _, t := range s.CPU.PerCPU {
			cpu := strconv.Itoa(t.CPU)
			for _, m := range [...]struct {
				mode string
				v    float64
			}{{"user", t.User}, {"nice", t.Nice}, {"system", t.System}, {"idle", t.Idle}, {"iowait", t.Iowait}, {"irq", t.IRQ}, {"softirq", t.SoftIRQ}, {"steal", t.Steal}} {
				emit(ch, descCPU, m.v, cpu, m.mode)
			}
			emit(ch, descCPUGuest, t.Guest, cpu, "user")
			emit(ch, descCPUGuest, t.GuestNice, cpu, "nice")
		}
		for _, cpu := range s.CPU.Isolated {
			emit(ch, descCPUIsolated, 1, strconv.Itoa(cpu))
		}
		emit(ch, descBootTime, float64(s.Clock.BootTime.Unix()))
		emit(ch, descContextSwitch, float64(s.Kernel.ContextSwitches))
		emit(ch, descForks, float64(s.Kernel.Forks))
		emit(ch, descIntr, float64(s.Kernel.Interrupts))
		emit(ch, descProcsRunning, float64(s.Processes.Running))
		emit(ch, descProcsBlocked, float64(s.Processes.Blocked))
	}
	for _, t := range s.CPU.Throttles {
		if t.Core < 0 {
			emit(ch, descPkgThrottle, float64(t.Count), strconv.Itoa(t.Package))
		} else {
			emit(ch, descCoreThrottle, float64(t.Count), strconv.Itoa(t.Package), strconv.Itoa(t.Core))
		}
	}
	if !bad["loadavg"] {
		emit(ch, descLoad1, s.Load.Load1)
		emit(ch, descLoad5, s.Load.Load5)
		emit(ch, descLoad15, s.Load.Load15)
	}
	for _, f := range s.MemInfo {
		emit(ch, memDesc(f.Name), f.Value)
	}
	if !bad["uptime"] {
		emit(ch, descUptime, s.Clock.UptimeSeconds)
	}
	for _, f := range s.Filesystems {
		l := []string{f.Device, f.MountPoint, f.FSType}
		emit(ch, descFSError, b2f(f.Error != ""), l...)
		emit(ch, descFSReadOnly, b2f(f.ReadOnly), l...)
		if f.Error != "" {
			continue
		}
		emit(ch, descFSSize, float64(f.SizeBytes), l...)
		emit(ch, descFSFree, float64(f.FreeBytes), l...)
		emit(ch, descFSAvail, float64(f.AvailBytes), l...)
		emit(ch, descFSFiles, float64(f.Files), l...)
		emit(ch, descFSFilesFree, float64(f.FilesFree), l...)
	}
	for i := range s.Disks {
		c.collectDisk(ch, &s.Disks[i])
	}
	for _, n := range s.Network {
		vals := [netDevFields]uint64{
			n.RxBytes, n.RxPackets, n.RxErrs, n.RxDrop, n.RxFIFO, n.RxFrame, n.RxCompressed, n.RxMulticast,
			n.TxBytes, n.TxPackets, n.TxErrs, n.TxDrop, n.TxFIFO, n.TxColls, n.TxCarrier, n.TxCompressed,
		}
		for i, v := range vals {
			emit(ch, descNet[i], float64(v), n.Device)
		}
		if n.RxNoHandler != nil {
			emit(ch, descNetNoHandler, float64(*n.RxNoHandler), n.Device)
		}
	}
	emit(ch, descTimeSeconds, float64(s.Clock.Time.UnixNano())/1e9)
	emit(ch, descTimeZone, float64(s.Clock.TimeZoneOffsetSeconds), s.Clock.TimeZone)
	for i, cs := range s.Clock.clocksources {
		dev := strconv.Itoa(i)
		for _, a := range cs.available {
			emit(ch, descClockAvailable, 1, dev, a)
		}
		emit(ch, descClockCurrent, 1, dev, cs.current)
	}
	if !bad["timex"] {
		x := &s.Clock.Timex
		emit(ch, descTimexSyncStatus, b2f(s.Clock.Synchronised))
		emit(ch, descTimexOffset, s.Clock.OffsetSeconds)
		emit(ch, descTimexFreq, x.FrequencyAdjustment)
		emit(ch, descTimexMaxErr, x.MaxErrorSeconds)
		emit(ch, descTimexEstErr, x.EstimatedErrorSeconds)
		emit(ch, descTimexStatus, float64(x.Status))
		emit(ch, descTimexConstant, float64(x.LoopTimeConstant))
		emit(ch, descTimexTick, x.TickSeconds)
		emit(ch, descTimexPPSFreq, x.PPSFrequencyHertz)
		emit(ch, descTimexPPSJitter, x.PPSJitterSeconds)
		emit(ch, descTimexPPSShift, float64(x.PPSShiftSeconds))
		emit(ch, descTimexPPSStabil, x.PPSStabilityHertz)
		emit(ch, descTimexJitCnt, float64(x.PPSJitterCount))
		emit(ch, descTimexCalCnt, float64(x.PPSCalibrationCount))
		emit(ch, descTimexErrCnt, float64(x.PPSErrorCount))
		emit(ch, descTimexStbCnt, float64(x.PPSStabilityExceeded))
		emit(ch, descTimexTAI, float64(x.TAIOffsetSeconds))
	}
	if !bad["uname"] {
		u := &s.Uname
		emit(ch, descUname, 1, u.SysName, u.Release, u.Version, u.Machine, u.NodeName, u.DomainName)
	}
	if !bad["processes"] {
		p := &s.Processes
		emit(ch, descProcThreads, float64(p.Threads))
		emit(ch, descProcMaxThreads, float64(p.MaxThreads))
		emit(ch, descProcPids, float64(p.Total))
		emit(ch, descProcMaxPids, float64(p.MaxProcesses))
		for _, st := range sortedStates(p.ByState) {
			emit(ch, descProcState, float64(p.ByState[st]), st)
		}
		for _, n := range s.Named {
			emit(ch, descProcessUp, float64(n.Up), n.Name)
			emit(ch, descProcessRestart, float64(n.Restarts), n.Name)
		}
	}
	if sm := s.SMART; sm != nil {
		emit(ch, descSMARTAvailable, b2f(sm.Available))
		for _, d := range sm.Devices {
			if d.Healthy != nil {
				emit(ch, descSMARTHealthy, b2f(*d.Healthy), d.Name)
			}
			if d.TemperatureCelsius != nil {
				emit(ch, descSMARTTemp, *d.TemperatureCelsius, d.Name)
			}
		}
	}
	if u := s.Updates; u != nil {
		emit(ch, descAptAvailable, b2f(u.Available))
		if u.Available {
			if len(u.ByOrigin) == 0 {
				// As apt.sh: an explicit zero rather than no series.
				emit(ch, descAptPending, 0, "", "")
			}
			for _, o := range u.ByOrigin {
				emit(ch, descAptPending, float64(o.Count), o.Origin, o.Arch)
			}
			emit(ch, descAptSecurity, float64(u.Security))
		}
	}
}

func (c *Collector) collectDisk(ch chan<- prometheus.Metric, d *Disk) {
	u := d.udev
	emit(ch, descDiskInfo, 1, d.Device, strconv.FormatUint(uint64(d.Major), 10), strconv.FormatUint(uint64(d.Minor), 10),
		u["ID_PATH"], u["ID_WWN"], u["ID_MODEL"], u["ID_SERIAL_SHORT"], u["ID_REVISION"])
	vals := [diskStatFields]float64{
		float64(d.ReadsCompleted), float64(d.ReadsMerged), float64(d.ReadBytes), d.ReadTimeSeconds,
		float64(d.WritesCompleted), float64(d.WritesMerged), float64(d.WrittenBytes), d.WriteTimeSeconds,
		float64(d.InProgress), d.IOTimeSeconds, d.IOTimeWeightedSeconds,
		float64(d.DiscardsCompleted), float64(d.DiscardsMerged), float64(d.DiscardedSectors), d.DiscardTimeSeconds,
		float64(d.FlushRequests), d.FlushTimeSeconds,
	}
	for i, v := range vals[:min(d.counters, diskStatFields)] {
		emit(ch, descDisk[i], v, d.Device)
	}
	if t := u["ID_FS_TYPE"]; t != "" {
		emit(ch, descDiskFSInfo, 1, d.Device, t, u["ID_FS_USAGE"], u["ID_FS_UUID"], u["ID_FS_VERSION"])
	}
	if n := u["DM_NAME"]; n != "" {
		emit(ch, descDiskDMInfo, 1, d.Device, n, u["DM_UUID"], u["DM_VG_NAME"], u["DM_LV_NAME"], u["DM_LV_LAYER"])
	}
	if u["ID_ATA"] != "" {
		for _, a := range descDiskATA {
			if v, ok := u[a.key]; ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					emit(ch, a.d, f, d.Device)
				}
			}
		}
	}
}

// sortedStates returns the keys of a state count map in order.
func sortedStates(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
