package kafkawire

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/topic"
)

// TestDescribeConfigsConfigNames checks the ConfigNames filter at every
// version: null and empty both mean every config, as in Kafka (Kafka's
// ConfigHelperUtils.buildConfigEntries); names select those configs.
func TestDescribeConfigsConfigNames(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("t", 1, map[string]string{"retention.ms": "1000"})
	r := e.dial()
	all := len(topic.Keys())
	cases := []struct {
		name  string
		names []string
		want  int
	}{
		{"null", nil, all},
		{"empty", []string{}, all},
		{"one", []string{"retention.ms"}, 1},
		{"unknown", []string{"no.such.key"}, 0},
	}
	for v := int16(0); v <= 4; v++ {
		for _, c := range cases {
			req := kmsg.NewPtrDescribeConfigsRequest()
			req.SetVersion(v)
			res := kmsg.NewDescribeConfigsRequestResource()
			res.ResourceType, res.ResourceName, res.ConfigNames = kmsg.ConfigResourceTypeTopic, "t", c.names
			req.Resources = append(req.Resources, res)
			resp := roundTrip[*kmsg.DescribeConfigsResponse](r, req)
			if len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
				t.Fatalf("v%d %s: got %+v", v, c.name, resp.Resources)
			}
			if got := len(resp.Resources[0].Configs); got != c.want {
				t.Errorf("v%d %s: got %d configs, want %d", v, c.name, got, c.want)
			}
		}
	}
}
