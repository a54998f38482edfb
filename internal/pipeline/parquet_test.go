package pipeline

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/internal/connector/parquet"
	"github.com/sluice-dev/sluice/internal/resource"
	"github.com/sluice-dev/sluice/internal/units"
)

// TestParquetPipeline runs a pipeline into Parquet files partitioned by a
// CEL expression and reads them back: every record exactly once, the
// offsets committed only once the files were flushed, no temporary file
// left visible.
func TestParquetPipeline(t *testing.T) {
	l := testLog(t, t.TempDir())
	createTopic(t, l, "in", 2)
	for p := int32(0); p < 2; p++ {
		var vs []string
		for i := 0; i < 500; i++ {
			n := int(p)*500 + i
			vs = append(vs, `{"n":`+strconv.Itoa(n)+`,"kind":"`+[]string{"a", "b"}[n%2]+`"}`)
		}
		produce(t, l, "in", p, vs...)
	}
	mgr := startManager(t, Options{Log: l, Registerer: prometheus.NewRegistry()})
	dir := t.TempDir()
	p := testPipeline("lake", "in")
	p.Spec.Sink = resource.Sink{Parquet: &parquet.Config{Path: dir, PartitionBy: `"kind=" + record.value.kind`,
		RollInterval: units.Duration(200 * time.Millisecond)}}
	if _, err := mgr.Put(testCtx(t), p); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the commit", func() bool {
		c := committed(t, l, "lake")
		return c[0] == 500 && c[1] == 500
	})
	type row struct {
		N      int64  `parquet:"n"`
		Kind   string `parquet:"kind"`
		Offset int64  `parquet:"_offset"`
	}
	var ns []int64
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(path, ".tmp") {
			t.Errorf("temporary file %s visible after the commit", path)
			return nil
		}
		rows, err := pq.ReadFile[row](path)
		if err != nil {
			return err
		}
		want := "kind=" + filepath.Base(filepath.Dir(path))[len("kind="):]
		for _, r := range rows {
			if "kind="+r.Kind != want {
				t.Errorf("row %+v in %s", r, path)
			}
			ns = append(ns, r.N)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ns)
	if len(ns) != 1000 || ns[0] != 0 || ns[999] != 999 || len(slices.Compact(slices.Clone(ns))) != 1000 {
		t.Fatalf("got %d rows (%v ... ), want n = 0..999 once each", len(ns), ns[:min(5, len(ns))])
	}
}
