package posture

import "golang.org/x/sys/unix"

// ClockSynced asks the kernel whether NTP (or PTP) keeps the clock
// synchronised: adjtimex, read-only, answers TIME_ERROR when not.
func ClockSynced() (bool, error) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false, err
	}
	return state != unix.TIME_ERROR, nil
}
