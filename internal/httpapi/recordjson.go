package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/sluice-dev/sluice/internal/record"
)

// This file writes consumed records as JSON, by hand: a response may hold
// thousands of records, and values that are JSON go in as they are stored,
// without being decoded and encoded again.
//
// The native rendering (GET /v1/topics/{topic}/partitions/{p}/records) is
// the produce body's record object read back:
//
//	key            the key when it is valid UTF-8, as a string
//	key_base64     otherwise, base64 (standard alphabet, padded)
//	value          the value as JSON when it is valid UTF-8 JSON; else, when
//	               it is valid UTF-8, the text as a JSON string
//	value_base64   otherwise, base64
//	headers        {"name": "value"}: UTF-8 header values; null for a null value
//	headers_base64 {"name": "base64"}: the other header values
//
// A null key or value leaves its field out. With encoding=base64 every key,
// value and header value is written in base64, for clients that need the
// exact bytes: in the default rendering a stored JSON string "abc" (with the
// quotes) and a stored text abc both read back as "abc". A record with
// several headers of one name shows the last (Kafka's lastHeader).

// valueEncoding is how a records response writes keys and values.
type valueEncoding uint8

const (
	encodingAuto   valueEncoding = iota // JSON, text, or base64 as the bytes allow
	encodingBase64                      // always base64
)

// appendString appends s as a JSON string. Invalid UTF-8, which only header
// names can hold here, is replaced with U+FFFD.
func appendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst, _ = jsontext.AppendQuote(dst, s)
	return dst
}

func appendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// appendNativeRecord appends r as the native API's record object.
func appendNativeRecord(dst []byte, partition int32, r *record.Record, enc valueEncoding) []byte {
	dst = append(dst, `{"partition":`...)
	dst = strconv.AppendInt(dst, int64(partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, r.Timestamp, 10)
	if r.Key != nil {
		if enc == encodingAuto && utf8.Valid(r.Key) {
			dst = append(dst, `,"key":`...)
			dst = appendString(dst, r.Key)
		} else {
			dst = append(dst, `,"key_base64":`...)
			dst = appendBase64(dst, r.Key)
		}
	}
	if r.Value != nil {
		if enc == encodingBase64 || !utf8.Valid(r.Value) {
			dst = append(dst, `,"value_base64":`...)
			dst = appendBase64(dst, r.Value)
		} else {
			dst = append(dst, `,"value":`...)
			dst = appendJSONOrText(dst, r.Value)
		}
	}
	return appendHeaders(append(dst, `,"headers":{`...), r.Headers, enc)
}

// appendJSONOrText appends b, valid UTF-8, as the JSON it is, or when it is
// not JSON as a JSON string of its text.
func appendJSONOrText(dst, b []byte) []byte {
	if json.Valid(b) {
		return append(dst, b...)
	}
	return appendString(dst, b)
}

// appendHeaders writes the headers object, which the caller has opened, and
// a headers_base64 object when some values are not text, then closes the
// record.
func appendHeaders(dst []byte, hs []record.RecordHeader, enc valueEncoding) []byte {
	last := lastHeaders(hs)
	dst, binary := appendHeaderMembers(dst, hs, last, enc, false)
	dst = append(dst, '}')
	if binary {
		dst, _ = appendHeaderMembers(append(dst, `,"headers_base64":{`...), hs, last, enc, true)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendHeaderMembers appends the "name":value members of the headers
// object (b64 false: the values that are text) or of headers_base64 (b64
// true: the others), the last header of each name only. It reports whether
// any header belongs in the other object.
func appendHeaderMembers(dst []byte, hs []record.RecordHeader, last func(int) bool, enc valueEncoding, b64 bool) ([]byte, bool) {
	n, other := 0, false
	for i, h := range hs {
		if !last(i) {
			continue
		}
		if text := enc == encodingAuto && (h.Value == nil || utf8.Valid(h.Value)); text == b64 {
			other = true
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = appendString(dst, h.Key)
		dst = append(dst, ':')
		switch {
		case h.Value == nil:
			dst = append(dst, "null"...)
		case b64:
			dst = appendBase64(dst, h.Value)
		default:
			dst = appendString(dst, h.Value)
		}
	}
	return dst, other
}

// lastHeaders returns whether header i is the last of its name.
func lastHeaders(hs []record.RecordHeader) func(i int) bool {
	if len(hs) <= 8 {
		return func(i int) bool {
			for _, h := range hs[i+1:] {
				if h.Key == hs[i].Key {
					return false
				}
			}
			return true
		}
	}
	lastOf := make(map[string]int, len(hs))
	for i, h := range hs {
		lastOf[h.Key] = i
	}
	return func(i int) bool { return lastOf[hs[i].Key] == i }
}

// REST Proxy v2 embedded formats of a consumer instance.
const (
	embeddedBinary = "binary"
	embeddedJSON   = "json"
)

// appendRESTRecord appends r as a REST Proxy v2 consumer record:
// {"topic","key","value","partition","offset"}. In the binary format key and
// value are base64 strings; in the json format they are embedded as JSON.
// A key or value that is not JSON is not an error in the json format, as it
// is for REST Proxy (which would leave the consumer stuck on the record):
// it is written as a JSON string of its text when it is UTF-8, else of its
// base64. Null keys and values are null.
func appendRESTRecord(dst []byte, topic string, partition int32, r *record.Record, format string) []byte {
	dst = append(dst, `{"topic":`...)
	dst = appendString(dst, topic)
	dst = append(dst, `,"key":`...)
	dst = appendRESTBytes(dst, r.Key, format)
	dst = append(dst, `,"value":`...)
	dst = appendRESTBytes(dst, r.Value, format)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, r.Offset, 10)
	return append(dst, '}')
}

func appendRESTBytes(dst, b []byte, format string) []byte {
	switch {
	case b == nil:
		return append(dst, "null"...)
	case format == embeddedBinary || !utf8.Valid(b):
		return appendBase64(dst, b)
	}
	return appendJSONOrText(dst, b)
}
