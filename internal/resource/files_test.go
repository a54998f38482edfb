package resource

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestParseDir: the files directly in the directory, sorted, each
// resource with its origin; duplicates across files are found; a
// subdirectory is not read.
func TestParseDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b.yml", "# comment\n"+topicDoc("b"))
	write("a.json", `{"apiVersion": "sluice.dev/v1", "kind": "Topic", "metadata": {"name": "a"}, "spec": {"partitions": 2}}`)
	write("notes.txt", "not a resource")
	write("schemas/s.json", `{"type": "object"}`)
	rs, err := ParseDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, r.GetName()+"@"+strings.TrimPrefix(r.Origin(), dir+string(filepath.Separator)))
	}
	if want := "a@a.json:1:2 b@b.yml:2:1"; strings.Join(got, " ") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	write("c.yaml", topicDoc("a"))
	_, err = ParseDir(dir)
	if want := `c.yaml:3:18: metadata.name: Topic "a" is declared twice (first at ` + filepath.Join(dir, "a.json"); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
	if _, err := ParseDir(filepath.Join(dir, "b.yml")); err == nil {
		t.Fatal("ParseDir of a file: got no error")
	}
}

func TestWithDefaults(t *testing.T) {
	p := &Pipeline{Metadata: Metadata{Name: "orders"}, Spec: PipelineSpec{Source: Source{Topic: "t"}}}
	s := p.WithDefaults()
	if s.Source.Group != "orders" || s.Source.StartFrom != "earliest" || s.Delivery != AtLeastOnce ||
		s.Batch.MaxRecords != 5000 || s.Batch.MaxBytes != 4<<20 || s.Batch.MaxWait.D() != 200*time.Millisecond ||
		s.Retry.InitialBackoff.D() != 100*time.Millisecond || s.Retry.MaxBackoff.D() != 30*time.Second || s.Retry.MaxAttempts != 10 {
		t.Fatalf("got %+v", s)
	}
	if g := p.Spec.WithDefaults().Source.Group; g != "" {
		t.Fatalf("PipelineSpec.WithDefaults set the group to %q", g)
	}
	if p.Spec.Delivery != "" {
		t.Fatal("WithDefaults changed the pipeline")
	}
}
