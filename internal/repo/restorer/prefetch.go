package restorer

// Tree prefetch. Planning is serial: it walks the snapshot's trees depth
// first and creates directories in that order. Loading a tree (read,
// decrypt, decompress, verify, decode) is pure work that needs no order, so
// a few goroutines load the subtrees of each directory while the planner
// is busy with the directories before them. Requests go on a stack and are
// pushed last child first, so a loader always takes the tree the planner
// will want soonest (its next depth-first step). A tree the planner reaches
// before any loader claimed it is loaded by the planner itself; it never
// waits on a queue.

import (
	"context"
	"sync"

	"github.com/bulwarkhq/bulwark/internal/repo"
	"github.com/bulwarkhq/bulwark/internal/repo/tree"
)

type treeFuture struct {
	id      repo.ID
	claimed bool          // a loader or the planner took it (guarded by prefetcher.mu)
	done    chan struct{} // closed when t and err are set
	t       *tree.Tree
	err     error
}

type prefetcher struct {
	ctx   context.Context
	load  func(context.Context, repo.ID) (*tree.Tree, error)
	mu    sync.Mutex
	cond  *sync.Cond
	stack []*treeFuture
	all   map[repo.ID]*treeFuture
	stop  bool
	wg    sync.WaitGroup
}

func newPrefetcher(ctx context.Context, loaders int, load func(context.Context, repo.ID) (*tree.Tree, error)) *prefetcher {
	p := &prefetcher{ctx: ctx, load: load, all: map[repo.ID]*treeFuture{}}
	p.cond = sync.NewCond(&p.mu)
	for range loaders {
		p.wg.Go(p.loader)
	}
	return p
}

// want asks for the trees ids, in the order the planner will visit them.
func (p *prefetcher) want(ids []repo.ID) {
	p.mu.Lock()
	for i := len(ids) - 1; i >= 0; i-- {
		if _, ok := p.all[ids[i]]; ok {
			continue // the same subtree twice in a snapshot: loaded once
		}
		f := &treeFuture{id: ids[i], done: make(chan struct{})}
		p.all[ids[i]] = f
		p.stack = append(p.stack, f)
	}
	p.mu.Unlock()
	p.cond.Broadcast()
}

// get returns tree id: prefetched, being loaded (waited for), or loaded now.
func (p *prefetcher) get(id repo.ID) (*tree.Tree, error) {
	p.mu.Lock()
	f := p.all[id]
	if f == nil {
		f = &treeFuture{id: id, done: make(chan struct{})}
		p.all[id] = f
	}
	mine := !f.claimed
	f.claimed = true
	p.mu.Unlock()
	if mine {
		p.run(f)
	}
	<-f.done
	return f.t, f.err
}

func (p *prefetcher) run(f *treeFuture) {
	f.t, f.err = p.load(p.ctx, f.id)
	close(f.done)
}

func (p *prefetcher) loader() {
	for {
		p.mu.Lock()
		var f *treeFuture
		for f == nil {
			for len(p.stack) > 0 && f == nil {
				top := p.stack[len(p.stack)-1]
				p.stack = p.stack[:len(p.stack)-1]
				if !top.claimed {
					top.claimed = true
					f = top
				}
			}
			if f == nil {
				if p.stop {
					p.mu.Unlock()
					return
				}
				p.cond.Wait()
			}
		}
		p.mu.Unlock()
		p.run(f)
	}
}

// close stops the loaders once they finish what they hold; trees asked for
// and never loaded are dropped.
func (p *prefetcher) close() {
	p.mu.Lock()
	p.stop = true
	p.stack = nil
	p.mu.Unlock()
	p.cond.Broadcast()
	p.wg.Wait()
}
