package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// udevFixture writes udev data for the fixture's sda (8:0). It is made at
// run time: a ':' in a committed file name is refused by Go module zips.
func udevFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	data := "S:disk/by-id/ata-TOSHIBA_DT01ACA100_1234\nE:ID_ATA=1\nE:ID_ATA_WRITE_CACHE=1\nE:ID_ATA_WRITE_CACHE_ENABLED=1\n" +
		"E:ID_ATA_ROTATION_RATE_RPM=7200\nE:ID_MODEL=TOSHIBA_DT01ACA100\nE:ID_SERIAL_SHORT=1234\nE:ID_REVISION=MS2OA750\n" +
		"E:ID_PATH=pci-0000:00:1f.2-ata-1\nE:ID_WWN=0x5000039fe0c8a2b1\nE:ID_FS_TYPE=\nE:IGNORED=x\n"
	if err := os.WriteFile(filepath.Join(dir, "b8:0"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func fixtureOptions(t *testing.T) Options {
	return Options{
		ProcPath:     "testdata/proc",
		SysPath:      "testdata/sys",
		RootfsPath:   "testdata/rootfs",
		UdevDataPath: udevFixture(t),
		Processes:    []string{"nginx", "sshd", "my (weird) name", "kworker/0:1-events", "absent", "nginx"},
		Now:          func() time.Time { return fixedNow },
	}
}

func ptr[T any](v T) *T { return &v }

func TestSampleFixture(t *testing.T) {
	c := New(fixtureOptions(t))
	s, err := c.Sample(context.Background())
	if err != nil {
		t.Fatalf("Sample: %v", err)
	}
	t.Run("cpu", func(t *testing.T) {
		want := CPU{
			Count: 2,
			Total: CPUTimes{CPU: -1, User: 20, Nice: 1, System: 10, Idle: 500, Iowait: 3, SoftIRQ: 0.5, Steal: 0.2, Guest: 0.1},
			PerCPU: []CPUTimes{
				{CPU: 0, User: 10, Nice: 0.5, System: 5, Idle: 250, Iowait: 1.5, SoftIRQ: 0.25, Steal: 0.1, Guest: 0.1},
				{CPU: 1, User: 10, Nice: 0.5, System: 5, Idle: 250, Iowait: 1.5, SoftIRQ: 0.25, Steal: 0.1},
			},
			Throttles: []Throttle{{Package: 0, Core: 0, Count: 5}, {Package: 0, Core: -1, Count: 7}, {Package: 0, Core: 1, Count: 2}},
			Isolated:  []int{1},
		}
		if diff := cmp.Diff(want, s.CPU); diff != "" {
			t.Errorf("CPU (-want +got):\n%s", diff)
		}
	})
	t.Run("load memory swap", func(t *testing.T) {
		if diff := cmp.Diff(Load{0.5, 1.25, 2}, s.Load); diff != "" {
			t.Errorf("Load (-want +got):\n%s", diff)
		}
		wantMem := Memory{
			TotalBytes: 8000000 * 1024, FreeBytes: 1000000 * 1024, AvailableBytes: 4000000 * 1024,
			BuffersBytes: 100000 * 1024, CachedBytes: 2000000 * 1024, UsedBytes: 4000000 * 1024, UsedPercent: 50,
		}
		if diff := cmp.Diff(wantMem, s.Memory); diff != "" {
			t.Errorf("Memory (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(Swap{TotalBytes: 2000000 * 1024, FreeBytes: 1500000 * 1024, UsedPercent: 25}, s.Swap); diff != "" {
			t.Errorf("Swap (-want +got):\n%s", diff)
		}
	})
	t.Run("filesystems", func(t *testing.T) {
		want := []Filesystem{
			{Device: "/dev/sda1", MountPoint: "/", FSType: "ext4"},
			{Device: "/dev/sdb1", MountPoint: "/srv/my data", FSType: "xfs", ReadOnly: true},
			{Device: "/dev/sdc1", MountPoint: "/home", FSType: "ext4", Error: "statfs testdata/rootfs/home: no such file or directory"},
		}
		opt := cmpopts.IgnoreFields(Filesystem{}, "SizeBytes", "FreeBytes", "AvailBytes", "Files", "FilesFree", "UsedPercent", "InodesUsedPercent")
		if diff := cmp.Diff(want, s.Filesystems, opt); diff != "" {
			t.Errorf("Filesystems (-want +got):\n%s", diff)
		}
		for _, f := range s.Filesystems {
			if f.Error == "" && (f.SizeBytes == 0 || f.AvailBytes > f.SizeBytes || f.UsedPercent < 0 || f.UsedPercent > 100) {
				t.Errorf("%s: implausible statfs result %+v", f.MountPoint, f)
			}
		}
	})
	t.Run("disks", func(t *testing.T) {
		want := []Disk{
			{
				Device: "sda", Major: 8, ReadsCompleted: 1000, ReadsMerged: 200, ReadBytes: 80000 * 512, ReadTimeSeconds: 1.5,
				WritesCompleted: 2000, WritesMerged: 300, WrittenBytes: 160000 * 512, WriteTimeSeconds: 2.5, InProgress: 2,
				IOTimeSeconds: 3, IOTimeWeightedSeconds: 4, DiscardsCompleted: 10, DiscardsMerged: 1, DiscardedSectors: 800,
				DiscardTimeSeconds: 0.005, FlushRequests: 50, FlushTimeSeconds: 0.06,
				Model: "TOSHIBA_DT01ACA100", Serial: "1234", Path: "pci-0000:00:1f.2-ata-1", WWN: "0x5000039fe0c8a2b1", Revision: "MS2OA750",
			},
			{
				Device: "vdb", Major: 254, Minor: 16, ReadsCompleted: 1, ReadsMerged: 2, ReadBytes: 3 * 512, ReadTimeSeconds: 0.004,
				WritesCompleted: 5, WritesMerged: 6, WrittenBytes: 7 * 512, WriteTimeSeconds: 0.008, InProgress: 9,
				IOTimeSeconds: 0.01, IOTimeWeightedSeconds: 0.011,
			},
		}
		if diff := cmp.Diff(want, s.Disks, cmpopts.IgnoreUnexported(Disk{}), cmpopts.EquateApprox(0, 1e-12)); diff != "" {
			t.Errorf("Disks (-want +got):\n%s", diff)
		}
	})
	t.Run("network", func(t *testing.T) {
		want := []NetInterface{
			{
				Device: "eth0", RxBytes: 5000000, RxPackets: 4000, RxErrs: 1, RxDrop: 2, RxFIFO: 3, RxFrame: 4, RxCompressed: 5, RxMulticast: 6,
				RxNoHandler: ptr[uint64](13), TxBytes: 600000, TxPackets: 3000, TxErrs: 7, TxDrop: 8, TxFIFO: 9, TxColls: 10, TxCarrier: 11, TxCompressed: 12,
			},
			{Device: "wg0", RxBytes: 100, RxPackets: 1, TxBytes: 200, TxPackets: 2},
		}
		if diff := cmp.Diff(want, s.Network); diff != "" {
			t.Errorf("Network (-want +got):\n%s", diff)
		}
	})
	t.Run("kernel processes", func(t *testing.T) {
		if diff := cmp.Diff(Kernel{ContextSwitches: 987654, Forks: 4321, Interrupts: 123456}, s.Kernel); diff != "" {
			t.Errorf("Kernel (-want +got):\n%s", diff)
		}
		wantProcs := Processes{
			Running: 3, Blocked: 1, Total: 7, Threads: 10,
			ByState:      map[string]int{"S": 3, "R": 1, "I": 1, "D": 1, "Z": 1},
			MaxProcesses: 4194304, MaxThreads: 95000,
		}
		if diff := cmp.Diff(wantProcs, s.Processes); diff != "" {
			t.Errorf("Processes (-want +got):\n%s", diff)
		}
		wantNamed := []NamedProcess{
			{Name: "nginx", Up: 2, PIDs: []int{100, 101}},
			{Name: "sshd", Up: 1, PIDs: []int{200}},
			{Name: "my (weird) name", Up: 1, PIDs: []int{400}},
			{Name: "kworker/0:1-events", Up: 1, PIDs: []int{300}}, // matched on its first 15 bytes
			{Name: "absent", PIDs: []int{}},
		}
		if diff := cmp.Diff(wantNamed, s.Named); diff != "" {
			t.Errorf("Named (-want +got):\n%s", diff)
		}
	})
	t.Run("clock", func(t *testing.T) {
		got := s.Clock
		if !got.Time.Equal(fixedNow) || !got.BootTime.Equal(time.Unix(1700000000, 0)) || got.UptimeSeconds != 12345.67 ||
			got.ClockSource != "tsc" || got.TimeZone != "UTC" || got.TimeZoneOffsetSeconds != 0 {
			t.Errorf("Clock = %+v", got)
		}
		if diff := cmp.Diff([]clocksource{{available: []string{"tsc", "hpet", "acpi_pm"}, current: "tsc"}}, got.clocksources, cmp.AllowUnexported(clocksource{})); diff != "" {
			t.Errorf("clocksources (-want +got):\n%s", diff)
		}
		if got.Timex.TickSeconds <= 0 {
			t.Errorf("adjtimex tick = %v, want > 0", got.Timex.TickSeconds)
		}
	})
	t.Run("meminfo names", func(t *testing.T) {
		var names []string
		for _, f := range s.MemInfo {
			names = append(names, f.Name)
		}
		want := []string{"MemTotal_bytes", "MemFree_bytes", "MemAvailable_bytes", "Buffers_bytes", "Cached_bytes", "SwapCached_bytes",
			"Active_anon_bytes", "Inactive_file_bytes", "SwapTotal_bytes", "SwapFree_bytes", "HugePages_Total", "HugePages_Free", "Hugepagesize_bytes"}
		if diff := cmp.Diff(want, names); diff != "" {
			t.Errorf("meminfo names (-want +got):\n%s", diff)
		}
	})
	t.Run("json", func(t *testing.T) {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("Unmarshal: %v", err)
		}
		for _, key := range []string{"time", "cpu", "load", "memory", "swap", "meminfo", "filesystems", "disks", "network", "clock", "kernel", "processes", "named_processes", "uname"} {
			if _, ok := m[key]; !ok {
				t.Errorf("JSON lacks %q", key)
			}
		}
		if cpu := m["cpu"].(map[string]any); cpu["busy_percent"] != nil {
			t.Errorf("first sample's busy_percent = %v, want null", cpu["busy_percent"])
		}
		for _, absent := range []string{"smart", "updates"} {
			if _, ok := m[absent]; ok {
				t.Errorf("JSON has %q though it was not asked for", absent)
			}
		}
	})
}

// copyTree copies a fixture tree into a temporary directory tests modify.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	return dst
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBusyPercentAndMonotonicCPU(t *testing.T) {
	proc := copyTree(t, "testdata/proc")
	c := New(Options{ProcPath: proc, SysPath: "testdata/sys", RootfsPath: "testdata/rootfs"})
	first, err := c.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if first.CPU.BusyPercent != nil {
		t.Fatalf("first busy_percent = %v, want nil", *first.CPU.BusyPercent)
	}
	// +60 user, +20 system, +100 idle, +20 iowait ticks over both CPUs:
	// 80 of 200 ticks busy.
	writeFile(t, filepath.Join(proc, "stat"), `cpu  2060 100 1020 50100 320 0 50 20 10 0
cpu0 1030 50 510 25050 160 0 25 10 10 0
cpu1 1030 50 510 25050 160 0 25 10 0 0
btime 1700000000
`)
	second, err := c.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b := second.CPU.BusyPercent; b == nil || math.Abs(*b-40) > 1e-9 {
		t.Errorf("busy_percent = %v, want 40", fmtPtr(b))
	}
	// cpu1's iowait goes back one tick, as some kernels' does: the
	// reported counter must not, and no time passed.
	writeFile(t, filepath.Join(proc, "stat"), `cpu  2060 100 1020 50100 319 0 50 20 10 0
cpu0 1030 50 510 25050 160 0 25 10 10 0
cpu1 1030 50 510 25050 159 0 25 10 0 0
btime 1700000000
`)
	back, err := c.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := back.CPU.PerCPU[1].Iowait; got != 1.6 {
		t.Errorf("cpu1 iowait = %v after going back to 1.59, want it held at 1.6", got)
	}
	if back.CPU.BusyPercent != nil {
		t.Errorf("busy_percent with no tick elapsed = %v, want nil", *back.CPU.BusyPercent)
	}
	// A hotplugged CPU starts again from zero: idle far behind resets it.
	writeFile(t, filepath.Join(proc, "stat"), `cpu  100 0 100 100 0 0 0 0 0 0
cpu0 50 0 50 50 0 0 0 0 0 0
cpu1 50 0 50 50 0 0 0 0 0 0
btime 1700000000
`)
	third, err := c.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := third.CPU.PerCPU[0]; got.Idle != 0.5 || got.User != 0.5 {
		t.Errorf("after a hotplug cpu0 = %+v, want the new counters", got)
	}
	if third.CPU.BusyPercent != nil {
		t.Errorf("busy_percent across a counter reset = %v, want nil", *third.CPU.BusyPercent)
	}
}

func fmtPtr[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

// pidStatLine is a /proc/PID/stat line with the fields the collector reads.
func pidStatLine(pid int, comm string, state byte, threads int, start uint64) string {
	return fmt.Sprintf("%d (%s) %c 1 %d %d 0 -1 4194560 100 0 0 0 10 5 0 0 20 0 %d 0 %d 1000000 100 0 0 0 0\n", pid, comm, state, pid, pid, threads, start)
}

// TestRestartCounting drives the restart rule through a fake /proc whose
// processes change between samples.
func TestRestartCounting(t *testing.T) {
	type proc struct {
		pid   int
		comm  string
		start uint64
	}
	steps := []struct {
		what         string
		procs        []proc
		wantUp       int
		wantRestarts uint64
	}{
		{"first sample only seeds", []proc{{10, "nginx", 100}}, 1, 0},
		{"unchanged", []proc{{10, "nginx", 100}}, 1, 0},
		{"replaced within one interval", []proc{{11, "nginx", 200}}, 1, 1},
		{"down", nil, 0, 1},
		{"still down", []proc{{12, "other", 300}}, 0, 1},
		{"back after being down", []proc{{13, "nginx", 400}}, 1, 2},
		{"pool grows: not a restart", []proc{{13, "nginx", 400}, {14, "nginx", 410}, {15, "nginx", 420}}, 3, 2},
		{"pool shrinks: not yet", []proc{{13, "nginx", 400}}, 1, 2},
		{"a worker is replaced later", []proc{{13, "nginx", 400}, {16, "nginx", 500}}, 2, 3},
		{"pid reused by a new process", []proc{{13, "nginx", 600}, {16, "nginx", 500}}, 2, 4},
		{"second worker comes back too", []proc{{13, "nginx", 600}, {16, "nginx", 500}, {17, "nginx", 700}}, 3, 5},
		{"other names do not count", []proc{{13, "nginx", 600}, {16, "nginx", 500}, {17, "nginx", 700}, {18, "ngin", 800}}, 3, 5},
	}
	root := copyTree(t, "testdata/proc")
	// Start from the fixture without its processes.
	for _, pid := range []string{"1", "100", "101", "200", "300", "400", "500"} {
		if pid == "1" {
			// PID 1 carries the mount table; keep it but make it another name.
			writeFile(t, filepath.Join(root, "1", "stat"), pidStatLine(1, "init", 'S', 1, 1))
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, pid)); err != nil {
			t.Fatal(err)
		}
	}
	c := New(Options{ProcPath: root, SysPath: "testdata/sys", RootfsPath: "testdata/rootfs", Processes: []string{"nginx"}})
	var current []proc
	for _, step := range steps {
		for _, p := range current {
			if err := os.RemoveAll(filepath.Join(root, fmt.Sprint(p.pid))); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range step.procs {
			writeFile(t, filepath.Join(root, fmt.Sprint(p.pid), "stat"), pidStatLine(p.pid, p.comm, 'S', 1, p.start))
			writeFile(t, filepath.Join(root, fmt.Sprint(p.pid), "comm"), p.comm+"\n")
		}
		current = step.procs
		s, err := c.Sample(context.Background())
		if err != nil {
			t.Fatalf("%s: Sample: %v", step.what, err)
		}
		got := s.Named[0]
		if got.Up != step.wantUp || got.Restarts != step.wantRestarts {
			t.Errorf("%s: up %d restarts %d, want up %d restarts %d", step.what, got.Up, got.Restarts, step.wantUp, step.wantRestarts)
		}
	}
}

func TestStuckMount(t *testing.T) {
	opts := fixtureOptions(t)
	opts.MountTimeout = 250 * time.Millisecond
	c := New(opts)
	release := make(chan struct{})
	var calls sync.Map // path -> *atomic.Int32
	c.statfsFn = func(path string, st *unix.Statfs_t) error {
		n, _ := calls.LoadOrStore(path, new(atomic.Int32))
		n.(*atomic.Int32).Add(1)
		if strings.HasSuffix(path, "my data") {
			<-release // a hung network filesystem
		}
		return unix.Statfs(path, st)
	}
	errOf := func(s *Sample, mp string) string {
		for _, f := range s.Filesystems {
			if f.MountPoint == mp {
				return f.Error
			}
		}
		t.Fatalf("no filesystem %s in %+v", mp, s.Filesystems)
		return ""
	}
	s1, _ := c.Sample(context.Background())
	if e := errOf(s1, "/srv/my data"); !strings.Contains(e, "no answer within") {
		t.Errorf("first sample: error %q, want a timeout", e)
	}
	if e := errOf(s1, "/"); e != "" {
		t.Errorf("first sample: / failed too: %q", e)
	}
	s2, _ := c.Sample(context.Background())
	if e := errOf(s2, "/srv/my data"); e != errStuck.Error() {
		t.Errorf("second sample: error %q, want %q", e, errStuck)
	}
	n, _ := calls.Load(filepath.Join("testdata/rootfs", "srv/my data"))
	if got := n.(*atomic.Int32).Load(); got != 1 {
		t.Errorf("statfs called %d times on the stuck mount, want 1 (skipped while stuck)", got)
	}
	close(release)
	// The hung call returns; once it has, the mount is statfs'ed again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.stuckMu.Lock()
		stuck := len(c.stuck)
		c.stuckMu.Unlock()
		if stuck == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stuck mark was not cleared after statfs returned")
		}
		time.Sleep(5 * time.Millisecond)
	}
	s3, err := c.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if e := errOf(s3, "/srv/my data"); e != "" {
		t.Errorf("after recovery: error %q, want none", e)
	}
}

func TestSectionErrors(t *testing.T) {
	proc := copyTree(t, "testdata/proc")
	if err := os.Remove(filepath.Join(proc, "diskstats")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(proc, "meminfo"), "MemTotal: 1 kB\nMemFree 2 kB\n")
	c := New(Options{ProcPath: proc, SysPath: "testdata/sys", RootfsPath: "testdata/rootfs"})
	s, err := c.Sample(context.Background())
	if s == nil {
		t.Fatal("no sample with a partial failure")
	}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *SectionError
		if !errors.As(e, &se) {
			t.Fatalf("error %v is not a *SectionError", e)
		}
		got = append(got, se.Section)
	}
	if diff := cmp.Diff([]string{"meminfo", "diskstats"}, got); diff != "" {
		t.Errorf("failed sections (-want +got):\n%s", diff)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist for the missing diskstats", err)
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.File != filepath.Join(proc, "meminfo") || pe.Line != 2 {
		t.Errorf("error %v: want a *ParseError at %s line 2", err, filepath.Join(proc, "meminfo"))
	}
	if s.Load.Load1 != 0.5 || len(s.Network) == 0 {
		t.Errorf("the sections that could be read are missing: load %+v, network %+v", s.Load, s.Network)
	}
	// Collect reports the failed sections instead of failing the scrape.
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := `# HELP bulwark_host_sample_success Whether this part of the host's state could be read in the last sample (1 = yes, 0 = no).
# TYPE bulwark_host_sample_success gauge
bulwark_host_sample_success{section="clocksource"} 1
bulwark_host_sample_success{section="cpu"} 1
bulwark_host_sample_success{section="diskstats"} 0
bulwark_host_sample_success{section="filesystem"} 1
bulwark_host_sample_success{section="loadavg"} 1
bulwark_host_sample_success{section="meminfo"} 0
bulwark_host_sample_success{section="netdev"} 1
bulwark_host_sample_success{section="processes"} 1
bulwark_host_sample_success{section="throttle"} 1
bulwark_host_sample_success{section="timex"} 1
bulwark_host_sample_success{section="uname"} 1
bulwark_host_sample_success{section="uptime"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "bulwark_host_sample_success"); err != nil {
		t.Error(err)
	}
}

// goldenFamilies are the families whose values the fixture tree fixes
// (time, adjtimex, uname and statfs sizes come from the real host).
var goldenFamilies = []string{
	"node_cpu_seconds_total", "node_cpu_guest_seconds_total", "node_cpu_core_throttles_total", "node_cpu_package_throttles_total", "node_cpu_isolated",
	"node_load1", "node_load5", "node_load15",
	"node_memory_MemTotal_bytes", "node_memory_Active_anon_bytes", "node_memory_Inactive_file_bytes", "node_memory_HugePages_Total", "node_memory_Hugepagesize_bytes",
	"node_filesystem_device_error", "node_filesystem_readonly",
	"node_disk_info", "node_disk_reads_completed_total", "node_disk_read_bytes_total", "node_disk_read_time_seconds_total", "node_disk_io_now",
	"node_disk_io_time_weighted_seconds_total", "node_disk_discards_completed_total", "node_disk_flush_requests_time_seconds_total",
	"node_disk_ata_rotation_rate_rpm", "node_disk_ata_write_cache_enabled",
	"node_network_receive_bytes_total", "node_network_receive_drop_total", "node_network_receive_multicast_total", "node_network_receive_nohandler_total",
	"node_network_transmit_colls_total", "node_network_transmit_carrier_total",
	"node_time_seconds", "node_time_zone_offset_seconds", "node_time_clocksource_available_info", "node_time_clocksource_current_info",
	"node_boot_time_seconds", "node_context_switches_total", "node_forks_total", "node_intr_total", "node_procs_running", "node_procs_blocked",
	"node_processes_pids", "node_processes_threads", "node_processes_state", "node_processes_max_processes", "node_processes_max_threads",
	"bulwark_host_uptime_seconds", "bulwark_process_up", "bulwark_process_restarts_total",
}

func TestGoldenMetrics(t *testing.T) {
	c := New(fixtureOptions(t))
	golden := filepath.Join("testdata", "fixture.prom")
	if *update {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		keep := map[string]bool{}
		for _, n := range goldenFamilies {
			keep[n] = true
		}
		var buf bytes.Buffer
		for _, f := range fams {
			if keep[f.GetName()] {
				if _, err := expfmt.MetricFamilyToText(&buf, f); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if err := testutil.CollectAndCompare(c, bytes.NewReader(want), goldenFamilies...); err != nil {
		t.Error(err)
	}
}

func TestCollectConcurrently(t *testing.T) {
	c := New(Options{Processes: []string{"go"}})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fams, err := reg.Gather()
			if err != nil {
				errs <- err
				return
			}
			if len(fams) < 50 {
				errs <- fmt.Errorf("only %d families gathered", len(fams))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestSampleRealHost checks a sample of this machine for sanity.
func TestSampleRealHost(t *testing.T) {
	c := New(Options{})
	if _, err := c.Sample(context.Background()); err != nil {
		t.Fatalf("first Sample: %v", err)
	}
	// busy_percent needs the CPU clock to tick (10 ms) between samples:
	// sample until it has, for at most 5 s.
	var (
		s   *Sample
		err error
	)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if s, err = c.Sample(context.Background()); err != nil {
			t.Fatalf("Sample: %v", err)
		}
		if s.CPU.BusyPercent != nil || time.Now().After(deadline) {
			break
		}
	}
	if s.CPU.Count < 1 || len(s.CPU.PerCPU) != s.CPU.Count {
		t.Errorf("CPU count %d with %d per-CPU entries", s.CPU.Count, len(s.CPU.PerCPU))
	}
	if s.CPU.BusyPercent == nil || *s.CPU.BusyPercent < 0 || *s.CPU.BusyPercent > 100 {
		t.Errorf("second sample's busy_percent = %v, want 0..100", fmtPtr(s.CPU.BusyPercent))
	}
	if s.Memory.TotalBytes == 0 || s.Memory.UsedPercent <= 0 || s.Memory.UsedPercent >= 100 {
		t.Errorf("memory %+v", s.Memory)
	}
	if len(s.Filesystems) == 0 || s.Processes.Total == 0 || s.Processes.Threads < s.Processes.Total || s.Uname.SysName != "Linux" {
		t.Errorf("filesystems %d, processes %+v, uname %+v", len(s.Filesystems), s.Processes, s.Uname)
	}
	if up := s.Clock.UptimeSeconds; up <= 0 || s.Clock.BootTime.After(s.Time) {
		t.Errorf("uptime %v, boot time %v", up, s.Clock.BootTime)
	}
}
