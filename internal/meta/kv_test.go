package meta

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestKVInvalid(t *testing.T) {
	s := openStore(t, Options{})
	tests := []struct {
		name, namespace, key string
		value                []byte
		wantMsg              string
	}{
		{"empty namespace", "", "k", nil, "namespace is empty"},
		{"long namespace", strings.Repeat("n", MaxNamespaceLen+1), "k", nil, "namespace is 256 bytes, the limit is 255"},
		{"empty key", "n", "", nil, "key is empty"},
		{"long key", "n", strings.Repeat("k", MaxKeyLen+1), nil, "key is 1025 bytes, the limit is 1024"},
		{"large value", "n", "k", make([]byte, MaxValueLen+1), "value is 16777217 bytes, the limit is 16777216"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Put(tt.namespace, tt.key, tt.value)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("got %v, want ErrInvalid containing %q", err, tt.wantMsg)
			}
		})
	}
	if got, err := s.List("n", ""); err != nil || len(got) != 0 {
		t.Errorf("List after refused puts: got %v, %v", got, err)
	}
}

func TestKV(t *testing.T) {
	type op struct {
		del        bool
		namespace  string
		key, value string
	}
	tests := []struct {
		name      string
		ops       []op
		namespace string
		prefix    string
		want      []KV
	}{
		{name: "unknown namespace", namespace: "none"},
		{
			name:      "sorted, other namespaces apart",
			ops:       []op{{namespace: "n", key: "b", value: "2"}, {namespace: "n", key: "a", value: "1"}, {namespace: "m", key: "a", value: "x"}},
			namespace: "n",
			want:      []KV{{"a", []byte("1")}, {"b", []byte("2")}},
		},
		{
			name:      "replace",
			ops:       []op{{namespace: "n", key: "a", value: "1"}, {namespace: "n", key: "a", value: "2"}},
			namespace: "n",
			want:      []KV{{"a", []byte("2")}},
		},
		{
			name:      "empty value is kept",
			ops:       []op{{namespace: "n", key: "a", value: ""}},
			namespace: "n",
			want:      []KV{{"a", []byte{}}},
		},
		{
			name: "prefix",
			ops: []op{
				{namespace: "n", key: "pipe/a/0", value: "1"}, {namespace: "n", key: "pipe/a/1", value: "2"},
				{namespace: "n", key: "pipe/ab/0", value: "3"}, {namespace: "n", key: "pipe/", value: "4"}, {namespace: "n", key: "pipe", value: "5"},
			},
			namespace: "n",
			prefix:    "pipe/a/",
			want:      []KV{{"pipe/a/0", []byte("1")}, {"pipe/a/1", []byte("2")}},
		},
		{
			name:      "prefix matches nothing",
			ops:       []op{{namespace: "n", key: "a", value: "1"}},
			namespace: "n",
			prefix:    "b",
		},
		{
			name: "delete",
			ops: []op{
				{namespace: "n", key: "a", value: "1"}, {namespace: "n", key: "b", value: "2"},
				{del: true, namespace: "n", key: "a"}, {del: true, namespace: "n", key: "missing"}, {del: true, namespace: "none", key: "a"},
			},
			namespace: "n",
			want:      []KV{{"b", []byte("2")}},
		},
		{
			name:      "binary keys and values",
			ops:       []op{{namespace: "\x00ns", key: "\x00\xff", value: "\x00\x01"}},
			namespace: "\x00ns",
			want:      []KV{{"\x00\xff", []byte("\x00\x01")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, Options{})
			for _, o := range tt.ops {
				var err error
				if o.del {
					err = s.Delete(o.namespace, o.key)
				} else {
					err = s.Put(o.namespace, o.key, []byte(o.value))
				}
				if err != nil {
					t.Fatalf("%+v: %v", o, err)
				}
			}
			got, err := s.List(tt.namespace, tt.prefix)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("List(%q, %q): got %q, want %q", tt.namespace, tt.prefix, got, tt.want)
			}
			for _, kv := range tt.want {
				v, ok, err := s.Get(tt.namespace, kv.Key)
				if err != nil || !ok || !reflect.DeepEqual(v, kv.Value) {
					t.Errorf("Get(%q): got %q, %v, %v; want %q", kv.Key, v, ok, err, kv.Value)
				}
			}
		})
	}
}

func TestKVGetMissingAndEmptyNamespaceRemoved(t *testing.T) {
	s := openStore(t, Options{})
	if err := s.Put("n", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ namespace, key string }{{"n", "x"}, {"m", "k"}, {"", "k"}, {"n", ""}, {"", ""}} {
		if v, ok, err := s.Get(c.namespace, c.key); err != nil || ok || v != nil {
			t.Errorf("Get(%q, %q): got %q, %v, %v; want nothing", c.namespace, c.key, v, ok, err)
		}
	}
	if err := s.Delete("", ""); err != nil {
		t.Errorf("Delete of nothing: %v", err)
	}
	if err := s.Delete("n", "k"); err != nil {
		t.Fatal(err)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketKV).Bucket([]byte("n")); b != nil {
			t.Error("namespace bucket left after its last key was deleted")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestKVValuesAreCopies(t *testing.T) {
	s := openStore(t, Options{})
	in := []byte("abc")
	if err := s.Put("n", "k", in); err != nil {
		t.Fatal(err)
	}
	in[0] = 'X'
	v, _, _ := s.Get("n", "k")
	if string(v) != "abc" {
		t.Fatalf("got %q, want \"abc\"", v)
	}
	v[0] = 'Y'
	list, _ := s.List("n", "")
	if string(list[0].Value) != "abc" {
		t.Errorf("after modifying a returned value: got %q, want \"abc\"", list[0].Value)
	}
}
