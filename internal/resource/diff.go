package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
)

// Actions of a Change.
const (
	ActionCreate    = "create"
	ActionUpdate    = "update"
	ActionDelete    = "delete"
	ActionUnchanged = "unchanged"
)

// Change is what applying a resource does.
type Change struct {
	Kind, Name string
	Action     string
	// Before and After are the canonical forms (nil when absent); Text the
	// lines that differ, "-" before and "+" after, in YAML.
	Before, After []byte
	Text          string
}

// Canonical is a resource's comparable form: JSON with fields in a fixed
// order and map keys sorted, defaults not filled in.
func Canonical(r Resource) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.GetKind(), r.GetName(), err)
	}
	return b, nil
}

// Marshal writes a resource as "json" or "yaml".
func Marshal(r Resource, format string) ([]byte, error) {
	b, err := Canonical(r)
	if err != nil {
		return nil, err
	}
	switch format {
	case "json":
		return b, nil
	case "yaml":
		return yaml.JSONToYAML(b)
	}
	return nil, fmt.Errorf("format %q: want json or yaml", format)
}

// Diff compares the current resources with the desired ones: each desired
// one is created, updated or unchanged; with prune, each current one that
// is not desired is deleted (without, it is not mentioned). Sorted by
// kind (topics first) and name.
func Diff(current, desired []Resource, prune bool) ([]Change, error) {
	key := func(r Resource) string { return r.GetKind() + "/" + r.GetName() }
	cur := map[string]Resource{}
	for _, r := range current {
		cur[key(r)] = r
	}
	want := map[string]bool{}
	var out []Change
	for _, r := range desired {
		want[key(r)] = true
		after, err := Canonical(r)
		if err != nil {
			return nil, err
		}
		c := Change{Kind: r.GetKind(), Name: r.GetName(), After: after, Action: ActionCreate}
		if old, ok := cur[key(r)]; ok {
			if c.Before, err = Canonical(old); err != nil {
				return nil, err
			}
			c.Action = ActionUpdate
			if bytes.Equal(c.Before, c.After) {
				c.Action = ActionUnchanged
			}
		}
		if c.Text, err = lineDiff(c.Before, c.After); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if prune {
		for _, r := range current {
			if want[key(r)] {
				continue
			}
			before, err := Canonical(r)
			if err != nil {
				return nil, err
			}
			c := Change{Kind: r.GetKind(), Name: r.GetName(), Before: before, Action: ActionDelete}
			if c.Text, err = lineDiff(before, nil); err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Change) int {
		if a.Kind != b.Kind {
			if a.Kind == KindTopic {
				return -1
			}
			if b.Kind == KindTopic {
				return 1
			}
			return strings.Compare(a.Kind, b.Kind)
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

// lineDiff shows the YAML lines of before and after that differ, in
// order, by a longest common subsequence of lines.
func lineDiff(before, after []byte) (string, error) {
	lines := func(b []byte) ([]string, error) {
		if b == nil {
			return nil, nil
		}
		y, err := yaml.JSONToYAML(b)
		if err != nil {
			return nil, err
		}
		return strings.Split(strings.TrimRight(string(y), "\n"), "\n"), nil
	}
	a, err := lines(before)
	if err != nil {
		return "", err
	}
	b, err := lines(after)
	if err != nil {
		return "", err
	}
	// lcs[i][j]: the longest common subsequence of a[i:] and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			i, j = i+1, j+1
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			sb.WriteString("- " + a[i] + "\n")
			i++
		default:
			sb.WriteString("+ " + b[j] + "\n")
			j++
		}
	}
	return sb.String(), nil
}
