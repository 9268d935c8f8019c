package host

// SMART health through smartctl's JSON output (smartmontools 7+):
// `smartctl --json --scan` lists the devices, then
// `smartctl --json -i -H -A -d TYPE DEVICE` reads each one. smartctl's exit
// status is a bit mask in which bits 2 and up describe the disk rather than
// a failure to run, so its JSON is parsed whatever the exit status.

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// SMART is the SMART health of the host's disks.
type SMART struct {
	// Available is false when no SMART reading could be made at all;
	// Reason then says why and what to do.
	Available bool      `json:"available"`
	Reason    string    `json:"reason,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
	// Devices are the disks smartctl found (none in most virtual machines).
	Devices []SMARTDevice `json:"devices"`
}

// SMARTDevice is one disk's SMART reading.
type SMARTDevice struct {
	// Name is the device, e.g. /dev/sda; Type is smartctl's -d type.
	Name   string `json:"name"`
	Type   string `json:"type,omitempty"`
	Model  string `json:"model,omitempty"`
	Serial string `json:"serial,omitempty"`
	// Healthy is the overall-health self-assessment, null when smartctl
	// could not get one (Error says why).
	Healthy            *bool    `json:"healthy"`
	TemperatureCelsius *float64 `json:"temperature_celsius,omitempty"`
	PowerOnHours       *float64 `json:"power_on_hours,omitempty"`
	Error              string   `json:"error,omitempty"`
}

// smartctlNotInstalled is the reason given when smartctl is missing.
const smartctlNotInstalled = "smartctl is not installed (apt install smartmontools)"

// smartDeviceName and smartDeviceType bound what is passed back to
// smartctl from its own scan output.
var (
	smartDeviceName = regexp.MustCompile(`^/dev/[A-Za-z0-9_./-]+$`)
	smartDeviceType = regexp.MustCompile(`^[A-Za-z0-9_,+-]+$`)
)

type smartctlStatus struct {
	ExitStatus int `json:"exit_status"`
	Messages   []struct {
		String   string `json:"string"`
		Severity string `json:"severity"`
	} `json:"messages"`
}

// problem summarises smartctl's error messages.
func (s smartctlStatus) problem() string {
	var msgs []string
	for _, m := range s.Messages {
		if m.Severity == "error" || m.Severity == "" {
			msgs = append(msgs, m.String)
		}
	}
	return strings.Join(msgs, "; ")
}

// checkSMART runs smartctl; it never fails, it reports.
func (c *Collector) checkSMART(ctx context.Context) *SMART {
	out := &SMART{CheckedAt: c.o.Now(), Devices: []SMARTDevice{}}
	path, err := c.lookPath("smartctl")
	if err != nil {
		out.Reason = smartctlNotInstalled
		return out
	}
	scanOut, err := c.runTimed(ctx, path, "--json", "--scan")
	var scan struct {
		Devices []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"devices"`
		Smartctl smartctlStatus `json:"smartctl"`
	}
	if jerr := json.Unmarshal(scanOut, &scan); jerr != nil {
		if err == nil {
			err = fmt.Errorf("smartctl --json --scan: unreadable output: %w", jerr)
		}
		out.Reason = err.Error()
		return out
	}
	out.Available = true
	for _, d := range scan.Devices {
		out.Devices = append(out.Devices, c.smartDevice(ctx, path, d.Name, d.Type))
	}
	return out
}

func (c *Collector) smartDevice(ctx context.Context, path, name, typ string) SMARTDevice {
	dev := SMARTDevice{Name: name, Type: typ}
	if !smartDeviceName.MatchString(name) || (typ != "" && !smartDeviceType.MatchString(typ)) {
		dev.Error = fmt.Sprintf("smartctl --scan listed an unexpected device %q type %q; not queried", name, typ)
		return dev
	}
	args := []string{"--json", "-i", "-H", "-A"}
	if typ != "" {
		args = append(args, "-d", typ)
	}
	args = append(args, name)
	data, runErr := c.runTimed(ctx, path, args...)
	var r struct {
		ModelName    string `json:"model_name"`
		SerialNumber string `json:"serial_number"`
		SmartStatus  *struct {
			Passed bool `json:"passed"`
		} `json:"smart_status"`
		Temperature *struct {
			Current *float64 `json:"current"`
		} `json:"temperature"`
		PowerOnTime *struct {
			Hours *float64 `json:"hours"`
		} `json:"power_on_time"`
		Smartctl smartctlStatus `json:"smartctl"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		if runErr != nil {
			dev.Error = runErr.Error()
		} else {
			dev.Error = fmt.Sprintf("smartctl %s: unreadable output: %v", name, err)
		}
		return dev
	}
	dev.Model, dev.Serial = r.ModelName, r.SerialNumber
	if r.SmartStatus != nil {
		passed := r.SmartStatus.Passed
		dev.Healthy = &passed
	}
	if r.Temperature != nil {
		dev.TemperatureCelsius = r.Temperature.Current
	}
	if r.PowerOnTime != nil {
		dev.PowerOnHours = r.PowerOnTime.Hours
	}
	if dev.Healthy == nil {
		if p := r.Smartctl.problem(); p != "" {
			dev.Error = p
		} else {
			dev.Error = "smartctl gave no health status (SMART unsupported or disabled on this device?)"
		}
	}
	return dev
}

// runTimed runs a command bounded by Options.CommandTimeout.
func (c *Collector) runTimed(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.CommandTimeout)
	defer cancel()
	return c.run(ctx, name, args...)
}
