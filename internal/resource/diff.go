package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
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
	// Before and After are the canonical forms (nil when absent) with
	// secrets masked as Redact masks them, for display: the changes go to
	// clients and terminals. Text is the lines that differ, "-" before and
	// "+" after, in YAML. The action is decided on the unmasked forms, so a
	// changed password is an update whose Text says only that a secret
	// changed.
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

// shown is the canonical form with secrets masked.
func shown(r Resource) ([]byte, error) {
	if p, ok := r.(*Pipeline); ok {
		r = Redact(p)
	}
	return Canonical(r)
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
		return toYAML(b)
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
		c := Change{Kind: r.GetKind(), Name: r.GetName(), Action: ActionCreate}
		old, ok := cur[key(r)]
		if ok {
			before, err := Canonical(old)
			if err != nil {
				return nil, err
			}
			c.Action = ActionUpdate
			if bytes.Equal(before, after) {
				c.Action = ActionUnchanged
			}
			if c.Before, err = shown(old); err != nil {
				return nil, err
			}
		}
		if c.After, err = shown(r); err != nil {
			return nil, err
		}
		if c.Text, err = lineDiff(c.Before, c.After); err != nil {
			return nil, err
		}
		if c.Action == ActionUpdate && c.Text == "" {
			c.Text = "# a secret value changed (not shown)\n"
		}
		out = append(out, c)
	}
	if prune {
		for _, r := range current {
			if want[key(r)] {
				continue
			}
			before, err := shown(r)
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
		y, err := toYAML(b)
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
	// Only the lines between the common head and tail can differ; the LCS
	// table is built for those alone, and not at all when it would be
	// large (the whole middle is then shown as replaced).
	for len(a) > 0 && len(b) > 0 && a[0] == b[0] {
		a, b = a[1:], b[1:]
	}
	for len(a) > 0 && len(b) > 0 && a[len(a)-1] == b[len(b)-1] {
		a, b = a[:len(a)-1], b[:len(b)-1]
	}
	const maxCells = 1 << 22
	if (len(a)+1)*(len(b)+1) > maxCells {
		var sb strings.Builder
		for _, l := range a {
			sb.WriteString("- " + l + "\n")
		}
		for _, l := range b {
			sb.WriteString("+ " + l + "\n")
		}
		return sb.String(), nil
	}
	// lcs[i][j]: the longest common subsequence of a[i:] and b[j:].
	lcs := make([][]int32, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int32, len(b)+1)
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
