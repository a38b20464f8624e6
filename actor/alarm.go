package actor

import (
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/holdfast/holdfast/actor/clock"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// alarmState is an actor's alarm as stored: keyAlarm holds at,
// keyAlarmMeta holds lastFired and fired.
type alarmState struct {
	at        int64 // unix nanos; 0: none
	lastFired int64
	fired     int64
}

func alarmIndexKey(at int64, enc []byte) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(at)), enc...)
}

func loadAlarm(t *Turn) (alarmState, error) {
	var a alarmState
	v, ok, err := t.getRaw(keyAlarm)
	if err != nil {
		return a, err
	}
	if ok && len(v) == 8 {
		a.at = int64(binary.BigEndian.Uint64(v))
	}
	v, ok, err = t.getRaw(keyAlarmMeta)
	if err != nil {
		return a, err
	}
	if ok && len(v) == 16 {
		a.lastFired = int64(binary.BigEndian.Uint64(v))
		a.fired = int64(binary.BigEndian.Uint64(v[8:]))
	}
	return a, nil
}

func (t *Turn) markAlarmFired() {
	t.alarm.lastFired = t.now.UnixNano()
	t.alarm.fired++
	v := binary.BigEndian.AppendUint64(nil, uint64(t.alarm.lastFired))
	t.writes.put(keyAlarmMeta, binary.BigEndian.AppendUint64(v, uint64(t.alarm.fired)), 0)
}

// alarmOp handles the alarm messages every namespace accepts.
func (r *Runtime) alarmOp(t *Turn, msg proto.Message) (proto.Message, bool, error) {
	switch m := msg.(type) {
	case *holdfastv1.AlarmGetRequest:
		return r.alarmStateOf(t), true, nil
	case *holdfastv1.AlarmSetRequest:
		var at time.Time
		switch {
		case m.GetAt() != nil:
			if err := m.GetAt().CheckValid(); err != nil {
				return nil, true, fmt.Errorf("%w: alarm time: %v", ErrInvalidArgument, err)
			}
			at = m.GetAt().AsTime()
		case m.GetInMs() >= 0:
			at = t.now.Add(time.Duration(m.GetInMs()) * time.Millisecond)
		default:
			return nil, true, fmt.Errorf("%w: in_ms must not be negative", ErrInvalidArgument)
		}
		if err := t.SetAlarm(at); err != nil {
			return nil, true, err
		}
		return r.alarmStateOf(t), true, nil
	case *holdfastv1.AlarmDeleteRequest:
		if err := t.DeleteAlarm(); err != nil {
			return nil, true, err
		}
		return r.alarmStateOf(t), true, nil
	}
	return nil, false, nil
}

func (r *Runtime) alarmStateOf(t *Turn) *holdfastv1.AlarmState {
	s := &holdfastv1.AlarmState{FiredCount: t.alarm.fired}
	if t.alarm.at != 0 {
		s.Scheduled = true
		s.At = timestamppb.New(time.Unix(0, t.alarm.at))
		s.Retries = int64(r.alarms.retriesOf(t.id.Encode()))
	}
	if t.alarm.lastFired != 0 {
		s.LastFired = timestamppb.New(time.Unix(0, t.alarm.lastFired))
	}
	return s
}

// alarmScheduler fires alarms at their time. It keeps a min-heap of
// (fire time, actor); an entry is current only while due[actor] still holds
// the alarm time it was made for, so rescheduling never needs a heap delete.
// due also remembers each alarm's partition, so a partition's alarms leave
// (DropPartition) and come back (ServePartition) with it.
type alarmScheduler struct {
	r *Runtime

	mu struct {
		sync.Mutex
		heap    alarmHeap
		due     map[string]alarmDue // actor -> stored alarm time and partition
		retries map[string]int
		firing  map[string]bool
		timer   clock.Timer
		timerAt int64
		stopped bool
	}
}

type alarmDue struct {
	at   int64
	part int
}

type alarmEntry struct {
	fireAt int64
	at     int64 // the stored alarm time this entry is for
	actor  string
}

type alarmHeap []alarmEntry

func (h alarmHeap) Len() int           { return len(h) }
func (h alarmHeap) Less(i, j int) bool { return h[i].fireAt < h[j].fireAt }
func (h alarmHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *alarmHeap) Push(x any)        { *h = append(*h, x.(alarmEntry)) }
func (h *alarmHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func newAlarmScheduler(r *Runtime) *alarmScheduler {
	s := &alarmScheduler{r: r}
	s.mu.due = make(map[string]alarmDue)
	s.mu.retries = make(map[string]int)
	s.mu.firing = make(map[string]bool)
	return s
}

// load schedules every alarm of the store's alarm index (start-up; later,
// a partition opened by handoff or failover).
func (s *alarmScheduler) load() error {
	return s.r.store.ScanAlarms(func(p int, at int64, actor []byte) bool {
		s.schedule(actor, at, p)
		return true
	})
}

// loadPartition schedules every alarm of partition p found in store.
func (s *alarmScheduler) loadPartition(store Store, p int) error {
	return scanPartitionAlarms(store, p, func(at int64, actor []byte) bool {
		s.schedule(actor, at, p)
		return true
	})
}

// cancelPartition forgets every alarm of partition p. A fire of p already
// running finds its alarm gone and is not retried.
func (s *alarmScheduler) cancelPartition(p int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for actor, d := range s.mu.due {
		if d.part == p {
			delete(s.mu.due, actor)
			delete(s.mu.retries, actor)
			n++
		}
	}
	s.armLocked()
	return n
}

func (s *alarmScheduler) schedule(actor []byte, at int64, part int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.due[string(actor)] = alarmDue{at: at, part: part}
	delete(s.mu.retries, string(actor))
	heap.Push(&s.mu.heap, alarmEntry{fireAt: at, at: at, actor: string(actor)})
	s.armLocked()
}

func (s *alarmScheduler) cancel(actor []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mu.due, string(actor))
	delete(s.mu.retries, string(actor))
}

func (s *alarmScheduler) retriesOf(actor []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.retries[string(actor)]
}

// pending returns the number of scheduled alarms.
func (s *alarmScheduler) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mu.due)
}

func (s *alarmScheduler) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.stopped = true
	if s.mu.timer != nil {
		s.mu.timer.Stop()
	}
}

// armLocked points the timer at the earliest current entry.
func (s *alarmScheduler) armLocked() {
	for s.mu.heap.Len() > 0 {
		e := s.mu.heap[0]
		if d, ok := s.mu.due[e.actor]; ok && d.at == e.at {
			break
		}
		heap.Pop(&s.mu.heap) // stale
	}
	if s.mu.stopped || s.mu.heap.Len() == 0 {
		return
	}
	next := s.mu.heap[0].fireAt
	if s.mu.timer != nil && s.mu.timerAt <= next {
		return
	}
	if s.mu.timer != nil {
		s.mu.timer.Stop()
	}
	s.mu.timerAt = next
	d := time.Duration(next - s.r.clock.Now().UnixNano())
	s.mu.timer = s.r.clock.AfterFunc(d, s.onTimer)
}

func (s *alarmScheduler) onTimer() {
	now := s.r.clock.Now().UnixNano()
	var due []alarmEntry
	s.mu.Lock()
	s.mu.timer = nil
	for s.mu.heap.Len() > 0 && s.mu.heap[0].fireAt <= now {
		e := heap.Pop(&s.mu.heap).(alarmEntry)
		if d, ok := s.mu.due[e.actor]; !ok || d.at != e.at || s.mu.firing[e.actor] {
			continue
		}
		s.mu.firing[e.actor] = true
		due = append(due, e)
	}
	stopped := s.mu.stopped
	s.armLocked()
	s.mu.Unlock()
	if stopped {
		return
	}
	for _, e := range due {
		e := e
		s.r.goFunc(func() { s.fire(e) })
	}
}

// fire runs the alarm turn of one actor, then schedules a retry on failure.
// An alarm whose partition this node does not serve (the gate refused the
// turn, or ownership was lost during it) leaves the schedule instead: the
// partition's owner loads it (ServePartition).
func (s *alarmScheduler) fire(e alarmEntry) {
	opts := turnOpts{enterCtx: s.r.alarmCtx}
	err := s.r.fireAlarm(e, &opts)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mu.firing, e.actor)
	if err == nil || errors.Is(err, ErrShuttingDown) || s.mu.stopped {
		if err == nil {
			s.r.metrics.alarmsFired.Inc()
		}
		s.armLocked()
		return
	}
	d, ok := s.mu.due[e.actor]
	if !ok || d.at != e.at {
		s.armLocked() // rescheduled or cancelled meanwhile
		return
	}
	if opts.enterFailed || errors.Is(err, ErrOwnershipLost) {
		s.r.log.Debug("alarm of a partition this node does not serve; left to its owner", "actor", describeActor(e.actor), "partition", d.part, "err", err)
		delete(s.mu.due, e.actor)
		delete(s.mu.retries, e.actor)
		s.armLocked()
		return
	}
	n := s.mu.retries[e.actor] + 1
	if n > s.r.cfg.AlarmMaxRetries {
		s.r.metrics.alarmsFailed.Inc()
		s.r.log.Error("alarm failed after its last retry; dropped", "actor", describeActor(e.actor), "retries", n-1, "err", err)
		delete(s.mu.retries, e.actor)
		delete(s.mu.due, e.actor)
		s.r.goFunc(func() { s.r.dropAlarm(e) })
		return
	}
	s.mu.retries[e.actor] = n
	s.r.metrics.alarmsRetried.Inc()
	backoff := s.r.cfg.AlarmRetryBase << (n - 1)
	s.r.log.Warn("alarm failed; retrying", "actor", describeActor(e.actor), "retry", n, "in", backoff, "err", err)
	heap.Push(&s.mu.heap, alarmEntry{fireAt: s.r.clock.Now().Add(backoff).UnixNano(), at: e.at, actor: e.actor})
	s.armLocked()
}

func describeActor(enc string) string {
	id, err := DecodeID([]byte(enc))
	if err != nil {
		return fmt.Sprintf("%x", enc)
	}
	return id.String()
}

// fireAlarm runs the alarm turn: the alarm is cleared, the kind's Alarm (if
// any) runs, and the fire is recorded, all in one transaction.
func (r *Runtime) fireAlarm(e alarmEntry, opts *turnOpts) error {
	id, err := DecodeID([]byte(e.actor))
	if err != nil {
		return err
	}
	if r.namespaces[id.Namespace] == nil {
		r.log.Warn("alarm of an actor whose namespace is not configured; dropped", "actor", id.String())
		r.alarms.cancel([]byte(e.actor))
		return nil
	}
	_, err = r.turn(context.Background(), id, "", opts, func(t *Turn, c *cell) (proto.Message, error) {
		if t.alarm.at != e.at {
			return nil, nil // changed since scheduled: a stale fire
		}
		if err := t.DeleteAlarm(); err != nil {
			return nil, err
		}
		if ah, ok := c.handler.(AlarmHandler); ok {
			if err := ah.Alarm(t); err != nil {
				return nil, err
			}
		}
		t.markAlarmFired()
		return nil, nil
	})
	return err
}

// dropAlarm clears an alarm that exhausted its retries.
func (r *Runtime) dropAlarm(e alarmEntry) {
	id, err := DecodeID([]byte(e.actor))
	if err != nil {
		return
	}
	_, err = r.turn(context.Background(), id, "", &turnOpts{enterCtx: r.alarmCtx}, func(t *Turn, c *cell) (proto.Message, error) {
		if t.alarm.at == e.at {
			return nil, t.DeleteAlarm()
		}
		return nil, nil
	})
	if err != nil && !errors.Is(err, ErrShuttingDown) && !errors.Is(err, context.Canceled) {
		r.log.Error("clearing a failed alarm", "actor", id.String(), "err", err)
	}
}

// AlarmsPending returns how many alarms are scheduled on this node.
func (r *Runtime) AlarmsPending() int { return r.alarms.pending() }
