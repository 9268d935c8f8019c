//go:build !linux

package firewall

import (
	"fmt"
	"net/netip"
	"runtime"
)

// Firewall is Bulwark's nftables table; nftables exists only on Linux.
type Firewall struct{}

var errOS = fmt.Errorf("%w: nftables needs Linux, this is %s", ErrUnavailable, runtime.GOOS)

// Available reports why nftables cannot be used: it needs Linux.
func Available() error { return errOS }

// Open fails: nftables needs Linux.
func Open(Options) (*Firewall, error) { return nil, errOS }

// Sync fails: nftables needs Linux.
func (*Firewall) Sync([]Element) (SyncStats, error) { return SyncStats{}, errOS }

// Add fails: nftables needs Linux.
func (*Firewall) Add(...Element) error { return errOS }

// Remove fails: nftables needs Linux.
func (*Firewall) Remove(...netip.Prefix) error { return errOS }

// Elements fails: nftables needs Linux.
func (*Firewall) Elements() ([]Element, error) { return nil, errOS }

// Dropped fails: nftables needs Linux.
func (*Firewall) Dropped() (packets, bytes uint64, err error) { return 0, 0, errOS }

// Delete fails: nftables needs Linux.
func (*Firewall) Delete() error { return errOS }

// Close does nothing.
func (*Firewall) Close() error { return nil }
