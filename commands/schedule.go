package commands

// scheduler is the Service's state for Schedule: the channel through which
// a commit that wrote a due time wakes the sleeping goroutine.
type scheduler struct {
	wake chan struct{}
}

func (sc *scheduler) init() { sc.wake = make(chan struct{}, 1) }

// wakeSchedule tells Schedule, if it sleeps, to read the next due time
// again: a commit wrote one that may be earlier than the one it waits for.
// It never blocks; wakes that come while one is pending are merged.
func (s *Service) wakeSchedule() {
	select {
	case s.sched.wake <- struct{}{}:
	default:
	}
}
