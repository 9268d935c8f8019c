package monitor

import (
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/monitor/host"
)

// TestDerive: rates against the previous sample, percentages, labels, and
// no series for counters that went backwards or for container interfaces.
func TestDerive(t *testing.T) {
	busy := 42.5
	prev := &host.Sample{Time: t0,
		Disks:   []host.Disk{{Device: "vda", ReadBytes: 1000, WrittenBytes: 5000, IOTimeSeconds: 10}, {Device: "vdb", ReadBytes: 100, IOTimeSeconds: 50}},
		Network: []host.NetInterface{{Device: "eth0", RxBytes: 1000, TxBytes: 1000, RxErrs: 1}, {Device: "veth1a2b", RxBytes: 1, TxBytes: 1}},
	}
	cur := &host.Sample{Time: t0.Add(10 * time.Second),
		CPU:         host.CPU{Count: 2, BusyPercent: &busy},
		Load:        host.Load{Load1: 3, Load5: 2, Load15: 1},
		Memory:      host.Memory{TotalBytes: 100, UsedPercent: 40},
		Swap:        host.Swap{UsedPercent: 5},
		Filesystems: []host.Filesystem{{Device: "/dev/vda1", MountPoint: "/", FSType: "ext4", SizeBytes: 100, AvailBytes: 10, Files: 10, UsedPercent: 90, InodesUsedPercent: 20}},
		Disks:       []host.Disk{{Device: "vda", ReadBytes: 11000, WrittenBytes: 5000, IOTimeSeconds: 15}, {Device: "vdb", ReadBytes: 50, IOTimeSeconds: 40}},
		Network:     []host.NetInterface{{Device: "eth0", RxBytes: 21000, TxBytes: 1000, RxErrs: 3}, {Device: "veth1a2b", RxBytes: 100, TxBytes: 100}},
		Clock:       host.Clock{OffsetSeconds: 0.25, Synchronised: true, UptimeSeconds: 3600},
		Named:       []host.NamedProcess{{Name: "nginx", Up: 0, Restarts: 2}},
	}
	got := map[string]float64{}
	for _, p := range Derive(cur, prev) {
		got[SeriesKey(p)] = p.Value
	}
	want := map[string]float64{
		"cpu_busy_percent": 42.5, "load1": 3, "load1_per_cpu": 1.5, "memory_used_percent": 40, "swap_used_percent": 5,
		`filesystem_used_percent{device="/dev/vda1",fstype="ext4",mountpoint="/"}`: 90,
		`inodes_used_percent{device="/dev/vda1",fstype="ext4",mountpoint="/"}`:     20,
		`disk_read_bytes_per_second{device="vda"}`:                                 1000,
		`disk_write_bytes_per_second{device="vda"}`:                                0,
		`disk_busy_percent{device="vda"}`:                                          50,
		`network_receive_bytes_per_second{device="eth0"}`:                          2000,
		`network_errors_per_second{device="eth0"}`:                                 0.2,
		"clock_offset_seconds":                                                     0.25, "clock_synchronised": 1, "uptime_seconds": 3600,
		`process_up{name="nginx"}`: 0, `process_restarts{name="nginx"}`: 2,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for k := range got {
		if k == `disk_read_bytes_per_second{device="vdb"}` || k == `disk_busy_percent{device="vdb"}` || k == `network_receive_bytes_per_second{device="veth1a2b"}` {
			t.Errorf("%s should not be derived (counter reset, or a container's interface)", k)
		}
	}
	// The first sample has no rates.
	for _, p := range Derive(cur, nil) {
		if p.Name == "disk_read_bytes_per_second" {
			t.Errorf("a rate without a previous sample: %+v", p)
		}
	}
}
