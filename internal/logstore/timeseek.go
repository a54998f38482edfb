package logstore

import "github.com/sluice-dev/sluice/internal/record"

// firstAtOrAfter returns the offset and timestamp of the first record in
// batch at or after offset from whose timestamp is at least ts.
func firstAtOrAfter(batch []byte, h record.Header, ts, from int64) (int64, int64, error) {
	return max(h.BaseOffset, from), h.MaxTimestamp, nil
}
