package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Record is a record as a fetch returns it.
type Record struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
	// Timestamp is in Unix milliseconds.
	Timestamp int64 `json:"timestamp"`
	// Key is the key when it is UTF-8; KeyBase64 when it is not. Both nil:
	// the record has no key.
	Key       *string `json:"key,omitempty"`
	KeyBase64 []byte  `json:"key_base64,omitempty"`
	// Value is the value when it is JSON, or, when it is other UTF-8 text,
	// the text as a JSON string; ValueBase64 holds the other values, and
	// every value fetched with FetchOptions.Base64. Both nil: a null value
	// (the JSON null here is a stored value of the four bytes null).
	Value       json.RawMessage `json:"value,omitempty"`
	ValueBase64 []byte          `json:"value_base64,omitempty"`
	// Headers hold the header values that are UTF-8 (nil for a null
	// value), HeadersBase64 the others.
	Headers       map[string]*string `json:"headers,omitempty"`
	HeadersBase64 map[string]string  `json:"headers_base64,omitempty"`
}

// KeyBytes returns the key's bytes, nil when the record has none.
func (r *Record) KeyBytes() []byte {
	switch {
	case r.Key != nil:
		return []byte(*r.Key)
	case r.KeyBase64 != nil:
		return r.KeyBase64
	}
	return nil
}

// ValueBytes returns the value's bytes, nil for a null value: as stored
// when the record was fetched with FetchOptions.Base64 or its value is
// JSON, and otherwise (UTF-8 text) as the JSON string the server wrote.
func (r *Record) ValueBytes() []byte {
	switch {
	case r.ValueBase64 != nil:
		return r.ValueBase64
	case r.Value == nil:
		return nil
	}
	return r.Value
}

// FetchOptions bound a fetch. Zero values leave the server's defaults.
type FetchOptions struct {
	// MaxRecords and MaxBytes bound the answer; the server returns at
	// least one record when there is one, whatever MaxBytes says.
	MaxRecords int
	MaxBytes   int
	// Wait is how long the server waits for records when there are none
	// at the position yet (a long poll); zero answers at once.
	Wait time.Duration
	// Base64 asks for every key, value and header value in base64, so that
	// ValueBytes and KeyBytes are the stored bytes. By default a value that
	// is UTF-8 but not JSON comes back as a JSON string, which a stored
	// JSON string reads back as too.
	Base64 bool
}

// FetchResult is the answer to a fetch.
type FetchResult struct {
	Records []Record `json:"records"`
	// NextOffset is where the next fetch of the partition starts.
	NextOffset    int64 `json:"next_offset"`
	HighWatermark int64 `json:"high_watermark"`
}

// Consume fetches records of one partition from a position on, waiting up
// to opts.Wait for some to arrive. A position below the log start or above
// the high watermark is an *Error with status 422 (offset out of range).
func (c *Client) Consume(ctx context.Context, topic string, partition int32, from Pos, opts FetchOptions) (*FetchResult, error) {
	if from.IsZero() {
		return nil, fmt.Errorf("consume %s/%d: no position", topic, partition)
	}
	q := url.Values{"offset": {from.String()}}
	if opts.MaxRecords > 0 {
		q.Set("max_records", strconv.Itoa(opts.MaxRecords))
	}
	if opts.MaxBytes > 0 {
		q.Set("max_bytes", strconv.Itoa(opts.MaxBytes))
	}
	q.Set("timeout_ms", strconv.FormatInt(opts.Wait.Milliseconds(), 10))
	if opts.Base64 {
		q.Set("encoding", "base64")
	}
	timeout := c.timeout
	if timeout > 0 {
		timeout += opts.Wait
	}
	var out FetchResult
	err := c.do(ctx, request{
		method:  http.MethodGet,
		path:    "/v1/topics/" + escape(topic) + "/partitions/" + strconv.FormatInt(int64(partition), 10) + "/records",
		query:   q,
		out:     &out,
		timeout: timeout,
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}
