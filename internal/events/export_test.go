package events

// SetPruneBatch shrinks Prune's batch so tests can cover the batching loop
// without thousands of rows; it returns a function restoring the default.
func SetPruneBatch(n int) (restore func()) {
	old := pruneBatch
	pruneBatch = n
	return func() { pruneBatch = old }
}
