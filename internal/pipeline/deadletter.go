package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/connector/topic"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// deadLetter writes the records a pipeline could not deliver to its
// dead-letter topic: each as it arrived (key, value, headers), plus
// headers naming the pipeline, the stage that refused it, the error and
// its source position, so that it can be inspected, fixed and replayed.
type deadLetter struct {
	sink     *topic.Sink
	pipeline string
}

// newDeadLetter creates the dead-letter topic when it does not exist,
// with as many partitions as the source.
func newDeadLetter(ctx context.Context, log stream.Log, pipeline, name string, partitions int) (*deadLetter, error) {
	if _, err := log.DescribeTopic(ctx, name); errors.Is(err, stream.ErrUnknownTopic) {
		if _, err := log.CreateTopic(ctx, name, int32(max(partitions, 1)), nil); err != nil && !errors.Is(err, stream.ErrTopicExists) {
			return nil, fmt.Errorf("create the dead-letter topic %s: %w", name, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("dead-letter topic %s: %w", name, err)
	}
	s, err := topic.New(topic.Options{Log: log, Topic: name})
	if err != nil {
		return nil, err
	}
	return &deadLetter{sink: s, pipeline: pipeline}, nil
}

// maxErrorHeader bounds the error text a dead-letter header carries.
const maxErrorHeader = 4096

func (d *deadLetter) write(ctx context.Context, stage string, rej []connector.Rejection) error {
	recs := make([]*connector.Record, len(rej))
	for i, x := range rej {
		c := x.Record.Clone()
		msg := x.Err.Error()
		if len(msg) > maxErrorHeader {
			msg = msg[:maxErrorHeader]
		}
		c.Headers = append(c.Headers,
			record.RecordHeader{Key: HeaderPipeline, Value: []byte(d.pipeline)},
			record.RecordHeader{Key: HeaderStage, Value: []byte(stageOf(stage, x.Err))},
			record.RecordHeader{Key: HeaderError, Value: []byte(msg)},
			record.RecordHeader{Key: HeaderSourceTopic, Value: []byte(x.Record.Topic)},
			record.RecordHeader{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(x.Record.Partition), 10)},
			record.RecordHeader{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, x.Record.Offset, 10)},
		)
		recs[i] = c
	}
	if err := d.sink.Write(ctx, &connector.Batch{Records: recs}); err != nil {
		return fmt.Errorf("dead-letter: %w", err)
	}
	return nil
}
