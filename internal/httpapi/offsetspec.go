package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/stream"
)

// offsetSpec is a position in a partition as clients write it: an offset,
// the earliest or latest offset, or the first offset at or after a time.
//
//	42                          the offset itself
//	earliest                    the log start offset
//	latest                      the high watermark: only records produced from now on
//	@2024-05-01T12:00:00Z       the first record whose timestamp is at or after the time (RFC 3339)
//	@1714564800000              the same, the time in Unix milliseconds
//
// A time after the last record resolves to the high watermark, a time
// before the Unix epoch to the log start, as Kafka's ListOffsets does.
type offsetSpec struct {
	kind specKind
	// n is the offset for specOffset, the time in Unix milliseconds for
	// specTime.
	n int64
}

type specKind uint8

const (
	specOffset specKind = iota
	specEarliest
	specLatest
	specTime
)

// parseOffsetSpec parses s. Errors are *Error naming the parameter: 400 for
// text that is not an offset spec at all, 422 for one with an invalid value
// (a negative offset, an offset past the int64 range).
func parseOffsetSpec(param, s string) (offsetSpec, error) {
	switch strings.ToLower(s) {
	case "earliest":
		return offsetSpec{kind: specEarliest}, nil
	case "latest":
		return offsetSpec{kind: specLatest}, nil
	}
	if t, ok := strings.CutPrefix(s, "@"); ok {
		ms, err := parseTimeSpec(param, t)
		if err != nil {
			return offsetSpec{}, err
		}
		return offsetSpec{kind: specTime, n: ms}, nil
	}
	n, err := parseNonNegative(param, s)
	if err != nil {
		return offsetSpec{}, err
	}
	return offsetSpec{kind: specOffset, n: n}, nil
}

// parseTimeSpec parses what follows "@": Unix milliseconds or RFC 3339.
func parseTimeSpec(param, s string) (int64, error) {
	if s != "" && isDigits(s) {
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, errorf(http.StatusUnprocessableEntity, "%s: time @%s is past the range of Unix milliseconds", param, s)
		}
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && strings.Contains(s, " ") {
		// An unescaped "+" in a query string arrives as a space: accept
		// "@2024-05-01T12:00:00 02:00" for "+02:00".
		t, err = time.Parse(time.RFC3339Nano, strings.ReplaceAll(s, " ", "+"))
	}
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "%s: %q is not a time; want @<RFC 3339 time> (URL-encode a \"+\" as %%2B) or @<Unix milliseconds>", param, "@"+s)
	}
	// Year 0001 to 9999 fits int64 milliseconds; before the epoch is
	// before every record.
	return max(t.UnixMilli(), 0), nil
}

// parseNonNegative parses a decimal offset.
func parseNonNegative(param, s string) (int64, error) {
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || !isDigits(digits) {
		return 0, errorf(http.StatusBadRequest, "%s: %q is not an offset; want a number, earliest, latest or @<time>", param, s)
	}
	if len(digits) != len(s) {
		return 0, errorf(http.StatusUnprocessableEntity, "%s: offset %s is negative", param, s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errorf(http.StatusUnprocessableEntity, "%s: offset %s is past the largest offset, %d", param, s, int64(1<<63-1))
	}
	return n, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// String formats the spec as parseOffsetSpec reads it.
func (s offsetSpec) String() string {
	switch s.kind {
	case specEarliest:
		return "earliest"
	case specLatest:
		return "latest"
	case specTime:
		return "@" + strconv.FormatInt(s.n, 10)
	}
	return strconv.FormatInt(s.n, 10)
}

// resolve returns the offset the spec names in a partition. An explicit
// offset is returned as it is, without looking at the partition.
func (s offsetSpec) resolve(ctx context.Context, log stream.Log, topic string, partition int32) (int64, error) {
	var at int64
	switch s.kind {
	case specOffset:
		return s.n, nil
	case specEarliest:
		at = stream.Earliest
	case specLatest:
		at = stream.Latest
	case specTime:
		at = s.n
	}
	off, err := log.ListOffset(ctx, topic, partition, at)
	if err != nil {
		return 0, fmt.Errorf("resolve offset %s of %s/%d: %w", s, topic, partition, err)
	}
	return off, nil
}
