package topic

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string // substring; "" means valid
	}{
		{"a", ""},
		{"orders", ""},
		{"Orders.v2_eu-west-1", ""},
		{"0", ""},
		{"...", ""},
		{"_", ""},
		{"-", ""},
		{"a..b", ""},
		{strings.Repeat("x", MaxNameLen), ""},
		{"", "empty"},
		{strings.Repeat("x", MaxNameLen+1), "250 characters, the limit is 249"},
		{".", "reserved"},
		{"..", "reserved"},
		{"a b", "character ' ' at 1"},
		{"a/b", "character '/' at 1"},
		{"a\\b", "character '\\\\' at 1"},
		{"a\x00b", "character '\\x00' at 1"},
		{"topic!", "character '!' at 5"},
		{"tópico", "character"},
		{"a:b", "character ':'"},
		{"a\n", "character '\\n' at 1"},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.name), func(t *testing.T) {
			err := ValidateName(tt.name)
			checkErr(t, err, tt.wantErr)
		})
	}
}

// checkErr fails unless err is nil when want is empty, or wraps ErrInvalid
// and contains want.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("got error %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got nil error, want one containing %q", want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("got error %v, want one wrapping ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("got error %q, want it to contain %q", err, want)
	}
}

func TestConfigApply(t *testing.T) {
	const maxInt = "9223372036854775807"
	tests := []struct {
		name    string
		kv      map[string]string
		want    func(*Config) // applied to DefaultConfig; nil means unchanged
		wantErr string
	}{
		{name: "nil map", kv: nil},
		{name: "empty map", kv: map[string]string{}},

		{name: "retention.ms", kv: map[string]string{KeyRetentionMs: "3600000"}, want: func(c *Config) { c.RetentionMs = 3600000 }},
		{name: "retention.ms unlimited", kv: map[string]string{KeyRetentionMs: "-1"}, want: func(c *Config) { c.RetentionMs = -1 }},
		{name: "retention.ms max", kv: map[string]string{KeyRetentionMs: maxInt}, want: func(c *Config) { c.RetentionMs = 1<<63 - 1 }},
		{name: "retention.ms zero", kv: map[string]string{KeyRetentionMs: "0"}, want: func(c *Config) { c.RetentionMs = 0 }},
		{name: "retention.ms below -1", kv: map[string]string{KeyRetentionMs: "-2"}, wantErr: "retention.ms=-2 outside [-1, "},
		{name: "retention.ms not a number", kv: map[string]string{KeyRetentionMs: "1d"}, wantErr: `retention.ms="1d" is not an integer`},
		{name: "retention.ms float", kv: map[string]string{KeyRetentionMs: "1.5"}, wantErr: "not an integer"},
		{name: "retention.ms empty", kv: map[string]string{KeyRetentionMs: ""}, wantErr: "not an integer"},
		{name: "retention.ms overflow", kv: map[string]string{KeyRetentionMs: "9223372036854775808"}, wantErr: "not an integer"},

		{name: "retention.bytes", kv: map[string]string{KeyRetentionBytes: "1073741824"}, want: func(c *Config) { c.RetentionBytes = 1 << 30 }},
		{name: "retention.bytes unlimited", kv: map[string]string{KeyRetentionBytes: "-1"}, want: func(c *Config) { c.RetentionBytes = -1 }},
		{name: "retention.bytes below -1", kv: map[string]string{KeyRetentionBytes: "-5"}, wantErr: "retention.bytes=-5 outside"},
		{name: "retention.bytes hex", kv: map[string]string{KeyRetentionBytes: "0x10"}, wantErr: "not an integer"},

		{name: "segment.bytes min", kv: map[string]string{KeySegmentBytes: "1024"}, want: func(c *Config) { c.SegmentBytes = MinSegmentBytes }},
		{name: "segment.bytes max", kv: map[string]string{KeySegmentBytes: "1073741824"}, want: func(c *Config) { c.SegmentBytes = MaxSegmentBytes }},
		{name: "segment.bytes too small", kv: map[string]string{KeySegmentBytes: "1023"}, wantErr: "segment.bytes=1023 outside [1024, 1073741824]"},
		{name: "segment.bytes too large", kv: map[string]string{KeySegmentBytes: "1073741825"}, wantErr: "segment.bytes=1073741825 outside"},
		{name: "segment.bytes negative", kv: map[string]string{KeySegmentBytes: "-1"}, wantErr: "outside"},

		{name: "segment.ms", kv: map[string]string{KeySegmentMs: "60000"}, want: func(c *Config) { c.SegmentMs = 60000 }},
		{name: "segment.ms min", kv: map[string]string{KeySegmentMs: "1"}, want: func(c *Config) { c.SegmentMs = 1 }},
		{name: "segment.ms zero", kv: map[string]string{KeySegmentMs: "0"}, wantErr: "segment.ms=0 outside [1, "},
		{name: "segment.ms unlimited not allowed", kv: map[string]string{KeySegmentMs: "-1"}, wantErr: "segment.ms=-1 outside"},

		{name: "max.message.bytes min", kv: map[string]string{KeyMaxMessageBytes: "64"}, want: func(c *Config) { c.MaxMessageBytes = 64 }},
		{name: "max.message.bytes max", kv: map[string]string{KeyMaxMessageBytes: "67108864"}, want: func(c *Config) { c.MaxMessageBytes = MaxMaxMessageBytes }},
		{name: "max.message.bytes too small", kv: map[string]string{KeyMaxMessageBytes: "63"}, wantErr: "max.message.bytes=63 outside [64, 67108864]"},
		{name: "max.message.bytes too large", kv: map[string]string{KeyMaxMessageBytes: "67108865"}, wantErr: "max.message.bytes=67108865 outside"},

		{name: "index.interval.bytes zero", kv: map[string]string{KeyIndexIntervalBytes: "0"}, want: func(c *Config) { c.IndexIntervalBytes = 0 }},
		{name: "index.interval.bytes max", kv: map[string]string{KeyIndexIntervalBytes: "1073741824"}, want: func(c *Config) { c.IndexIntervalBytes = 1 << 30 }},
		{name: "index.interval.bytes negative", kv: map[string]string{KeyIndexIntervalBytes: "-1"}, wantErr: "index.interval.bytes=-1 outside [0, 1073741824]"},
		{name: "index.interval.bytes too large", kv: map[string]string{KeyIndexIntervalBytes: "1073741825"}, wantErr: "outside"},

		{name: "cleanup.policy delete", kv: map[string]string{KeyCleanupPolicy: "delete"}},
		{name: "cleanup.policy compact", kv: map[string]string{KeyCleanupPolicy: "compact"}, wantErr: `cleanup.policy="compact": only "delete" is supported`},
		{name: "cleanup.policy both", kv: map[string]string{KeyCleanupPolicy: "compact,delete"}, wantErr: "only"},
		{name: "cleanup.policy empty", kv: map[string]string{KeyCleanupPolicy: ""}, wantErr: "only"},

		{name: "timestamp type LogAppendTime", kv: map[string]string{KeyTimestampType: "LogAppendTime"}, want: func(c *Config) { c.TimestampType = LogAppendTime }},
		{name: "timestamp type CreateTime", kv: map[string]string{KeyTimestampType: "CreateTime"}},
		{name: "timestamp type wrong case", kv: map[string]string{KeyTimestampType: "createtime"}, wantErr: `message.timestamp.type="createtime": want CreateTime or LogAppendTime`},
		{name: "timestamp type empty", kv: map[string]string{KeyTimestampType: ""}, wantErr: "want CreateTime or LogAppendTime"},

		{name: "unknown key", kv: map[string]string{"retention.hours": "1"}, wantErr: `unknown config key "retention.hours"`},
		{name: "empty key", kv: map[string]string{"": "1"}, wantErr: `unknown config key ""`},
		{name: "key case matters", kv: map[string]string{"Retention.ms": "1"}, wantErr: "unknown config key"},

		{
			name: "several keys",
			kv: map[string]string{
				KeyRetentionMs: "1000", KeyRetentionBytes: "2048", KeySegmentBytes: "4096", KeySegmentMs: "5000",
				KeyMaxMessageBytes: "100", KeyIndexIntervalBytes: "10", KeyCleanupPolicy: "delete", KeyTimestampType: "LogAppendTime",
			},
			want: func(c *Config) {
				*c = Config{RetentionMs: 1000, RetentionBytes: 2048, SegmentBytes: 4096, SegmentMs: 5000,
					MaxMessageBytes: 100, IndexIntervalBytes: 10, CleanupPolicy: "delete", TimestampType: LogAppendTime}
			},
		},
		{
			// Keys are checked in sorted order, so the first bad one is reported.
			name:    "first bad key reported",
			kv:      map[string]string{KeySegmentMs: "0", KeyRetentionMs: "x", "zzz": "1"},
			wantErr: "retention.ms",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := DefaultConfig()
			got, err := base.Apply(tt.kv)
			if base != DefaultConfig() {
				t.Fatalf("Apply changed its receiver to %+v", base)
			}
			checkErr(t, err, tt.wantErr)
			if tt.wantErr != "" {
				return
			}
			want := DefaultConfig()
			if tt.want != nil {
				tt.want(&want)
			}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{name: "default"},
		{name: "zero config", mod: func(c *Config) { *c = Config{} }, wantErr: "segment.bytes=0"},
		{name: "segment.bytes", mod: func(c *Config) { c.SegmentBytes = 1 }, wantErr: "segment.bytes=1 outside"},
		{name: "max.message.bytes", mod: func(c *Config) { c.MaxMessageBytes = 1 << 40 }, wantErr: "max.message.bytes="},
		{name: "segment.ms", mod: func(c *Config) { c.SegmentMs = 0 }, wantErr: "segment.ms=0, want at least 1"},
		{name: "cleanup.policy", mod: func(c *Config) { c.CleanupPolicy = "" }, wantErr: "cleanup.policy"},
		{name: "timestamp type", mod: func(c *Config) { c.TimestampType = "x" }, wantErr: "message.timestamp.type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			if tt.mod != nil {
				tt.mod(&c)
			}
			checkErr(t, c.Validate(), tt.wantErr)
		})
	}
}

func TestKeys(t *testing.T) {
	keys := Keys()
	if !slices.IsSorted(keys) {
		t.Errorf("got %v, want sorted keys", keys)
	}
	mapKeys := slices.Sorted(maps.Keys(DefaultConfig().Map()))
	if !slices.Equal(keys, mapKeys) {
		t.Errorf("Keys() = %v, want the keys of Map(): %v", keys, mapKeys)
	}
	// Every key Map lists is one Apply accepts.
	if _, err := DefaultConfig().Apply(DefaultConfig().Map()); err != nil {
		t.Errorf("Apply(Map()) of the defaults: %v", err)
	}
}

// The overrides kept are the keys set, in canonical form, defaults
// included: Kafka reports an explicitly set default as set.
func TestExplicitOverrides(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		want map[string]string
	}{
		{name: "none", set: nil, want: map[string]string{}},
		{name: "one key", set: map[string]string{KeyRetentionMs: "1000"}, want: map[string]string{KeyRetentionMs: "1000"}},
		{name: "a default, set", set: map[string]string{KeyRetentionBytes: "-1"}, want: map[string]string{KeyRetentionBytes: "-1"}},
		{name: "canonical", set: map[string]string{KeyRetentionMs: "0100", KeyTimestampType: "LogAppendTime"},
			want: map[string]string{KeyRetentionMs: "100", KeyTimestampType: "LogAppendTime"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DefaultConfig().Apply(tt.set)
			if err != nil {
				t.Fatal(err)
			}
			ov := c.Explicit(tt.set)
			if !reflect.DeepEqual(ov, tt.want) {
				t.Errorf("Explicit() = %v, want %v", ov, tt.want)
			}
			got, err := DefaultConfig().Apply(ov)
			if err != nil || got != c {
				t.Errorf("Apply(Explicit()) = %+v, %v; want %+v", got, err, c)
			}
			got, err = Config{}.Apply(c.Map())
			if err != nil || got != c {
				t.Errorf("Config{}.Apply(Map()) = %+v, %v; want %+v", got, err, c)
			}
		})
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		name    string
		spec    Spec
		wantErr string
	}{
		{name: "minimal", spec: Spec{Name: "t", Partitions: 1}},
		{name: "max partitions", spec: Spec{Name: "t", Partitions: MaxPartitions}},
		{name: "with overrides", spec: Spec{Name: "t", Partitions: 3, Config: map[string]string{KeyRetentionMs: "-1"}}},
		{name: "bad name", spec: Spec{Name: "a/b", Partitions: 1}, wantErr: "character '/'"},
		{name: "empty name", spec: Spec{Partitions: 1}, wantErr: "name is empty"},
		{name: "zero partitions", spec: Spec{Name: "t"}, wantErr: "0 partitions, want 1 to 10000"},
		{name: "negative partitions", spec: Spec{Name: "t", Partitions: -1}, wantErr: "-1 partitions"},
		{name: "too many partitions", spec: Spec{Name: "t", Partitions: MaxPartitions + 1}, wantErr: "10001 partitions"},
		{name: "unknown config key", spec: Spec{Name: "t", Partitions: 1, Config: map[string]string{"x": "1"}}, wantErr: `unknown config key "x"`},
		{name: "bad config value", spec: Spec{Name: "t", Partitions: 1, Config: map[string]string{KeySegmentBytes: "1"}}, wantErr: "segment.bytes=1 outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, tt.spec.Validate(), tt.wantErr)
		})
	}
}

func TestSpecResolved(t *testing.T) {
	s := Spec{Name: "t", Partitions: 1, Config: map[string]string{KeyRetentionMs: "5"}}
	got, err := s.Resolved()
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.RetentionMs = 5
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
