package main

import (
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestApplyEndToEnd drives the declarative workflow against a real server:
// apply a directory with a topic and a pipeline into a file sink, diff
// (exit 0, then 1 after an edit), get, pause, resume, prune, and the file
// errors a user sees before anything is sent.
func TestApplyEndToEnd(t *testing.T) {
	bin := buildSluice(t)
	dir := t.TempDir()
	proc := startSluice(t, bin, "serve", "--data-dir", filepath.Join(dir, "data"), "--http-addr", "127.0.0.1:0",
		"--kafka-addr", "127.0.0.1:0", "--log-format", "json")
	base := "http://" + proc.waitAddr(t)
	waitReady(t, base)
	run := func(args ...string) (string, int) {
		t.Helper()
		out, err := exec.Command(bin, append(args, "--server", base)...).CombinedOutput()
		code := 0
		if ee, ok := errors.AsType[*exec.ExitError](err); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	specs := filepath.Join(dir, "specs")
	out := filepath.Join(dir, "out.jsonl")
	write := func(body string) {
		t.Helper()
		if err := os.MkdirAll(specs, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(specs, "orders.yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := `apiVersion: sluice.dev/v1
kind: Topic
metadata: {name: orders}
spec: {partitions: 2}
---
apiVersion: sluice.dev/v1
kind: Pipeline
metadata: {name: big-orders}
spec:
  source: {topic: orders, startFrom: earliest}
  processors:
    - filter: 'record.value.amount >= 100'
    - set: {flag: '"big"'}
  sink: {file: {path: '` + out + `'}}
  batch: {maxWait: 20ms}
`
	write(spec)
	if got, code := run("apply", "-f", specs); code != 0 || got != "topic/orders created\npipeline/big-orders created\n" {
		t.Fatalf("apply: exit %d:\n%s", code, got)
	}
	if got, code := run("diff", "-f", specs); code != 0 || !strings.Contains(got, "pipeline/big-orders unchanged") {
		t.Fatalf("diff after apply: exit %d, want 0:\n%s", code, got)
	}
	if got, code := run("apply", "-f", specs); code != 0 || !strings.Contains(got, "pipeline/big-orders unchanged") {
		t.Fatalf("apply again: exit %d:\n%s", code, got)
	}

	if status, body := httpPost(t, base+"/v1/topics/orders/records",
		`{"records": [{"value": {"amount": 5}}, {"value": {"amount": 150}}, {"value": {"amount": 100}}]}`); status != 200 {
		t.Fatalf("produce: %d %s", status, body)
	}
	deadline := time.Now().Add(20 * time.Second)
	var lines []string
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(out)
		if lines = strings.Fields(string(b)); len(lines) == 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	slices.Sort(lines) // two partitions: no order between them
	if got := strings.Join(lines, " "); got != `{"amount":100,"flag":"big"} {"amount":150,"flag":"big"}` {
		t.Fatalf("got file sink lines %q", got)
	}
	// The file holds the lines before the offsets are committed: wait
	// for the commit's metrics.
	wantMetrics := []string{
		`sluice_pipeline_records_total{outcome="written",pipeline="big-orders",stage="sink"} 2`,
		`sluice_pipeline_records_total{outcome="dropped",pipeline="big-orders",stage="process"} 1`,
		`sluice_pipeline_state{pipeline="big-orders",state="running"} 1`,
		`sluice_pipeline_lag_records{pipeline="big-orders"} 0`,
		`sluice_pipeline_end_to_end_latency_seconds_count{pipeline="big-orders"} 2`,
	}
	var metrics string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		_, metrics = httpGet(t, base+"/metrics")
		if !slices.ContainsFunc(wantMetrics, func(w string) bool { return !strings.Contains(metrics, w) }) {
			break
		}
	}
	for _, want := range wantMetrics {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(metrics, "sluice_pipeline_"))
		}
	}
	if got, code := run("get", "pipelines"); code != 0 || !strings.Contains(got, "big-orders") || !strings.Contains(got, "running") {
		t.Fatalf("get pipelines: exit %d:\n%s", code, got)
	}
	if got, code := run("get", "pipeline", "big-orders", "-o", "yaml"); code != 0 || !strings.Contains(got, "filter: record.value.amount >= 100") {
		t.Fatalf("get -o yaml: exit %d:\n%s", code, got)
	}

	// An edit: diff shows it and exits 1.
	write(strings.Replace(spec, "amount >= 100", "amount >= 120", 1))
	got, code := run("diff", "-f", specs)
	if code != 1 || !strings.Contains(got, "pipeline/big-orders would be updated") ||
		!strings.Contains(got, "- ") || !strings.Contains(got, "amount >= 120") {
		t.Fatalf("diff after an edit: exit %d, want 1:\n%s", code, got)
	}

	if got, code := run("pipeline", "pause", "big-orders"); code != 0 || !strings.Contains(got, "paused") {
		t.Fatalf("pause: exit %d:\n%s", code, got)
	}
	if got, code := run("pipeline", "resume", "big-orders"); code != 0 {
		t.Fatalf("resume: exit %d:\n%s", code, got)
	}

	// A misspelt key is reported with its line and column, and nothing
	// is sent.
	write(strings.Replace(spec, "startFrom", "startFrm", 1))
	got, code = run("apply", "-f", specs)
	if want := filepath.Join(specs, "orders.yaml") + `:10:27: spec.source.startFrm: unknown field (did you mean "startFrom"?)`; code == 0 || !strings.Contains(got, want) {
		t.Fatalf("apply of a bad file: exit %d:\n%s\nwant %s", code, got, want)
	}
	if _, code := run("diff", "-f", specs); code != 2 {
		t.Fatalf("diff of a bad file: got exit %d, want 2", code)
	}

	// The server validates too: a bad document over HTTP gets 422 with
	// every problem at its line and column.
	req, err := http.NewRequest(http.MethodPut, base+"/v1/pipelines/p", strings.NewReader(
		"apiVersion: sluice.dev/v1\nkind: Pipeline\nmetadata: {name: p}\nspec:\n  source: {topic: orders}\n  sink: {stdout: {formt: value}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `PUT /v1/pipelines/p:6:19: spec.sink.stdout.formt: unknown field (did you mean \"format\"?)`; resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(body), want) {
		t.Fatalf("PUT of a bad document: got %s %s, want 422 with %s", resp.Status, body, want)
	}

	// Prune: a file without the pipeline and the topic deletes both.
	write(`apiVersion: sluice.dev/v1
kind: Topic
metadata: {name: other}
spec: {partitions: 1}
`)
	got, code = run("apply", "--prune", "-f", specs)
	if code != 0 || !strings.Contains(got, "topic/orders deleted") || !strings.Contains(got, "pipeline/big-orders deleted") ||
		!strings.Contains(got, "topic/other created") {
		t.Fatalf("apply --prune: exit %d:\n%s", code, got)
	}
	if got, _ := run("get", "pipelines"); strings.Contains(got, "big-orders") {
		t.Fatalf("get pipelines after prune:\n%s", got)
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
