package monitor

import (
	"math"
	"regexp"

	"github.com/bulwarkhq/bulwark/internal/monitor/alert"
	"github.com/bulwarkhq/bulwark/internal/monitor/host"
)

// SeriesNames lists the series the monitor derives from each host sample:
// the names metric alert rules and the history use (docs/monitor.md). Rates
// are per second since the previous sample.
var SeriesNames = []string{
	"cpu_busy_percent", "load1", "load5", "load15", "load1_per_cpu",
	"memory_used_percent", "swap_used_percent",
	"filesystem_used_percent", "inodes_used_percent", "filesystem_avail_bytes",
	"disk_read_bytes_per_second", "disk_write_bytes_per_second", "disk_busy_percent",
	"network_receive_bytes_per_second", "network_transmit_bytes_per_second", "network_errors_per_second",
	"clock_offset_seconds", "clock_synchronised", "uptime_seconds",
	"processes", "processes_blocked", "process_up", "process_restarts",
	"updates_pending", "security_updates_pending", "smart_healthy",
}

// virtualNet matches the interfaces containers and VMs come and go with
// (veth pairs, bridges, tunnels): their rates would make a series, kept
// 400 days, for every container ever started. /metrics still has them,
// as node_exporter does.
var virtualNet = regexp.MustCompile(`^(veth|br-|docker|virbr|vnet|cali|flannel|cni|tap|tun|ifb|lxc|kube)`)

// Derive derives the monitor's series from a sample and the one before it
// (nil on the first: no rates then).
func Derive(s, prev *host.Sample) []alert.Point {
	var out []alert.Point
	add := func(name string, v float64, kv ...string) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		var l map[string]string
		if len(kv) > 0 {
			l = make(map[string]string, len(kv)/2)
			for i := 0; i+1 < len(kv); i += 2 {
				l[kv[i]] = kv[i+1]
			}
		}
		out = append(out, alert.Point{Name: name, Labels: l, Value: v})
	}
	if s.CPU.BusyPercent != nil {
		add("cpu_busy_percent", *s.CPU.BusyPercent)
	}
	add("load1", s.Load.Load1)
	add("load5", s.Load.Load5)
	add("load15", s.Load.Load15)
	if s.CPU.Count > 0 {
		add("load1_per_cpu", s.Load.Load1/float64(s.CPU.Count))
	}
	if s.Memory.TotalBytes > 0 {
		add("memory_used_percent", s.Memory.UsedPercent)
	}
	add("swap_used_percent", s.Swap.UsedPercent)
	for _, f := range s.Filesystems {
		if f.Error != "" || f.SizeBytes == 0 {
			continue
		}
		l := []string{"mountpoint", f.MountPoint, "device", f.Device, "fstype", f.FSType}
		add("filesystem_used_percent", f.UsedPercent, l...)
		add("filesystem_avail_bytes", float64(f.AvailBytes), l...)
		if f.Files > 0 {
			add("inodes_used_percent", f.InodesUsedPercent, l...)
		}
	}
	var dt float64
	if prev != nil {
		dt = s.Time.Sub(prev.Time).Seconds()
	}
	if dt > 0 {
		before := map[string]host.Disk{}
		for _, d := range prev.Disks {
			before[d.Device] = d
		}
		for _, d := range s.Disks {
			p, ok := before[d.Device]
			if !ok || d.ReadBytes < p.ReadBytes || d.WrittenBytes < p.WrittenBytes {
				continue // new device, or counters reset
			}
			add("disk_read_bytes_per_second", float64(d.ReadBytes-p.ReadBytes)/dt, "device", d.Device)
			add("disk_write_bytes_per_second", float64(d.WrittenBytes-p.WrittenBytes)/dt, "device", d.Device)
			if d.IOTimeSeconds >= p.IOTimeSeconds {
				add("disk_busy_percent", math.Min(100, 100*(d.IOTimeSeconds-p.IOTimeSeconds)/dt), "device", d.Device)
			}
		}
		nets := map[string]host.NetInterface{}
		for _, n := range prev.Network {
			nets[n.Device] = n
		}
		for _, n := range s.Network {
			p, ok := nets[n.Device]
			if !ok || n.RxBytes < p.RxBytes || n.TxBytes < p.TxBytes || virtualNet.MatchString(n.Device) {
				continue
			}
			add("network_receive_bytes_per_second", float64(n.RxBytes-p.RxBytes)/dt, "device", n.Device)
			add("network_transmit_bytes_per_second", float64(n.TxBytes-p.TxBytes)/dt, "device", n.Device)
			errs := float64(n.RxErrs+n.TxErrs) - float64(p.RxErrs+p.TxErrs)
			add("network_errors_per_second", math.Max(0, errs)/dt, "device", n.Device)
		}
	}
	add("clock_offset_seconds", s.Clock.OffsetSeconds)
	add("clock_synchronised", b2f(s.Clock.Synchronised))
	add("uptime_seconds", s.Clock.UptimeSeconds)
	add("processes", float64(s.Processes.Total))
	add("processes_blocked", float64(s.Processes.Blocked))
	for _, p := range s.Named {
		add("process_up", float64(p.Up), "name", p.Name)
		add("process_restarts", float64(p.Restarts), "name", p.Name)
	}
	if u := s.Updates; u != nil && u.Available {
		add("updates_pending", float64(u.Upgradable))
		add("security_updates_pending", float64(u.Security))
	}
	if sm := s.SMART; sm != nil {
		for _, d := range sm.Devices {
			if d.Healthy != nil {
				add("smart_healthy", b2f(*d.Healthy), "device", d.Name)
			}
		}
	}
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
