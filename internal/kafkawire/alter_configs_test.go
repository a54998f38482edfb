package kafkawire

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// alterStep is one request of a sequence on the topic "t", and the topic's
// overrides after it.
type alterStep struct {
	name     string
	topic    string // "t" when empty
	ops      []kadm.AlterConfig
	validate bool
	wantErr  error
	wantMsg  string // a substring of the error message
	want     map[string]string
}

func set(name, value string) kadm.AlterConfig {
	return kadm.AlterConfig{Op: kadm.SetConfig, Name: name, Value: kadm.StringPtr(value)}
}

func del(name string) kadm.AlterConfig { return kadm.AlterConfig{Op: kadm.DeleteConfig, Name: name} }

func appendOp(name, value string) kadm.AlterConfig {
	return kadm.AlterConfig{Op: kadm.AppendConfig, Name: name, Value: kadm.StringPtr(value)}
}

func subtractOp(name, value string) kadm.AlterConfig {
	return kadm.AlterConfig{Op: kadm.SubtractConfig, Name: name, Value: kadm.StringPtr(value)}
}

// runAlterSteps creates "t" with retention.ms=3600000, runs the steps with
// alter, and after each checks the overrides both through DescribeConfigs
// and through the log.
func runAlterSteps(t *testing.T, steps []alterStep,
	alter func(adm *kadm.Client, s alterStep) (kadm.AlterConfigsResponses, error)) {
	e := newTestEnv(t, Options{})
	adm := e.admin()
	e.createTopic("t", 1, map[string]string{"retention.ms": "3600000"})
	for _, s := range steps {
		ok := t.Run(s.name, func(t *testing.T) {
			name := s.topic
			if name == "" {
				name = "t"
			}
			rs, err := alter(adm, s)
			if err != nil {
				t.Fatal(err)
			}
			r, err := rs.On(name, nil)
			if err != nil {
				t.Fatalf("no response for %q: %v", name, err)
			}
			if !errors.Is(r.Err, s.wantErr) || (s.wantErr == nil) != (r.Err == nil) {
				t.Fatalf("got error %v (%s), want %v", r.Err, r.ErrMessage, s.wantErr)
			}
			if !strings.Contains(r.ErrMessage, s.wantMsg) {
				t.Errorf("got message %q, want it to contain %q", r.ErrMessage, s.wantMsg)
			}
			if got := describedOverrides(t, adm, "t"); !maps.Equal(got, s.want) {
				t.Errorf("DescribeConfigs: got overrides %v, want %v", got, s.want)
			}
			ti, err := e.log.DescribeTopic(testContext(t), "t")
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(ti.Overrides, s.want) {
				t.Errorf("log: got overrides %v, want %v", ti.Overrides, s.want)
			}
			for k, v := range s.want {
				if ti.Config[k] != v {
					t.Errorf("log: config %s: got %q, want %q", k, ti.Config[k], v)
				}
			}
		})
		if !ok {
			break // later steps start from earlier ones' state
		}
	}
}

// describedOverrides returns the configs DescribeConfigs reports as the
// topic's own (DYNAMIC_TOPIC_CONFIG).
func describedOverrides(t *testing.T, adm *kadm.Client, name string) map[string]string {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(testContext(t), name)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(name, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe %q: %v, %v", name, err, rc.Err)
	}
	out := map[string]string{}
	for _, c := range rc.Configs {
		if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			out[c.Key] = c.MaybeValue()
		}
	}
	return out
}

func TestIncrementalAlterTopicConfigs(t *testing.T) {
	start := map[string]string{"retention.ms": "3600000"}
	afterSet := map[string]string{"retention.bytes": "1048576", "segment.ms": "60000"}
	afterAppend := map[string]string{"retention.bytes": "1048576", "segment.ms": "60000", "cleanup.policy": "delete"}
	runAlterSteps(t, []alterStep{
		{name: "validate only", validate: true, ops: []kadm.AlterConfig{set("segment.ms", "60000")}, want: start},
		{name: "validate only bad value", validate: true, ops: []kadm.AlterConfig{set("max.message.bytes", "1")},
			wantErr: kerr.InvalidConfig, wantMsg: "max.message.bytes=1 outside", want: start},
		{name: "validate only unknown delete", validate: true, ops: []kadm.AlterConfig{del("nope")},
			wantErr: kerr.InvalidConfig, wantMsg: `unknown config key "nope"`, want: start},
		{name: "set and delete", ops: []kadm.AlterConfig{set("retention.bytes", "1048576"), set("segment.ms", "60000"), del("retention.ms")},
			want: afterSet},
		{name: "bad value changes nothing", ops: []kadm.AlterConfig{set("retention.ms", "5000"), set("max.message.bytes", "1")},
			wantErr: kerr.InvalidConfig, wantMsg: "max.message.bytes=1 outside", want: afterSet},
		{name: "unknown key", ops: []kadm.AlterConfig{set("no.such.key", "1")},
			wantErr: kerr.InvalidConfig, wantMsg: `unknown config key "no.such.key"`, want: afterSet},
		{name: "delete unknown key", ops: []kadm.AlterConfig{del("nope")},
			wantErr: kerr.InvalidConfig, wantMsg: `unknown config key "nope"`, want: afterSet},
		{name: "delete missing override", ops: []kadm.AlterConfig{del("retention.ms")}, want: afterSet},
		// The list stays [delete], now set explicitly, as Kafka keeps it.
		{name: "append to a list", ops: []kadm.AlterConfig{appendOp("cleanup.policy", "delete")}, want: afterAppend},
		{name: "append an unsupported value", ops: []kadm.AlterConfig{appendOp("cleanup.policy", "compact")},
			wantErr: kerr.InvalidConfig, wantMsg: `cleanup.policy="delete,compact"`, want: afterAppend},
		{name: "subtract the last value", ops: []kadm.AlterConfig{subtractOp("cleanup.policy", "delete")},
			wantErr: kerr.InvalidConfig, wantMsg: `cleanup.policy=""`, want: afterAppend},
		{name: "append to a non-list", ops: []kadm.AlterConfig{appendOp("retention.ms", "1")},
			wantErr: kerr.InvalidConfig, wantMsg: `APPEND on config "retention.ms": only list-valued configs (cleanup.policy)`, want: afterAppend},
		{name: "subtract from a non-list", ops: []kadm.AlterConfig{subtractOp("segment.ms", "60000")},
			wantErr: kerr.InvalidConfig, wantMsg: `SUBTRACT on config "segment.ms"`, want: afterAppend},
		{name: "unknown topic", topic: "missing", ops: []kadm.AlterConfig{set("retention.ms", "1")},
			wantErr: kerr.UnknownTopicOrPartition, want: afterAppend},
		{name: "validate only unknown topic", topic: "missing", validate: true, ops: []kadm.AlterConfig{set("retention.ms", "1")},
			wantErr: kerr.UnknownTopicOrPartition, want: afterAppend},
		// A key set to its default value stays set, as in Kafka; deleted,
		// it is gone.
		{name: "set to a default", ops: []kadm.AlterConfig{del("retention.bytes"), set("segment.ms", "604800000")},
			want: map[string]string{"segment.ms": "604800000", "cleanup.policy": "delete"}},
		{name: "delete back to the defaults", ops: []kadm.AlterConfig{del("segment.ms"), del("cleanup.policy")},
			want: map[string]string{}},
	}, func(adm *kadm.Client, s alterStep) (kadm.AlterConfigsResponses, error) {
		name := s.topic
		if name == "" {
			name = "t"
		}
		if s.validate {
			return adm.ValidateAlterTopicConfigs(testContext(t), s.ops, name)
		}
		return adm.AlterTopicConfigs(testContext(t), s.ops, name)
	})
}

func TestAlterTopicConfigsState(t *testing.T) {
	start := map[string]string{"retention.ms": "3600000"}
	replaced := map[string]string{"retention.bytes": "1048576", "segment.ms": "60000"}
	runAlterSteps(t, []alterStep{
		{name: "validate only", validate: true, ops: []kadm.AlterConfig{set("segment.ms", "60000")}, want: start},
		{name: "validate only bad value", validate: true, ops: []kadm.AlterConfig{set("segment.bytes", "10")},
			wantErr: kerr.InvalidConfig, wantMsg: "segment.bytes=10 outside", want: start},
		// retention.ms is not listed, so it returns to its default.
		{name: "replace", ops: []kadm.AlterConfig{set("retention.bytes", "1048576"), set("segment.ms", "60000")}, want: replaced},
		{name: "bad value changes nothing", ops: []kadm.AlterConfig{set("retention.ms", "1"), set("max.message.bytes", "1")},
			wantErr: kerr.InvalidConfig, wantMsg: "max.message.bytes=1 outside", want: replaced},
		{name: "unknown key", ops: []kadm.AlterConfig{set("no.such.key", "1")},
			wantErr: kerr.InvalidConfig, wantMsg: `unknown config key "no.such.key"`, want: replaced},
		{name: "unknown topic", topic: "missing", ops: []kadm.AlterConfig{set("retention.ms", "1")},
			wantErr: kerr.UnknownTopicOrPartition, want: replaced},
		{name: "replace with nothing", want: map[string]string{}},
	}, func(adm *kadm.Client, s alterStep) (kadm.AlterConfigsResponses, error) {
		name := s.topic
		if name == "" {
			name = "t"
		}
		if s.validate {
			return adm.ValidateAlterTopicConfigsState(testContext(t), s.ops, name)
		}
		return adm.AlterTopicConfigsState(testContext(t), s.ops, name)
	})
}

// resourceResult is one resource's answer of either AlterConfigs API.
type resourceResult struct {
	typ  kmsg.ConfigResourceType
	name string
	code int16
	msg  string
}

func TestAlterConfigsResourceErrors(t *testing.T) {
	e := newTestEnv(t, Options{NodeID: 3})
	e.createTopic("t", 1, map[string]string{"retention.ms": "3600000"})
	rc := e.dial()
	ctx := testContext(t)
	topicRes, brokerRes := kmsg.ConfigResourceTypeTopic, kmsg.ConfigResourceTypeBroker
	loggerRes := kmsg.ConfigResourceTypeBrokerLogger
	v := kmsg.StringPtr

	type cfg struct {
		name  string
		op    kmsg.IncrementalAlterConfigOp
		value *string
	}
	type resource struct {
		typ     kmsg.ConfigResourceType
		name    string
		configs []cfg
	}
	cases := []struct {
		name      string
		resources []resource
		// legacy sends AlterConfigs (33), where op is ignored, instead
		// of IncrementalAlterConfigs (44).
		legacy bool
		want   []resourceResult
	}{
		{name: "topic named twice", resources: []resource{
			{topicRes, "t", []cfg{{"retention.ms", 0, v("1000")}}},
			{topicRes, "t", []cfg{{"segment.ms", 0, v("1000")}}},
			{brokerRes, "3", nil},
		}, want: []resourceResult{
			{topicRes, "t", kerr.InvalidRequest.Code, "appears 2 times"},
			{topicRes, "t", kerr.InvalidRequest.Code, "appears 2 times"},
			{brokerRes, "3", 0, ""},
		}},
		{name: "legacy topic named twice", legacy: true, resources: []resource{
			{topicRes, "t", nil}, {topicRes, "t", nil},
		}, want: []resourceResult{
			{topicRes, "t", kerr.InvalidRequest.Code, "appears 2 times"},
			{topicRes, "t", kerr.InvalidRequest.Code, "appears 2 times"},
		}},
		{name: "key named twice", resources: []resource{
			{topicRes, "t", []cfg{{"retention.ms", 0, v("1000")}, {"retention.ms", 1, nil}}},
		}, want: []resourceResult{{topicRes, "t", kerr.InvalidRequest.Code, `config "retention.ms" appears more than once`}}},
		{name: "null value", resources: []resource{
			{topicRes, "t", []cfg{{"retention.ms", 0, nil}, {"segment.ms", 1, nil}}},
		}, want: []resourceResult{{topicRes, "t", kerr.InvalidRequest.Code, "null value for config retention.ms"}}},
		{name: "legacy null value", legacy: true, resources: []resource{
			{topicRes, "t", []cfg{{"retention.ms", 0, nil}}},
		}, want: []resourceResult{{topicRes, "t", kerr.InvalidRequest.Code, "null value for config retention.ms"}}},
		{name: "unknown operation", resources: []resource{
			{topicRes, "t", []cfg{{"retention.ms", 9, v("1")}}},
		}, want: []resourceResult{{topicRes, "t", kerr.InvalidRequest.Code, "unknown operation 9"}}},
		{name: "broker configs are flags", resources: []resource{
			{brokerRes, "3", []cfg{{"num.partitions", 0, v("3")}, {"log.retention.ms", 1, nil}}},
			{brokerRes, "", []cfg{{"auto.create.topics.enable", 0, v("false")}}},
		}, want: []resourceResult{
			{brokerRes, "3", kerr.InvalidRequest.Code, "cannot update these configs dynamically: log.retention.ms, num.partitions: Sluice's broker settings are flags"},
			{brokerRes, "", kerr.InvalidRequest.Code, "cannot update these configs dynamically: auto.create.topics.enable"},
		}},
		{name: "legacy broker configs are flags", legacy: true, resources: []resource{
			{brokerRes, "3", []cfg{{"num.partitions", 0, v("3")}}},
			{brokerRes, "", nil},
		}, want: []resourceResult{
			{brokerRes, "3", kerr.InvalidRequest.Code, "cannot update these configs dynamically: num.partitions"},
			{brokerRes, "", 0, ""},
		}},
		{name: "another broker", resources: []resource{{brokerRes, "0", nil}},
			want: []resourceResult{{brokerRes, "0", kerr.InvalidRequest.Code, `unknown broker "0"; this is broker 3`}}},
		{name: "broker logger", resources: []resource{
			{loggerRes, "3", []cfg{{"kafka.server", 0, v("DEBUG")}}},
		}, want: []resourceResult{{loggerRes, "3", kerr.InvalidRequest.Code, "--log-level flag"}}},
		{name: "legacy broker logger", legacy: true, resources: []resource{{loggerRes, "3", nil}},
			want: []resourceResult{{loggerRes, "3", kerr.InvalidRequest.Code, "resource type 8 is not supported"}}},
		{name: "unknown resource type", resources: []resource{{kmsg.ConfigResourceType(99), "x", nil}},
			want: []resourceResult{{kmsg.ConfigResourceType(99), "x", kerr.InvalidRequest.Code, "resource type 99 is not supported"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []resourceResult
			if c.legacy {
				req := kmsg.NewPtrAlterConfigsRequest()
				for _, r := range c.resources {
					rr := kmsg.AlterConfigsRequestResource{ResourceType: r.typ, ResourceName: r.name}
					for _, cf := range r.configs {
						rr.Configs = append(rr.Configs, kmsg.AlterConfigsRequestResourceConfig{Name: cf.name, Value: cf.value})
					}
					req.Resources = append(req.Resources, rr)
				}
				for _, r := range roundTrip[*kmsg.AlterConfigsResponse](rc, req).Resources {
					got = append(got, resourceResult{r.ResourceType, r.ResourceName, r.ErrorCode, deref(r.ErrorMessage)})
				}
			} else {
				req := kmsg.NewPtrIncrementalAlterConfigsRequest()
				for _, r := range c.resources {
					rr := kmsg.IncrementalAlterConfigsRequestResource{ResourceType: r.typ, ResourceName: r.name}
					for _, cf := range r.configs {
						rr.Configs = append(rr.Configs, kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: cf.name, Op: cf.op, Value: cf.value})
					}
					req.Resources = append(req.Resources, rr)
				}
				for _, r := range roundTrip[*kmsg.IncrementalAlterConfigsResponse](rc, req).Resources {
					got = append(got, resourceResult{r.ResourceType, r.ResourceName, r.ErrorCode, deref(r.ErrorMessage)})
				}
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d resources %+v, want %d", len(got), got, len(c.want))
			}
			for i, w := range c.want {
				g := got[i]
				if g.typ != w.typ || g.name != w.name || g.code != w.code || !strings.Contains(g.msg, w.msg) || (w.code == 0) != (g.msg == "") {
					t.Errorf("resource %d: got %v %q code %s message %q, want %v %q code %s message containing %q",
						i, g.typ, g.name, errorName(g.code), g.msg, w.typ, w.name, errorName(w.code), w.msg)
				}
			}
		})
	}
	// None of the refused requests changed the topic.
	ti, err := e.log.DescribeTopic(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"retention.ms": "3600000"}; !maps.Equal(ti.Overrides, want) {
		t.Errorf("got overrides %v, want %v", ti.Overrides, want)
	}
}

// TestAlterBrokerConfigsKadm checks the refusal as an admin client sees it.
func TestAlterBrokerConfigsKadm(t *testing.T) {
	e := newTestEnv(t, Options{})
	adm := e.admin()
	rs, err := adm.AlterBrokerConfigs(testContext(t), []kadm.AlterConfig{set("num.partitions", "4")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := rs.On("0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(r.Err, kerr.InvalidRequest) || !strings.Contains(r.ErrMessage, "flags of sluice serve") {
		t.Errorf("got %v (%q), want INVALID_REQUEST saying broker settings are flags", r.Err, r.ErrMessage)
	}
}

// TestAlterConfigsAcrossVersions sends both APIs at every served version
// and checks that each version's change takes effect.
func TestAlterConfigsAcrossVersions(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("t", 1, nil)
	rc := e.dial() // sends each request at the version it is set to
	ctx := testContext(t)
	for v := int16(0); v <= 2; v++ {
		value := []string{"1000", "2000", "3000"}[v]
		req := kmsg.NewPtrAlterConfigsRequest()
		req.SetVersion(v)
		req.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "t",
			Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr(value)}}}}
		resp := roundTrip[*kmsg.AlterConfigsResponse](rc, req)
		ti, _ := e.log.DescribeTopic(ctx, "t")
		if resp.Resources[0].ErrorCode != 0 || ti.Overrides["retention.ms"] != value {
			t.Errorf("AlterConfigs v%d: got code %d and retention.ms %q, want 0 and %q", v, resp.Resources[0].ErrorCode, ti.Overrides["retention.ms"], value)
		}
	}
	for v := int16(0); v <= 1; v++ {
		value := []string{"4000", "5000"}[v]
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		req.SetVersion(v)
		req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "t",
			Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "segment.ms", Value: kmsg.StringPtr(value)}}}}
		resp := roundTrip[*kmsg.IncrementalAlterConfigsResponse](rc, req)
		ti, _ := e.log.DescribeTopic(ctx, "t")
		if resp.Resources[0].ErrorCode != 0 || ti.Overrides["segment.ms"] != value || ti.Overrides["retention.ms"] != "3000" {
			t.Errorf("IncrementalAlterConfigs v%d: got code %d and overrides %v, want 0, segment.ms %q and retention.ms kept",
				v, resp.Resources[0].ErrorCode, ti.Overrides, value)
		}
	}
}

func TestListOps(t *testing.T) {
	for _, c := range []struct {
		cur, arg         string
		append, subtract string
	}{
		{cur: "delete", arg: "compact", append: "delete,compact", subtract: "delete"},
		{cur: "delete", arg: "delete", append: "delete", subtract: ""},
		{cur: "", arg: "a,b", append: "a,b", subtract: ""},
		{cur: "a,b,c", arg: "c,d,a", append: "a,b,c,d", subtract: "b"},
		// SUBTRACT is a list difference: one occurrence per value.
		{cur: "a,a,b", arg: "a", append: "a,a,b", subtract: "a,b"},
		{cur: "a,b", arg: "", append: "a,b", subtract: "a,b"},
	} {
		if got := appendList(c.cur, c.arg); got != c.append {
			t.Errorf("append %q to %q: got %q, want %q", c.arg, c.cur, got, c.append)
		}
		if got := subtractList(c.cur, c.arg); got != c.subtract {
			t.Errorf("subtract %q from %q: got %q, want %q", c.arg, c.cur, got, c.subtract)
		}
	}
}
