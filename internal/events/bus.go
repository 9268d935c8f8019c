package events

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// Sink receives published events; the audit log and alerting are sinks.
//
// Contract:
//   - HandleEvent is called only after the event is stored (for PublishTx,
//     after the caller's transaction committed and Deliver was called).
//   - Each sink has its own goroutine and bounded queue: calls to one sink
//     never overlap and come in the order the bus enqueued the events
//     (publish order; concurrent publishers may interleave, so IDs are not
//     guaranteed to be increasing).
//   - It must not block for long: while it runs, that sink's queue fills,
//     and when full the oldest queued event for that sink is dropped (and
//     counted in Stats). The publisher is never blocked.
//   - ctx is cancelled when the sink is unsubscribed or Close runs out of
//     time; a sink doing I/O must honour it.
//   - A returned error (or a panic) is logged and counted in Stats; it is
//     never returned to the publisher and does not affect other sinks.
//     Retrying is the sink's business.
//   - The event must be treated as read-only: every sink gets the same maps.
type Sink interface {
	HandleEvent(ctx context.Context, e Event) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, e Event) error

// HandleEvent calls f.
func (f SinkFunc) HandleEvent(ctx context.Context, e Event) error { return f(ctx, e) }

var _ Sink = SinkFunc(nil)

// Options tune a Bus.
type Options struct {
	// Now is the clock used for events published without a time
	// (default time.Now).
	Now func() time.Time
	// Logger receives sink failures and drops (default slog.Default()).
	Logger *slog.Logger
	// QueueSize bounds each sink's queue (default 1024).
	QueueSize int
}

// DefaultQueueSize is the per-sink queue bound when Options.QueueSize is 0.
const DefaultQueueSize = 1024

// Bus validates, stores, queries and fans out events. It is safe for
// concurrent use.
type Bus struct {
	db        *store.DB
	now       func() time.Time
	log       *slog.Logger
	queueSize int

	published atomic.Uint64

	mu sync.RWMutex
	// closed refuses new publishes; inflight counts those already past
	// that check, so Close can wait for them and no stored event misses
	// fan-out; detached is set once the sinks are handed to Close.
	closed   bool
	detached bool
	inflight sync.WaitGroup
	sinks    map[string]*sink
	// stats outlive subscriptions so counters stay monotonic, as
	// Prometheus expects, when a sink is unsubscribed and subscribed again.
	stats map[string]*sinkCounters
}

// NewBus returns a Bus storing events in db, which must have Migrations
// applied.
func NewBus(db *store.DB, o Options) *Bus {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	return &Bus{
		db:        db,
		now:       o.Now,
		log:       o.Logger,
		queueSize: o.QueueSize,
		sinks:     map[string]*sink{},
		stats:     map[string]*sinkCounters{},
	}
}

// Publish validates e, stores it and queues it for every subscribed sink
// whose filter matches. It returns the stored event (ID, time and severity
// filled in). An invalid event gives a *ValidationError (matching
// ErrInvalid) naming the field; nothing is stored then. Publish never waits
// for sinks.
func (b *Bus) Publish(ctx context.Context, e Event) (Event, error) {
	if !b.enter() {
		return Event{}, ErrClosed
	}
	defer b.inflight.Done()
	e, tagsJSON, dataJSON, err := normalize(e, b.now)
	if err != nil {
		return Event{}, err
	}
	if e.ID, err = insert(ctx, b.db, e, tagsJSON, dataJSON); err != nil {
		return Event{}, err
	}
	b.Deliver(e)
	return e, nil
}

// PublishTx validates e and stores it inside the caller's transaction, but
// does not deliver it: after the transaction commits, pass the returned
// event to Deliver. If the transaction rolls back, do nothing: the event
// was never stored and no sink hears of it. Bus.Tx does both steps for you.
func (b *Bus) PublishTx(ctx context.Context, tx *sql.Tx, e Event) (Event, error) {
	if b.isClosed() {
		return Event{}, ErrClosed
	}
	return b.publishTx(ctx, tx, e)
}

func (b *Bus) publishTx(ctx context.Context, tx *sql.Tx, e Event) (Event, error) {
	e, tagsJSON, dataJSON, err := normalize(e, b.now)
	if err != nil {
		return Event{}, err
	}
	if e.ID, err = insert(ctx, tx, e, tagsJSON, dataJSON); err != nil {
		return Event{}, err
	}
	return e, nil
}

// Tx runs fn in one database transaction (store.DB.Tx) and hands it a
// publish function that stores events in that transaction. The events are
// delivered to sinks only once the transaction commits; if fn fails or the
// commit does, none is stored or delivered. fn may run more than once when
// PostgreSQL asks for a retry; events from a failed attempt are discarded.
func (b *Bus) Tx(ctx context.Context, fn func(tx *sql.Tx, publish func(Event) (Event, error)) error) error {
	if !b.enter() {
		return ErrClosed
	}
	defer b.inflight.Done()
	var pending []Event
	err := b.db.Tx(ctx, func(tx *sql.Tx) error {
		pending = nil
		return fn(tx, func(e Event) (Event, error) {
			e, err := b.publishTx(ctx, tx, e)
			if err == nil {
				pending = append(pending, e)
			}
			return e, err
		})
	})
	if err != nil {
		return err
	}
	b.Deliver(pending...)
	return nil
}

// Deliver queues already-stored events (from PublishTx, after commit) for
// the matching sinks. Events without an ID, or delivered once Close has
// taken the sinks, are logged and skipped (the event stays stored).
func (b *Bus) Deliver(events ...Event) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, e := range events {
		if e.ID == 0 {
			b.log.Error("events: Deliver called with an unstored event; use PublishTx first", "type", e.Type)
			continue
		}
		if b.detached {
			b.log.Warn("events: event stored but not delivered: bus closed", "id", e.ID, "type", e.Type)
			continue
		}
		b.published.Add(1)
		for _, s := range b.sinks {
			if s.filter.Match(e) {
				s.enqueue(e)
			}
		}
	}
}

// enter admits one publish unless the bus is closing; the caller must call
// b.inflight.Done when it has delivered.
//
// A read lock suffices: Close sets closed under the write lock, so every
// Add happens before Close's Wait.
func (b *Bus) enter() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return false
	}
	b.inflight.Add(1)
	return true
}

func (b *Bus) isClosed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.closed
}

// Subscribe registers s under name to receive the events filter selects
// (AfterID, Limit and Desc are ignored) from now on. The returned function
// unsubscribes: it discards what is still queued for s, cancels the
// context of a running HandleEvent, waits for it to return, and is safe to
// call more than once.
//
// Subscribing is wiring done at start-up, so a programming error panics:
// an empty name, a nil sink, a name already subscribed or an invalid
// filter. After Close, Subscribe does nothing.
func (b *Bus) Subscribe(name string, s Sink, filter Filter) (unsubscribe func()) {
	if name == "" || s == nil {
		panic("events: Subscribe needs a name and a sink")
	}
	if err := filter.Validate(); err != nil {
		panic(fmt.Sprintf("events: Subscribe %q: %v", name, err))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return func() {}
	}
	if _, dup := b.sinks[name]; dup {
		panic(fmt.Sprintf("events: sink %q subscribed twice", name))
	}
	c := b.stats[name]
	if c == nil {
		c = &sinkCounters{}
		b.stats[name] = c
	}
	ctx, cancel := context.WithCancel(context.Background())
	sk := &sink{
		name:     name,
		handler:  s,
		filter:   filter,
		log:      b.log,
		counters: c,
		buf:      make([]Event, b.queueSize),
		wake:     make(chan struct{}, 1),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
	}
	b.sinks[name] = sk
	go sk.run()
	return func() {
		b.mu.Lock()
		if b.sinks[name] == sk {
			delete(b.sinks, name)
		}
		b.mu.Unlock()
		sk.stop()
		<-sk.done
	}
}

// Close stops accepting events, waits for publishes already under way (and
// Tx calls) to finish, lets every sink drain its queue, and stops the sink
// goroutines. If ctx ends first, the sinks' contexts are cancelled, what is
// still queued is dropped (and counted), and Close returns an error saying
// how many sinks had not finished.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	published := make(chan struct{})
	go func() {
		b.inflight.Wait()
		close(published)
	}()
	select {
	case <-published:
	case <-ctx.Done():
	}

	b.mu.Lock()
	b.detached = true
	sinks := make([]*sink, 0, len(b.sinks))
	for name, s := range b.sinks {
		sinks = append(sinks, s)
		delete(b.sinks, name)
	}
	b.mu.Unlock()

	for _, s := range sinks {
		s.drainAndStop()
	}
	var late []*sink
	for _, s := range sinks {
		select {
		case <-s.done:
		case <-ctx.Done():
			late = append(late, s)
		}
	}
	if len(late) == 0 {
		return nil
	}
	for _, s := range late {
		s.stop()
	}
	return fmt.Errorf("events: close: %d sink(s) had not drained: %w", len(late), ctx.Err())
}

// Stats is a snapshot of the bus counters. Counters only grow, so they map
// directly to Prometheus counters (see Collector).
type Stats struct {
	// Published counts events stored and handed to fan-out.
	Published uint64
	// Sinks holds per-sink counters by subscription name, including sinks
	// that have since unsubscribed.
	Sinks map[string]SinkStats
}

// SinkStats are one sink's counters.
type SinkStats struct {
	// Delivered counts HandleEvent calls that returned nil.
	Delivered uint64
	// Dropped counts events discarded unhandled: queue overflow (oldest
	// first), unsubscribe or Close running out of time.
	Dropped uint64
	// Errors counts HandleEvent calls that failed or panicked.
	Errors uint64
	// Queued is the number of events waiting now.
	Queued int
}

// Stats returns a snapshot of the counters.
func (b *Bus) Stats() Stats {
	b.mu.RLock()
	defer b.mu.RUnlock()
	st := Stats{Published: b.published.Load(), Sinks: make(map[string]SinkStats, len(b.stats))}
	for name, c := range b.stats {
		ss := SinkStats{Delivered: c.delivered.Load(), Dropped: c.dropped.Load(), Errors: c.errors.Load()}
		if s := b.sinks[name]; s != nil {
			ss.Queued = s.queued()
		}
		st.Sinks[name] = ss
	}
	return st
}

type sinkCounters struct {
	delivered, dropped, errors atomic.Uint64
}

// sink is one subscription: a fixed-size ring buffer of events drained by
// one goroutine. Overflow overwrites the oldest entry.
type sink struct {
	name     string
	handler  Sink
	filter   Filter
	log      *slog.Logger
	counters *sinkCounters

	mu       sync.Mutex
	buf      []Event
	head, n  int
	draining bool // Close: finish the queue, then exit
	stopped  bool // unsubscribe or Close timed out: exit, dropping the queue

	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *sink) enqueue(e Event) {
	s.mu.Lock()
	if s.stopped || s.draining {
		s.mu.Unlock()
		return
	}
	var dropped uint64
	if s.n == len(s.buf) {
		s.buf[s.head] = Event{}
		s.head = (s.head + 1) % len(s.buf)
		s.n--
		dropped = s.counters.dropped.Add(1)
	}
	s.buf[(s.head+s.n)%len(s.buf)] = e
	s.n++
	s.mu.Unlock()
	// Log the 1st, 2nd, 4th, 8th... drop: visible without flooding the log
	// while a sink is stuck.
	if dropped != 0 && bits.OnesCount64(dropped) == 1 {
		s.log.Warn("events: sink queue full, dropped oldest event", "sink", s.name, "dropped_total", dropped)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sink) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// next pops the oldest event. exit is true when the goroutine should end.
func (s *sink) next() (e Event, ok, exit bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		s.counters.dropped.Add(uint64(s.n))
		clear(s.buf)
		s.n = 0
		return Event{}, false, true
	}
	if s.n == 0 {
		return Event{}, false, s.draining
	}
	e = s.buf[s.head]
	s.buf[s.head] = Event{}
	s.head = (s.head + 1) % len(s.buf)
	s.n--
	return e, true, false
}

func (s *sink) run() {
	defer close(s.done)
	defer s.cancel()
	for {
		e, ok, exit := s.next()
		if exit {
			return
		}
		if ok {
			s.handle(e)
			continue
		}
		select {
		case <-s.wake:
		case <-s.ctx.Done():
		}
	}
}

func (s *sink) handle(e Event) {
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return s.handler.HandleEvent(s.ctx, e)
	}()
	if err != nil {
		s.counters.errors.Add(1)
		s.log.Error("events: sink failed to handle event", "sink", s.name, "id", e.ID, "type", e.Type, "err", err)
		return
	}
	s.counters.delivered.Add(1)
}

func (s *sink) drainAndStop() {
	s.mu.Lock()
	s.draining = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *sink) stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
}
