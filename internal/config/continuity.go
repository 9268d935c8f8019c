package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/continuity/schedule"
	"github.com/bulwarkhq/bulwark/internal/events"
)

// Continuity configures backups: the repositories they go to and the
// policies that say what is backed up, when, where and for how long. The
// scheduler in `bulwark up` runs the policies; `bulwark policy run` runs
// one at once.
type Continuity struct {
	// Repositories are the places backups go, each with a name policies
	// refer to.
	Repositories []Repository `yaml:"repositories"`
	// Policies are the backup jobs.
	Policies []Policy `yaml:"policies"`
}

// Repository is one backup repository.
type Repository struct {
	// Name is how policies refer to it.
	Name string `yaml:"name"`
	// Location is a directory (absolute), https://HOST:PORT/NAME (a vault)
	// or s3:https://HOST[:PORT]/BUCKET[/PREFIX].
	Location string `yaml:"location"`
	// Password opens the repository (a write-only key is enough for
	// backups and copies; forget, prune, restore tests and scrubs need a
	// full key).
	Password Secret `yaml:"password"`
	// VaultToken is the token for a vault location.
	VaultToken Secret `yaml:"vault_token"`
	// CACert is a PEM file of certificates to trust for a vault or S3
	// location (absolute path). Optional.
	CACert string `yaml:"cacert"`
	// S3AccessKey and S3SecretKey are S3 credentials; without them the
	// usual AWS environment variables and files are used.
	S3AccessKey Secret `yaml:"s3_access_key"`
	S3SecretKey Secret `yaml:"s3_secret_key"`
	// Insecure allows a plain http:// vault or S3 location, and only on a
	// loopback address (test setups).
	Insecure bool `yaml:"insecure"`
}

// Policy is one backup job.
type Policy struct {
	// Name identifies the policy (in commands, the API, events and
	// snapshot tags).
	Name string `yaml:"name"`
	// Sources are what is backed up; each becomes its own snapshot.
	Sources []Source `yaml:"sources"`
	// Schedule is when the policy runs: "every 2h", "@daily", or a 5-field
	// cron expression ("0 */2 * * *"). Empty: only when run by hand.
	Schedule string `yaml:"schedule"`
	// Jitter delays each run by a fixed amount between 0 and Jitter,
	// derived from the policy name, so that many policies with the same
	// schedule do not start at once.
	Jitter Duration `yaml:"jitter"`
	// Repository is the primary repository (a name from repositories).
	Repository string `yaml:"repository"`
	// Offsite are repositories every new snapshot is copied to.
	Offsite []string `yaml:"offsite"`
	// Retention is applied to the primary (and offsite copies with a full
	// key) after each run.
	Retention Retention `yaml:"retention"`
	// RPO is the recovery-point objective: the newest complete snapshot of
	// each source in each repository must be younger than this. 0: no
	// watch.
	RPO Duration `yaml:"rpo"`
	// Tags are added to every snapshot of the policy (besides
	// "policy=NAME").
	Tags []string `yaml:"tags"`
	// Host is recorded as the snapshots' host (default: this host's name).
	Host string `yaml:"host"`
	// RestoreTest configures periodic restore tests.
	RestoreTest RestoreTest `yaml:"restore_test"`
	// Scrub configures periodic re-reading of the repositories.
	Scrub Scrub `yaml:"scrub"`
}

// Source is one thing a policy backs up: exactly one of Paths, Postgres,
// MySQL or Command.
type Source struct {
	// Name labels the source in reports (default: its kind and first path
	// or database).
	Name string `yaml:"name"`
	// Paths are absolute paths to back up.
	Paths []string `yaml:"paths"`
	// Exclude are patterns to leave out (as backup --exclude).
	Exclude []string `yaml:"exclude"`
	// OneFileSystem does not cross into other file systems.
	OneFileSystem bool `yaml:"one_file_system"`
	// Postgres is a PostgreSQL DSN (libpq URL or key=value string).
	Postgres Secret `yaml:"postgres"`
	// MySQL is a MariaDB/MySQL DSN.
	MySQL Secret `yaml:"mysql"`
	// Command is a program and its arguments whose standard output is
	// backed up as one file, named Output.
	Command []string `yaml:"command"`
	// Output is the file name of Command's output (default "output").
	Output string `yaml:"output"`
}

// Retention is the keep policy of forget; with all zero nothing is ever
// removed.
type Retention struct {
	KeepLast    int      `yaml:"keep_last"`
	KeepHourly  int      `yaml:"keep_hourly"`
	KeepDaily   int      `yaml:"keep_daily"`
	KeepWeekly  int      `yaml:"keep_weekly"`
	KeepMonthly int      `yaml:"keep_monthly"`
	KeepYearly  int      `yaml:"keep_yearly"`
	KeepWithin  Duration `yaml:"keep_within"`
	// Prune removes the data of forgotten snapshots after each forget.
	Prune bool `yaml:"prune"`
}

// Empty reports whether no keep rule is set.
func (r Retention) Empty() bool {
	return r.KeepLast == 0 && r.KeepHourly == 0 && r.KeepDaily == 0 && r.KeepWeekly == 0 &&
		r.KeepMonthly == 0 && r.KeepYearly == 0 && r.KeepWithin == 0
}

// RestoreTest configures restore tests of a policy.
type RestoreTest struct {
	// Schedule is when to test (same syntax as Policy.Schedule); empty:
	// only on demand (`bulwark restore-test`).
	Schedule string `yaml:"schedule"`
	// Command, when set, runs after each restore with the restored
	// directory as its working directory and BULWARK_RESTORE_DIR set
	// (BULWARK_SCRATCH_DATABASES names the scratch databases, which exist
	// while it runs); a non-zero exit fails the test.
	Command []string `yaml:"command"`
	// Scratch is the directory restores go to (default: a temporary
	// directory), absolute. It is emptied after each test.
	Scratch string `yaml:"scratch"`
	// Postgres and MySQL are DSNs of scratch servers database dumps are
	// restored into (a database named bulwark_restore_test_* is created
	// and dropped). Without one, dumps are only read and verified.
	Postgres Secret `yaml:"postgres"`
	MySQL    Secret `yaml:"mysql"`
}

// Scrub configures periodic verification of stored data.
type Scrub struct {
	// Schedule is when to scrub (same syntax as Policy.Schedule).
	Schedule string `yaml:"schedule"`
	// Period is how long a full pass may take: each scrub reads the share
	// of the packs that makes every byte re-verified at least once per
	// Period (default 30d).
	Period Duration `yaml:"period"`
}

var policyNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// ScheduleCheck validates schedule strings (tests may replace it).
var ScheduleCheck = func(s string) error {
	sch, err := schedule.Parse(s)
	if err != nil {
		return err
	}
	if sch.Next(time.Now()).IsZero() {
		return fmt.Errorf("schedule %q never fires (no such date)", s)
	}
	return nil
}

func checkSchedule(c *checker, field, s string) {
	if s == "" || ScheduleCheck == nil {
		return
	}
	if err := ScheduleCheck(s); err != nil {
		c.errorf(field, "%v", err)
	}
}

func checkLocation(c *checker, field, loc string, insecure bool) {
	if u, err := url.Parse(strings.TrimPrefix(loc, "s3:")); err == nil && u.User != nil {
		c.errorf(field, "credentials in the location are not allowed (they would show in reports and logs): use vault_token, or s3_access_key and s3_secret_key")
		return
	}
	switch {
	case loc == "":
		c.errorf(field, "required: a directory, https://HOST:PORT/NAME (vault) or s3:https://HOST/BUCKET/PREFIX")
	case strings.HasPrefix(loc, "s3:http://") && !insecure:
		c.errorf(field, "plain http is not allowed for a repository; use s3:https:// (insecure: true allows http on a loopback address)")
	case strings.HasPrefix(loc, "s3:"), strings.HasPrefix(loc, "https://"):
	case strings.HasPrefix(loc, "http://") && insecure:
	case strings.HasPrefix(loc, "http://"):
		c.errorf(field, "plain http is not allowed for a repository; use https:// (insecure: true allows http on a loopback address)")
	case strings.Contains(loc, "://"):
		c.errorf(field, "%q: unknown scheme; use a directory, https:// or s3:", loc)
	case !isAbs(loc):
		c.errorf(field, "%q is not an absolute path", loc)
	}
}

func (r Repository) validate(c *checker) {
	if !policyNameRE.MatchString(r.Name) {
		c.errorf("name", "%q: use a lower-case letter, then up to 62 of a-z, 0-9, _ and -", r.Name)
	}
	checkLocation(c, "location", r.Location, r.Insecure)
	if r.Insecure && !strings.Contains(r.Location, "http://") {
		c.errorf("insecure", "only for an http:// location")
	}
	if !r.Password.IsSet() {
		c.errorf("password", "required; give {env: NAME} or {file: /path}")
	}
	if r.VaultToken.IsSet() && !strings.HasPrefix(r.Location, "https://") && !strings.HasPrefix(r.Location, "http://") {
		c.errorf("vault_token", "only for a vault location (https://HOST:PORT/NAME)")
	}
	if r.S3AccessKey.IsSet() != r.S3SecretKey.IsSet() {
		c.errorf("s3_secret_key", "give both s3_access_key and s3_secret_key, or neither")
	}
	c.absPath("cacert", r.CACert)
}

func (p Policy) validate(c *checker) {
	if !policyNameRE.MatchString(p.Name) {
		c.errorf("name", "%q: use a lower-case letter, then up to 62 of a-z, 0-9, _ and -", p.Name)
	}
	if len(p.Sources) == 0 {
		c.errorf("sources", "required: at least one source (paths, postgres, mysql or command)")
	}
	if p.Repository == "" {
		c.errorf("repository", "required: the name of the primary repository")
	}
	checkSchedule(c, "schedule", p.Schedule)
	c.durRange("jitter", p.Jitter, 0, Duration(day))
	if p.RPO != 0 {
		c.durRange("rpo", p.RPO, Duration(time.Minute), Duration(366*day))
	}
	// key=value tags are also the policy's access-control tags (with
	// policy=NAME): refuse what could not be matched exactly, so that a
	// grant such as env!=prod never reaches a policy by a dropped tag.
	keys := map[string]bool{}
	for i, t := range p.Tags {
		k, v, ok := strings.Cut(t, "=")
		if !ok {
			continue
		}
		field := fmt.Sprintf("tags[%d]", i)
		switch {
		case k == "policy":
			c.errorf(field, "%q: the policy=NAME tag is set by Bulwark", t)
		case !events.ValidTag(k, v):
			c.errorf(field, "%q: a key=value tag is also an access-control tag: use letters, digits, '.', '_', '/' and '-' on both sides", t)
		case keys[k]:
			c.errorf(field, "%q: key %q is already tagged", t, k)
		}
		keys[k] = true
	}
	if len(keys) >= events.MaxTags {
		c.errorf("tags", "%d key=value tags: at most %d", len(keys), events.MaxTags-1)
	}
	seen := map[string]bool{p.Repository: true}
	for i, o := range p.Offsite {
		if seen[o] {
			c.errorf(fmt.Sprintf("offsite[%d]", i), "%q is already a target of this policy", o)
		}
		seen[o] = true
	}
}

func (s Source) validate(c *checker) {
	kinds := 0
	for _, set := range []bool{len(s.Paths) > 0, s.Postgres.IsSet(), s.MySQL.IsSet(), len(s.Command) > 0} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		c.errorf("", "give exactly one of paths, postgres, mysql or command (got %d)", kinds)
	}
	for i, p := range s.Paths {
		c.absPath(fmt.Sprintf("paths[%d]", i), p)
	}
	if len(s.Exclude) > 0 && len(s.Paths) == 0 {
		c.errorf("exclude", "only applies to paths")
	}
	if s.Output != "" && len(s.Command) == 0 {
		c.errorf("output", "only applies to command")
	}
	if strings.Contains(s.Output, "/") {
		c.errorf("output", "%q: a file name, without '/'", s.Output)
	}
}

func (r Retention) validate(c *checker) {
	for field, n := range map[string]int{"keep_last": r.KeepLast, "keep_hourly": r.KeepHourly, "keep_daily": r.KeepDaily,
		"keep_weekly": r.KeepWeekly, "keep_monthly": r.KeepMonthly, "keep_yearly": r.KeepYearly} {
		if n < 0 {
			c.errorf(field, "must not be negative, got %d", n)
		}
	}
	if r.Prune && r.Empty() {
		c.errorf("prune", "needs at least one keep rule (keep_last, keep_daily, keep_within, ...)")
	}
}

func (r RestoreTest) validate(c *checker) {
	checkSchedule(c, "schedule", r.Schedule)
	c.absPath("scratch", r.Scratch)
}

func (s Scrub) validate(c *checker) {
	checkSchedule(c, "schedule", s.Schedule)
	if s.Period != 0 {
		c.durRange("period", s.Period, Duration(day), Duration(3660*day))
	}
}

func (ct Continuity) validate(c *checker) {
	repos := map[string]int{}
	for i, r := range ct.Repositories {
		if j, ok := repos[r.Name]; ok {
			c.errorf(fmt.Sprintf("repositories[%d].name", i), "%q is also repositories[%d]", r.Name, j)
		}
		repos[r.Name] = i
	}
	names := map[string]int{}
	for i, p := range ct.Policies {
		if j, ok := names[p.Name]; ok {
			c.errorf(fmt.Sprintf("policies[%d].name", i), "%q is also policies[%d]", p.Name, j)
		}
		names[p.Name] = i
		for field, ref := range map[string]string{"repository": p.Repository} {
			if _, ok := repos[ref]; ref != "" && !ok {
				c.errorf(fmt.Sprintf("policies[%d].%s", i, field), "%q is not a repository name (known: %s)", ref, knownNames(ct.Repositories))
			}
		}
		for j, o := range p.Offsite {
			if _, ok := repos[o]; !ok {
				c.errorf(fmt.Sprintf("policies[%d].offsite[%d]", i, j), "%q is not a repository name (known: %s)", o, knownNames(ct.Repositories))
			}
		}
	}
}

func knownNames(rs []Repository) string {
	if len(rs) == 0 {
		return "none; add repositories first"
	}
	var n []string
	for _, r := range rs {
		n = append(n, r.Name)
	}
	return strings.Join(n, ", ")
}

// PolicyByName returns the named policy.
func (ct Continuity) PolicyByName(name string) (Policy, bool) {
	for _, p := range ct.Policies {
		if p.Name == name {
			return p, true
		}
	}
	return Policy{}, false
}

// RepositoryByName returns the named repository.
func (ct Continuity) RepositoryByName(name string) (Repository, bool) {
	for _, r := range ct.Repositories {
		if r.Name == name {
			return r, true
		}
	}
	return Repository{}, false
}
