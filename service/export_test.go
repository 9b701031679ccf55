package service

// What the tests of package service_test read of the service's insides.

// ForgetWindows empties the cache of the context windows steps read, so
// that the next StepContext reads every message afresh.
func (s *Service) ForgetWindows() {
	s.windows.mu.Lock()
	s.windows.m, s.windows.entries = nil, 0
	s.windows.mu.Unlock()
}

// WindowHeld is how many messages of the window of agent (and conversation
// conv, "" for its own) the cache holds, -1 when it holds none.
func (s *Service) WindowHeld(agent, conv string) int {
	w := s.windows.get(windowKey{agent, conv})
	if w == nil {
		return -1
	}
	return len(w.entries)
}
