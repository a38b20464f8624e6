package actor

// ActorsInMemoryByNamespace counts activated actors per namespace.
func (r *Runtime) ActorsInMemoryByNamespace() map[string]int64 {
	out := make(map[string]int64, len(r.namespaces))
	for i := range r.cells.shards {
		s := &r.cells.shards[i]
		s.mu.Lock()
		for _, c := range s.cells {
			out[c.id.Namespace]++
		}
		s.mu.Unlock()
	}
	return out
}
