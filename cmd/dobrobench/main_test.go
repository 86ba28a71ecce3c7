package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := summarize(ds)
	want := latency{n: 100, p50: 50 * time.Millisecond, p99: 99 * time.Millisecond, max: 100 * time.Millisecond}
	if got != want {
		t.Errorf("summarize(1…100 ms) = %+v, want %+v", got, want)
	}
	if got := summarize(nil); got != (latency{}) {
		t.Errorf("summarize(nil) = %+v", got)
	}
}

func TestMentionText(t *testing.T) {
	var got []string
	for k := 1; k <= 10; k++ {
		got = append(got, mentionText(k))
	}
	want := []string{"queue", "status QUEUED-3", "queue", "status QUEUED-5", "queue", "status QUEUED-7", "queue",
		"status QUEUED-9", "queue", "dobro LOAD-2 no_need_admin"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mix (-want +got):\n%s", diff)
	}
}

func TestProcStatusFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(path, []byte("Name:\tdobrobot\nVmHWM:\t   42704 kB\nVmRSS:\t  17892 kB\nThreads:\t7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := procStatusFile(path)
	if want := map[string]int64{"VmHWM": 42704, "VmRSS": 17892}; !cmp.Equal(got, want) {
		t.Errorf("procStatusFile = %v, want %v", got, want)
	}
	// Spin until the kernel has counted a tick of this process's CPU time.
	x, deadline := 0, time.Now().Add(5*time.Second)
	for cpuTime(os.Getpid()) <= 0 && time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x += i
		}
	}
	if got := cpuTime(os.Getpid()); got <= 0 {
		t.Errorf("cpuTime(this process) = %v after spinning (%d), want > 0", got, x)
	}
}
