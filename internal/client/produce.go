package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// ProduceRecord is a record to produce.
type ProduceRecord struct {
	// Key is sent as a string when it is valid UTF-8, else as base64;
	// either way the server stores these bytes. Nil means no key: the
	// record's partition is then chosen round-robin.
	Key []byte
	// Value is a JSON value, stored as its compact encoding. It is used
	// when ValueBytes is nil; when both are nil the value is null.
	Value json.RawMessage
	// ValueBytes is a binary value, sent as base64 and stored as is.
	ValueBytes []byte
	// Headers are sent as strings.
	Headers map[string]string
	// Partition, when not nil, is the record's partition; otherwise a
	// keyed record goes where Kafka's default partitioner puts its key.
	Partition *int32
	// Timestamp, when not zero, is the record's timestamp; otherwise the
	// server stamps the time of the request.
	Timestamp time.Time
}

// MarshalJSON writes the record as the produce endpoints take it.
func (r ProduceRecord) MarshalJSON() ([]byte, error) {
	type wire struct {
		Key         *string           `json:"key,omitempty"`
		KeyBase64   string            `json:"key_base64,omitempty"`
		Value       json.RawMessage   `json:"value,omitempty"`
		ValueBase64 *string           `json:"value_base64,omitempty"`
		Headers     map[string]string `json:"headers,omitempty"`
		Partition   *int32            `json:"partition,omitempty"`
		Timestamp   *int64            `json:"timestamp,omitempty"`
	}
	var w wire
	if r.Key != nil {
		if utf8.Valid(r.Key) {
			k := string(r.Key)
			w.Key = &k
		} else {
			w.KeyBase64 = base64.StdEncoding.EncodeToString(r.Key)
		}
	}
	switch {
	case r.ValueBytes != nil:
		v := base64.StdEncoding.EncodeToString(r.ValueBytes)
		w.ValueBase64 = &v
	case r.Value != nil:
		w.Value = r.Value
	}
	w.Headers, w.Partition = r.Headers, r.Partition
	if !r.Timestamp.IsZero() {
		ms := r.Timestamp.UnixMilli()
		w.Timestamp = &ms
	}
	return json.Marshal(w)
}

// RecordOffset is where the server put a produced record.
type RecordOffset struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// produceResponse is the answer to a native produce request.
type produceResponse struct {
	Offsets []RecordOffset `json:"offsets"`
}

// Produce produces records to topic in one request and returns their
// offsets in the order of recs, once the server has made them durable
// under its fsync policy. A request is all or nothing: an invalid record
// fails it (an *Error naming the record's index) and nothing is written.
func (c *Client) Produce(ctx context.Context, topic string, recs []ProduceRecord) ([]RecordOffset, error) {
	if len(recs) == 0 {
		return nil, errors.New("produce: no records")
	}
	in := struct {
		Records []ProduceRecord `json:"records"`
	}{recs}
	var out produceResponse
	if err := c.do(ctx, request{method: http.MethodPost, path: recordsPath(topic), in: in, out: &out}); err != nil {
		return nil, err
	}
	return out.Offsets, nil
}

// ProduceNDJSON produces the records of body, one record object per line
// (application/x-ndjson; see ProduceRecord.MarshalJSON for the fields),
// streaming it to the server as it is read. The request is bounded by the
// client's timeout when body is a *bytes.Reader, *bytes.Buffer or
// *strings.Reader, and otherwise by ctx alone: a stream may take as long
// as whatever writes it.
func (c *Client) ProduceNDJSON(ctx context.Context, topic string, body io.Reader) ([]RecordOffset, error) {
	req := request{method: http.MethodPost, path: recordsPath(topic), body: body,
		contentType: "application/x-ndjson", out: new(produceResponse)}
	switch body.(type) {
	case *bytes.Reader, *bytes.Buffer, *strings.Reader:
	default:
		req.timeout = -1
	}
	if err := c.do(ctx, req); err != nil {
		return nil, err
	}
	return req.out.(*produceResponse).Offsets, nil
}

func recordsPath(topic string) string { return "/v1/topics/" + escape(topic) + "/records" }
