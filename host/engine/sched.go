package engine

import (
	"sync"
	"time"
)

// The scheduler keeps one FIFO queue per (observer, order key) and a list
// of queues ready to run. A queue is in exactly one state:
//
//	ready    its head unit waits for a worker (the queue is in s.ready once)
//	running  a worker runs its head unit
//	waiting  its head unit failed and a timer will make it ready again
//
// A queue with no units is deleted. Only the head of a queue ever runs, so
// units of one key run strictly in order, and a waiting queue holds no
// worker: the workers serve the other keys' queues meanwhile, while the
// waiting key's later units stay behind its head, which is the ordering
// promise.

type qstate uint8

const (
	qReady qstate = iota
	qRunning
	qWaiting
)

// queueKey identifies a queue: an observer (its index; -1 for decode
// failures, which belong to no observer) and an order key.
type queueKey struct {
	obs int
	key string
}

type keyQueue struct {
	key   queueKey
	units []*unit // units[head:] are pending, units[head] runs next
	head  int
	state qstate
	timer *time.Timer
}

type pending struct {
	key queueKey
	u   *unit
}

type scheduler struct {
	mu       sync.Mutex
	cond     sync.Cond
	queues   map[queueKey]*keyQueue
	ready    []*keyQueue // FIFO: ready[rhead:] are ready
	rhead    int
	stopping bool
}

func newScheduler() *scheduler {
	s := &scheduler{queues: make(map[queueKey]*keyQueue)}
	s.cond.L = &s.mu
	return s
}

// pushReady appends q to the ready list; s.mu is held.
func (s *scheduler) pushReady(q *keyQueue) {
	q.state = qReady
	if s.rhead > 0 && s.rhead == len(s.ready) {
		s.ready = s.ready[:0]
		s.rhead = 0
	} else if s.rhead >= 64 && s.rhead*2 >= len(s.ready) {
		n := copy(s.ready, s.ready[s.rhead:])
		clear(s.ready[n:])
		s.ready = s.ready[:n]
		s.rhead = 0
	}
	s.ready = append(s.ready, q)
	s.cond.Signal()
}

// enqueue appends units to their queues, in order, under one lock.
func (s *scheduler) enqueue(units []pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range units {
		q := s.queues[p.key]
		if q == nil {
			q = &keyQueue{key: p.key}
			s.queues[p.key] = q
			q.units = append(q.units, p.u)
			if !s.stopping {
				s.pushReady(q)
			} else {
				q.state = qWaiting // never runs; stays pending in the cursor
			}
			continue
		}
		q.units = append(q.units, p.u)
	}
}

// next blocks until a queue is ready and returns it with its head unit,
// marked running; nil once the scheduler stops.
func (s *scheduler) next() (*keyQueue, *unit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.rhead == len(s.ready) && !s.stopping {
		s.cond.Wait()
	}
	if s.stopping {
		return nil, nil
	}
	q := s.ready[s.rhead]
	s.ready[s.rhead] = nil
	s.rhead++
	q.state = qRunning
	return q, q.units[q.head]
}

// advance removes q's head unit, which finished, and makes q ready again
// if more units wait in it.
func (s *scheduler) advance(q *keyQueue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q.units[q.head] = nil
	q.head++
	switch {
	case q.head == len(q.units):
		q.units = q.units[:0]
		q.head = 0
		delete(s.queues, q.key)
		return
	case q.head >= 32 && q.head*2 >= len(q.units):
		n := copy(q.units, q.units[q.head:])
		clear(q.units[n:])
		q.units = q.units[:n]
		q.head = 0
	}
	if s.stopping {
		q.state = qWaiting
		return
	}
	s.pushReady(q)
}

// retry keeps q's head unit and runs it again after delay. It reports
// false when the scheduler is stopping: the retry is abandoned and the
// unit stays unfinished.
func (s *scheduler) retry(q *keyQueue, delay time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	q.state = qWaiting
	if s.stopping {
		return false
	}
	q.timer = time.AfterFunc(delay, func() { s.wake(q) })
	return true
}

// abandon leaves q's head unit unfinished (the stop interrupted it).
func (s *scheduler) abandon(q *keyQueue) {
	s.mu.Lock()
	q.state = qWaiting
	s.mu.Unlock()
}

func (s *scheduler) wake(q *keyQueue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping || q.state != qWaiting {
		return
	}
	q.timer = nil
	s.pushReady(q)
}

// stop makes next return nil, cancels the retry timers and refuses new
// work. Units already running finish; nothing else starts.
func (s *scheduler) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopping = true
	for _, q := range s.queues {
		if q.timer != nil {
			q.timer.Stop()
			q.timer = nil
		}
	}
	s.cond.Broadcast()
}
