//go:build race

package pack

// raceEnabled is set under the race detector, whose sync.Pool drops items
// at random, so allocation counts are meaningless there.
const raceEnabled = true
