package process

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/units"
)

// benchValue is a 200-byte order, the size the benchmarks are quoted for.
const benchValue = `{"id":123456,"customer":{"id":"c-00042","name":"Ada Lovelace","country":"GB"},"amount":129.95,"currency":"EUR","items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"status":"paid","note":"at   door"}`

// BenchmarkChain measures one record through a chain, value parsing and
// encoding included: ns/op is ns/record. "json" is the floor, a parse and
// an encode and no CEL.
func BenchmarkChain(b *testing.B) {
	if len(benchValue) != 200 {
		b.Fatalf("benchmark value is %d bytes, want 200", len(benchValue))
	}
	filter := Config{Filter: `record.value.amount > 0 && record.value.status == "paid"`}
	mapc := Config{Map: &MapConfig{
		Value: `{"id": record.value.id, "cents": int(record.value.amount * 100.0), "country": record.value.customer.country, "ts": record.timestamp}`,
		Key:   `string(record.value.id)`,
	}}
	benches := []struct {
		name string
		cfgs []Config
	}{
		{"json", nil},
		{"filter", []Config{filter}},
		{"filter+map", []Config{filter, mapc}},
		{"filter+map+set+drop", []Config{filter, mapc,
			{Set: map[string]string{"source": `"web"`, "big": "record.value.cents > 10000"}},
			{Drop: []string{"ts"}}}},
		{"validate", []Config{{Validate: &ValidateConfig{JSONSchema: map[string]any{
			"type": "object", "required": []any{"id", "amount"},
			"properties": map[string]any{"id": map[string]any{"type": "integer"}, "amount": map[string]any{"type": "number", "minimum": 0}},
		}}}}},
		{"dedupe", []Config{{Dedupe: &DedupeConfig{Key: "record.value.id", Window: units.Duration(time.Minute)}}}},
	}
	value := []byte(benchValue)
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			c := mustChain(b, bb.cfgs, Options{})
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(value)))
			for i := 0; b.Loop(); i++ {
				r := connector.NewRecord(value)
				r.Timestamp = testTime.Add(time.Duration(i) * time.Millisecond)
				if bb.cfgs == nil {
					d, err := r.Doc()
					if err != nil {
						b.Fatal(err)
					}
					r.SetDoc(d)
				}
				if _, err := c.Process(ctx, r); err != nil {
					b.Fatal(err)
				}
				if _, err := r.Value(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEval measures CEL alone on an already parsed value.
func BenchmarkEval(b *testing.B) {
	c := mustChain(b, []Config{{Filter: `record.value.amount > 0 && record.value.status == "paid"`}}, Options{})
	r := connector.NewRecord([]byte(benchValue))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := c.Process(ctx, r); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func BenchmarkEvalString(b *testing.B) {
	e, err := CompileExpr(`'dt=' + date(record.timestamp) + '/country=' + record.value.customer.country`, Options{})
	if err != nil {
		b.Fatal(err)
	}
	r := connector.NewRecord([]byte(benchValue))
	r.Timestamp = testTime
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.EvalString(r); err != nil {
			b.Fatal(err)
		}
	}
}
