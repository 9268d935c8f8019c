package firewall

import (
	"errors"
	"net/netip"
	"time"
)

// Defaults and limits of Options.
const (
	DefaultTable     = "bulwark"
	DefaultPriority  = -150
	DefaultBatchSize = 1000
	// MaxBatchSize is the most kernel set elements sent in one netlink
	// transaction.
	MaxBatchSize = 1000
	// MinBatchSize leaves room for the largest indivisible change: a
	// network replaced by a delete and an add, each with its end marker.
	MinBatchSize = 4
)

// ErrUnavailable is returned (wrapped) by Available and Open when nftables
// cannot be used here: not enough privilege or no nf_tables in the kernel.
var ErrUnavailable = errors.New("nftables unavailable")

// Element is one ban: a network (a single address is a /32 or /128) and
// when it ends. A zero Expires bans until removed.
type Element struct {
	Net     netip.Prefix
	Expires time.Time
}

// Options configures Open. The zero value is usable.
type Options struct {
	// Table is the name of Bulwark's table in the inet family
	// (default "bulwark").
	Table string
	// NetNS is a file descriptor of the network namespace to work in;
	// 0 means the current one. The caller keeps it open while the
	// Firewall is in use and closes it afterwards.
	NetNS int
	// BatchSize is the most kernel set elements per netlink transaction
	// (default and maximum 1000, minimum 4).
	BatchSize int
	// Forward also filters forwarded traffic (chain "forward"); the input
	// chain is always there.
	Forward bool
	// Priority of the base chains; 0 means the default -150, which runs
	// before the usual filter chains (priority 0).
	Priority int
	// Now is the clock for expiries (default time.Now).
	Now func() time.Time
}

// SyncStats reports one reconciliation. Counts are bans (a network is one,
// whatever the number of kernel elements).
type SyncStats struct {
	Added   int // loaded because the kernel lacked them
	Removed int // deleted: foreign, expired, lifted or merged away
	Updated int // present with another expiry; replaced
	Total   int // bans in the kernel afterwards
	// Duration of the whole Sync, reading included.
	Duration time.Duration
}
