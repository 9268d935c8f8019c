//go:build linux

package firewall

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// flat lists a state as "set span expiry-offset" lines for diffing.
func flat(st state, now time.Time) []string {
	var out []string
	for set, m := range st {
		for sp, exp := range m {
			e := "never"
			if !exp.IsZero() {
				e = exp.Sub(now).String()
			}
			out = append(out, setNames[set]+" "+sp.String()+" "+e)
		}
	}
	slices.Sort(out)
	return out
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name string
		want []Element
		got  []string
	}{
		{
			name: "single addresses go to the hash sets, mapped IPv4 unmapped",
			want: []Element{
				{Net: pfx("192.0.2.1/32")},
				{Net: pfx("::ffff:192.0.2.2/128"), Expires: t0.Add(time.Hour)},
				{Net: pfx("2001:db8::1/128")},
			},
			got: []string{
				"ban4 192.0.2.1- never",
				"ban4 192.0.2.2- 1h0m0s",
				"ban6 2001:db8::1- never",
			},
		},
		{
			name: "networks are masked and go to the interval sets",
			want: []Element{
				{Net: pfx("198.51.100.77/24")},
				{Net: pfx("2001:db8:1::5/48")},
				{Net: pfx("::ffff:10.0.0.0/104")},
			},
			got: []string{
				"bannet4 10.0.0.0-11.0.0.0 never",
				"bannet4 198.51.100.0-198.51.101.0 never",
				"bannet6 2001:db8:1::-2001:db8:2:: never",
			},
		},
		{
			name: "networks reaching the top have no end",
			want: []Element{{Net: pfx("255.255.255.0/24")}, {Net: pfx("ffff::/16")}},
			got:  []string{"bannet4 255.255.255.0- never", "bannet6 ffff::- never"},
		},
		{
			name: "expiries beyond ten years load without a timeout",
			want: []Element{
				{Net: pfx("192.0.2.1/32"), Expires: t0.Add(maxTimeout + time.Second)},
				{Net: pfx("192.0.2.2/32"), Expires: t0.Add(maxTimeout)},
			},
			got: []string{"ban4 192.0.2.1- never", "ban4 192.0.2.2- 87600h0m0s"},
		},
		{
			name: "expired elements are dropped",
			want: []Element{
				{Net: pfx("192.0.2.1/32"), Expires: t0},
				{Net: pfx("192.0.2.2/32"), Expires: t0.Add(-time.Second)},
				{Net: pfx("192.0.2.3/32"), Expires: t0.Add(time.Millisecond)},
			},
			got: []string{"ban4 192.0.2.3- 1ms"},
		},
		{
			name: "duplicates keep the later expiry, none being the latest",
			want: []Element{
				{Net: pfx("192.0.2.1/32"), Expires: t0.Add(time.Hour)},
				{Net: pfx("192.0.2.1/32"), Expires: t0.Add(2 * time.Hour)},
				{Net: pfx("192.0.2.1/32"), Expires: t0.Add(time.Minute)},
				{Net: pfx("10.0.0.0/8"), Expires: t0.Add(time.Hour)},
				{Net: pfx("10.0.0.0/8")},
				{Net: pfx("10.1.0.0/16"), Expires: t0.Add(time.Hour)},
			},
			got: []string{
				"ban4 192.0.2.1- 2h0m0s",
				"bannet4 10.0.0.0-11.0.0.0 never",
			},
		},
		{
			name: "the covering network wins, whatever the expiries",
			want: []Element{
				{Net: pfx("10.1.2.0/24"), Expires: t0.Add(48 * time.Hour)},
				{Net: pfx("10.1.0.0/16"), Expires: t0.Add(time.Hour)},
				{Net: pfx("10.1.2.128/25")},
				{Net: pfx("10.2.0.0/16")},
				{Net: pfx("10.2.0.0/17"), Expires: t0.Add(time.Hour)},
				{Net: pfx("10.3.0.0/24")}, // adjacent to 10.3.1.0/24, kept
				{Net: pfx("10.3.1.0/24")}, // adjacent, kept
				{Net: pfx("10.1.9.9/32")}, // single inside a network: other set, kept
				{Net: pfx("2001:db8::/32")},
				{Net: pfx("2001:db8:5::/48"), Expires: t0.Add(time.Hour)},
			},
			got: []string{
				"ban4 10.1.9.9- never",
				"bannet4 10.1.0.0-10.2.0.0 1h0m0s",
				"bannet4 10.2.0.0-10.3.0.0 never",
				"bannet4 10.3.0.0-10.3.1.0 never",
				"bannet4 10.3.1.0-10.3.2.0 never",
				"bannet6 2001:db8::-2001:db9:: never",
			},
		},
		{
			name: "the whole IPv4 and IPv6 spaces have no end",
			want: []Element{{Net: pfx("0.0.0.0/0")}, {Net: pfx("::/0")}},
			got:  []string{"bannet4 0.0.0.0- never", "bannet6 ::- never"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := plan(tt.want, t0)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.got, flat(st, t0)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanRejectsInvalid(t *testing.T) {
	if _, err := plan([]Element{{Net: netip.Prefix{}}}, t0); err == nil {
		t.Fatal("plan accepted the zero prefix")
	}
}

func TestSpan(t *testing.T) {
	tests := []struct {
		a, b               span
		overlaps, contains bool
	}{
		{spanOf(pfx("10.0.0.0/8"), true), spanOf(pfx("10.1.0.0/16"), true), true, true},
		{spanOf(pfx("10.1.0.0/16"), true), spanOf(pfx("10.0.0.0/8"), true), true, false},
		{spanOf(pfx("10.0.0.0/24"), true), spanOf(pfx("10.0.1.0/24"), true), false, false},
		{spanOf(pfx("10.0.1.0/24"), true), spanOf(pfx("10.0.0.0/24"), true), false, false},
		{span{lo: addr("10.0.0.5"), hi: addr("10.0.1.5")}, spanOf(pfx("10.0.1.0/24"), true), true, false},
		{spanOf(pfx("0.0.0.0/0"), true), spanOf(pfx("255.255.255.0/24"), true), true, true},
		{spanOf(pfx("255.255.255.0/24"), true), spanOf(pfx("255.255.255.255/32"), true), true, true},
		{spanOf(pfx("255.255.255.0/25"), true), spanOf(pfx("255.255.255.128/25"), true), false, false},
	}
	for _, tt := range tests {
		if got := tt.a.overlaps(tt.b); got != tt.overlaps {
			t.Errorf("%v overlaps %v = %v, want %v", tt.a, tt.b, got, tt.overlaps)
		}
		if got := tt.a.contains(tt.b); got != tt.contains {
			t.Errorf("%v contains %v = %v, want %v", tt.a, tt.b, got, tt.contains)
		}
	}
	for _, p := range []string{"10.0.0.0/8", "0.0.0.0/0", "255.255.255.0/24", "1.2.3.4/32", "2001:db8::/64", "ffff::/16", "::/0"} {
		got, ok := spanOf(pfx(p), true).prefix(true)
		if !ok || got != pfx(p) {
			t.Errorf("prefix of span of %s = %v, %v", p, got, ok)
		}
	}
	if p, ok := (span{lo: addr("10.0.0.1"), hi: addr("10.0.0.6")}).prefix(true); ok {
		t.Errorf("range 10.0.0.1-10.0.0.5 is prefix %v", p)
	}
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		left time.Duration
		want time.Duration
		ok   bool
	}{
		{time.Hour, time.Hour, true},
		{time.Millisecond, time.Second, true},
		{1500 * time.Millisecond, 2 * time.Second, true},
		{2 * time.Second, 2 * time.Second, true},
		{0, 0, false},
		{-time.Second, 0, false},
	}
	for _, tt := range tests {
		got, ok := timeout(t0.Add(tt.left), t0)
		if got != tt.want || ok != tt.ok {
			t.Errorf("timeout(now+%v) = %v, %v; want %v, %v", tt.left, got, ok, tt.want, tt.ok)
		}
	}
	if got, ok := timeout(time.Time{}, t0); got != 0 || !ok {
		t.Errorf("timeout(zero) = %v, %v; want 0, true", got, ok)
	}
}

func TestDecodeInterval(t *testing.T) {
	key := func(s string) []byte { return addr(s).AsSlice() }
	// As the kernel dumps them: highest first, with an end marker nft
	// leaves at 0.0.0.0, one whose start expired, adjacent networks and
	// a network reaching the top.
	els := []nftables.SetElement{
		{Key: key("255.255.255.0"), Timeout: time.Hour, Expires: 30 * time.Minute},
		{Key: key("10.0.3.0"), IntervalEnd: true},
		{Key: key("10.0.2.0"), IntervalEnd: true},
		{Key: key("10.0.1.0")},
		{Key: key("10.0.1.0"), IntervalEnd: true},
		{Key: key("10.0.0.0"), Timeout: time.Minute, Expires: 10 * time.Second},
		{Key: key("9.0.0.0"), IntervalEnd: true}, // start expired, not dumped
		{Key: key("0.0.0.0"), IntervalEnd: true},
	}
	got, err := decode(setBanNet4, els, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[span]time.Time{
		spanOf(pfx("10.0.0.0/24"), true):      t0.Add(10 * time.Second),
		spanOf(pfx("10.0.1.0/24"), true):      {},
		spanOf(pfx("255.255.255.0/24"), true): t0.Add(30 * time.Minute),
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b span) bool { return a == b })); diff != "" {
		t.Errorf("decode (-want +got):\n%s", diff)
	}

	// Two starts in a row: each is its own element without an end.
	got, err = decode(setBanNet4, []nftables.SetElement{{Key: key("10.0.0.0")}, {Key: key("10.0.5.0")}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[span{lo: addr("10.0.0.0")}]; !ok || len(got) != 2 {
		t.Errorf("two starts decoded as %v", got)
	}

	if _, err := decode(setBanNet6, []nftables.SetElement{{Key: key("10.0.0.0")}}, t0); err == nil {
		t.Error("decode accepted a 4-byte key in an IPv6 set")
	}
}

func TestDecodeHash(t *testing.T) {
	els := []nftables.SetElement{
		{Key: addr("2001:db8::1").AsSlice(), Timeout: time.Hour, Expires: time.Minute},
		{Key: addr("2001:db8::2").AsSlice()},
	}
	got, err := decode(setBan6, els, t0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[span]time.Time{
		{lo: addr("2001:db8::1")}: t0.Add(time.Minute),
		{lo: addr("2001:db8::2")}: {},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b span) bool { return a == b })); diff != "" {
		t.Errorf("decode (-want +got):\n%s", diff)
	}
}

func TestElementsEncoding(t *testing.T) {
	got := elements(setBanNet4, spanOf(pfx("10.0.0.0/24"), true), time.Minute)
	want := []nftables.SetElement{
		{Key: []byte{10, 0, 0, 0}, Timeout: time.Minute},
		{Key: []byte{10, 0, 1, 0}, IntervalEnd: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("elements (-want +got):\n%s", diff)
	}
	if got := elements(setBanNet4, spanOf(pfx("255.0.0.0/8"), true), 0); len(got) != 1 {
		t.Errorf("network at the top encoded as %d elements, want 1 (no end marker)", len(got))
	}
	if got := elements(setBan4, spanOf(pfx("10.0.0.1/32"), false), 0); len(got) != 1 {
		t.Errorf("single address encoded as %d elements, want 1", len(got))
	}
}

func TestDiffers(t *testing.T) {
	tests := []struct {
		have, want time.Time
		differs    bool
	}{
		{time.Time{}, time.Time{}, false},
		{t0, time.Time{}, true},
		{time.Time{}, t0, true},
		{t0.Add(time.Second), t0, false},
		{t0.Add(-1900 * time.Millisecond), t0, false},
		{t0.Add(3 * time.Second), t0, true},
		{t0.Add(-3 * time.Second), t0, true},
	}
	for _, tt := range tests {
		if got := differs(tt.have, tt.want); got != tt.differs {
			t.Errorf("differs(%v, %v) = %v, want %v", tt.have, tt.want, got, tt.differs)
		}
	}
}

func TestPack(t *testing.T) {
	one := func(set, phase int, del bool, n int) op {
		return op{set: set, phase: phase, del: del, elems: make([]nftables.SetElement, n)}
	}
	tests := []struct {
		name   string
		groups []group
		limit  int
		sizes  []int // elements per transaction
	}{
		{
			name:   "fills transactions up to the limit",
			groups: slices.Repeat([]group{{one(setBan4, phaseAdd, false, 1)}}, 2500),
			limit:  1000,
			sizes:  []int{1000, 1000, 500},
		},
		{
			name:   "keeps a group whole",
			groups: slices.Repeat([]group{{one(setBanNet4, phaseDelete, true, 2), one(setBanNet4, phaseAdd, false, 2)}}, 3),
			limit:  6,
			sizes:  []int{4, 4, 4},
		},
		{
			name: "splits a group larger than the limit",
			groups: []group{{
				one(setBanNet4, phaseAdd, false, 2),
				one(setBanNet4, phaseDelete, true, 2),
				one(setBanNet4, phaseDelete, true, 2),
				one(setBanNet4, phaseDelete, true, 2),
				one(setBanNet4, phaseDelete, true, 2),
			}},
			limit: 6,
			sizes: []int{6, 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			txs := pack(tt.groups, tt.limit)
			var sizes []int
			total, want := 0, 0
			for _, g := range tt.groups {
				want += g.size()
			}
			for _, tx := range txs {
				n := 0
				for i, o := range tx {
					n += len(o.elems)
					if i > 0 && tx[i-1].phase > o.phase {
						t.Errorf("phase %d after phase %d in one transaction", o.phase, tx[i-1].phase)
					}
				}
				sizes = append(sizes, n)
				total += n
			}
			if diff := cmp.Diff(tt.sizes, sizes); diff != "" {
				t.Errorf("transaction sizes (-want +got):\n%s", diff)
			}
			if total != want {
				t.Errorf("packed %d elements, want %d", total, want)
			}
		})
	}
	// A split group sends its deletions before its additions.
	txs := pack([]group{{
		one(setBanNet4, phaseAdd, false, 2),
		one(setBanNet4, phaseDelete, true, 2),
		one(setBanNet4, phaseDelete, true, 2),
		one(setBanNet4, phaseDelete, true, 2),
	}}, 6)
	if last := txs[len(txs)-1]; last[len(last)-1].del {
		t.Error("split group ends with a deletion, want its addition last")
	}
}
