package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/sluice-dev/sluice/internal/resource"
	"github.com/sluice-dev/sluice/internal/stream"
)

// ApplyOptions changes what Apply does.
type ApplyOptions struct {
	// DryRun computes the changes without making them.
	DryRun bool
	// Prune deletes the pipelines, and the topics applied earlier, that
	// the resources no longer declare. Topics created otherwise (by
	// producers, the CLI, Kafka clients) are never pruned.
	Prune bool
}

// Apply makes the log's topics and the pipelines match the resources,
// idempotently: topics are created or altered first (partitions only
// grow; config overrides are set and removed), then pipelines are created
// or replaced (each restarted only if its spec changed); with Prune,
// pipelines are deleted before the topics. It returns every resource's
// change, sorted, unchanged ones included. The resources must have been
// validated by resource.Parse.
func (m *Manager) Apply(ctx context.Context, desired []resource.Resource, opts ApplyOptions) ([]resource.Change, error) {
	current, err := m.current(ctx, desired, opts.Prune)
	if err != nil {
		return nil, err
	}
	changes, err := resource.Diff(current, desired, opts.Prune)
	if err != nil {
		return nil, err
	}
	if opts.DryRun {
		return changes, nil
	}
	byName := func(kind, name string) resource.Resource {
		for _, r := range desired {
			if r.GetKind() == kind && r.GetName() == name {
				return r
			}
		}
		return nil
	}
	// Topics first: pipelines read and write them.
	for _, c := range changes {
		if c.Kind != resource.KindTopic || (c.Action != resource.ActionCreate && c.Action != resource.ActionUpdate) {
			continue
		}
		t := byName(c.Kind, c.Name).(*resource.Topic)
		if err := m.applyTopic(ctx, t); err != nil {
			return changes, fmt.Errorf("topic %s: %w", c.Name, err)
		}
	}
	for _, c := range changes {
		if c.Kind != resource.KindPipeline {
			continue
		}
		switch c.Action {
		case resource.ActionCreate, resource.ActionUpdate:
			if _, err := m.Put(ctx, byName(c.Kind, c.Name).(*resource.Pipeline)); err != nil {
				return changes, fmt.Errorf("pipeline %s: %w", c.Name, err)
			}
		case resource.ActionDelete:
			if err := m.Delete(ctx, c.Name); err != nil && !errors.Is(err, ErrNotFound) {
				return changes, fmt.Errorf("pipeline %s: %w", c.Name, err)
			}
		}
	}
	for _, c := range changes {
		if c.Kind == resource.KindTopic && c.Action == resource.ActionDelete {
			if err := m.opts.Log.DeleteTopic(ctx, c.Name); err != nil && !errors.Is(err, stream.ErrUnknownTopic) {
				return changes, fmt.Errorf("topic %s: %w", c.Name, err)
			}
			if err := m.store.put(ctx, topicKey(c.Name), nil); err != nil {
				return changes, err
			}
		}
	}
	return changes, nil
}

// current is what the resources are now: every pipeline, and the topics
// that are declared or were applied before, as the log describes them.
func (m *Manager) current(ctx context.Context, desired []resource.Resource, prune bool) ([]resource.Resource, error) {
	var out []resource.Resource
	for _, p := range m.List() {
		spec := p.Spec
		out = append(out, &spec)
	}
	topics := map[string]bool{}
	for _, r := range desired {
		if r.GetKind() == resource.KindTopic {
			topics[r.GetName()] = true
		}
	}
	if prune {
		applied, err := m.appliedTopics(ctx)
		if err != nil {
			return nil, err
		}
		for _, name := range applied {
			topics[name] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		info, err := m.opts.Log.DescribeTopic(ctx, name)
		if errors.Is(err, stream.ErrUnknownTopic) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("topic %s: %w", name, err)
		}
		t := &resource.Topic{APIVersion: resource.APIVersion, Kind: resource.KindTopic,
			Metadata: resource.Metadata{Name: name},
			Spec:     resource.TopicSpec{Partitions: int32(len(info.Partitions))}}
		if len(info.Overrides) > 0 {
			t.Spec.Config = maps.Clone(info.Overrides)
		}
		out = append(out, t)
	}
	return out, nil
}

// applyTopic creates a topic or alters it to match t, and remembers that
// it was applied (so that a later prune may delete it).
func (m *Manager) applyTopic(ctx context.Context, t *resource.Topic) error {
	log := m.opts.Log
	info, err := log.DescribeTopic(ctx, t.Metadata.Name)
	switch {
	case errors.Is(err, stream.ErrUnknownTopic):
		if _, err := log.CreateTopic(ctx, t.Metadata.Name, t.Spec.Partitions, t.Spec.Config); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if n := int32(len(info.Partitions)); t.Spec.Partitions < n {
			return fmt.Errorf("%w: it has %d partitions and cannot shrink to %d (Kafka topics only grow)", stream.ErrInvalid, n, t.Spec.Partitions)
		}
		ch := stream.TopicChange{Set: map[string]string{}}
		for k, v := range t.Spec.Config {
			if info.Overrides[k] != v {
				ch.Set[k] = v
			}
		}
		for k := range info.Overrides {
			if _, ok := t.Spec.Config[k]; !ok {
				ch.Delete = append(ch.Delete, k)
			}
		}
		if t.Spec.Partitions > int32(len(info.Partitions)) {
			ch.Partitions = t.Spec.Partitions
		}
		if len(ch.Set) > 0 || len(ch.Delete) > 0 || ch.Partitions > 0 {
			if _, err := log.AlterTopic(ctx, t.Metadata.Name, ch); err != nil {
				return err
			}
		}
	}
	return m.store.put(ctx, topicKey(t.Metadata.Name), []byte(`{}`))
}

// appliedTopics lists the topics applied before and not pruned since.
func (m *Manager) appliedTopics(ctx context.Context) ([]string, error) {
	all, err := m.store.load(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range all {
		if name, ok := cutKind(k, resource.KindTopic); ok {
			out = append(out, name)
		}
	}
	return out, nil
}
