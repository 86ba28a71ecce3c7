package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// auditResult is figures 4 and 5.
type auditResult struct {
	entries                 int
	dbBytes                 int64
	exportTime, verifyTime  time.Duration
	scanTime                time.Duration
	exportPeakKB            int64 // the export process's peak RSS (VmHWM, sampled)
	exportPeakAnonKB        int64 // its peak anonymous (heap, stacks) RSS, sampled
	exportPeakFileKB        int64 // its peak file-backed RSS (the mapped database), sampled
	exportBytes, exportRows int64
}

// benchAudit runs the real binary's audit export and audit verify on the
// database at path, and a raw bbolt cursor scan of its audit bucket.
func benchAudit(bin, path string) (auditResult, error) {
	var res auditResult
	fi, err := os.Stat(path)
	if err != nil {
		return res, err
	}
	res.dbBytes = fi.Size()

	// Warm the page cache the same way for everyone: read the file once.
	if f, err := os.Open(path); err == nil {
		_, _ = io.Copy(io.Discard, f)
		f.Close()
	}

	// The physical reference: a bbolt read transaction walking the audit
	// bucket's cursor, touching every key and value, decoding nothing.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	var n int
	err = db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte("audit")).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			n++
			sink += len(k) + len(v) + int(v[len(v)-1])
		}
		return nil
	})
	res.scanTime = time.Since(t0)
	db.Close()
	if err != nil {
		return res, fmt.Errorf("raw scan: %w", err)
	}
	res.entries = n

	// audit export, JSON lines, into a pipe this process reads and counts.
	cmd := exec.Command(bin, "audit", "export", "--db", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 = time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	stopSampling := sampleRSS(cmd.Process.Pid, &res.exportPeakKB, &res.exportPeakAnonKB, &res.exportPeakFileKB)
	r := bufio.NewReaderSize(out, 1<<20)
	for {
		line, err := r.ReadSlice('\n')
		res.exportBytes += int64(len(line))
		if err == nil {
			res.exportRows++
			continue
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		break
	}
	err = cmd.Wait()
	res.exportTime = time.Since(t0)
	stopSampling()
	if err != nil {
		return res, fmt.Errorf("audit export: %v: %s", err, stderr.String())
	}
	if res.exportRows != int64(n) {
		return res, fmt.Errorf("audit export wrote %d lines for %d entries", res.exportRows, n)
	}

	// audit verify.
	t0 = time.Now()
	outb, err := exec.Command(bin, "audit", "verify", "--db", path).CombinedOutput()
	res.verifyTime = time.Since(t0)
	if err != nil || !strings.Contains(string(outb), fmt.Sprintf("audit chain ok: %d entries", n)) {
		return res, fmt.Errorf("audit verify: %v: %s", err, outb)
	}
	return res, nil
}

// sink keeps the raw scan's reads from being optimised away.
var sink int

// sampleRSS samples the peak RSS (VmHWM) and the anonymous and file-backed
// RSS of process pid every 5 ms, keeping the peaks, until the returned
// function is called. (The rusage of a child started by os/exec is no
// good for this: it is forked sharing this process's memory until its
// exec, so its maximum RSS can be this process's.)
func sampleRSS(pid int, hwm, anon, file *int64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			st := procStatus(pid)
			*hwm = max(*hwm, st["VmHWM"])
			*anon = max(*anon, st["RssAnon"])
			*file = max(*file, st["RssFile"])
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// procStatus reads the kB figures of /proc/PID/status (VmRSS, VmHWM,
// RssAnon, RssFile, …); a process that is gone gives an empty map.
func procStatus(pid int) map[string]int64 {
	return procStatusFile(fmt.Sprintf("/proc/%d/status", pid))
}
