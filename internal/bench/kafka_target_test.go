package bench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/logstore"
)

// fakeServe writes a shell script that stands in for `sluice serve`.
func fakeServe(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sluice")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStartChildKafka(t *testing.T) {
	ready := `echo '{"msg":"sluice"}' >&2; echo '{"msg":"ready","http_addr":"127.0.0.1:1","kafka_addr":"127.0.0.1:2"}' >&2; `
	for _, tc := range []struct {
		name      string
		script    string
		startErr  string // empty: starts
		stopErr   string // empty: stops cleanly
		wantAddrs string
	}{
		{name: "ready, stops on SIGTERM", script: `trap 'exit 0' TERM; ` + ready + `while :; do sleep 0.1; done`, wantAddrs: "127.0.0.1:2"},
		{name: "exits before ready", script: `echo 'bad flag --fsync' >&2; exit 3`,
			startErr: "exited before it was ready (exit status 3): bad flag --fsync"},
		{name: "ready without a Kafka listener", script: `trap 'exit 0' TERM; echo '{"msg":"ready","http_addr":"127.0.0.1:1"}' >&2; while :; do sleep 0.1; done`,
			startErr: "ready without a Kafka listener"},
		{name: "unclean exit on SIGTERM", script: `trap 'echo dying >&2; exit 4' TERM; ` + ready + `while :; do sleep 0.1; done`,
			wantAddrs: "127.0.0.1:2", stopErr: "exit status 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b kafkaBroker
			stop, err := startChildKafka(context.Background(), fakeServe(t, tc.script), filepath.Join(t.TempDir(), "server"),
				logstore.SyncPolicy{Mode: logstore.SyncAlways}, &b)
			if tc.startErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.startErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.startErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(b.brokers, ",") != tc.wantAddrs || !strings.Contains(b.desc, "in its own process") {
				t.Errorf("got brokers %v, description %q", b.brokers, b.desc)
			}
			err = stop()
			if tc.stopErr == "" && err != nil || tc.stopErr != "" && (err == nil || !strings.Contains(err.Error(), tc.stopErr)) {
				t.Fatalf("stop: got %v, want %q", err, tc.stopErr)
			}
		})
	}
}
