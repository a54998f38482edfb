package embedded_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/meta"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/stream/embedded"
	"github.com/sluice-dev/sluice/internal/stream/streamtest"
)

func TestConformance(t *testing.T) {
	streamtest.Run(t, func(t *testing.T) stream.Log {
		dir := t.TempDir()
		m, err := meta.Open(filepath.Join(dir, "meta.db"), meta.Options{})
		if err != nil {
			t.Fatal(err)
		}
		l, err := logstore.Open(context.Background(), logstore.Options{Dir: filepath.Join(dir, "log"), Catalog: m,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = l.Close()
			_ = m.Close()
		})
		return embedded.New(l, m)
	})
}
