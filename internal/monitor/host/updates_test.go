package host

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// aptSample is apt-get --just-print dist-upgrade output from Debian 12,
// plus an Ubuntu line and a new package.
const aptSample = `Reading package lists...
Building dependency tree...
Calculating upgrade...
The following packages will be upgraded:
  bash jq libgcrypt20
Inst base-files [12.4+deb12u11] (12.4+deb12u15 Debian:12.15/oldstable [amd64])
Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
Inst libgcrypt20-dev [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64]) []
Inst liblzma-dev [5.4.1-1] (5.4.1-1+deb12u2 Debian-Security:12/oldstable-security [amd64]) []
Inst python3-jwt [2.6.0-1] (2.6.0-1+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [all])
Inst linux-image-6.1.0-40-amd64 (6.1.153-1 Debian-Security:12/oldstable-security [amd64])
Inst openssl [3.0.2-0ubuntu1.15] (3.0.2-0ubuntu1.18 Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security [amd64])
Conf bash (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
Conf python3-jwt (2.6.0-1+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [all])
`

func TestParseAptSimulation(t *testing.T) {
	got := parseAptSimulation([]byte(aptSample))
	want := Updates{
		Upgradable: 7,
		Security:   5,
		ByOrigin: []UpgradeOrigin{
			{Origin: "Debian-Security:12/oldstable-security", Arch: "amd64", Count: 2},
			{Origin: "Debian:12.15/oldstable", Arch: "amd64", Count: 2},
			{Origin: "Debian:12.15/oldstable,Debian-Security:12/oldstable-security", Arch: "all", Count: 1},
			{Origin: "Debian:12.15/oldstable,Debian-Security:12/oldstable-security", Arch: "amd64", Count: 1},
			{Origin: "Ubuntu:22.04/jammy-updates,Ubuntu:22.04/jammy-security", Arch: "amd64", Count: 1},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := parseAptSimulation([]byte("Reading package lists...\n0 upgraded, 0 newly installed.\n")); got.Upgradable != 0 || len(got.ByOrigin) != 0 {
		t.Errorf("nothing to upgrade: %+v", got)
	}
	if got := parseAptSimulation([]byte("Inst odd\nInst odd2 (1.0)\n")); got.Upgradable != 2 || len(got.ByOrigin) != 1 || got.ByOrigin[0] != (UpgradeOrigin{Count: 2}) {
		t.Errorf("unparsable lines: %+v", got)
	}
}

// fakeCommands stands in for exec: it answers per program and records the
// calls.
type fakeCommands struct {
	mu      sync.Mutex
	calls   []string
	outputs map[string]fakeResult // by "name args"
	missing map[string]bool
}

type fakeResult struct {
	out string
	err error
}

func (f *fakeCommands) install(c *Collector) {
	c.lookPath = func(file string) (string, error) {
		if f.missing[file] {
			return "", errors.New("executable file not found in $PATH")
		}
		return "/usr/bin/" + file, nil
	}
	c.run = func(ctx context.Context, name string, args ...string) ([]byte, error) {
		key := strings.TrimPrefix(name, "/usr/bin/") + " " + strings.Join(args, " ")
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls = append(f.calls, key)
		r, ok := f.outputs[key]
		if !ok {
			return nil, errors.New("unexpected command " + key)
		}
		return []byte(r.out), r.err
	}
}

func (f *fakeCommands) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func TestUpdatesCachedAndReported(t *testing.T) {
	now := fixedNow
	opts := fixtureOptions(t)
	opts.Updates = true
	opts.UpdatesEvery = time.Hour
	opts.Now = func() time.Time { return now }
	c := New(opts)
	fake := &fakeCommands{outputs: map[string]fakeResult{"apt-get --just-print dist-upgrade": {out: aptSample}}}
	fake.install(c)

	s, err := c.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Updates == nil || !s.Updates.Available || s.Updates.Upgradable != 7 || s.Updates.Security != 5 || !s.Updates.CheckedAt.Equal(fixedNow) {
		t.Fatalf("Updates = %+v", s.Updates)
	}
	now = now.Add(59 * time.Minute)
	if _, err := c.Sample(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := fake.callCount(); n != 1 {
		t.Errorf("apt-get ran %d times within UpdatesEvery, want 1", n)
	}
	now = now.Add(2 * time.Minute)
	s, err = c.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := fake.callCount(); n != 2 || !s.Updates.CheckedAt.Equal(now) {
		t.Errorf("after UpdatesEvery: %d runs, checked at %v; want 2 runs, checked at %v", n, s.Updates.CheckedAt, now)
	}
	want := `# HELP apt_upgrades_pending Apt package pending updates by origin.
# TYPE apt_upgrades_pending gauge
apt_upgrades_pending{arch="all",origin="Debian:12.15/oldstable,Debian-Security:12/oldstable-security"} 1
apt_upgrades_pending{arch="amd64",origin="Debian-Security:12/oldstable-security"} 2
apt_upgrades_pending{arch="amd64",origin="Debian:12.15/oldstable"} 2
apt_upgrades_pending{arch="amd64",origin="Debian:12.15/oldstable,Debian-Security:12/oldstable-security"} 1
apt_upgrades_pending{arch="amd64",origin="Ubuntu:22.04/jammy-updates,Ubuntu:22.04/jammy-security"} 1
# HELP bulwark_apt_available Whether apt-get could be run to count pending updates (1 = yes, 0 = no).
# TYPE bulwark_apt_available gauge
bulwark_apt_available 1
# HELP bulwark_apt_security_upgrades_pending Pending package updates coming from a security archive.
# TYPE bulwark_apt_security_upgrades_pending gauge
bulwark_apt_security_upgrades_pending 5
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "apt_upgrades_pending", "bulwark_apt_available", "bulwark_apt_security_upgrades_pending"); err != nil {
		t.Error(err)
	}
}

func TestUpdatesUnavailable(t *testing.T) {
	tests := []struct {
		name       string
		fake       *fakeCommands
		wantReason string
	}{
		{"apt-get missing", &fakeCommands{missing: map[string]bool{"apt-get": true}}, aptNotInstalled},
		{"apt-get fails", &fakeCommands{outputs: map[string]fakeResult{"apt-get --just-print dist-upgrade": {err: errors.New("exit status 100: E: Could not open lock file")}}}, "Could not open lock file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fixtureOptions(t)
			opts.Updates = true
			c := New(opts)
			tt.fake.install(c)
			s, err := c.Sample(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want := &Updates{Reason: tt.wantReason, CheckedAt: fixedNow, ByOrigin: []UpgradeOrigin{}}
			if diff := cmp.Diff(want, s.Updates, cmpopts.IgnoreFields(Updates{}, "Reason")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if !strings.Contains(s.Updates.Reason, tt.wantReason) {
				t.Errorf("reason %q, want it to contain %q", s.Updates.Reason, tt.wantReason)
			}
			exp := "# HELP bulwark_apt_available Whether apt-get could be run to count pending updates (1 = yes, 0 = no).\n# TYPE bulwark_apt_available gauge\nbulwark_apt_available 0\n"
			if err := testutil.CollectAndCompare(c, strings.NewReader(exp), "bulwark_apt_available", "apt_upgrades_pending"); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestUpdatesNothingPending(t *testing.T) {
	opts := fixtureOptions(t)
	opts.Updates = true
	c := New(opts)
	(&fakeCommands{outputs: map[string]fakeResult{"apt-get --just-print dist-upgrade": {out: "Reading package lists...\n0 upgraded\n"}}}).install(c)
	// As apt.sh: an explicit zero series rather than none.
	exp := "# HELP apt_upgrades_pending Apt package pending updates by origin.\n# TYPE apt_upgrades_pending gauge\napt_upgrades_pending{arch=\"\",origin=\"\"} 0\n"
	if err := testutil.CollectAndCompare(c, strings.NewReader(exp), "apt_upgrades_pending"); err != nil {
		t.Error(err)
	}
}

// TestCachedRefreshOnce checks that concurrent callers do not start a
// second refresh: without a value they wait for the first, with a stale one
// they get it at once.
func TestCachedRefreshOnce(t *testing.T) {
	var c cached[int]
	ctx := context.Background()
	release := make(chan struct{})
	started := make(chan struct{})
	var refreshes int
	slow := func(context.Context) *int {
		refreshes++
		close(started)
		<-release
		v := refreshes
		return &v
	}
	t0 := fixedNow
	first := make(chan *int)
	go func() { first <- c.get(ctx, t0, time.Minute, slow) }()
	<-started
	second := make(chan *int)
	go func() {
		second <- c.get(ctx, t0, time.Minute, func(context.Context) *int { t.Error("second refresh started"); return nil })
	}()
	close(release)
	if v := <-first; v == nil || *v != 1 {
		t.Fatalf("first = %v", v)
	}
	if v := <-second; v == nil || *v != 1 {
		t.Fatalf("second (waited) = %v", v)
	}

	// Stale: one caller refreshes, another gets the old value meanwhile.
	release, started = make(chan struct{}), make(chan struct{})
	t1 := t0.Add(2 * time.Minute)
	go func() { first <- c.get(ctx, t1, time.Minute, slow) }()
	<-started
	if v := c.get(ctx, t1, time.Minute, func(context.Context) *int { t.Error("concurrent refresh started"); return nil }); v == nil || *v != 1 {
		t.Errorf("during refresh = %v, want the previous value 1", v)
	}
	close(release)
	if v := <-first; v == nil || *v != 2 {
		t.Errorf("refreshed = %v, want 2", v)
	}
	if v := c.get(ctx, t1.Add(time.Second), time.Minute, func(context.Context) *int { t.Error("refreshed while fresh"); return nil }); *v != 2 {
		t.Errorf("fresh = %v, want 2", *v)
	}
}

func TestRunCommand(t *testing.T) {
	out, err := runCommand(context.Background(), "sh", "-c", `echo "locale=$LC_ALL"; echo oops >&2; exit 3`)
	if string(out) != "locale=C\n" {
		t.Errorf("stdout = %q, want the output under the C locale", out)
	}
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "oops") {
		t.Errorf("error = %v, want the exit status and standard error", err)
	}
	if _, err := runCommand(context.Background(), "sh", "-c", "exit 0"); err != nil {
		t.Errorf("successful command: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := runCommand(ctx, "sh", "-c", "exec sleep 30"); err == nil {
		t.Error("a command past its deadline did not fail")
	}
}
