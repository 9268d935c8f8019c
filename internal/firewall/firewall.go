//go:build linux

package firewall

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Set indexes and names. The order is also the rule order.
const (
	setBan4 = iota
	setBanNet4
	setBan6
	setBanNet6
	numSets
)

var setNames = [numSets]string{"ban4", "bannet4", "ban6", "bannet6"}

// Firewall is Bulwark's nftables table in one network namespace. Its
// methods are safe for concurrent use.
type Firewall struct {
	mu     sync.Mutex
	conn   *nftables.Conn
	opt    Options
	table  *nftables.Table
	sets   [numSets]*nftables.Set
	chains []*nftables.Chain
	closed bool
}

// Available reports why nftables cannot be used in the current network
// namespace, or nil when it can. It only reads: it lists the inet tables.
func Available() error { return availableIn(0) }

func availableIn(netns int) error {
	if err := checkCapNetAdmin(); err != nil {
		return err
	}
	c, err := nftables.New(nftables.WithNetNSFd(netns))
	if err != nil {
		return classify("open a netfilter netlink socket", err)
	}
	if _, err := c.ListTablesOfFamily(nftables.TableFamilyINet); err != nil {
		return classify("list nftables tables", err)
	}
	return nil
}

// checkCapNetAdmin reads the effective capabilities of this process:
// without CAP_NET_ADMIN the kernel answers EPERM, which is less helpful.
func checkCapNetAdmin() error {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil // cannot tell; let netlink answer
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return nil
		}
		if caps&(1<<unix.CAP_NET_ADMIN) == 0 {
			return fmt.Errorf("%w: this process (uid %d) lacks CAP_NET_ADMIN; run Bulwark as root or grant it the capability (e.g. AmbientCapabilities=CAP_NET_ADMIN in its systemd unit)", ErrUnavailable, os.Geteuid())
		}
		return nil
	}
	return nil
}

// classify turns the errors of a failed netlink call into one that says
// what is missing.
func classify(what string, err error) error {
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%w: %s: permission denied; run as root or with CAP_NET_ADMIN: %v", ErrUnavailable, what, err)
	case errors.Is(err, syscall.EPROTONOSUPPORT), errors.Is(err, syscall.EAFNOSUPPORT):
		return fmt.Errorf("%w: %s: the kernel has no netfilter netlink (CONFIG_NETFILTER_NETLINK): %v", ErrUnavailable, what, err)
	// Without nf_tables the kernel answers a batch with EOPNOTSUPP and a
	// plain request (a listing) with EINVAL: nfnetlink knows no such
	// subsystem. A listing has no other reason to be invalid.
	case errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.EINVAL) && strings.Contains(what, "list"):
		return fmt.Errorf("%w: %s: the kernel has no nf_tables (load module nf_tables or enable CONFIG_NF_TABLES): %v", ErrUnavailable, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Open connects to nftables in opt.NetNS and creates, or re-asserts, the
// table described in the package documentation. It does not load any
// element: call Sync next.
func Open(opt Options) (*Firewall, error) {
	if opt.Table == "" {
		opt.Table = DefaultTable
	}
	if len(opt.Table) > 255 || strings.IndexByte(opt.Table, 0) >= 0 {
		return nil, fmt.Errorf("firewall: table name %q: must be 1 to 255 bytes without NUL", opt.Table)
	}
	switch {
	case opt.BatchSize == 0:
		opt.BatchSize = DefaultBatchSize
	case opt.BatchSize < MinBatchSize || opt.BatchSize > MaxBatchSize:
		return nil, fmt.Errorf("firewall: batch size %d: must be between %d and %d", opt.BatchSize, MinBatchSize, MaxBatchSize)
	}
	if opt.Priority == 0 {
		opt.Priority = DefaultPriority
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if err := checkCapNetAdmin(); err != nil {
		return nil, err
	}
	conn, err := nftables.New(nftables.WithNetNSFd(opt.NetNS), nftables.AsLasting())
	if err != nil {
		return nil, classify("firewall: open a netfilter netlink socket", err)
	}
	f := &Firewall{conn: conn, opt: opt}
	f.layout()
	if err := f.assert(); err != nil {
		_ = conn.CloseLasting()
		return nil, err
	}
	return f, nil
}

// layout fills in the objects of our table, as Go values.
func (f *Firewall) layout() {
	f.table = &nftables.Table{Name: f.opt.Table, Family: nftables.TableFamilyINet}
	for i := range numSets {
		s := &nftables.Set{
			Table:      f.table,
			ID:         uint32(i + 1), // ours: the library's counter is not goroutine-safe
			Name:       setNames[i],
			HasTimeout: true,
			Interval:   i == setBanNet4 || i == setBanNet6,
			KeyType:    nftables.TypeIPAddr,
		}
		if i == setBan6 || i == setBanNet6 {
			s.KeyType = nftables.TypeIP6Addr
		}
		f.sets[i] = s
	}
	prio := nftables.ChainPriority(f.opt.Priority)
	policy := nftables.ChainPolicyAccept
	hooks := []struct {
		name string
		hook *nftables.ChainHook
	}{{"input", nftables.ChainHookInput}}
	if f.opt.Forward {
		hooks = append(hooks, struct {
			name string
			hook *nftables.ChainHook
		}{"forward", nftables.ChainHookForward})
	}
	f.chains = f.chains[:0]
	for _, h := range hooks {
		f.chains = append(f.chains, &nftables.Chain{
			Name:     h.name,
			Table:    f.table,
			Type:     nftables.ChainTypeFilter,
			Hooknum:  h.hook,
			Priority: &prio,
			Policy:   &policy,
		})
	}
}

// rule returns the expressions and comment of the drop rule for set i:
// what `nft add rule inet T C ip saddr @ban4 counter drop` sends.
func (f *Firewall) rule(i int) ([]expr.Any, []byte) {
	proto, off, n := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
	if i == setBan6 || i == setBanNet6 {
		proto, off, n = unix.NFPROTO_IPV6, 8, 16
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: setNames[i], SetID: f.sets[i].ID},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}, userdata.AppendString(nil, userdata.TypeComment, "bulwark "+setNames[i])
}

// assert checks the table against the layout and rebuilds it, in one
// transaction, when anything differs.
func (f *Firewall) assert() error {
	ok, err := f.matches()
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	exists, err := f.tableExists()
	if err != nil {
		return err
	}
	if exists {
		f.conn.DelTable(f.table)
	}
	f.conn.AddTable(f.table)
	for _, s := range f.sets {
		if err := f.conn.AddSet(s, nil); err != nil {
			return fmt.Errorf("firewall: table inet %s: set %s: %w", f.opt.Table, s.Name, err)
		}
	}
	for _, c := range f.chains {
		f.conn.AddChain(c)
		for i := range numSets {
			exprs, ud := f.rule(i)
			f.conn.AddRule(&nftables.Rule{Table: f.table, Chain: c, Exprs: exprs, UserData: ud})
		}
	}
	if err := f.conn.Flush(); err != nil {
		return classify(fmt.Sprintf("firewall: create table inet %s", f.opt.Table), err)
	}
	return nil
}

func (f *Firewall) tableExists() (bool, error) {
	tables, err := f.conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, classify("firewall: list inet tables", err)
	}
	for _, t := range tables {
		if t.Name == f.opt.Table {
			return true, nil
		}
	}
	return false, nil
}

// matches reports whether our table holds exactly the layout.
func (f *Firewall) matches() (bool, error) {
	exists, err := f.tableExists()
	if err != nil || !exists {
		return false, err
	}
	sets, err := f.conn.GetSets(f.table)
	if err != nil {
		return false, fmt.Errorf("firewall: table inet %s: list sets: %w", f.opt.Table, err)
	}
	if len(sets) != numSets {
		return false, nil
	}
	for _, got := range sets {
		i := setIndex(got.Name)
		if i < 0 {
			return false, nil
		}
		want := f.sets[i]
		if got.KeyType.Name != want.KeyType.Name || got.KeyType.Bytes != want.KeyType.Bytes ||
			got.Interval != want.Interval || !got.HasTimeout || got.Timeout != 0 ||
			got.IsMap || got.Constant || got.Anonymous || got.Concatenation || got.Dynamic {
			return false, nil
		}
	}
	chains, err := f.conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("firewall: table inet %s: list chains: %w", f.opt.Table, err)
	}
	var ours []*nftables.Chain
	for _, c := range chains {
		if c.Table != nil && c.Table.Name == f.opt.Table {
			ours = append(ours, c)
		}
	}
	if len(ours) != len(f.chains) {
		return false, nil
	}
	for _, want := range f.chains {
		var got *nftables.Chain
		for _, c := range ours {
			if c.Name == want.Name {
				got = c
			}
		}
		if got == nil || got.Type != want.Type || got.Hooknum == nil || *got.Hooknum != *want.Hooknum ||
			got.Priority == nil || *got.Priority != *want.Priority || got.Policy == nil || *got.Policy != *want.Policy {
			return false, nil
		}
		rules, err := f.conn.GetRules(f.table, want)
		if err != nil {
			return false, fmt.Errorf("firewall: table inet %s: chain %s: list rules: %w", f.opt.Table, want.Name, err)
		}
		if len(rules) != numSets {
			return false, nil
		}
		for i, r := range rules {
			exprs, ud := f.rule(i)
			if !bytes.Equal(r.UserData, ud) || !sameExprs(r.Exprs, exprs) {
				return false, nil
			}
		}
	}
	return true, nil
}

func setIndex(name string) int {
	for i, n := range setNames {
		if n == name {
			return i
		}
	}
	return -1
}

// sameExprs compares rule expressions as read back with the ones we send,
// ignoring counter values and the transaction-local set ID.
func sameExprs(got, want []expr.Any) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		switch g := g.(type) {
		case *expr.Counter:
			if _, ok := w.(*expr.Counter); !ok {
				return false
			}
			continue
		case *expr.Lookup:
			w, ok := w.(*expr.Lookup)
			if !ok {
				return false
			}
			gc, wc := *g, *w
			gc.SetID, wc.SetID = 0, 0
			if gc != wc {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			return false
		}
	}
	return true
}

// Dropped sums the counters of the drop rules: packets and bytes dropped
// since the table was created.
func (f *Firewall) Dropped() (packets, bytes uint64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, 0, errClosed
	}
	for _, c := range f.chains {
		rules, err := f.conn.GetRules(f.table, c)
		if err != nil {
			return 0, 0, fmt.Errorf("firewall: table inet %s: chain %s: read counters: %w", f.opt.Table, c.Name, err)
		}
		for _, r := range rules {
			for _, e := range r.Exprs {
				if ctr, ok := e.(*expr.Counter); ok {
					packets += ctr.Packets
					bytes += ctr.Bytes
				}
			}
		}
	}
	return packets, bytes, nil
}

// Delete removes Bulwark's table, with its sets, chains and counters. It
// touches no other table and succeeds when the table is already gone.
func (f *Firewall) Delete() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return errClosed
	}
	exists, err := f.tableExists()
	if err != nil || !exists {
		return err
	}
	f.conn.DelTable(f.table)
	if err := f.conn.Flush(); err != nil {
		return fmt.Errorf("firewall: delete table inet %s: %w", f.opt.Table, err)
	}
	return nil
}

// Close releases the netlink socket. The table and its bans stay in the
// kernel.
func (f *Firewall) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	if err := f.conn.CloseLasting(); err != nil {
		return fmt.Errorf("firewall: close netlink socket: %w", err)
	}
	return nil
}

var errClosed = errors.New("firewall: use of a closed Firewall")
