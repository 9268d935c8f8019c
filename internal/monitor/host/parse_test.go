package host

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// wantParseError checks err is a *ParseError at file:line whose message
// contains msg.
func wantParseError(t *testing.T, err error, file string, line int, msg string) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v, want a *ParseError", err)
	}
	if pe.File != file || pe.Line != line || !strings.Contains(pe.Msg, msg) {
		t.Errorf("error %q, want %s:%d and a message containing %q", err, file, line, msg)
	}
	if line > 0 && !strings.HasPrefix(err.Error(), file+":"+strconv.Itoa(line)+": ") {
		t.Errorf("error %q does not start with file:line", err)
	}
}

func TestParseMeminfo(t *testing.T) {
	tests := []struct {
		name, in string
		want     []MemInfoField
		errLine  int
		errMsg   string
	}{
		{
			name: "units and names",
			in:   "MemTotal:  100 kB\nActive(anon):  2 kB\n\nHugePages_Total:   3\nWeird(a)b(c): 1 kB\n",
			want: []MemInfoField{{"MemTotal_bytes", 102400}, {"Active_anon_bytes", 2048}, {"HugePages_Total", 3}, {"Weird_a)b(c_bytes", 1024}},
		},
		{name: "no colon", in: "MemTotal: 1 kB\nMemFree 2 kB\n", errLine: 2, errMsg: "want \"Name: value [kB]\""},
		{name: "bad number", in: "MemTotal: -1 kB\n", errLine: 1, errMsg: "invalid value"},
		{name: "overflow", in: "MemTotal: 99999999999999999999999 kB\n", errLine: 1, errMsg: "invalid value"},
		{name: "unknown unit", in: "MemTotal: 1 MB\n", errLine: 1, errMsg: "unknown unit"},
		{name: "too many fields", in: "MemTotal: 1 kB extra\n", errLine: 1, errMsg: "want"},
		{name: "empty", in: "", errMsg: "no fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMeminfo("/proc/meminfo", []byte(tt.in), newMeminfoNames(), nil)
			if tt.errMsg != "" {
				wantParseError(t, err, "/proc/meminfo", tt.errLine, tt.errMsg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name, in string
		want     procStat
		errLine  int
		errMsg   string
	}{
		{
			name: "old kernel with 4 modes, repeated key",
			in:   "cpu 100 200 300 400\ncpu0 100 200 300 400\nctxt 5\nctxt 6\nbtime 7\nintr 8 1 2\nprocesses 9\nprocs_running 10\nprocs_blocked 11\nsoftirq x y\n",
			want: procStat{
				all:  CPUTimes{CPU: -1, User: 1, Nice: 2, System: 3, Idle: 4},
				cpus: []CPUTimes{{CPU: 0, User: 1, Nice: 2, System: 3, Idle: 4}},
				intr: 8, contextSwitches: 6, bootTime: 7, forks: 9, procsRunning: 10, procsBlocked: 11,
			},
		},
		{name: "bad cpu name", in: "cpu 1 2 3 4\ncpuX 1 2 3 4\n", errLine: 2, errMsg: "invalid cpu name"},
		{name: "short cpu line", in: "cpu 1 2 3\n", errLine: 1, errMsg: "want at least 4"},
		{name: "bad value", in: "cpu 1 2 3 4\ncpu0 1 2 3 4\nbtime soon\n", errLine: 3, errMsg: "invalid btime"},
		{name: "key without value", in: "cpu 1 2 3 4\ncpu0 1 2 3 4\nctxt\n", errLine: 3, errMsg: "no value"},
		{name: "no per-cpu lines", in: "cpu 1 2 3 4\n", errMsg: "no cpu lines"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got procStat
			err := parseStat("/proc/stat", []byte(tt.in), &got)
			if tt.errMsg != "" {
				wantParseError(t, err, "/proc/stat", tt.errLine, tt.errMsg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(procStat{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseLoadavgAndUptime(t *testing.T) {
	l, err := parseLoadavg("/proc/loadavg", []byte("0.80 0.76 0.37 1/140 357\n"))
	if err != nil || l != (Load{0.8, 0.76, 0.37}) {
		t.Errorf("parseLoadavg = %+v, %v", l, err)
	}
	_, err = parseLoadavg("/proc/loadavg", []byte("0.80 NaN 0.37 1/140 357\n"))
	wantParseError(t, err, "/proc/loadavg", 1, "invalid load average")
	_, err = parseLoadavg("/proc/loadavg", []byte("0.80\n"))
	wantParseError(t, err, "/proc/loadavg", 1, "want 3 load averages")
	u, err := parseUptime("/proc/uptime", []byte("440.79 605.36\n"))
	if err != nil || u != 440.79 {
		t.Errorf("parseUptime = %v, %v", u, err)
	}
	_, err = parseUptime("/proc/uptime", []byte("1e400 5\n"))
	wantParseError(t, err, "/proc/uptime", 1, "invalid uptime")
}

func TestParseDiskstats(t *testing.T) {
	in := " 254 0 vda 79289 14248 3261410 20962 39619 31769 3785696 12885 0 12420 35161 18362 23 1553840 1102 6317 211\n" +
		"   8 0 sdb 1 2 3 4 5 6 7 8 9 10 11\n" +
		"   8 16 sdc 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19\n"
	got, err := parseDiskstats("/proc/diskstats", []byte(in), interner{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []diskStat{
		{major: 254, minor: 0, name: "vda", n: 17, val: [17]uint64{79289, 14248, 3261410, 20962, 39619, 31769, 3785696, 12885, 0, 12420, 35161, 18362, 23, 1553840, 1102, 6317, 211}},
		{major: 8, minor: 0, name: "sdb", n: 11, val: [17]uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{major: 8, minor: 16, name: "sdc", n: 17, val: [17]uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(diskStat{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, tt := range []struct{ name, in, msg string }{
		{"partition format of 2.6", "8 1 sda1 1 2 3 4\n", "want at least 14"},
		{"bad device number", "8 x sda 1 2 3 4 5 6 7 8 9 10 11\n", "invalid device number"},
		{"major too large", "4294967296 0 sda 1 2 3 4 5 6 7 8 9 10 11\n", "invalid device number"},
		{"bad counter", "8 0 sda 1 2 3 4 5 6 7 8 9 10 1.5\n", "invalid counter"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseDiskstats("/proc/diskstats", []byte("8 0 sda 1 2 3 4 5 6 7 8 9 10 11\n"+tt.in), interner{}, nil)
			wantParseError(t, err, "/proc/diskstats", 2, tt.msg)
		})
	}
}

func TestParseNetDev(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "proc", "net", "dev"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseNetDev("/proc/net/dev", data, interner{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []netDevStat{
		{name: "lo", val: [16]uint64{1000, 10, 0, 0, 0, 0, 0, 0, 1000, 10}},
		{name: "eth0", val: [16]uint64{5000000, 4000, 1, 2, 3, 4, 5, 6, 600000, 3000, 7, 8, 9, 10, 11, 12}},
		{name: "wg0", val: [16]uint64{100, 1, 0, 0, 0, 0, 0, 0, 200, 2}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(netDevStat{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Kernels before 2.6 had no space after the colon.
	got, err = parseNetDev("/proc/net/dev", []byte("h1\nh2\neth1:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"), interner{}, nil)
	if err != nil || len(got) != 1 || got[0].name != "eth1" || got[0].val[15] != 16 {
		t.Errorf("no-space format: %+v, %v", got, err)
	}
	header := "Inter-|   Receive\n face |bytes\n"
	for _, tt := range []struct{ name, in, msg string }{
		{"no colon", "eth0 1 2 3\n", "no ':'"},
		{"empty name", " : 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", "empty interface name"},
		{"blank in name", "eth 0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", "invalid interface name"},
		{"too few counters", "eth0: 1 2 3\n", "3 counters, want 16"},
		{"bad counter", "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 -16\n", "invalid counter"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseNetDev("/proc/net/dev", []byte(header+tt.in), interner{}, nil)
			wantParseError(t, err, "/proc/net/dev", 3, tt.msg)
		})
	}
}

func TestParseMounts(t *testing.T) {
	in := "/dev/sda1 / ext4 rw,relatime 0 0\n" +
		"/dev/sdb1 /srv/a\\040b\\011c\\134d xfs noatime,ro 0 0\n" +
		"srv:/x /mnt/nfs nfs4 rw,rom 0 0\n" +
		"x /bad\\09 ext4 rw 0 0\n"
	got, err := parseMounts("/proc/1/mounts", []byte(in), interner{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []mount{
		{device: "/dev/sda1", mountPoint: "/", fsType: "ext4"},
		{device: "/dev/sdb1", mountPoint: "/srv/a b\tc\\d", fsType: "xfs", readOnly: true},
		{device: "srv:/x", mountPoint: "/mnt/nfs", fsType: "nfs4"},
		{device: "x", mountPoint: "/bad\\09", fsType: "ext4"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(mount{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	_, err = parseMounts("/proc/1/mounts", []byte("/dev/sda1 / ext4 rw 0 0\n/dev/sdb1 /srv\n"), interner{}, nil)
	wantParseError(t, err, "/proc/1/mounts", 2, "want device, mount point, type and options")
}

func TestParsePidStat(t *testing.T) {
	tests := []struct {
		name, in string
		want     pidStat
		msg      string
	}{
		{name: "plain", in: pidStatLine(42, "nginx", 'S', 3, 1234), want: pidStat{comm: []byte("nginx"), state: 'S', threads: 3, startTime: 1234}},
		{name: "spaces and parentheses", in: pidStatLine(7, "a) (b", 'D', 1, 9), want: pidStat{comm: []byte("a) (b"), state: 'D', threads: 1, startTime: 9}},
		{name: "empty name", in: pidStatLine(8, "", 'Z', 1, 9), want: pidStat{comm: []byte{}, state: 'Z', threads: 1, startTime: 9}},
		{name: "no parentheses", in: "42 nginx S 1", msg: "no (comm)"},
		{name: "truncated", in: "42 (nginx) S 1 2 3", msg: "too few fields"},
		{name: "bad threads", in: strings.Replace(pidStatLine(42, "x", 'S', 3, 1234), " 3 0 1234 ", " -3 0 1234 ", 1), msg: "invalid num_threads"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePidStat("/proc/42/stat", []byte(tt.in))
			if tt.msg != "" {
				wantParseError(t, err, "/proc/42/stat", 1, tt.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(pidStat{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string][]int{
		"":              nil,
		"1":             {1},
		"0-3,8,10-11":   {0, 1, 2, 3, 8, 10, 11},
		"3-1,x,5":       {5},
		"0-99999999999": nil,
	} {
		if diff := cmp.Diff(want, parseCPUList([]byte(in))); diff != "" {
			t.Errorf("parseCPUList(%q) (-want +got):\n%s", in, diff)
		}
	}
}

func TestMangleMeminfo(t *testing.T) {
	for _, tt := range []struct {
		in      string
		hasUnit bool
		want    string
	}{
		{"Active(anon)", true, "Active_anon_bytes"},
		{"Inactive(file)", true, "Inactive_file_bytes"},
		{"HugePages_Total", false, "HugePages_Total"},
		{"Hugepagesize", true, "Hugepagesize_bytes"},
		{"NFS_Unstable", true, "NFS_Unstable_bytes"},
		{"Odd)(", true, "Odd)(_bytes"},
	} {
		if got := mangleMeminfo(tt.in, tt.hasUnit); got != tt.want {
			t.Errorf("mangleMeminfo(%q, %v) = %q, want %q", tt.in, tt.hasUnit, got, tt.want)
		}
	}
}

// Fuzz targets: the parsers must never panic, and what they accept must be
// self-consistent.

func fuzzSeeds(f *testing.F, files ...string) {
	for _, name := range files {
		data, err := os.ReadFile(filepath.Join("testdata", "proc", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

func FuzzParseMeminfo(f *testing.F) {
	fuzzSeeds(f, "meminfo")
	f.Add([]byte("A(b): 1 kB\nHugePages_Total: 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseMeminfo("meminfo", data, newMeminfoNames(), nil)
		if err == nil && len(got) == 0 {
			t.Error("no error and no fields")
		}
		for _, f := range got {
			if f.Name == "" || f.Value < 0 {
				t.Errorf("bad field %+v", f)
			}
		}
	})
}

func FuzzParseStat(f *testing.F) {
	fuzzSeeds(f, "stat")
	f.Add([]byte("cpu 1 2 3 4\ncpu0 1 2 3 4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var st procStat
		if err := parseStat("stat", data, &st); err == nil && len(st.cpus) == 0 {
			t.Error("no error and no CPUs")
		}
	})
}

func FuzzParseDiskstats(f *testing.F) {
	fuzzSeeds(f, "diskstats")
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseDiskstats("diskstats", data, interner{}, nil)
		if err != nil {
			return
		}
		for _, d := range got {
			if d.n < 11 || d.n > diskStatFields || d.name == "" {
				t.Errorf("bad disk %+v", d)
			}
		}
	})
}

func FuzzParseNetDev(f *testing.F) {
	fuzzSeeds(f, "net/dev")
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseNetDev("net/dev", data, interner{}, nil)
		if err != nil {
			return
		}
		for _, n := range got {
			if n.name == "" || strings.ContainsAny(n.name, " \t:\n") {
				t.Errorf("bad interface name %q", n.name)
			}
		}
	})
}

func FuzzParseMounts(f *testing.F) {
	fuzzSeeds(f, "1/mounts")
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := parseMounts("mounts", data, interner{}, nil)
		if err != nil {
			return
		}
		for _, m := range got {
			if m.device == "" || m.mountPoint == "" || m.fsType == "" {
				t.Errorf("bad mount %+v", m)
			}
		}
	})
}

func FuzzParsePidStat(f *testing.F) {
	fuzzSeeds(f, "1/stat", "400/stat")
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parsePidStat("stat", data)
		if err == nil && !strings.Contains(string(data), "("+string(st.comm)+")") {
			t.Errorf("command %q is not the parenthesised part of %q", st.comm, data)
		}
	})
}

func FuzzParseAptSimulation(f *testing.F) {
	f.Add([]byte(aptSample))
	f.Fuzz(func(t *testing.T, data []byte) {
		u := parseAptSimulation(data)
		var sum int
		for _, o := range u.ByOrigin {
			sum += o.Count
		}
		if sum != u.Upgradable || u.Security > u.Upgradable {
			t.Errorf("inconsistent counts %+v", u)
		}
	})
}
