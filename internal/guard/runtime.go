package guard

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/config"
	"github.com/bulwarkhq/bulwark/internal/guard/limit"
	"github.com/bulwarkhq/bulwark/internal/guard/rules"
	"github.com/bulwarkhq/bulwark/internal/netindex"
)

// Runtime rules (internal/guard/rules): list entries and shaping rules
// added while the guard runs. A new snapshot replaces the lists (the
// config's entries plus the stored ones) and the shaping rules at once;
// requests already in progress keep the lists they were checked against
// but follow a changed bandwidth at their next write, because a rule keeps
// its bucket across snapshots (by name) and a changed cap is set on that
// bucket (limit.Bytes.SetRate wakes its waiters).

// RuleSource gives the guard its runtime rules (*rules.Rules).
type RuleSource interface {
	Snapshot() *rules.Snapshot
	Subscribe(func(*rules.Snapshot)) (cancel func())
}

// applyRules installs a snapshot of the runtime rules; a snapshot no newer
// than the one installed is ignored (versions start at 1: rules.Open has
// loaded one before anyone sees it).
func (g *Guard) applyRules(s *rules.Snapshot) {
	g.rulesMu.Lock()
	defer g.rulesMu.Unlock()
	if s == nil || s.Version <= g.rulesVersion {
		return
	}
	g.rulesVersion = s.Version
	g.allow.Set(append(config.Nets(g.cfg.Allow), s.Allow...))
	g.deny.Set(append(config.Nets(g.cfg.Deny), s.Deny...))
	g.shapes.Store(g.compileShapes(s.Shapes))
}

// shapeSet is the compiled shaping rules of one snapshot.
type shapeSet struct {
	nets     *netindex.Index[[]*shapeRule]
	accounts map[string][]*shapeRule
	sites    []*shapeRule // rules capping whole sites
}

// shapeRule is one rule with its bucket, shared by every response it
// matches.
type shapeRule struct {
	name   string
	sites  map[string]bool // site names; nil: every site
	bucket *limit.Bytes
}

func (r *shapeRule) applies(site string) bool { return r.sites == nil || r.sites[site] }

// pick returns the first rule of rs that applies to site: rules are
// ordered with those naming sites before those for every site, then by
// name, so the narrower rule wins.
func pick(rs []*shapeRule, site string) *shapeRule {
	for _, r := range rs {
		if r.applies(site) {
			return r
		}
	}
	return nil
}

// compileShapes builds the shaping rules of a snapshot, reusing the
// buckets of rules that already existed (so responses in progress follow
// an edit) and releasing those of removed rules. Called under rulesMu.
func (g *Guard) compileShapes(list []rules.Shape) *shapeSet {
	set := &shapeSet{nets: netindex.New[[]*shapeRule](), accounts: map[string][]*shapeRule{}}
	list = slices.Clone(list)
	slices.SortStableFunc(list, func(a, b rules.Shape) int {
		if (len(a.Sites) == 0) != (len(b.Sites) == 0) {
			if len(a.Sites) > 0 {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	keep := map[string]*limit.Bytes{}
	for _, sh := range list {
		b := g.buckets[sh.Name]
		if b == nil {
			b = limit.NewBytes(sh.Bandwidth, burstFor(sh.Bandwidth))
		} else if b.Rate() != sh.Bandwidth {
			b.SetRate(sh.Bandwidth, burstFor(sh.Bandwidth))
		}
		keep[sh.Name] = b
		r := &shapeRule{name: sh.Name, bucket: b}
		if len(sh.Sites) > 0 {
			r.sites = map[string]bool{}
			for _, h := range sh.Sites {
				if s, ok := g.sitesBy.lookup(h); ok {
					r.sites[s.name] = true
				} else {
					g.log.Warn("guard: shaping rule names a host no site answers", "rule", sh.Name, "host", h)
				}
			}
		}
		if sh.SiteWide() {
			set.sites = append(set.sites, r)
			continue
		}
		for _, p := range sh.Nets {
			set.nets.Add(p, []*shapeRule{r}, func(old, new []*shapeRule) []*shapeRule { return append(old, new...) })
		}
		for _, a := range sh.Accounts {
			set.accounts[a] = append(set.accounts[a], r)
		}
	}
	for name, b := range g.buckets {
		if keep[name] == nil {
			b.SetRate(0, 0) // unlimited: whoever waits on a removed rule goes on
		}
	}
	g.buckets = keep
	return set
}

// forSite returns the rule capping a whole site, or nil.
func (s *shapeSet) forSite(site string) *shapeRule {
	if s == nil {
		return nil
	}
	return pick(s.sites, site)
}

// forAddr returns the rule for a client address at a site, the most
// specific network first, or nil.
func (s *shapeSet) forAddr(a netip.Addr, site string) *shapeRule {
	if s == nil || s.nets.Len() == 0 || !a.IsValid() {
		return nil
	}
	_, rs, ok := s.nets.Match(a, func(rs []*shapeRule) bool { return pick(rs, site) != nil })
	if !ok {
		return nil
	}
	return pick(rs, site)
}

// forAccount returns the rule for an account at a site, or nil.
func (s *shapeSet) forAccount(account, site string) *shapeRule {
	if s == nil || account == "" {
		return nil
	}
	return pick(s.accounts[account], site)
}

// hasAccounts reports whether any rule matches by account.
func (s *shapeSet) hasAccounts() bool { return s != nil && len(s.accounts) > 0 }
