//go:build !race

package limit

// raceEnabled reports whether the race detector is on: it slows the large
// tests down and changes allocation sizes.
const raceEnabled = false
