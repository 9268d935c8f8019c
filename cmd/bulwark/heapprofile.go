package main

import (
	"bytes"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"time"
)

// peakHeapProfile samples the live heap every 100 ms and keeps, in file, the
// heap profile taken at the largest live heap seen (BULWARK_HEAPPROFILE):
// where a command's memory goes at its peak, not at its exit. The returned
// function stops the sampling, writes the file and returns the live heap
// (bytes) at which the profile was taken.
func peakHeapProfile(file string) (stop func() uint64) {
	runtime.MemProfileRate = 64 << 10
	done := make(chan struct{})
	finished := make(chan struct{})
	var best []byte
	var peak uint64
	go func() {
		defer close(finished)
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak {
				peak = v
				var b bytes.Buffer
				if pprof.Lookup("heap").WriteTo(&b, 0) == nil {
					best = b.Bytes()
				}
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		if best != nil {
			_ = os.WriteFile(file, best, 0o600)
		}
		return peak
	}
}
