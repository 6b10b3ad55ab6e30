package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fraiseql/observer/abi"
	"github.com/fraiseql/observer/host/effect"
	"github.com/fraiseql/observer/host/event"
	"github.com/fraiseql/observer/host/resilience"
	"github.com/fraiseql/observer/host/source"
)

// memSource is an in-memory Source with the Cursor semantics of the real
// ones: Open(cur) re-delivers cur.Pending first, then every position above
// cur.Through, in order. Records are fed with add; Read blocks until one is
// there. Positions are 1, 2, 3, ... in the order added.
type memSource struct {
	name   string
	mu     sync.Mutex
	log    []source.Record
	notify chan struct{}

	pending   []uint64 // positions of the opened cursor not yet re-read
	next      uint64   // next position above the cursor to read
	through   uint64
	open      bool
	delivered []uint64 // every position returned, in order, over all opens
}

func newMemSource(name string) *memSource {
	return &memSource{name: name, notify: make(chan struct{}, 1)}
}

// add appends events (position and ID are assigned) and returns them.
func (s *memSource) add(evs ...*event.Event) []*event.Event {
	s.mu.Lock()
	for _, ev := range evs {
		pos := uint64(len(s.log) + 1)
		ev.Position, ev.Source, ev.ID = pos, s.name, event.ID(s.name, pos)
		s.log = append(s.log, source.Record{Event: ev})
	}
	s.mu.Unlock()
	s.wake()
	return evs
}

// addBroken appends a record that could not be decoded.
func (s *memSource) addBroken(raw string, why error) uint64 {
	s.mu.Lock()
	pos := uint64(len(s.log) + 1)
	ev := &event.Event{Position: pos, Source: s.name, ID: event.ID(s.name, pos)}
	s.log = append(s.log, source.Record{Event: ev, DecodeErr: why, Raw: []byte(raw)})
	s.mu.Unlock()
	s.wake()
	return pos
}

func (s *memSource) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *memSource) Name() string { return s.name }

func (s *memSource) Open(ctx context.Context, cur source.Cursor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = slices.Clone(cur.Pending)
	s.through = cur.Through
	s.next = cur.Through + 1
	s.open = true
	return nil
}

func (s *memSource) Read(ctx context.Context, max int) (source.Batch, error) {
	for {
		s.mu.Lock()
		if !s.open {
			s.mu.Unlock()
			return source.Batch{}, errors.New("memSource: not open")
		}
		var b source.Batch
		for len(s.pending) > 0 && len(b.Records) < max && s.pending[0] <= uint64(len(s.log)) {
			b.Records = append(b.Records, s.log[s.pending[0]-1])
			s.delivered = append(s.delivered, s.pending[0])
			s.pending = s.pending[1:]
		}
		for s.next <= uint64(len(s.log)) && len(b.Records) < max {
			b.Records = append(b.Records, s.log[s.next-1])
			s.delivered = append(s.delivered, s.next)
			s.through = s.next
			s.next++
		}
		b.Frontier = source.Cursor{Through: s.through, Pending: slices.Clone(s.pending)}
		s.mu.Unlock()
		if len(b.Records) > 0 {
			return b, nil
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return source.Batch{}, ctx.Err()
		}
	}
}

func (s *memSource) Close() error {
	s.mu.Lock()
	s.open = false
	s.mu.Unlock()
	return nil
}

func (s *memSource) deliveredPositions() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.delivered)
}

// memStore is a Store in memory. failPutDead makes that many PutDead calls
// fail first; onSave, if set, sees every cursor saved.
type memStore struct {
	mu          sync.Mutex
	cursors     map[string]source.Cursor
	dead        []source.DeadLetter
	failPutDead int
	putDeadErrs int
	saves       int
	onSave      func(source.Cursor)
	// fenced makes every save and dead letter fail as a deposed
	// leader's would.
	fenced bool
}

func newMemStore() *memStore { return &memStore{cursors: map[string]source.Cursor{}} }

func (m *memStore) LoadCursor(ctx context.Context, src, group string) (source.Cursor, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.cursors[src+"/"+group]
	return c, ok, nil
}

func (m *memStore) SaveCursor(ctx context.Context, src, group string, cur source.Cursor) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fenced {
		return &source.FencedError{Source: src, Group: group, Op: "save cursor", Epoch: 1, Current: 2}
	}
	if m.onSave != nil {
		m.onSave(cur)
	}
	m.cursors[src+"/"+group] = cur
	m.saves++
	return nil
}

func (m *memStore) cursor(src, group string) source.Cursor {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cursors[src+"/"+group]
}

func (m *memStore) PutDead(ctx context.Context, d source.DeadLetter) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fenced {
		return 0, &source.FencedError{Source: d.Source, Group: d.Group, Op: "put dead letter", Epoch: 1, Current: 2}
	}
	if m.failPutDead > 0 {
		m.failPutDead--
		m.putDeadErrs++
		return 0, errors.New("memStore: dead-letter table unavailable")
	}
	d.ID = int64(len(m.dead) + 1)
	d.CreatedAt = time.Now()
	m.dead = append(m.dead, d)
	return d.ID, nil
}

func (m *memStore) ListDead(ctx context.Context, f source.DeadFilter) ([]source.DeadLetter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []source.DeadLetter
	for _, d := range m.dead {
		if (f.Source == "" || d.Source == f.Source) && (f.Group == "" || d.Group == f.Group) && (f.Observer == "" || d.Observer == f.Observer) {
			out = append(out, d)
		}
	}
	return out, nil
}

func (m *memStore) GetDead(ctx context.Context, id int64) (source.DeadLetter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range m.dead {
		if d.ID == id {
			return d, nil
		}
	}
	return source.DeadLetter{}, source.ErrNotFound
}

func (m *memStore) DeleteDead(ctx context.Context, ids ...int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.dead)
	m.dead = slices.DeleteFunc(m.dead, func(d source.DeadLetter) bool { return slices.Contains(ids, d.ID) })
	return int64(n - len(m.dead)), nil
}

func (m *memStore) Close() error { return nil }

func (m *memStore) deadLetters() []source.DeadLetter {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.dead)
}

// filterFunc is a Go-native filter plugin.
type filterFunc struct {
	name string
	fn   func(ctx context.Context, in *abi.Input) (abi.FilterResult, error)
}

func (f *filterFunc) Name() string { return f.name }
func (f *filterFunc) Filter(ctx context.Context, in *abi.Input) (abi.FilterResult, error) {
	return f.fn(ctx, in)
}

// actorFunc is a Go-native action plugin that counts its calls.
type actorFunc struct {
	name  string
	fn    func(ctx context.Context, in *abi.Input) (abi.ActResult, error)
	mu    sync.Mutex
	calls []abi.Input
}

func (a *actorFunc) Name() string { return a.name }
func (a *actorFunc) Act(ctx context.Context, in *abi.Input) (abi.ActResult, error) {
	a.mu.Lock()
	a.calls = append(a.calls, *in)
	a.mu.Unlock()
	return a.fn(ctx, in)
}

func (a *actorFunc) callCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.calls)
}

// logActor returns n log effects per event, messages "<event id>#<i>".
func logActor(n int) *actorFunc {
	return &actorFunc{name: "log-actor", fn: func(ctx context.Context, in *abi.Input) (abi.ActResult, error) {
		res := abi.ActResult{ABI: abi.VersionString}
		for i := range n {
			res.Effects = append(res.Effects, abi.Effect{Type: abi.EffectLog, Log: &abi.LogEffect{Message: fmt.Sprintf("%s#%d", in.Event.ID, i)}})
		}
		return res, nil
	}}
}

// condFunc is a Go-native condition.
type condFunc func(ev *event.Event) (bool, error)

func (c condFunc) Eval(ev *event.Event) (bool, error) { return c(ev) }

// recExec is an effect executor that records every request and answers
// with fn (nil: success).
type recExec struct {
	mu   sync.Mutex
	reqs []effect.Request
	fn   func(ctx context.Context, req effect.Request, attempt int) error
}

func (x *recExec) Execute(ctx context.Context, req effect.Request) (effect.Result, error) {
	x.mu.Lock()
	x.reqs = append(x.reqs, req)
	attempt := 0
	for _, r := range x.reqs {
		if r.IdempotencyKey == req.IdempotencyKey {
			attempt++
		}
	}
	fn := x.fn
	x.mu.Unlock()
	if fn != nil {
		if err := fn(ctx, req, attempt); err != nil {
			return effect.Result{Detail: "failed"}, err
		}
	}
	return effect.Result{Status: 200, Detail: "ok"}, nil
}

func (x *recExec) requests() []effect.Request {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.reqs)
}

// fastRetry retries quickly, without jitter.
func fastRetry(attempts int, delay time.Duration) resilience.Policy {
	return resilience.Policy{Strategy: resilience.Fixed, MaxAttempts: attempts, InitialDelay: delay, MaxDelay: delay}
}

func ev(entity, key string, op abi.Operation, after map[string]any) *event.Event {
	return &event.Event{Entity: entity, Key: key, Op: op, After: after}
}

// harness runs an engine in the background.
type harness struct {
	t      *testing.T
	e      *Engine
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config, src source.Source, store source.Store, exec map[string]effect.Executor) *harness {
	t.Helper()
	e, err := New(cfg, src, store, exec, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, e: e, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-h.done; h.done <- nil })
	return h
}

// stop cancels the engine and returns Run's error.
func (h *harness) stop() error {
	h.t.Helper()
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err
		return err
	case <-time.After(20 * time.Second):
		h.t.Fatal("engine did not stop within 20s")
		return nil
	}
}

// waitFor polls cond until true or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
