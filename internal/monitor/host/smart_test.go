package host

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const smartScan = `{"json_format_version":[1,0],"smartctl":{"exit_status":0},"devices":[
 {"name":"/dev/sda","info_name":"/dev/sda [SAT]","type":"sat","protocol":"ATA"},
 {"name":"/dev/nvme0","info_name":"/dev/nvme0","type":"nvme","protocol":"NVMe"},
 {"name":"/dev/sdb","info_name":"/dev/sdb","type":"scsi","protocol":"SCSI"},
 {"name":"--version","type":"sat"}
]}`

const smartSda = `{"smartctl":{"exit_status":0},"model_name":"WDC WD40EFRX","serial_number":"WD-123",
 "smart_status":{"passed":true},"temperature":{"current":31},"power_on_time":{"hours":20345}}`

// smartNvme is a failing disk: smartctl sets bit 3 of its exit status.
const smartNvme = `{"smartctl":{"exit_status":8},"model_name":"Samsung SSD 970","serial_number":"S4",
 "smart_status":{"passed":false},"temperature":{"current":45}}`

const smartSdb = `{"smartctl":{"exit_status":4,"messages":[{"string":"SMART support is: Unavailable - device lacks SMART capability.","severity":"error"}]},
 "model_name":"QEMU HARDDISK"}`

func TestSMART(t *testing.T) {
	opts := fixtureOptions(t)
	opts.SMART = true
	c := New(opts)
	fake := &fakeCommands{outputs: map[string]fakeResult{
		"smartctl --json --scan":                      {out: smartScan},
		"smartctl --json -i -H -A -d sat /dev/sda":    {out: smartSda},
		"smartctl --json -i -H -A -d nvme /dev/nvme0": {out: smartNvme, err: errors.New("exit status 8")},
		"smartctl --json -i -H -A -d scsi /dev/sdb":   {out: smartSdb, err: errors.New("exit status 4")},
	}}
	fake.install(c)
	s, err := c.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := &SMART{
		Available: true,
		CheckedAt: fixedNow,
		Devices: []SMARTDevice{
			{Name: "/dev/sda", Type: "sat", Model: "WDC WD40EFRX", Serial: "WD-123", Healthy: ptr(true), TemperatureCelsius: ptr(31.0), PowerOnHours: ptr(20345.0)},
			{Name: "/dev/nvme0", Type: "nvme", Model: "Samsung SSD 970", Serial: "S4", Healthy: ptr(false), TemperatureCelsius: ptr(45.0)},
			{Name: "/dev/sdb", Type: "scsi", Model: "QEMU HARDDISK", Error: "SMART support is: Unavailable - device lacks SMART capability."},
			{Name: "--version", Type: "sat", Error: `smartctl --scan listed an unexpected device "--version" type "sat"; not queried`},
		},
	}
	if diff := cmp.Diff(want, s.SMART); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, call := range fake.calls {
		if strings.Contains(call, "--version") {
			t.Errorf("smartctl was run on a suspicious device name: %q", call)
		}
	}
	exp := `# HELP bulwark_smart_available Whether smartctl could be run to read the disks' SMART health (1 = yes, 0 = no).
# TYPE bulwark_smart_available gauge
bulwark_smart_available 1
# HELP bulwark_smart_healthy SMART overall-health self-assessment of the disk (1 = passed, 0 = failed).
# TYPE bulwark_smart_healthy gauge
bulwark_smart_healthy{device="/dev/nvme0"} 0
bulwark_smart_healthy{device="/dev/sda"} 1
# HELP bulwark_smart_temperature_celsius Disk temperature reported by SMART.
# TYPE bulwark_smart_temperature_celsius gauge
bulwark_smart_temperature_celsius{device="/dev/nvme0"} 45
bulwark_smart_temperature_celsius{device="/dev/sda"} 31
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(exp), "bulwark_smart_available", "bulwark_smart_healthy", "bulwark_smart_temperature_celsius"); err != nil {
		t.Error(err)
	}
}

func TestSMARTUnavailable(t *testing.T) {
	tests := []struct {
		name       string
		fake       *fakeCommands
		wantReason string
	}{
		{"smartctl missing", &fakeCommands{missing: map[string]bool{"smartctl": true}}, smartctlNotInstalled},
		{"scan fails", &fakeCommands{outputs: map[string]fakeResult{"smartctl --json --scan": {err: errors.New("exit status 1: permission denied")}}}, "exit status 1: permission denied"},
		{"scan unreadable", &fakeCommands{outputs: map[string]fakeResult{"smartctl --json --scan": {out: "/dev/sda -d sat"}}}, "unreadable output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fixtureOptions(t)
			opts.SMART = true
			c := New(opts)
			tt.fake.install(c)
			s, err := c.Sample(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if s.SMART == nil || s.SMART.Available || !strings.Contains(s.SMART.Reason, tt.wantReason) {
				t.Errorf("SMART = %+v, want unavailable because %q", s.SMART, tt.wantReason)
			}
			exp := "# HELP bulwark_smart_available Whether smartctl could be run to read the disks' SMART health (1 = yes, 0 = no).\n# TYPE bulwark_smart_available gauge\nbulwark_smart_available 0\n"
			if err := testutil.CollectAndCompare(c, strings.NewReader(exp), "bulwark_smart_available", "bulwark_smart_healthy"); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestSMARTJSONWhenMissing is the wording the brief asks for, in JSON.
func TestSMARTJSONWhenMissing(t *testing.T) {
	opts := fixtureOptions(t)
	opts.SMART = true
	c := New(opts)
	(&fakeCommands{missing: map[string]bool{"smartctl": true}}).install(c)
	s, err := c.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s.SMART)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"available":false,"reason":"smartctl is not installed (apt install smartmontools)","checked_at":"2026-03-01T12:00:00Z","devices":[]}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
}
