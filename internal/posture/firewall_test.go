package posture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// nftFrom feeds a prepared `nft -j list ruleset` (testdata/NAME, made with
// nft 1.0.6 in a network namespace).
func nftFrom(t *testing.T, name string) func(context.Context) ([]byte, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return func(context.Context) ([]byte, error) { return b, nil }
}

func firewallFinding(t *testing.T, a Auditor) Finding {
	t.Helper()
	if a.Root == "" {
		a.Root = t.TempDir()
	}
	return finding(t, a.Audit(), "net.firewall_policy")
}

// expectEvidence checks a finding's status and that its evidence has each
// of want and none of unwanted.
func expectEvidence(t *testing.T, f Finding, st Status, want []string, unwanted ...string) {
	t.Helper()
	ev := strings.Join(f.Evidence, " | ")
	if f.Status != st {
		t.Errorf("%s: %s, want %s; evidence %q", f.ID, f.Status, st, f.Evidence)
	}
	for _, w := range want {
		if !strings.Contains(ev, w) {
			t.Errorf("%s: evidence %q lacks %q", f.ID, f.Evidence, w)
		}
	}
	for _, u := range unwanted {
		if strings.Contains(ev, u) {
			t.Errorf("%s: evidence %q has %q", f.ID, f.Evidence, u)
		}
	}
}

func TestFirewallPolicyNFT(t *testing.T) {
	for _, tt := range []struct {
		file     string
		st       Status
		want     []string
		unwanted []string
	}{
		{"nft-inet-drop.json", Pass,
			[]string{"table inet filter, chain input: hook input, policy drop"},
			[]string{"no input chain", "forward", "output"}},
		{"nft-final-drop.json", Pass,
			[]string{"table inet firewall, chain inbound: hook input, policy accept, last rule an unconditional drop: rule 4 (handle 5)"},
			[]string{"no input chain"}},
		// A conditional drop (tcp dport 23, a source network) is not a
		// default; a dropping forward chain and a nat chain do not filter
		// input.
		{"nft-accept-only.json", Fail,
			[]string{"table inet filter, chain input: hook input, policy accept, rule 2 (handle 4) accepts every packet",
				"table ip mangle, chain input: hook input, policy accept, no final drop or reject",
				"IPv4 (ip): no input chain drops by default", "IPv6 (ip6): no input chain drops by default"},
			[]string{"forward", "prerouting"}},
		{"nft-ip-only.json", Fail,
			[]string{"table ip filter, chain INPUT: hook input, policy drop", "IPv6 (ip6): no input chain drops by default"},
			[]string{"IPv4 (ip): no input chain", "OUTPUT"}},
		{"nft-empty.json", Fail,
			[]string{"nftables 1.0.6: no filter chain on the input hook in 0 tables", "every incoming packet is accepted"}, nil},
		// Policy drop, but "counter accept" (rule 3) accepts everything
		// before the policy is reached; the conditional accepts around it
		// (established, lo, tcp dport 22) are fine.
		{"nft-accept-all.json", Fail,
			[]string{"table inet filter, chain input: hook input, policy drop, rule 3 (handle 4) accepts every packet: the policy is never reached",
				"IPv4 (ip): no input chain drops by default", "IPv6 (ip6): no input chain drops by default"},
			[]string{"rule 1 ", "rule 2 ", "rule 4 "}},
		// IPv4: log and counter before the accept still match every
		// packet. IPv6: an unconditional drop in the middle of the chain
		// decides; the accept after it is never reached.
		{"nft-log-accept.json", Fail,
			[]string{"table ip t4, chain inbound: hook input, policy drop, rule 2 (handle 3) accepts every packet",
				"table ip6 t6, chain inbound: hook input, policy accept, rule 2 (handle 3) an unconditional drop",
				"IPv4 (ip): no input chain drops by default"},
			[]string{"IPv6 (ip6): no input chain", "handle 4"}},
		// The conditional accepts of chain services return; chain deny
		// drops whatever reaches it, so the final accept never runs.
		{"nft-jump-drop.json", Pass,
			[]string{"table inet filter, chain input: hook input, policy accept, rule 4 (handle 11) jumps to chain deny: rule 1 (handle 7) an unconditional drop"},
			[]string{"no input chain", "accepts every packet", "services"}},
		{"nft-jump-accept.json", Fail,
			[]string{"table inet filter, chain input: hook input, policy drop, rule 2 (handle 5) jumps to chain allow_all: rule 1 (handle 3) accepts every packet: the policy is never reached",
				"IPv6 (ip6): no input chain drops by default"},
			[]string{"handle 6"}},
		// A goto does not come back: when chain services runs out, the
		// input chain's policy decides, and its "counter accept" after
		// the goto never runs.
		{"nft-goto.json", Pass,
			[]string{"table inet filter, chain input: hook input, policy drop"},
			[]string{"accepts every packet", "no input chain"}},
		// Nine chains deep: past the walk's bound, neither a pass nor a
		// fail.
		{"nft-deep-jumps.json", Unknown,
			[]string{"table inet filter, chain input: hook input, policy accept, rule 2 (handle 21) jumps to chain c1: rule 1 (handle 11) jumps to chain c2: ",
				"rule 1 (handle 18) jumps to chain c9, more than 8 chains deep: what becomes of packets cannot be told",
				"IPv4 (ip): no input chain is known to drop by default", "IPv6 (ip6): no input chain is known to drop by default"},
			nil},
	} {
		t.Run(tt.file, func(t *testing.T) {
			expectEvidence(t, firewallFinding(t, Auditor{NFT: nftFrom(t, tt.file)}), tt.st, tt.want, tt.unwanted...)
		})
	}
}

func TestFirewallPolicyUnreadable(t *testing.T) {
	// An audit of another root has no running firewall to read.
	expectEvidence(t, firewallFinding(t, Auditor{}), Skipped, []string{"the running firewall is this host's"})
	for _, tt := range []struct {
		name string
		nft  func(context.Context) ([]byte, error)
		want string
	}{
		{"not root", func(context.Context) ([]byte, error) {
			return nil, errors.New("exit status 1: netlink: Error: cache initialization failed: Operation not permitted")
		}, "Operation not permitted (the audit needs root)"},
		{"not JSON", func(context.Context) ([]byte, error) { return []byte("table inet filter {\n}\n"), nil }, "nft's JSON output"},
		{"no nftables list", func(context.Context) ([]byte, error) { return []byte(`{"tables": []}`), nil }, `no "nftables" list`},
		{"wrong types", func(context.Context) ([]byte, error) {
			return []byte(`{"nftables": [{"chain": {"family": "inet", "hook": 3}}]}`), nil
		}, "nft's JSON output"},
		// nft not installed and no iptables-save to fall back on.
		{"no nft", func(context.Context) ([]byte, error) { return nil, &exec.Error{Name: "nft", Err: exec.ErrNotFound} },
			"iptables-save cannot be run"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			expectEvidence(t, firewallFinding(t, Auditor{NFT: tt.nft}), Unknown, []string{tt.want})
		})
	}
}

func TestFirewallPolicyIPTables(t *testing.T) {
	noNFT := func(context.Context) ([]byte, error) { return nil, &exec.Error{Name: "nft", Err: exec.ErrNotFound} }
	const (
		v4Drop = "# Generated by iptables-save v1.8.9 (legacy)\n*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n"
		// Policy ACCEPT, but whatever reaches the end is rejected.
		v6Reject = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n-A INPUT -j REJECT --reject-with icmp6-port-unreachable\nCOMMIT\n"
		// The rules drop one port and one network only; a DROP in
		// FORWARD or in another table is no input policy.
		v6Open = "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j DROP\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n-A INPUT -s 2001:db8::/32 -j REJECT\n-A INPUT -p tcp --dport 23 -j DROP\n-A FORWARD -j DROP\nCOMMIT\n"
		// A REJECT of everything: the rule after it never runs.
		v6EarlyReject = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j REJECT\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"
		noFilter      = "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n"
		// Policy DROP, and an ACCEPT of everything (line 7) before it.
		v4AcceptAll = "# Generated by iptables-save v1.8.9 (nf_tables) on Sat Nov 22 17:40:00 2025\n*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n" +
			"-A INPUT -i lo -j ACCEPT\n-A INPUT -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\nCOMMIT\n"
		// A comment matches every packet.
		v6CommentAccept = "*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -m comment --comment \"temporary: allow \\\"all\\\"\" -j ACCEPT\nCOMMIT\n"
		// ufw's layout: INPUT jumps to user chains that accept some ports,
		// log, and return; the policy drops the rest.
		v4UFW = "*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:ufw-before-input - [0:0]\n:ufw-user-input - [0:0]\n:ufw-after-input - [0:0]\n:ufw-after-logging-input - [0:0]\n" +
			"-A INPUT -j ufw-before-input\n-A INPUT -j ufw-after-input\n-A INPUT -j ufw-after-logging-input\n" +
			"-A ufw-before-input -i lo -j ACCEPT\n-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A ufw-before-input -j ufw-user-input\n" +
			"-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT\n-A ufw-after-input -p udp -m udp --dport 137 -j ufw-after-logging-input\n" +
			"-A ufw-after-logging-input -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix \"[UFW BLOCK] \"\n-A ufw-after-logging-input -j RETURN\nCOMMIT\n"
		// A user chain accepting everything, jumped to unconditionally.
		v6JumpAccept = "*filter\n:INPUT DROP [0:0]\n:allow-all - [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -j allow-all\n-A allow-all -j LOG --log-prefix \"in \"\n-A allow-all -j ACCEPT\nCOMMIT\n"
		// Policy ACCEPT; a goto to a chain ending in REJECT.
		v6GotoReject = "*filter\n:INPUT ACCEPT [0:0]\n:deny - [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A INPUT -g deny\n-A INPUT -j ACCEPT\n-A deny -j REJECT --reject-with icmp6-adm-prohibited\nCOMMIT\n"
		// Chains jumping to each other: not a ruleset iptables would
		// load, but the walk must end.
		v6Loop = "*filter\n:INPUT ACCEPT [0:0]\n:a - [0:0]\n:b - [0:0]\n-A INPUT -j a\n-A a -j b\n-A b -j a\nCOMMIT\n"
	)
	save := func(v4, v6 string) func(context.Context, bool) ([]byte, error) {
		return func(_ context.Context, isV6 bool) ([]byte, error) {
			out := v4
			name := "iptables-save"
			if isV6 {
				out, name = v6, "ip6tables-save"
			}
			switch out {
			case "missing":
				return nil, &exec.Error{Name: name, Err: exec.ErrNotFound}
			case "broken":
				return nil, errors.New("exit status 1: can't initialize ip6tables table `filter'")
			}
			return []byte(out), nil
		}
	}
	for _, tt := range []struct {
		name, v4, v6 string
		st           Status
		want         []string
	}{
		{"drop and final reject", v4Drop, v6Reject, Pass,
			[]string{"IPv4 (ip): iptables-save: filter INPUT, policy DROP", "IPv6 (ip6): ip6tables-save: filter INPUT, policy ACCEPT, last rule an unconditional REJECT"}},
		{"v6 open", v4Drop, v6Open, Fail, []string{"IPv6 (ip6): ip6tables-save: filter INPUT, policy ACCEPT, no final DROP or REJECT"}},
		{"a reject before other rules", v4Drop, v6EarlyReject, Pass, []string{"IPv6 (ip6): ip6tables-save: filter INPUT, policy ACCEPT, line 3 (-A INPUT -j REJECT) an unconditional REJECT"}},
		{"no filter table", noFilter, v6Reject, Fail, []string{"IPv4 (ip): iptables-save: no filter table"}},
		{"no ip6tables-save", v4Drop, "missing", Unknown, []string{"ip6tables-save is not installed"}},
		{"ip6tables-save fails", v4Drop, "broken", Unknown, []string{"can't initialize ip6tables"}},
		// A failure stands even when the other family cannot be read.
		{"v4 open, v6 unreadable", noFilter, "missing", Fail, []string{"no filter table"}},
		{"neither", "missing", "missing", Unknown, []string{"neither nft nor iptables-save is installed"}},
		{"accept everything before the policy", v4AcceptAll, v6Reject, Fail,
			[]string{"IPv4 (ip): iptables-save: filter INPUT, policy DROP, line 7 (-A INPUT -j ACCEPT) accepts every packet: the policy is never reached"}},
		{"a comment is no condition", v4Drop, v6CommentAccept, Fail,
			[]string{`IPv6 (ip6): ip6tables-save: filter INPUT, policy DROP, line 4 (-A INPUT -m comment --comment temporary: allow "all" -j ACCEPT) accepts every packet`}},
		{"ufw", v4UFW, v6GotoReject, Pass,
			[]string{"IPv4 (ip): iptables-save: filter INPUT, policy DROP",
				"IPv6 (ip6): ip6tables-save: filter INPUT, policy ACCEPT, line 5 (-A INPUT -g deny) goes to chain deny: line 7 (-A deny -j REJECT --reject-with icmp6-adm-prohibited) an unconditional REJECT"}},
		{"jump to a chain accepting everything", v4Drop, v6JumpAccept, Fail,
			[]string{"IPv6 (ip6): ip6tables-save: filter INPUT, policy DROP, line 5 (-A INPUT -j allow-all) jumps to chain allow-all: line 7 (-A allow-all -j ACCEPT) accepts every packet"}},
		{"loop", v4Drop, v6Loop, Unknown,
			[]string{"line 5 (-A INPUT -j a) jumps to chain a: line 6 (-A a -j b) jumps to chain b: line 7 (-A b -j a) jumps to chain a, a loop: what becomes of packets cannot be told"}},
		{"loop and an open family", noFilter, v6Loop, Fail, []string{"no filter table", "a loop"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			expectEvidence(t, firewallFinding(t, Auditor{NFT: noNFT, IPTablesSave: save(tt.v4, tt.v6)}), tt.st, tt.want)
		})
	}
	// iptables-save -c prefixes rules with their counters.
	r := parseIPTablesSave([]byte("*filter\n:INPUT ACCEPT [5:300]\n[0:0] -A INPUT -j DROP\nCOMMIT\n"))
	if res, policy := r.input(); !r.found || policy != "ACCEPT" || res.verdict != "drop" || res.path != "line 3 (-A INPUT -j DROP)" || !res.last {
		t.Errorf("counters: %+v: %s %+v", r, policy, res)
	}
}

func TestUnconditional(t *testing.T) {
	for _, tt := range []struct {
		expr, verdict, target string
	}{
		{`[{"drop": null}]`, "drop", ""},
		{`[{"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]`, "drop", ""},
		{`[{"counter": {"packets": 0, "bytes": 0}}, {"reject": {"type": "icmpx", "expr": "port-unreachable"}}]`, "reject", ""},
		{`[{"log": {"prefix": "in: "}}, {"counter": null}, {"reject": null}]`, "reject", ""},
		{`[{"accept": null}]`, "accept", ""},
		{`[{"counter": null}, {"accept": null}]`, "accept", ""},
		{`[{"return": null}]`, "return", ""},
		{`[{"queue": {"num": 1}}]`, "queue", ""},
		{`[{"jump": {"target": "deny"}}]`, "jump", "deny"},
		{`[{"counter": null}, {"goto": {"target": "svc"}}]`, "goto", "svc"},
		{`[{"jump": "deny"}]`, "jump", ""},
		{`[]`, "", ""},
		{`[{"counter": null}]`, "", ""},
		{`[{"continue": null}]`, "", ""},
		{`[{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 23}}, {"drop": null}]`, "", ""},
		{`[{"match": {"op": "==", "left": {"meta": {"key": "iif"}}, "right": "lo"}}, {"accept": null}]`, "", ""},
		{`[{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"jump": {"target": "x"}}]`, "", ""},
		{`[{"limit": {"rate": 10, "per": "second"}}, {"drop": null}]`, "", ""},
		{`[{"vmap": {"key": {"meta": {"key": "l4proto"}}, "data": {"set": [["tcp", {"accept": null}]]}}}]`, "", ""},
		{`[{"drop": null, "counter": null}]`, "", ""},
		{`[{"drop": null}, {"counter": null}]`, "", ""},
	} {
		var expr []map[string]json.RawMessage
		if err := json.Unmarshal([]byte(tt.expr), &expr); err != nil {
			t.Fatal(err)
		}
		if v, target := unconditional(expr); v != tt.verdict || target != tt.target {
			t.Errorf("%s: %q %q, want %q %q", tt.expr, v, target, tt.verdict, tt.target)
		}
	}
}

// nftDoc makes nft's JSON output of one inet table "t": chains maps each
// chain to its rules' statements; chain "input" is the base chain, with
// policy.
func nftDoc(policy string, chains map[string][]string) []byte {
	var objs []string
	objs = append(objs, `{"table": {"family": "inet", "name": "t"}}`)
	for name := range chains {
		if name == "input" {
			objs = append(objs, fmt.Sprintf(`{"chain": {"family": "inet", "table": "t", "name": "input", "type": "filter", "hook": "input", "policy": %q}}`, policy))
		} else {
			objs = append(objs, fmt.Sprintf(`{"chain": {"family": "inet", "table": "t", "name": %q}}`, name))
		}
	}
	for name, rules := range chains {
		for i, expr := range rules {
			objs = append(objs, fmt.Sprintf(`{"rule": {"family": "inet", "table": "t", "chain": %q, "handle": %d, "expr": %s}}`, name, 100+i, expr))
		}
	}
	return []byte(`{"nftables": [` + strings.Join(objs, ",") + `]}`)
}

func TestChainWalk(t *testing.T) {
	const (
		accept = `[{"accept": null}]`
		drop   = `[{"counter": null}, {"drop": null}]`
		ret    = `[{"return": null}]`
		ssh    = `[{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"accept": null}]`
	)
	jump := func(c string) string { return fmt.Sprintf(`[{"jump": {"target": %q}}]`, c) }
	goTo := func(c string) string { return fmt.Sprintf(`[{"goto": {"target": %q}}]`, c) }
	for _, tt := range []struct {
		name   string
		policy string
		chains map[string][]string
		st     Status
		want   string
	}{
		{"drop before accept", "accept", map[string][]string{"input": {ssh, drop, accept}}, Pass, "policy accept, rule 2 (handle 101) an unconditional drop"},
		{"accept before drop", "drop", map[string][]string{"input": {ssh, accept, drop}}, Fail, "policy drop, rule 2 (handle 101) accepts every packet: the policy is never reached"},
		{"return: the policy decides", "drop", map[string][]string{"input": {ret, accept}}, Pass, "policy drop"},
		{"return to the caller", "accept", map[string][]string{"input": {jump("a"), drop}, "a": {ssh, ret, accept}}, Pass, "last rule an unconditional drop: rule 2 (handle 101)"},
		{"goto then return", "accept", map[string][]string{"input": {goTo("a"), drop}, "a": {ret}}, Fail, "policy accept, no final drop or reject"},
		{"jump into goto", "accept", map[string][]string{"input": {jump("a"), drop}, "a": {goTo("b"), accept}, "b": {ssh}}, Pass, "last rule an unconditional drop"},
		{"nested accept", "drop", map[string][]string{"input": {jump("a")}, "a": {jump("b")}, "b": {accept}},
			Fail, "rule 1 (handle 100) jumps to chain a: rule 1 (handle 100) jumps to chain b: rule 1 (handle 100) accepts every packet"},
		{"a chain jumped to twice", "accept", map[string][]string{"input": {jump("a"), jump("a"), drop}, "a": {ssh}}, Pass, "rule 3 (handle 102)"},
		{"loop", "drop", map[string][]string{"input": {jump("a")}, "a": {jump("b")}, "b": {goTo("a")}}, Unknown, "rule 1 (handle 100) goes to chain a, a loop"},
		{"missing chain", "drop", map[string][]string{"input": {jump("nowhere"), drop}}, Unknown, "jumps to chain nowhere, which does not exist"},
		{"queue", "drop", map[string][]string{"input": {`[{"queue": {"num": 0}}]`}}, Unknown, "queues every packet to a program"},
		{"eight deep", "accept", map[string][]string{"input": {jump("c1")}, "c1": {jump("c2")}, "c2": {jump("c3")}, "c3": {jump("c4")},
			"c4": {jump("c5")}, "c5": {jump("c6")}, "c6": {jump("c7")}, "c7": {jump("c8")}, "c8": {drop}}, Pass, "jumps to chain c8: rule 1 (handle 100) an unconditional drop"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := parseNFT(nftDoc(tt.policy, tt.chains))
			if err != nil {
				t.Fatal(err)
			}
			st, ev := judgeNFT(rs)
			if st != tt.st || !strings.Contains(strings.Join(ev, " | "), tt.want) {
				t.Errorf("%s %q, want %s with %q", st, ev, tt.st, tt.want)
			}
		})
	}
	// A wide ruleset stays quick: every chain jumps to the next 200
	// times, eight deep; each chain is walked once per depth.
	chains := map[string][]string{}
	for i := range 9 {
		name := fmt.Sprintf("c%d", i)
		if i == 0 {
			name = "input"
		}
		for range 200 {
			if i < 8 {
				chains[name] = append(chains[name], jump(fmt.Sprintf("c%d", i+1)))
			} else {
				chains[name] = append(chains[name], ssh)
			}
		}
	}
	chains["input"] = append(chains["input"], drop)
	rs, err := parseNFT(nftDoc("accept", chains))
	if err != nil {
		t.Fatal(err)
	}
	if st, ev := judgeNFT(rs); st != Pass || !strings.Contains(ev[0], "last rule an unconditional drop: rule 201") {
		t.Errorf("wide: %s %q", st, ev)
	}
}

// oracle runs a packet no condition matches through a base chain the way
// the kernel does (nft_do_chain): a stack of jumps, gotos replacing the
// current chain, the policy when the base chain runs out. It gives
// "drop" (or reject), "accept", "policy" (the chain ran out, policy
// accept) or "unknown" (too deep, a missing chain, a queue, too long).
func oracle(rs *nftRuleset, base nftChain) string {
	type frame struct {
		chain string
		next  int
		level int
	}
	exists := map[string]bool{}
	for _, c := range rs.Chains {
		if c.Family == base.Family && c.Table == base.Table {
			exists[c.Name] = true
		}
	}
	rules := func(c string) []nftRule { return rs.Rules[[3]string{base.Family, base.Table, c}] }
	var stack []frame
	cur := frame{chain: base.Name}
	for steps := 0; steps < 1e6; steps++ {
		rr := rules(cur.chain)
		if cur.next >= len(rr) {
			if len(stack) == 0 {
				if base.Policy == "drop" {
					return "drop"
				}
				return "policy"
			}
			cur, stack = stack[len(stack)-1], stack[:len(stack)-1]
			continue
		}
		v, target := unconditional(rr[cur.next].Expr)
		cur.next++
		switch v {
		case "accept":
			return "accept"
		case "drop", "reject":
			return "drop"
		case "queue":
			return "unknown"
		case "return":
			cur.next = len(rr)
		case "jump", "goto":
			if !exists[target] && len(rules(target)) == 0 || cur.level+1 > maxJumpDepth {
				return "unknown"
			}
			if v == "jump" {
				stack = append(stack, cur)
			}
			cur = frame{chain: target, level: cur.level + 1}
		}
	}
	return "unknown"
}

// FuzzNFTRuleset: nft's output is another program's text. Nothing in it
// may panic, and the verdict agrees with a packet run through the
// chains: a pass needs every family dropped by some input chain, and a
// family no chain drops (each known to accept) fails.
func FuzzNFTRuleset(f *testing.F) {
	for _, name := range []string{"nft-inet-drop.json", "nft-final-drop.json", "nft-accept-only.json", "nft-ip-only.json", "nft-empty.json",
		"nft-accept-all.json", "nft-log-accept.json", "nft-jump-drop.json", "nft-jump-accept.json", "nft-goto.json", "nft-deep-jumps.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"nftables": [{"chain": {"family": "inet", "table": "t", "name": "c", "type": "filter", "hook": "input"}}, {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": [{"drop": null}]}}]}`))
	f.Add([]byte(`{"nftables": [{"chain": {"family": "ip", "table": "t", "name": "c", "type": "filter", "hook": "input", "policy": "drop"}}, {"rule": {"family": "ip", "table": "t", "chain": "c", "expr": [{"jump": {"target": "c"}}]}}]}`))
	f.Add(nftDoc("drop", map[string][]string{"input": {`[{"jump": {"target": "a"}}]`, `[{"accept": null}]`}, "a": {`[{"goto": {"target": "b"}}]`}, "b": {`[{"return": null}]`}}))
	f.Add([]byte(`{"nftables": null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<20 {
			return // bounded: nft's real output is parsed whole, fuzzing needs no megabytes
		}
		rs, err := parseNFT(b)
		if err != nil {
			return
		}
		st, ev := judgeNFT(rs)
		if len(ev) == 0 || (st != Pass && st != Fail && st != Unknown) {
			t.Fatalf("%s %q from %q", st, ev, b)
		}
		drops, unknown, inputs := map[string]bool{}, map[string]bool{}, 0
		for _, c := range rs.Chains {
			if c.Hook != "input" || c.Type != "filter" || families[c.Family] == nil {
				continue
			}
			inputs++
			o := oracle(rs, c)
			for _, fam := range families[c.Family] {
				drops[fam] = drops[fam] || o == "drop"
				unknown[fam] = unknown[fam] || o == "unknown"
			}
		}
		open := inputs == 0
		for _, fam := range []string{"ip", "ip6"} {
			if !drops[fam] && !unknown[fam] {
				open = true
			}
		}
		switch {
		case st == Pass && (!drops["ip"] || !drops["ip6"]):
			t.Fatalf("pass, but a packet is not dropped (%v): %q from %q", drops, ev, b)
		case open && st != Fail:
			t.Fatalf("%s, but a family is open: %q from %q", st, ev, b)
		case st == Fail && !open:
			t.Fatalf("fail, but every family is dropped or unknown (%v %v): %q from %q", drops, unknown, ev, b)
		}
	})
}

// FuzzIPTablesSave: iptables-save's output is another program's text.
// Nothing in it may panic, the walk ends, and a decided verdict names
// its rule.
func FuzzIPTablesSave(f *testing.F) {
	f.Add([]byte("*filter\n:INPUT DROP [0:0]\n:a - [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -j a\n-A a -g INPUT\n-A a -m comment --comment \"x \\\"y\\\"\" -j ACCEPT\nCOMMIT\n"))
	f.Add([]byte("*filter\n:INPUT ACCEPT [5:300]\n[0:0] -A INPUT -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n"))
	f.Add([]byte("*filter\n:\n-A\n-A INPUT -g\n-A INPUT -j \"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		r := parseIPTablesSave(b)
		res, policy := r.input()
		if policy == "" || (res.verdict != "" && res.path == "") {
			t.Fatalf("%q %+v from %q", policy, res, b)
		}
	})
}
