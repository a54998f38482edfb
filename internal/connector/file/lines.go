package file

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/sluice-dev/sluice/internal/connector"
)

// appendLine appends rec's line, newline included.
func appendLine(dst []byte, rec *connector.Record, format string) ([]byte, error) {
	v, err := rec.Value()
	if err != nil {
		return dst, err
	}
	if format == FormatRecord {
		dst = appendRecord(dst, rec, v)
	} else {
		dst = appendValue(dst, v)
	}
	return append(dst, '\n'), nil
}

func appendRecord(dst []byte, rec *connector.Record, v []byte) []byte {
	dst = append(dst, `{"topic":`...)
	dst = appendString(dst, rec.Topic)
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(rec.Partition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, rec.Offset, 10)
	dst = append(dst, `,"timestamp":"`...)
	dst = rec.Timestamp.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","key":`...)
	if rec.Key == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendString(dst, rec.Key)
	}
	dst = append(dst, `,"headers":{`...)
	first := true
	for i, h := range rec.Headers {
		if !lastOfName(rec, i) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, h.Key)
		dst = append(dst, ':')
		if h.Value == nil {
			dst = append(dst, "null"...)
		} else {
			dst = appendString(dst, h.Value)
		}
	}
	dst = append(dst, `},"value":`...)
	dst = appendValue(dst, v)
	return append(dst, '}')
}

// lastOfName says whether no later header of rec has the name of header i.
// Records carry a handful of headers, so the quadratic scan is cheaper than
// a map.
func lastOfName(rec *connector.Record, i int) bool {
	for _, h := range rec.Headers[i+1:] {
		if h.Key == rec.Headers[i].Key {
			return false
		}
	}
	return true
}

func appendValue(dst, v []byte) []byte {
	switch {
	case v == nil:
		return append(dst, "null"...)
	case !json.Valid(v):
		return appendString(dst, v)
	case bytes.ContainsAny(v, "\r\n"):
		// Valid JSON holds line breaks only as whitespace between tokens:
		// compacting keeps the value and makes it one line.
		buf := bytes.NewBuffer(dst)
		if err := json.Compact(buf, v); err != nil {
			return appendString(dst, v)
		}
		return buf.Bytes()
	default:
		return append(dst, v...)
	}
}

// appendString appends s as a JSON string, with U+FFFD for bytes that are
// not UTF-8.
func appendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	dst, _ = jsontext.AppendQuote(dst, s)
	return dst
}
