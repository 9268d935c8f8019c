//go:build race

package repair_test

// raceEnabled is set under the race detector, which makes setting up the
// Reed-Solomon code (once per repair) about fifty times slower: the
// bit-flip test then flips fewer bits.
const raceEnabled = true
