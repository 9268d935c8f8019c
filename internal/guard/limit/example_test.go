package limit_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/bulwarkhq/bulwark/internal/guard/limit"
)

func ExampleRate() {
	// 10 requests a second per /24 (IPv4), bursts of 5.
	r := limit.NewRate[netip.Prefix](10, 5, limit.Options{})
	key, err := netip.MustParseAddr("192.0.2.77").Unmap().Prefix(24) // masked: 192.0.2.0/24
	if err != nil {
		panic(err)
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for range 6 {
		ok, retry := r.Allow(key, now)
		fmt.Println(ok, retry)
	}
	// Output:
	// true 0s
	// true 0s
	// true 0s
	// true 0s
	// true 0s
	// false 100ms
}

func ExampleWindow() {
	// Login attempts per account: 5 per 15 minutes, 2 for new accounts.
	w := limit.NewWindow[string](15*time.Minute, limit.Options{})
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for range 3 {
		ok, retry := w.Hit("new-user", 2, now)
		fmt.Println(ok, retry)
	}
	// Output:
	// true 0s
	// true 0s
	// false 22m30s
}

func ExampleConns() {
	c := limit.NewConns[netip.Prefix](2, limit.Options{})
	key := netip.MustParsePrefix("2001:db8::/64")
	fmt.Println(c.Acquire(key), c.Acquire(key), c.Acquire(key))
	c.Release(key)
	fmt.Println(c.Acquire(key), c.Len())
	// Output:
	// true true false
	// true 1
}
