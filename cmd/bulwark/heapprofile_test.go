package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

var heapProfileSink [][]byte

//go:noinline
func allocateForHeapProfile() {
	for range 8 {
		heapProfileSink = append(heapProfileSink, make([]byte, 1<<20))
	}
}

// TestPeakHeapProfile: the profile written is one taken while the large
// allocation was live (it names the function that made it), not at the end,
// when it is gone.
func TestPeakHeapProfile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "heap.pb.gz")
	stop := peakHeapProfile(file)
	allocateForHeapProfile()
	runtime.GC() // the live heap is measured at collections
	time.Sleep(300 * time.Millisecond)
	heapProfileSink = nil
	runtime.GC()
	time.Sleep(300 * time.Millisecond)
	if peak := stop(); peak < 8<<20 {
		t.Fatalf("profile taken at a live heap of %d bytes, want the peak (over 8 MiB)", peak)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("profile is not gzip (pprof's format): %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("allocateForHeapProfile")) {
		t.Fatal("the profile does not show the allocation made at the peak")
	}
}
