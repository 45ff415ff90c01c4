package worker

// SetReplayHook makes every replay chunk of w run f between the broker's
// confirms and the ack in the dead-letter queue; an error from f ends the
// replay there, as a crash would.
func SetReplayHook(w *Worker, f func() error) { w.replayHook = f }
