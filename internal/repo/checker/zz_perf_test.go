package checker

import (
	"os"
	"testing"
	"time"
	"context"
)

func TestZZPerf(t *testing.T) {
	dir := os.Getenv("CK_PERF_REPO")
	if dir == "" {
		t.Skip()
	}
	r := openRepo(t, dir, "x")
	for i := 0; i < 4; i++ {
		p := &Progress{}
		done := make(chan struct{})
		phases := map[string]time.Duration{}
		go func() {
			last, lt := "", time.Now()
			for {
				select {
				case <-done:
					phases[last] += time.Since(lt)
					close(done)
					return
				default:
				}
				if ph := p.Phase(); ph != last {
					phases[last] += time.Since(lt)
					last, lt = ph, time.Now()
				}
				time.Sleep(200 * time.Microsecond)
			}
		}()
		start := time.Now()
		rep, _ := Check(context.Background(), r, Options{ReadData: true, Progress: p})
		el := time.Since(start)
		done <- struct{}{}
		<-done
		t.Logf("%v, %.0f MB/s, phases %v", el, float64(rep.Stats.BytesRead)/el.Seconds()/1e6, phases)
	}
}
