package logstore

import (
	"errors"

	"github.com/sluice-dev/sluice/internal/record"
)

var errStop = errors.New("stop")

// firstAtOrAfter finds, in one batch, the first record at or after offset
// from whose timestamp is at least ts. Batches with LogAppendTime stamp all
// records with the batch's max timestamp; others are decoded.
func (p *Partition) firstAtOrAfter(batch []byte, h record.Header, ts, from int64) (off, t int64, found bool, err error) {
	if h.LogAppendTime() {
		return max(h.BaseOffset, from), h.MaxTimestamp, h.MaxTimestamp >= ts, nil
	}
	if h.BaseTimestamp >= ts && h.BaseOffset >= from {
		return h.BaseOffset, h.BaseTimestamp, true, nil
	}
	_, err = p.l.codecs.DecodeBatch(batch, record.DecodeLimits{}, func(r record.Record) error {
		if r.Offset >= from && r.Timestamp >= ts {
			off, t, found = r.Offset, r.Timestamp, true
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return off, t, found, err
}
