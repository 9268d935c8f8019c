// Package config reads and validates Bulwark's single YAML configuration
// file.
//
// The file is optional (Discover falls back to Default() when there is
// none), and an empty file also means Default(). It is
// decoded by walking yaml.v3 node trees (decode.go) so that every error can
// name the file, the line and the dotted path of the field
// ("bulwark.yaml:12: store.dsn: ..."), unknown and duplicate keys are
// refused, and every problem in the file is reported at once. A second pass
// (validate.go) checks values and the rules between them.
//
// Adding a section is adding a struct field with a `yaml:"name"` tag to
// Config (or to a section), a default in Default, and, when its values need
// checking, a `validate(*checker)` method on the section's type: the decoder
// and the validator find both by reflection.
package config

import (
	"time"
)

// DefaultFileName is the name looked for in the data directory when no
// --config flag is given.
const DefaultFileName = "bulwark.yaml"

// MaxFileSize is the largest configuration file accepted. A real file is a
// few kilobytes; the cap bounds the work an accidental or hostile input
// (say, a log file passed by mistake) can cause.
const MaxFileSize = 1 << 20

// Config is the whole configuration file.
type Config struct {
	// DataDir is where the database, keys and generated certificates live.
	// Optional; the --data flag overrides it.
	DataDir string `yaml:"data_dir"`
	// Listen is the host:port of the HTTPS API and console.
	Listen string `yaml:"listen"`
	// Log configures log/slog output.
	Log Log `yaml:"log"`
	// TLS names a certificate and key; without them a self-signed pair is
	// generated in the data directory.
	TLS TLS `yaml:"tls"`
	// Store selects the database.
	Store Store `yaml:"store"`
	// API sets limits of the HTTP API.
	API API `yaml:"api"`
	// Auth sets password, session, token and 2FA policy.
	Auth Auth `yaml:"auth"`
	// Audit sets audit-log retention and checkpointing.
	Audit Audit `yaml:"audit"`
	// Bootstrap holds what is needed to create the first administrator.
	Bootstrap Bootstrap `yaml:"bootstrap"`
	// Continuity holds backup repositories and policies.
	Continuity Continuity `yaml:"continuity"`
	// Guard is the protecting reverse proxy (limits, lists, bans).
	Guard Guard `yaml:"guard"`
	// Detect turns events from the guard and from log files into bans.
	Detect Detect `yaml:"detect"`
	// Firewall enforces bans in the kernel with nftables.
	Firewall Firewall `yaml:"firewall"`
	// Integrity records a signed baseline of the system's files and
	// watches them for changes.
	Integrity Integrity `yaml:"integrity"`
	// Monitor samples host metrics and runs service checks.
	Monitor Monitor `yaml:"monitor"`
	// Alerts fires alerts on checks and metrics and delivers
	// notifications.
	Alerts Alerts `yaml:"alerts"`
	// Status configures the public status pages.
	Status StatusPages `yaml:"status"`
	// Report chooses the practices the public page /trust shows.
	Report Report `yaml:"report"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// TLS configures the listener's certificate. Both fields or neither.
type TLS struct {
	// CertFile is a PEM certificate chain (absolute path).
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key for CertFile (absolute path).
	KeyFile string `yaml:"key_file"`
}

// Store configures the database.
type Store struct {
	// Driver is sqlite (embedded, in the data directory) or postgres.
	Driver string `yaml:"driver"`
	// DSN is the PostgreSQL connection string; required for postgres and
	// refused for sqlite.
	DSN Secret `yaml:"dsn"`
	// MaxOpenConns caps open database connections.
	MaxOpenConns int `yaml:"max_open_conns"`
}

// API configures the HTTP API server.
type API struct {
	// MaxBodyBytes caps request bodies.
	MaxBodyBytes Size `yaml:"max_body_bytes"`
	// ReadTimeout is http.Server.ReadTimeout.
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout is http.Server.WriteTimeout.
	WriteTimeout Duration `yaml:"write_timeout"`
	// IdleTimeout is http.Server.IdleTimeout.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MetricsPublic serves /metrics without authentication when true.
	MetricsPublic bool `yaml:"metrics_public"`
	// PageSizeMax is the largest page a list endpoint returns.
	PageSizeMax int `yaml:"page_size_max"`
	// TrustedProxies are the addresses (CIDRs) of reverse proxies allowed
	// to set X-Forwarded-For; the client address used for throttling and
	// the audit log is then taken from it. Empty: trust no one.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Auth configures authentication policy.
type Auth struct {
	// PasswordMinLength is the shortest password accepted, in characters.
	PasswordMinLength int `yaml:"password_min_length"`
	// SessionIdleTimeout ends a console session after this long unused.
	SessionIdleTimeout Duration `yaml:"session_idle_timeout"`
	// SessionMaxAge ends a console session this long after login.
	SessionMaxAge Duration `yaml:"session_max_age"`
	// TokenMaxAge is the longest lifetime an API token may be given.
	TokenMaxAge Duration `yaml:"token_max_age"`
	// Require2FA makes a second factor mandatory for every account.
	Require2FA bool `yaml:"require_2fa"`
	// Require2FARoles makes a second factor mandatory for holders of these
	// roles.
	Require2FARoles []string `yaml:"require_2fa_roles"`
	// Throttle slows and locks out repeated failed logins.
	Throttle Throttle `yaml:"throttle"`
	// WebAuthn configures security keys and passkeys.
	WebAuthn WebAuthn `yaml:"webauthn"`
}

// Throttle configures login back-off: after FreeAttempts consecutive
// failures each further attempt waits BaseDelay doubled per failure, up to
// MaxDelay; after LockoutAfter failures the account is locked until an
// administrator unlocks it (0 = never lock).
type Throttle struct {
	// BaseDelay is the first back-off delay.
	BaseDelay Duration `yaml:"base_delay"`
	// MaxDelay caps the back-off delay.
	MaxDelay Duration `yaml:"max_delay"`
	// LockoutAfter locks the account after this many consecutive failures;
	// 0 disables lockout.
	LockoutAfter int `yaml:"lockout_after"`
	// FreeAttempts is how many failures are allowed before back-off starts.
	FreeAttempts int `yaml:"free_attempts"`
}

// WebAuthn configures the WebAuthn relying party.
type WebAuthn struct {
	// RPID is the relying party ID: the domain the console is served on.
	RPID string `yaml:"rp_id"`
	// RPName is shown by authenticators.
	RPName string `yaml:"rp_name"`
	// Origins are the exact origins the console is reached at.
	Origins []string `yaml:"origins"`
}

// Audit configures the audit log.
type Audit struct {
	// Retention is how long audit records are kept.
	Retention Duration `yaml:"retention"`
	// CheckpointEvery writes a signed checkpoint every N records.
	CheckpointEvery int `yaml:"checkpoint_every"`
	// Anchor is the default destination of `bulwark audit anchor`: an
	// absolute file path or an https:// URL. Optional.
	Anchor string `yaml:"anchor"`
}

// Bootstrap holds first-start settings.
type Bootstrap struct {
	// AdminPassword is the first administrator's password. The caller also
	// honours the BULWARK_ADMIN_PASSWORD environment variable.
	AdminPassword Secret `yaml:"admin_password"`
}

// Default returns the configuration used when no file is given; Parse
// starts from it, so every key left out of a file keeps these values.
func Default() Config {
	return Config{
		Listen: "127.0.0.1:8443",
		Log:    Log{Level: "info", Format: "text"},
		Store:  Store{Driver: "sqlite", MaxOpenConns: 10},
		API: API{
			MaxBodyBytes:  1 * MiB,
			ReadTimeout:   Duration(30 * time.Second),
			WriteTimeout:  Duration(60 * time.Second),
			IdleTimeout:   Duration(120 * time.Second),
			MetricsPublic: true,
			PageSizeMax:   500,
		},
		Auth: Auth{
			PasswordMinLength:  12,
			SessionIdleTimeout: Duration(30 * time.Minute),
			SessionMaxAge:      Duration(12 * time.Hour),
			TokenMaxAge:        Duration(365 * day),
			Throttle: Throttle{
				BaseDelay:    Duration(time.Second),
				MaxDelay:     Duration(15 * time.Minute),
				LockoutAfter: 20,
				FreeAttempts: 3,
			},
			WebAuthn: WebAuthn{
				RPID:    "localhost",
				RPName:  "Bulwark",
				Origins: []string{"https://localhost:8443"},
			},
		},
		Audit: Audit{
			Retention:       Duration(400 * day),
			CheckpointEvery: 1000,
		},
		Guard:     defaultGuard(),
		Detect:    defaultDetect(),
		Firewall:  defaultFirewall(),
		Integrity: defaultIntegrity(),
		Monitor:   defaultMonitor(),
		Status:    defaultStatus(),
		Report:    Report{Publish: []string{}},
	}
}
