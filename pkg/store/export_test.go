package store

// Apply stores r as ApplyAll would a batch of one, and reports the change
// number it was given.
func (s *Store) Apply(r Record, from Source) (seq uint64, applied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq, applied = s.apply(&r, from)
	if applied {
		s.notify()
	}
	return seq, applied
}
