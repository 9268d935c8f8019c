//go:build race

package restorer_test

// raceEnabled: the race detector slows the 100,000-file round trip tenfold;
// under it the test uses fewer files, and `make test` runs it once more
// without the detector at full size.
const raceEnabled = true
