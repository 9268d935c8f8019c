//go:build linux

package posture

import (
	"context"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/firewall/netnstest"
)

// TestFirewallPolicyRealNFT loads rulesets with the real nft into a fresh
// network namespace (never the host's) and audits what
// `ip netns exec NS nft -j list ruleset` prints there.
func TestFirewallPolicyRealNFT(t *testing.T) {
	ns := netnstest.New(t)
	a := Auditor{Root: t.TempDir(), NFT: func(ctx context.Context) ([]byte, error) {
		return runCommand(ctx, "ip", "netns", "exec", ns.Name, "nft", "-j", "list", "ruleset")
	}}
	check := func(st Status, want []string, unwanted ...string) {
		t.Helper()
		expectEvidence(t, finding(t, a.Audit(), "net.firewall_policy"), st, want, unwanted...)
	}

	// A fresh namespace has no ruleset: everything is accepted.
	check(Fail, []string{"no filter chain on the input hook in 0 tables"})

	// IPv4 by a final log-and-drop rule, IPv6 by its policy; the inet
	// table's accepting input chain adds nothing.
	ns.NftFile(t, `
table ip t4 {
	chain inbound {
		type filter hook input priority filter; policy accept;
		iif "lo" accept
		ct state established,related accept
		log prefix "t4 drop: " counter drop
	}
}
table ip6 t6 {
	chain inbound {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
	}
}
table inet extra {
	chain input {
		type filter hook input priority 10; policy accept;
		tcp dport 23 reject
	}
}
`)
	check(Pass, []string{"table ip t4, chain inbound: hook input, policy accept, last rule an unconditional drop",
		"table ip6 t6, chain inbound: hook input, policy drop",
		"table inet extra, chain input: hook input, policy accept, no final drop or reject"},
		"no input chain drops")

	// Without the ip6 table, IPv6 is open.
	ns.Nft(t, "delete", "table", "ip6", "t6")
	check(Fail, []string{"table ip t4, chain inbound", "IPv6 (ip6): no input chain drops by default"}, "IPv4 (ip): no input chain")

	// An inet chain rejecting at its end covers both families.
	ns.Nft(t, "add", "rule", "inet", "extra", "input", "counter", "reject", "with", "icmpx", "type", "admin-prohibited")
	check(Pass, []string{"table inet extra, chain input: hook input, policy accept, last rule an unconditional reject"})

	// A rule after the reject never runs: the reject still decides.
	ns.Nft(t, "add", "rule", "inet", "extra", "input", "udp", "dport", "53", "accept")
	check(Pass, []string{"table inet extra, chain input: hook input, policy accept, rule 2 (handle 3) an unconditional reject"})

	// An accept of everything inserted before it: IPv6 is open again.
	ns.Nft(t, "insert", "rule", "inet", "extra", "input", "counter", "accept")
	check(Fail, []string{"table inet extra, chain input: hook input, policy accept, rule 1 (handle 5) accepts every packet",
		"IPv6 (ip6): no input chain drops by default"}, "IPv4 (ip): no input chain")

	// Policy drop with an accept of everything before any drop, the
	// accept reached through a jump.
	ns.Nft(t, "flush", "ruleset")
	ns.NftFile(t, `
table inet filter {
	chain allow_all {
		log prefix "all: " counter accept
	}
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ct state established,related accept
		tcp dport 22 accept
		jump allow_all
		counter drop
	}
}
`)
	check(Fail, []string{"table inet filter, chain input: hook input, policy drop, rule 4 (handle 7) jumps to chain allow_all: rule 1 (handle 3) accepts every packet: the policy is never reached",
		"IPv4 (ip): no input chain drops by default", "IPv6 (ip6): no input chain drops by default"})

	// The same chain made conditional: only loopback goes there.
	ns.Nft(t, "replace", "rule", "inet", "filter", "input", "handle", "7", "iif", "lo", "jump", "allow_all")
	check(Pass, []string{"table inet filter, chain input: hook input, policy drop, last rule an unconditional drop: rule 5 (handle 8)"}, "accepts every packet")

	ns.Nft(t, "flush", "ruleset")
	check(Fail, []string{"every incoming packet is accepted"})
}
