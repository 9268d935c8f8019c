package posture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// The firewall's default policy for incoming traffic, read from the
// running ruleset (`nft -j list ruleset`) or, without nft, from
// iptables-save and ip6tables-save.
//
// nftables runs every base chain hooked on input, in priority order, and
// a packet any of them drops is dropped: one chain that drops by default
// (its policy, or a last rule that drops or rejects whatever reached it)
// covers its family, and an inet chain covers both ip and ip6.

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

// nftRule is a rule: its chain and its statements, each an object of one
// key ({"counter": {...}}, {"match": {...}}, {"drop": null}).
type nftRule struct {
	Family string                       `json:"family"`
	Table  string                       `json:"table"`
	Chain  string                       `json:"chain"`
	Expr   []map[string]json.RawMessage `json:"expr"`
}

// nftRuleset is what the check needs of `nft -j list ruleset`.
type nftRuleset struct {
	Version string
	Tables  int
	Chains  []nftChain
	// Last is each chain's last rule, by family, table and chain.
	Last map[[3]string]nftRule
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
	rs := &nftRuleset{Last: map[[3]string]nftRule{}}
	for _, o := range *doc.Nftables {
		switch {
		case o.Metainfo != nil:
			rs.Version = o.Metainfo.Version
		case o.Table != nil:
			rs.Tables++
		case o.Chain != nil:
			rs.Chains = append(rs.Chains, *o.Chain)
		case o.Rule != nil:
			// Rules come in their chain's order: the last one seen is
			// the chain's last.
			r := *o.Rule
			rs.Last[[3]string{r.Family, r.Table, r.Chain}] = r
		}
	}
	return rs, nil
}

// finalVerdict is "drop" or "reject" when a rule drops whatever reaches
// it: its statements are one drop or reject verdict, preceded only by
// counters and logging, which match every packet.
func finalVerdict(expr []map[string]json.RawMessage) string {
	if len(expr) == 0 {
		return ""
	}
	for _, e := range expr[:len(expr)-1] {
		if len(e) != 1 {
			return ""
		}
		_, counter := e["counter"]
		_, log := e["log"]
		if !counter && !log {
			return ""
		}
	}
	last := expr[len(expr)-1]
	if len(last) != 1 {
		return ""
	}
	for _, v := range []string{"drop", "reject"} {
		if _, ok := last[v]; ok {
			return v
		}
	}
	return ""
}

// families maps a table family to the IP families its input chains see.
var families = map[string][]string{"inet": {"ip", "ip6"}, "ip": {"ip"}, "ip6": {"ip6"}}

// familyNames names the IP families in evidence.
var familyNames = map[string]string{"ip": "IPv4 (ip)", "ip6": "IPv6 (ip6)"}

// judgeNFT decides the check from a ruleset.
func judgeNFT(rs *nftRuleset) (Status, []string) {
	var ev []string
	covered := map[string]bool{}
	inputs := 0
	for _, c := range rs.Chains {
		if c.Hook != "input" || c.Type != "filter" || families[c.Family] == nil {
			continue
		}
		inputs++
		policy := c.Policy
		if policy == "" {
			policy = "accept" // a base chain's default
		}
		where := fmt.Sprintf("table %s %s, chain %s: hook input, policy %s", c.Family, c.Table, c.Name, policy)
		verdict := finalVerdict(rs.Last[[3]string{c.Family, c.Table, c.Name}].Expr)
		switch {
		case policy == "drop":
		case verdict != "":
			where += ", last rule an unconditional " + verdict
		default:
			ev = append(ev, where+", no final drop or reject")
			continue
		}
		ev = append(ev, where)
		for _, f := range families[c.Family] {
			covered[f] = true
		}
	}
	version := ""
	if rs.Version != "" {
		version = " " + rs.Version
	}
	if inputs == 0 {
		return Fail, []string{fmt.Sprintf("nftables%s: no filter chain on the input hook in %d tables (families inet, ip, ip6): every incoming packet is accepted", version, rs.Tables)}
	}
	ok := true
	for _, f := range []string{"ip", "ip6"} {
		if !covered[f] {
			ok = false
			ev = append(ev, familyNames[f]+": no input chain drops by default: incoming traffic not explicitly dropped is accepted")
		}
	}
	if ok {
		return Pass, ev
	}
	return Fail, ev
}

// ipt is iptables-save's filter table, INPUT chain.
type ipt struct {
	found  bool   // the filter table is there
	policy string // INPUT's policy: ACCEPT, DROP
	final  string // DROP or REJECT when the last rule is unconditional
}

// parseIPTablesSave reads iptables-save's output:
//
//	*filter
//	:INPUT DROP [0:0]
//	-A INPUT -i lo -j ACCEPT
//	-A INPUT -j REJECT --reject-with icmp-port-unreachable
//	COMMIT
func parseIPTablesSave(b []byte) ipt {
	var r ipt
	table := ""
	for _, line := range lines(b) {
		f := strings.Fields(line)
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
		case f[0] == ":INPUT" && len(f) > 1:
			r.policy = f[1]
		case f[0] == "-A" && len(f) > 1 && f[1] == "INPUT":
			r.final = ""
			// Unconditional: only a target, "-j DROP" or "-j REJECT"
			// (with its --reject-with).
			switch rest := f[2:]; {
			case slices.Equal(rest, []string{"-j", "DROP"}), slices.Equal(rest, []string{"-j", "REJECT"}):
				r.final = rest[1]
			case len(rest) == 4 && rest[0] == "-j" && rest[1] == "REJECT" && rest[2] == "--reject-with":
				r.final = rest[1]
			}
		}
	}
	return r
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
		switch {
		case !r.found:
			fail = true
			ev = append(ev, fmt.Sprintf("%s: %s: no filter table: every incoming packet is accepted", familyNames[fam], name))
		case r.policy == "DROP":
			ev = append(ev, fmt.Sprintf("%s: %s: filter INPUT, policy DROP", familyNames[fam], name))
		case r.final != "":
			ev = append(ev, fmt.Sprintf("%s: %s: filter INPUT, policy %s, last rule an unconditional %s", familyNames[fam], name, r.policy, r.final))
		default:
			fail = true
			ev = append(ev, fmt.Sprintf("%s: %s: filter INPUT, policy %s, no final DROP or REJECT", familyNames[fam], name, r.policy))
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
