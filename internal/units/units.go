// Package units holds the byte sizes and durations that users write in
// flags and resource files ("4MiB", "200ms"), with their parsers and the
// YAML and JSON forms, so every place reads and prints them alike.
package units

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ByteSize is a number of bytes, written as a plain number or one followed
// by B, KiB, MiB or GiB (case-insensitive): 4096, 512KiB, 4MiB.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	n      int64
}{{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"b", 1}}

// ParseByteSize parses a size and checks that it lies in [min, max].
func ParseByteSize(s string, min, max int64) (int64, error) {
	num, unit := strings.TrimSpace(s), int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(strings.ToLower(num), u.suffix) {
			num, unit = strings.TrimSpace(num[:len(num)-len(u.suffix)]), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q: want a number of bytes, optionally with KiB, MiB or GiB (such as 64MiB)", s)
	}
	if n > max/unit || n*unit < min || n*unit > max {
		return 0, fmt.Errorf("%q: want %s to %s", s, FormatByteSize(min), FormatByteSize(max))
	}
	return n * unit, nil
}

// FormatByteSize writes n in the largest of GiB, MiB and KiB that divides it.
func FormatByteSize(n int64) string {
	if s, ok := withUnit(n); ok {
		return s
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// withUnit writes n in the largest of GiB, MiB and KiB that divides it,
// and reports false when none does.
func withUnit(n int64) (string, bool) {
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.n && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.suffix, true
		}
	}
	return "", false
}

// String writes the size as FormatByteSize does, but a plain number of
// bytes without a unit, so that it parses back.
func (b ByteSize) String() string {
	if s, ok := withUnit(int64(b)); ok {
		return s
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalText writes the size as String does; a round trip keeps it.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText parses any non-negative size that fits in an int64.
func (b *ByteSize) UnmarshalText(text []byte) error {
	n, err := ParseByteSize(string(text), 0, 1<<62)
	if err != nil {
		return err
	}
	*b = ByteSize(n)
	return nil
}

// UnmarshalJSON takes a JSON number of bytes or a string such as "4MiB".
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var n json.Number
	if err := json.Unmarshal(data, &n); err == nil {
		return b.UnmarshalText([]byte(n))
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("want a size such as 4MiB or a number of bytes")
	}
	return b.UnmarshalText([]byte(s))
}

// Duration is a time.Duration written as Go writes one: 200ms, 30s, 1h30m.
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration as time.Duration's String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a non-negative duration.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(text)))
	if err != nil {
		return fmt.Errorf("%q: want a duration such as 200ms, 30s or 5m", text)
	}
	if v < 0 {
		return fmt.Errorf("%q: want a duration of zero or more", text)
	}
	*d = Duration(v)
	return nil
}

// UnmarshalJSON takes a string such as "200ms".
func (d *Duration) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"200ms\"")
	}
	return d.UnmarshalText([]byte(s))
}
