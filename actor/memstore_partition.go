package actor

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
)

// MemStore's PartitionStore: the same contract as BoltStore's, in memory
// (nothing survives the process). A partition "has a bucket" when it is
// stamped or holds data. It serves tests and memory-durability namespaces
// (DropPartition deletes a partition's memory data with dropPartition).

var _ PartitionStore = (*MemStore)(nil)

// memStaging is one staging bucket: its info and a store holding the
// partition's transferred data.
type memStaging struct {
	info StagingInfo
	data *MemStore
}

// dropPartition deletes every actor and alarm index entry of p.
func (s *MemStore) dropPartition(p int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropPartitionLocked(p)
}

func (s *MemStore) dropPartitionLocked(p int) {
	for k, a := range s.actors {
		if a.part == p {
			delete(s.actors, k)
			a.mu.Lock()
			a.gone = true
			a.mu.Unlock()
		}
	}
	delete(s.alarms, p)
	delete(s.stamps, p)
}

// PartitionDisk implements PartitionStore.
func (s *MemStore) PartitionDisk() (PartitionDisk, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := PartitionDisk{Stamped: map[int]uint64{}, Highest: map[int]uint64{}}
	for _, a := range s.actors {
		d.Stamped[a.part] = 0
	}
	for p, idx := range s.alarms {
		if len(idx) > 0 {
			d.Stamped[p] = 0
		}
	}
	for p, e := range s.stamps {
		d.Stamped[p] = e
	}
	for p, e := range s.highest {
		d.Highest[p] = e
	}
	for _, st := range s.staging {
		d.Staging = append(d.Staging, st.info)
	}
	sort.Slice(d.Staging, func(i, j int) bool { return d.Staging[i].HandoffID < d.Staging[j].HandoffID })
	return d, nil
}

// SetHighestEpoch implements PartitionStore.
func (s *MemStore) SetHighestEpoch(p int, epoch uint64) error {
	if err := checkPartitionKey(p); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.highest[p] = epoch
	return nil
}

// StampPartition implements PartitionStore.
func (s *MemStore) StampPartition(p int, epoch uint64) error {
	if err := checkPartitionKey(p); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stamps[p] = epoch
	return nil
}

// WipePartition implements PartitionStore.
func (s *MemStore) WipePartition(p int, epoch uint64) error {
	if err := checkPartitionKey(p); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropPartitionLocked(p)
	if epoch > 0 {
		s.stamps[p] = epoch
	}
	return nil
}

// partitionRecords returns every record of p in export order.
func (s *MemStore) partitionRecords(p int) []PartitionRecord {
	s.mu.RLock()
	var sel []*memActor
	for _, a := range s.actors {
		if a.part == p {
			sel = append(sel, a)
		}
	}
	var alarms []string
	for k := range s.alarms[p] {
		alarms = append(alarms, k)
	}
	s.mu.RUnlock()
	sort.Slice(sel, func(i, j int) bool { return bytes.Compare(sel[i].id, sel[j].id) < 0 })
	sort.Strings(alarms)
	var out []PartitionRecord
	for _, a := range sel {
		a.mu.RLock()
		keys := make([]string, 0, len(a.data))
		for k := range a.data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, PartitionRecord{Kind: RecordActorKey, Actor: bytes.Clone(a.id), Key: []byte(k), Value: append([]byte{}, a.data[k]...)})
		}
		a.mu.RUnlock()
	}
	for _, k := range alarms {
		out = append(out, PartitionRecord{Kind: RecordAlarm, Key: []byte(k)})
	}
	return out
}

// ExportPartition implements PartitionStore (it builds the whole
// partition's records per call: fine for tests).
func (s *MemStore) ExportPartition(p int, cursor []byte, maxBytes int) ([]PartitionRecord, []byte, error) {
	if err := checkPartitionKey(p); err != nil {
		return nil, nil, err
	}
	cur, err := decodeCursor(cursor)
	if err != nil {
		return nil, nil, err
	}
	all := s.partitionRecords(p)
	i := sort.Search(len(all), func(i int) bool { return cur.before(&all[i]) })
	var recs []PartitionRecord
	size := 0
	for ; i < len(all); i++ {
		if len(recs) > 0 && size >= maxBytes {
			return recs, recs[len(recs)-1].cursor(), nil
		}
		recs = append(recs, all[i])
		size += all[i].size()
	}
	return recs, nil, nil
}

// BeginStaging implements PartitionStore.
func (s *MemStore) BeginStaging(info StagingInfo) error {
	if err := checkHandoffID(info.HandoffID); err != nil {
		return err
	}
	if err := checkPartitionKey(info.Partition); err != nil {
		return err
	}
	info.Complete = false
	s.mu.Lock()
	defer s.mu.Unlock()
	s.staging[info.HandoffID] = &memStaging{info: info, data: NewMemStore()}
	return nil
}

func (s *MemStore) stagingOf(handoffID string) (*memStaging, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.staging[handoffID]
	if st == nil {
		return nil, errNoStaging(handoffID)
	}
	if st.info.Complete {
		return nil, fmt.Errorf("staging %q is complete: %w", handoffID, ErrInvalidArgument)
	}
	return st, nil
}

// WriteStaging implements PartitionStore.
func (s *MemStore) WriteStaging(handoffID string, recs []PartitionRecord) error {
	for i := range recs {
		if err := checkRecord(&recs[i]); err != nil {
			return err
		}
	}
	st, err := s.stagingOf(handoffID)
	if err != nil {
		return err
	}
	p := st.info.Partition
	for _, r := range recs {
		switch r.Kind {
		case RecordActorKey:
			st.data.apply(&Write{Partition: p, Actor: bytes.Clone(r.Actor), Ops: []Op{{Kind: OpPut, Key: bytes.Clone(r.Key), Value: append([]byte{}, r.Value...)}}})
		case RecordAlarm:
			st.data.applyAlarmIndex(p, []Op{{Kind: OpPut, Key: bytes.Clone(r.Key)}})
		}
	}
	return nil
}

// CompleteStaging implements PartitionStore.
func (s *MemStore) CompleteStaging(handoffID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.staging[handoffID]
	if st == nil {
		return errNoStaging(handoffID)
	}
	st.info.Complete = true
	return nil
}

// DropStaging implements PartitionStore.
func (s *MemStore) DropStaging(handoffID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.staging, handoffID)
	return nil
}

// PromoteStaging implements PartitionStore.
func (s *MemStore) PromoteStaging(handoffID string, p int, epoch uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.staging[handoffID]
	switch {
	case st == nil:
		return errNoStaging(handoffID)
	case !st.info.Complete:
		return fmt.Errorf("staging %q is not complete: %w", handoffID, ErrInvalidArgument)
	case st.info.Partition != p:
		return fmt.Errorf("staging %q holds partition %d, not %d: %w", handoffID, st.info.Partition, p, ErrInvalidArgument)
	}
	s.dropPartitionLocked(p)
	st.data.mu.Lock()
	for k, a := range st.data.actors {
		s.actors[k] = a
	}
	if idx := st.data.alarms[p]; len(idx) > 0 {
		s.alarms[p] = idx
	}
	st.data.mu.Unlock()
	s.stamps[p] = epoch
	delete(s.staging, handoffID)
	return nil
}

// scanPartitionAlarms calls fn for each entry of p's alarm index, in time
// order.
func (s *MemStore) scanPartitionAlarms(p int, fn func(at int64, actor []byte) bool) error {
	s.mu.RLock()
	keys := make([]string, 0, len(s.alarms[p]))
	for k := range s.alarms[p] {
		keys = append(keys, k)
	}
	s.mu.RUnlock()
	sort.Strings(keys)
	for _, k := range keys {
		if len(k) < 8 {
			continue
		}
		if !fn(int64(binary.BigEndian.Uint64([]byte(k))), []byte(k[8:])) {
			return nil
		}
	}
	return nil
}
