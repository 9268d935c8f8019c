package posture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// The firewall's default policy for incoming traffic, read from the
// running ruleset (`nft -j list ruleset`) or, without nft, from
// iptables-save and ip6tables-save.
//
// nftables runs every base chain hooked on input, in priority order, and
// a packet any of them drops is dropped: one chain that drops by default
// covers its family, and an inet chain covers both ip and ip6. A chain
// drops by default when a packet that no condition matches is dropped:
// its rules are walked in order, the conditional ones (a port, an
// address, a connection state) skipped, until the first unconditional
// verdict. A drop or reject there drops by default; an accept accepts
// everything whatever the policy; a jump or goto makes the result that of
// the target chain (a jump returns when the target runs out); running out
// of rules (or an unconditional return) leaves the decision to the
// policy.

// nftChain is a chain of nft's JSON output; base chains have a type, a
// hook and a policy.
type nftChain struct {
	Family string `json:"family"`
	Table  string `json:"table"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Hook   string `json:"hook"`
	Policy string `json:"policy"`
}

// nftRule is a rule: its chain, its handle and its statements, each an
// object of one key ({"counter": {...}}, {"match": {...}}, {"drop": null}).
type nftRule struct {
	Family string                       `json:"family"`
	Table  string                       `json:"table"`
	Chain  string                       `json:"chain"`
	Handle int64                        `json:"handle"`
	Expr   []map[string]json.RawMessage `json:"expr"`
}

// nftRuleset is what the check needs of `nft -j list ruleset`.
type nftRuleset struct {
	Version string
	Tables  int
	Chains  []nftChain
	// Rules are each chain's rules in order, by family, table and chain.
	Rules map[[3]string][]nftRule
}

// parseNFT reads nft's JSON output: {"nftables": [{"metainfo": {...}},
// {"table": {...}}, {"chain": {...}}, {"rule": {...}}, ...]}. Other
// objects (sets, maps, elements, counters, flowtables) are skipped.
func parseNFT(b []byte) (*nftRuleset, error) {
	if len(b) > maxCommandOutput {
		return nil, fmt.Errorf("nft's output is longer than %d bytes", maxCommandOutput)
	}
	var doc struct {
		Nftables *[]struct {
			Metainfo *struct {
				Version string `json:"version"`
			} `json:"metainfo"`
			Table *struct {
				Family string `json:"family"`
				Name   string `json:"name"`
			} `json:"table"`
			Chain *nftChain `json:"chain"`
			Rule  *nftRule  `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("nft's JSON output: %w", err)
	}
	if doc.Nftables == nil {
		return nil, errors.New(`nft's JSON output: no "nftables" list`)
	}
	rs := &nftRuleset{Rules: map[[3]string][]nftRule{}}
	for _, o := range *doc.Nftables {
		switch {
		case o.Metainfo != nil:
			rs.Version = o.Metainfo.Version
		case o.Table != nil:
			rs.Tables++
		case o.Chain != nil:
			rs.Chains = append(rs.Chains, *o.Chain)
		case o.Rule != nil:
			// Rules come in their chain's order.
			k := [3]string{o.Rule.Family, o.Rule.Table, o.Rule.Chain}
			rs.Rules[k] = append(rs.Rules[k], *o.Rule)
		}
	}
	return rs, nil
}

// unconditional is the verdict of a rule that decides every packet
// reaching it: its statements are one verdict (accept, drop, reject,
// return, queue, or a jump or goto to target) preceded only by counters
// and logging, which match every packet. It is "" for any other rule: a
// match, a limit or a verdict map makes it conditional.
func unconditional(expr []map[string]json.RawMessage) (verdict, target string) {
	if len(expr) == 0 {
		return "", ""
	}
	for _, e := range expr[:len(expr)-1] {
		if len(e) != 1 {
			return "", ""
		}
		_, counter := e["counter"]
		_, log := e["log"]
		if !counter && !log {
			return "", ""
		}
	}
	last := expr[len(expr)-1]
	if len(last) != 1 {
		return "", ""
	}
	for _, v := range []string{"accept", "drop", "reject", "return", "queue"} {
		if _, ok := last[v]; ok {
			return v, ""
		}
	}
	for _, v := range []string{"jump", "goto"} {
		if raw, ok := last[v]; ok {
			var j struct {
				Target string `json:"target"`
			}
			json.Unmarshal(raw, &j) // a target that is no name is a chain that does not exist
			return v, j.Target
		}
	}
	return "", ""
}

// maxJumpDepth bounds the jumps and gotos followed from a base chain.
const maxJumpDepth = 8

// walkRule is a rule as the chain walk sees it.
type walkRule struct {
	// verdict is what the rule does to every packet reaching it: accept,
	// drop, reject, return, queue, jump or goto (to target); "" when it
	// does not decide every packet.
	verdict, target string
	// name is the rule in evidence: "rule 2 (handle 5)", "line 7 (-A
	// INPUT -j ACCEPT)".
	name string
}

// walkResult is what becomes of a packet no condition matches.
type walkResult struct {
	// verdict is accept, drop or reject; "" when the chain runs out of
	// rules (or returns) and its policy decides; "unknown" when it cannot
	// be told (a loop, too many jumps, a missing chain, a queue).
	verdict string
	// path names the deciding rule, and the jumps that led to it.
	path string
	// last is set when the deciding rule is the chain's last (not one
	// of a chain jumped to).
	last bool
}

const unknownVerdict = "unknown"

type walkKey struct {
	chain string
	depth int
}

// chainWalk follows the unconditional verdicts of a table's chains.
type chainWalk struct {
	rules   map[string][]walkRule // each chain's rules, in order
	exists  map[string]bool       // the chains declared (or with rules)
	memo    map[walkKey]walkResult
	onStack map[string]bool
}

func newChainWalk(rules map[string][]walkRule, declared map[string]bool) *chainWalk {
	w := &chainWalk{rules: rules, exists: map[string]bool{}, memo: map[walkKey]walkResult{}, onStack: map[string]bool{}}
	for c := range rules {
		w.exists[c] = true
	}
	for c := range declared {
		w.exists[c] = true
	}
	return w
}

// run walks chain, reached through depth jumps or gotos. Results are
// memoised by chain and depth: a chain jumped to from many rules is
// walked once per depth, not once per path.
func (w *chainWalk) run(chain string, depth int) walkResult {
	k := walkKey{chain, depth}
	if r, ok := w.memo[k]; ok {
		return r
	}
	rules := w.rules[chain]
	w.onStack[chain] = true
	defer delete(w.onStack, chain)
	res := walkResult{}
rules:
	for i, r := range rules {
		switch r.verdict {
		case "":
			continue
		case "accept", "drop", "reject":
			res = walkResult{verdict: r.verdict, path: r.name, last: i == len(rules)-1}
		case "return":
		case "queue":
			res = walkResult{verdict: unknownVerdict, path: r.name + " queues every packet to a program, which decides"}
		case "jump", "goto":
			how := "jumps to"
			if r.verdict == "goto" {
				how = "goes to"
			}
			step := fmt.Sprintf("%s %s chain %s", r.name, how, r.target)
			if !w.exists[r.target] {
				res = walkResult{verdict: unknownVerdict, path: step + ", which does not exist"}
				break rules
			}
			if w.onStack[r.target] {
				res = walkResult{verdict: unknownVerdict, path: step + ", a loop"}
				break rules
			}
			if depth+1 > maxJumpDepth {
				res = walkResult{verdict: unknownVerdict, path: fmt.Sprintf("%s, more than %d chains deep", step, maxJumpDepth)}
				break rules
			}
			sub := w.run(r.target, depth+1)
			if sub.verdict == "" {
				if r.verdict == "jump" {
					continue // back from the target, on to the next rule
				}
				break rules // a goto does not come back: this chain is done
			}
			res = walkResult{verdict: sub.verdict, path: step + ": " + sub.path}
		default:
			continue
		}
		break
	}
	w.memo[k] = res
	return res
}

// describe is the evidence of a base chain's walk; upper writes verdicts
// as iptables does (DROP). It returns whether the chain drops by default.
func describe(res walkResult, policy string, upper bool) (string, bool) {
	verdict := res.verdict
	if upper {
		verdict = strings.ToUpper(verdict)
	}
	switch res.verdict {
	case "drop", "reject":
		if res.last {
			return fmt.Sprintf(", last rule an unconditional %s: %s", verdict, res.path), true
		}
		return fmt.Sprintf(", %s an unconditional %s", res.path, verdict), true
	case "accept":
		s := ", " + res.path + " accepts every packet"
		if strings.EqualFold(policy, "drop") {
			s += ": the policy is never reached"
		}
		return s, false
	case unknownVerdict:
		return ", " + res.path + ": what becomes of packets cannot be told", false
	}
	if strings.EqualFold(policy, "drop") {
		return "", true
	}
	if upper {
		return ", no final DROP or REJECT", false
	}
	return ", no final drop or reject", false
}

// families maps a table family to the IP families its input chains see.
var families = map[string][]string{"inet": {"ip", "ip6"}, "ip": {"ip"}, "ip6": {"ip6"}}

// familyNames names the IP families in evidence.
var familyNames = map[string]string{"ip": "IPv4 (ip)", "ip6": "IPv6 (ip6)"}

// nftWalks makes the walks of the ruleset's tables, by family and table.
func nftWalks(rs *nftRuleset) map[[2]string]*chainWalk {
	rules := map[[2]string]map[string][]walkRule{}
	declared := map[[2]string]map[string]bool{}
	for _, c := range rs.Chains {
		t := [2]string{c.Family, c.Table}
		if declared[t] == nil {
			declared[t] = map[string]bool{}
		}
		declared[t][c.Name] = true
	}
	for k, rr := range rs.Rules {
		t := [2]string{k[0], k[1]}
		if rules[t] == nil {
			rules[t] = map[string][]walkRule{}
		}
		out := make([]walkRule, len(rr))
		for i, r := range rr {
			v, target := unconditional(r.Expr)
			name := fmt.Sprintf("rule %d", i+1)
			if r.Handle != 0 {
				name = fmt.Sprintf("rule %d (handle %d)", i+1, r.Handle)
			}
			out[i] = walkRule{verdict: v, target: target, name: name}
		}
		rules[t][k[2]] = out
	}
	walks := map[[2]string]*chainWalk{}
	for t := range declared {
		walks[t] = newChainWalk(rules[t], declared[t])
	}
	return walks
}

// judgeNFT decides the check from a ruleset.
func judgeNFT(rs *nftRuleset) (Status, []string) {
	var ev []string
	covered, unknown := map[string]bool{}, map[string]bool{}
	inputs := 0
	walks := nftWalks(rs)
	for _, c := range rs.Chains {
		if c.Hook != "input" || c.Type != "filter" || families[c.Family] == nil {
			continue
		}
		inputs++
		policy := c.Policy
		if policy == "" {
			policy = "accept" // a base chain's default
		}
		res := walks[[2]string{c.Family, c.Table}].run(c.Name, 0)
		how, drops := describe(res, policy, false)
		ev = append(ev, fmt.Sprintf("table %s %s, chain %s: hook input, policy %s%s", c.Family, c.Table, c.Name, policy, how))
		for _, f := range families[c.Family] {
			covered[f] = covered[f] || drops
			unknown[f] = unknown[f] || res.verdict == unknownVerdict
		}
	}
	version := ""
	if rs.Version != "" {
		version = " " + rs.Version
	}
	if inputs == 0 {
		return Fail, []string{fmt.Sprintf("nftables%s: no filter chain on the input hook in %d tables (families inet, ip, ip6): every incoming packet is accepted", version, rs.Tables)}
	}
	st := Pass
	for _, f := range []string{"ip", "ip6"} {
		switch {
		case covered[f]:
		case unknown[f]:
			if st == Pass {
				st = Unknown
			}
			ev = append(ev, familyNames[f]+": no input chain is known to drop by default")
		default:
			st = Fail
			ev = append(ev, familyNames[f]+": no input chain drops by default: incoming traffic not explicitly dropped is accepted")
		}
	}
	return st, ev
}

// ipt is iptables-save's filter table.
type ipt struct {
	found    bool                  // the filter table is there
	policies map[string]string     // the chains declared, with their policies (ACCEPT, DROP; "-" for user chains)
	rules    map[string][]walkRule // each chain's rules, in order
}

// iptFields splits a line of iptables-save into words; a quoted word
// ("-m comment --comment "allow all"") is one, its \" and \\ unescaped.
func iptFields(line string) []string {
	var out []string
	var w strings.Builder
	in, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			w.WriteByte(line[i])
		case c == '"':
			quoted, in = !quoted, true
		case !quoted && (c == ' ' || c == '\t'):
			if in {
				out = append(out, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteByte(c)
			in = true
		}
	}
	if in {
		out = append(out, w.String())
	}
	return out
}

// iptTargets are the targets that decide every packet of an
// unconditional rule; other targets (LOG, NFLOG, MARK...) let it go on.
var iptTargets = map[string]string{"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "RETURN": "return", "QUEUE": "queue", "NFQUEUE": "queue"}

// parseIPTablesSave reads iptables-save's output:
//
//	*filter
//	:INPUT DROP [0:0]
//	:allow - [0:0]
//	-A INPUT -i lo -j ACCEPT
//	-A INPUT -j allow
//	-A INPUT -j REJECT --reject-with icmp-port-unreachable
//	COMMIT
//
// A rule is unconditional when its target comes first (iptables-save
// writes the matches before it): "-A INPUT -j DROP", "-A INPUT -g
// allow"; a comment ("-m comment --comment x") matches every packet.
func parseIPTablesSave(b []byte) ipt {
	r := ipt{policies: map[string]string{}, rules: map[string][]walkRule{}}
	table := ""
	type pending struct {
		chain, text string
		line        int
		args        []string
	}
	var rules []pending
	for i, line := range lines(b) {
		f := iptFields(line)
		if len(f) > 0 && strings.HasPrefix(f[0], "[") { // -c: "[packets:bytes] -A ..."
			f = f[1:]
		}
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch {
		case strings.HasPrefix(f[0], "*"):
			table = f[0][1:]
			if table == "filter" {
				r.found = true
			}
		case table != "filter":
		case strings.HasPrefix(f[0], ":") && len(f[0]) > 1:
			policy := ""
			if len(f) > 1 {
				policy = f[1]
			}
			r.policies[f[0][1:]] = policy
		case f[0] == "-A" && len(f) > 1:
			rules = append(rules, pending{chain: f[1], line: i + 1, text: strings.Join(f, " "), args: f[2:]})
		}
	}
	// Targets are told from chains once every chain is declared.
	for _, p := range rules {
		var args []string
		for j := 0; j < len(p.args); j++ {
			if p.args[j] == "-m" && j+3 < len(p.args) && p.args[j+1] == "comment" && p.args[j+2] == "--comment" {
				j += 3
				continue
			}
			args = append(args, p.args[j])
		}
		wr := walkRule{name: fmt.Sprintf("line %d (%s)", p.line, p.text)}
		if len(args) >= 2 {
			_, chain := r.policies[args[1]]
			switch {
			case args[0] == "-g":
				wr.verdict, wr.target = "goto", args[1]
			case args[0] != "-j":
			case iptTargets[args[1]] != "":
				wr.verdict = iptTargets[args[1]]
			case chain:
				wr.verdict, wr.target = "jump", args[1]
			}
		}
		r.rules[p.chain] = append(r.rules[p.chain], wr)
	}
	return r
}

// input walks the filter table's INPUT chain.
func (r ipt) input() (walkResult, string) {
	policy := r.policies["INPUT"]
	if policy == "" {
		policy = "ACCEPT" // a built-in chain's default
	}
	declared := map[string]bool{}
	for c := range r.policies {
		declared[c] = true
	}
	return newChainWalk(r.rules, declared).run("INPUT", 0), policy
}

// iptablesPolicy judges the fallback: iptables-save for IPv4,
// ip6tables-save for IPv6.
func (a *Auditor) iptablesPolicy(ctx context.Context) (Status, []string) {
	if a.IPTablesSave == nil {
		return Unknown, []string{"nft is not installed, and iptables-save cannot be run"}
	}
	var ev []string
	fail, unknown := false, false
	missing := 0
	for _, v6 := range []bool{false, true} {
		name, fam := "iptables-save", "ip"
		if v6 {
			name, fam = "ip6tables-save", "ip6"
		}
		out, err := a.IPTablesSave(ctx, v6)
		if errors.Is(err, exec.ErrNotFound) {
			missing++
			unknown = true
			ev = append(ev, fmt.Sprintf("%s: %s is not installed", familyNames[fam], name))
			continue
		}
		if err != nil {
			unknown = true
			ev = append(ev, fmt.Sprintf("%s: %s: %v", familyNames[fam], name, err))
			continue
		}
		r := parseIPTablesSave(out)
		if !r.found {
			fail = true
			ev = append(ev, fmt.Sprintf("%s: %s: no filter table: every incoming packet is accepted", familyNames[fam], name))
			continue
		}
		res, policy := r.input()
		how, drops := describe(res, policy, true)
		ev = append(ev, fmt.Sprintf("%s: %s: filter INPUT, policy %s%s", familyNames[fam], name, policy, how))
		switch {
		case drops:
		case res.verdict == unknownVerdict:
			unknown = true
		default:
			fail = true
		}
	}
	switch {
	case missing == 2:
		return Unknown, []string{"neither nft nor iptables-save is installed: the firewall's policy cannot be read"}
	case fail:
		return Fail, ev
	case unknown:
		return Unknown, ev
	}
	return Pass, ev
}

func (a *Auditor) firewallPolicy() (Status, []string) {
	if a.NFT == nil {
		return Skipped, []string{"the running firewall is this host's, not that of the system under " + a.Root}
	}
	ctx, cancel := context.WithTimeout(context.Background(), firewallTimeout)
	defer cancel()
	out, err := a.NFT(ctx)
	if errors.Is(err, exec.ErrNotFound) {
		return a.iptablesPolicy(ctx)
	}
	if err != nil {
		msg := "nft -j list ruleset: " + err.Error()
		if strings.Contains(err.Error(), "not permitted") {
			msg += " (the audit needs root)"
		}
		return Unknown, []string{msg}
	}
	rs, err := parseNFT(out)
	if err != nil {
		return Unknown, []string{err.Error()}
	}
	return judgeNFT(rs)
}
