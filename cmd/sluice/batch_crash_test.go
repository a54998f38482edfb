package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestBatchRunCrash starts a long batch run into a Parquet lake in a
// sluice serve, SIGKILLs the process in the middle of it (twice, the
// second time during the attempt the restarted server resumed), and
// restarts it: the server completes the run over its recorded range, and
// the lake ends with every record exactly once, in files named for the
// run, and no temporary file. Nothing is visible in the lake while the
// run is not complete.
func TestBatchRunCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	const total = 250_000
	bin := buildSluice(t)
	lake := filepath.Join(t.TempDir(), "lake")
	srv := startCrashServer(t, bin)
	base := srv.base
	srv.createTopic("clicks", "3")
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.kafkaAddr), kgo.DefaultProduceTopic("clicks"), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	payload := strings.Repeat("x", 100)
	for i := 0; i < total; i++ {
		v := `{"n":` + strconv.Itoa(i) + `,"payload":"` + payload + `"}`
		cl.Produce(context.Background(), &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	spec := `apiVersion: sluice.dev/v1
kind: Pipeline
metadata: {name: crash}
spec:
  mode: batch
  source: {topic: clicks}
  sink: {parquet: {path: ` + lake + `, partitionBy: '"p=" + string(record.partition)', rollBytes: 1MiB}}
  batch: {maxRecords: 200}
  retry: {initialBackoff: 50ms, maxBackoff: 1s, maxAttempts: 100}
`
	srv.putPipeline("crash", spec)
	code, body := httpPost(t, base+"/v1/pipelines/crash/runs", "")
	if code != http.StatusAccepted {
		t.Fatalf("start the run: %d %s", code, body)
	}
	var run struct {
		ID      int64
		State   string
		Attempt int
		Output  string
		Ranges  []struct{ From, To int64 }
	}
	if err := json.Unmarshal([]byte(body), &run); err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, r := range run.Ranges {
		sum += r.To - r.From
	}
	if sum != total {
		t.Fatalf("got ranges %+v, want %d records", run.Ranges, total)
	}

	for kill := 1; kill <= 2; kill++ {
		// Midway: some records read, not all.
		deadline := time.Now().Add(time.Minute)
		for {
			read := recordsRead(t, base)
			if read > total/5 && read < total*4/5 {
				break
			}
			if read >= total*4/5 || time.Now().After(deadline) {
				t.Fatalf("kill %d: the run read %d of %d records before the test caught it midway", kill, read, total)
			}
			time.Sleep(2 * time.Millisecond)
		}
		if visible, _ := lakeFiles(t, lake); len(visible) > 0 {
			t.Fatalf("kill %d: files %q visible while the run is in progress", kill, visible)
		}
		srv.kill()
		if visible, temps := lakeFiles(t, lake); len(visible) > 0 {
			t.Fatalf("kill %d: files %q visible after the kill (and %d temporary)", kill, visible, len(temps))
		}
		srv.start()
	}

	resumed := time.Now()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, body := httpGet(t, base+"/v1/pipelines/crash/runs/1")
		if code != http.StatusOK {
			t.Fatalf("get run 1: %d %s", code, body)
		}
		if err := json.Unmarshal([]byte(body), &run); err != nil {
			t.Fatal(err)
		}
		if run.State == "succeeded" {
			break
		}
		if run.State == "failed" || time.Now().After(deadline) {
			t.Fatalf("run 1: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if run.Attempt != 3 {
		t.Errorf("got run 1 at attempt %d, want 3 (one after each kill)", run.Attempt)
	}

	visible, temps := lakeFiles(t, lake)
	if len(temps) > 0 {
		t.Errorf("temporary files %q left in the lake", temps)
	}
	type row struct {
		N int64 `parquet:"n"`
	}
	seen := make([]int8, total)
	for _, f := range visible {
		if !strings.HasPrefix(filepath.Base(f), "crash-batch-"+run.Output+"-") {
			t.Errorf("file %s is not named for the run's output %s", f, run.Output)
		}
		rows, err := pq.ReadFile[row](f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, r := range rows {
			seen[r.N]++
		}
	}
	for n, c := range seen {
		if c != 1 {
			t.Fatalf("record %d is in the lake %d times, want once (%d files)", n, c, len(visible))
		}
	}
	t.Logf("%d files, %d records once each; the last attempt took %s", len(visible), total, time.Since(resumed).Round(time.Millisecond))
}

// recordsRead is the records the pipeline crash has read since its server
// started.
func recordsRead(t *testing.T, base string) int64 {
	t.Helper()
	code, body := httpGet(t, base+"/v1/pipelines/crash")
	if code != http.StatusOK {
		t.Fatalf("get pipeline: %d %s", code, body)
	}
	var p struct {
		Status struct {
			RecordsRead int64 `json:"records_read"`
		}
	}
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	return p.Status.RecordsRead
}

// lakeFiles lists the complete and the temporary files under dir.
func lakeFiles(t *testing.T, dir string) (complete, temps []string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(path, ".tmp") {
			temps = append(temps, path)
		} else {
			complete = append(complete, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return complete, temps
}
