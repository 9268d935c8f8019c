//go:build !race

package restorer_test

const raceEnabled = false
