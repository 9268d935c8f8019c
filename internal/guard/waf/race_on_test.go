//go:build race

package waf

// raceEnabled: the race detector slows the CRS ten-fold; long tests sample.
const raceEnabled = true
