package httpapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/stream"
)

// The request bodies below are the examples of Confluent's REST Proxy API
// reference (API v2, "Produce messages to a topic").
const (
	docBinaryRequest = `{
  "records": [
    {
      "key": "a2V5",
      "value": "Y29uZmx1ZW50"
    },
    {
      "value": "a2Fma2E=",
      "partition": 1
    },
    {
      "value": "bG9ncw=="
    }
  ]
}`
	docJSONRequest = `{
  "records": [
    {
      "key": "somekey",
      "value": {"foo": "bar"}
    },
    {
      "value": [ "foo", "bar" ],
      "partition": 1
    },
    {
      "value": 53.5
    }
  ]
}`
)

type restProxyOffsets struct {
	KeySchemaID   *int `json:"key_schema_id"`
	ValueSchemaID *int `json:"value_schema_id"`
	Offsets       []struct {
		Partition *int32  `json:"partition"`
		Offset    *int64  `json:"offset"`
		ErrorCode *int    `json:"error_code"`
		Error     *string `json:"error"`
	} `json:"offsets"`
}

func TestRESTProxyProduceDocumentedBodies(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		wantKeys    []string // stored keys; "<nil>" for none
		wantValues  []string
	}{
		{"binary", "application/vnd.kafka.binary.v2+json", docBinaryRequest,
			[]string{"key", "<nil>", "<nil>"}, []string{"confluent", "kafka", "logs"}},
		{"json", "application/vnd.kafka.json.v2+json", docJSONRequest,
			// The json embedded format stores keys and values as their
			// JSON encoding: the string key keeps its quotes.
			[]string{`"somekey"`, "<nil>", "<nil>"}, []string{`{"foo":"bar"}`, `["foo","bar"]`, `53.5`}},
		{"binary without embedded format", "application/vnd.kafka.v2+json", docBinaryRequest,
			[]string{"key", "<nil>", "<nil>"}, []string{"confluent", "kafka", "logs"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.createTopic("test", 3, nil)
			r := e.do("POST", "/topics/test", tc.body, "Content-Type", tc.contentType)
			if r.status != 200 {
				t.Fatalf("got status %d, want 200 (%s)", r.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/vnd.kafka.v2+json" {
				t.Errorf("got Content-Type %q, want application/vnd.kafka.v2+json", ct)
			}
			var raw map[string]json.RawMessage
			r.json(t, &raw)
			if string(raw["key_schema_id"]) != "null" || string(raw["value_schema_id"]) != "null" {
				t.Errorf("got %s, want null schema ids", r.body)
			}
			var got restProxyOffsets
			r.json(t, &got)
			if len(got.Offsets) != 3 {
				t.Fatalf("got %s, want 3 offsets", r.body)
			}
			for i, o := range got.Offsets {
				if o.Partition == nil || o.Offset == nil {
					t.Fatalf("offset %d: got %s, want partition and offset", i, r.body)
				}
				if o.ErrorCode != nil || o.Error != nil {
					t.Errorf("offset %d: got error_code %v, error %v; want null", i, o.ErrorCode, o.Error)
				}
				if !strings.Contains(r.body, `"error_code":null,"error":null`) {
					t.Errorf("got %s, want explicit null error_code and error", r.body)
				}
				recs := readAll(t, e.log, "test", *o.Partition)
				found := false
				for _, rec := range recs {
					if rec.Offset != *o.Offset {
						continue
					}
					found = true
					key := "<nil>"
					if rec.Key != nil {
						key = string(rec.Key)
					}
					if key != tc.wantKeys[i] || string(rec.Value) != tc.wantValues[i] {
						t.Errorf("record %d: got key %s value %s, want %s and %s", i, key, rec.Value, tc.wantKeys[i], tc.wantValues[i])
					}
					if rec.Key != nil && *o.Partition != stream.KeyPartition(rec.Key, 3) {
						t.Errorf("record %d: keyed record in partition %d, want %d", i, *o.Partition, stream.KeyPartition(rec.Key, 3))
					}
				}
				if !found {
					t.Errorf("record %d: nothing at %d/%d", i, *o.Partition, *o.Offset)
				}
			}
			if *got.Offsets[1].Partition != 1 {
				t.Errorf("record 1: got partition %d, want 1 as asked", *got.Offsets[1].Partition)
			}
		})
	}
}

func TestRESTProxyProducePartitionEndpoint(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("test", 3, nil)
	r := e.do("POST", "/topics/test/partitions/2", `{"records":[{"key":"a2V5","value":"Y29uZmx1ZW50"},{"value":"a2Fma2E="}]}`, "Content-Type", "application/vnd.kafka.binary.v2+json")
	if r.status != 200 {
		t.Fatalf("got status %d (%s)", r.status, r.body)
	}
	want := `{"key_schema_id":null,"value_schema_id":null,"offsets":[{"partition":2,"offset":0,"error_code":null,"error":null},{"partition":2,"offset":1,"error_code":null,"error":null}]}` + "\n"
	if r.body != want {
		t.Errorf("got %s, want %s", r.body, want)
	}
}

func TestRESTProxyProduceErrors(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("test", 3, nil)
	const binary, jsonCT = "application/vnd.kafka.binary.v2+json", "application/vnd.kafka.json.v2+json"
	tests := []struct {
		name        string
		path        string
		contentType string
		body        string
		wantStatus  int
		wantCode    int
		wantErr     string
	}{
		{"unknown topic", "/topics/nope", binary, docBinaryRequest, 404, 40401, "unknown topic"},
		{"unknown partition in a record", "/topics/test", binary, `{"records":[{"value":"YQ==","partition":7}]}`, 404, 40402, "record 0: partition 7 does not exist"},
		{"unknown partition in the path", "/topics/test/partitions/3", binary, `{"records":[{"value":"YQ=="}]}`, 404, 40402, "partition 3"},
		{"bad partition in the path", "/topics/test/partitions/x", binary, `{"records":[{"value":"YQ=="}]}`, 404, 40402, "partition"},
		{"partition conflicts with the path", "/topics/test/partitions/1", binary, `{"records":[{"value":"YQ==","partition":2}]}`, 422, 422, "conflicts"},
		{"bad base64 key", "/topics/test", binary, `{"records":[{"key":"!!","value":"YQ=="}]}`, 422, 42201, "record 0: key is not valid base64"},
		{"bad base64 value", "/topics/test", binary, `{"records":[{"value":"YQ=="},{"value":"%%%"}]}`, 422, 42202, "record 1: value is not valid base64"},
		{"binary value not a string", "/topics/test", binary, `{"records":[{"value":{"a":1}}]}`, 422, 42202, "value is an object; want a base64 string"},
		{"binary key not a string", "/topics/test", binary, `{"records":[{"key":1,"value":"YQ=="}]}`, 422, 42201, "key is a number"},
		{"unknown record field", "/topics/test", jsonCT, `{"records":[{"value":1,"headers":{}}]}`, 422, 422, `unknown field "headers"`},
		{"unknown top-level field", "/topics/test", jsonCT, `{"records":[{"value":1}],"format":"x"}`, 422, 422, `unknown field "format"`},
		{"key schema", "/topics/test", jsonCT, `{"key_schema":"{}","records":[{"value":1}]}`, 422, 42201, "schemas are not supported"},
		{"value schema id", "/topics/test", jsonCT, `{"value_schema_id":3,"records":[{"value":1}]}`, 422, 42202, "schemas are not supported"},
		{"empty records", "/topics/test", jsonCT, `{"records":[]}`, 422, 422, "records may not be empty"},
		{"malformed JSON", "/topics/test", jsonCT, `{"records":[{"value":}]}`, 400, 400, "malformed JSON"},
		{"invalid UTF-8", "/topics/test", jsonCT, "{\"records\":[{\"value\":\"\xff\"}]}", 400, 400, "invalid UTF-8"},
		{"avro", "/topics/test", "application/vnd.kafka.avro.v2+json", docJSONRequest, 415, 415, "schema registry"},
		{"plain JSON", "/topics/test", "application/json", docJSONRequest, 415, 415, "not supported"},
		{"no content type", "/topics/test", "", docJSONRequest, 415, 415, "not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", tc.path, tc.body, "Content-Type", tc.contentType)
			if r.status != tc.wantStatus {
				t.Fatalf("got status %d, want %d (%s)", r.status, tc.wantStatus, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/vnd.kafka.v2+json" {
				t.Errorf("got Content-Type %q, want application/vnd.kafka.v2+json", ct)
			}
			eb := r.errBody(t)
			if eb.ErrorCode != tc.wantCode {
				t.Errorf("got error_code %d, want %d (%s)", eb.ErrorCode, tc.wantCode, eb.Message)
			}
			if !strings.Contains(eb.Message, tc.wantErr) {
				t.Errorf("got message %q, want it to contain %q", eb.Message, tc.wantErr)
			}
		})
	}
	for p := range int32(3) {
		if n := len(readAll(t, e.log, "test", p)); n != 0 {
			t.Errorf("partition %d: %d records written by refused requests", p, n)
		}
	}
}
