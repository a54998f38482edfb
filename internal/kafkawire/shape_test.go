package kafkawire

import (
	"math/rand"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fillRandom sets every field of v to random content: strings, bytes,
// nullable values, arrays of up to three elements and unknown tagged
// fields, so that encoding it exercises every field of every version.
func fillRandom(r *rand.Rand, v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(kmsg.Tags{}) {
			if r.Intn(3) == 0 {
				t := v.Addr().Interface().(*kmsg.Tags)
				for range r.Intn(3) + 1 {
					b := make([]byte, r.Intn(4))
					r.Read(b)
					t.Set(uint32(100+r.Intn(50)), b) // keys no schema uses
				}
			}
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if depth == 0 && v.Type().Field(i).Name == "Version" {
				continue
			}
			if v.Field(i).CanSet() {
				fillRandom(r, v.Field(i), depth+1)
			}
		}
	case reflect.String:
		b := make([]byte, r.Intn(6))
		for i := range b {
			b[i] = 'a' + byte(r.Intn(26))
		}
		v.SetString(string(b))
	case reflect.Pointer:
		if r.Intn(3) == 0 {
			return
		}
		p := reflect.New(v.Type().Elem())
		fillRandom(r, p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if r.Intn(4) == 0 {
				return
			}
			b := make([]byte, r.Intn(8))
			r.Read(b)
			v.SetBytes(b)
			return
		}
		if depth > 8 || r.Intn(5) == 0 {
			return // nil: null arrays where nullable
		}
		n := r.Intn(4)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := 0; i < n; i++ {
			fillRandom(r, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(r.Int63() >> uint(r.Intn(63)))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(r.Int63()))
	case reflect.Bool:
		v.SetBool(r.Intn(2) == 0)
	case reflect.Float64:
		v.SetFloat(r.Float64())
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			fillRandom(r, v.Index(i), depth+1)
		}
	}
}

// TestShapesMatchKmsg encodes random requests of every shaped key at every
// version kmsg knows and checks that validateShape reads each exactly to its
// end: the shapes agree with kmsg's encoding, field by field.
func TestShapesMatchKmsg(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for key, s := range requestShapes() {
		maxV := kmsg.RequestForKey(key).MaxVersion()
		for v := int16(0); v <= maxV; v++ {
			for i := 0; i < 200; i++ {
				req := kmsg.RequestForKey(key)
				fillRandom(r, reflect.ValueOf(req).Elem(), 0)
				req.SetVersion(v)
				b := req.AppendTo(nil)
				w := shapeWalker{b: b, version: v, flexible: req.IsFlexible()}
				if err := w.walk(s); err != nil || len(w.b) != 0 {
					t.Fatalf("%s v%d: %v, %d of %d bytes left\n%x", kmsg.NameForKey(key), v, err, len(w.b), len(b), b)
				}
			}
		}
	}
}

// TestServedKeysHaveShapes checks that no served API can reach kmsg without
// a shape.
func TestServedKeysHaveShapes(t *testing.T) {
	shapes := requestShapes()
	for _, a := range apiTable() {
		if shapes[a.key] == nil {
			t.Errorf("%s (key %d) has no shape", apiName(a.key), a.key)
		}
		if a.max > kmsg.RequestForKey(a.key).MaxVersion() {
			t.Errorf("%s: advertised v%d, kmsg knows v%d", apiName(a.key), a.max, kmsg.RequestForKey(a.key).MaxVersion())
		}
	}
}

func TestShapeRejects(t *testing.T) {
	shapes := requestShapes()
	for _, c := range []struct {
		name    string
		key     int16
		version int16
		body    []byte
	}{
		{"tag count beyond the bytes", 18, 3, []byte{1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"tag count of 3 in 4 bytes", 18, 3, []byte{1, 1, 3, 0, 0, 0, 0}},
		{"array beyond the bytes", 3, 1, []byte{0x7f, 0xff, 0xff, 0xff, 0, 0}},
		{"compact array beyond the bytes", 3, 9, []byte{0xff, 0xff, 0x03, 0, 0, 0}},
		{"string beyond the bytes", 10, 0, []byte{0, 9, 'a'}},
		{"truncated int", 22, 0, []byte{0xff, 0xff, 0, 0}},
		{"bad varint", 18, 3, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"nested tag count", 1, 12, fetchWithReplicaState(0xff, 0xff, 0xff, 0xff, 0x0f)[11:]}, // after the v2 header
	} {
		t.Run(c.name, func(t *testing.T) {
			req := kmsg.RequestForKey(c.key)
			req.SetVersion(c.version)
			if err := validateShape(shapes[c.key], c.body, c.version, req.IsFlexible()); err == nil {
				t.Errorf("accepted %x", c.body)
			}
		})
	}

	// The same Fetch with a sound ReplicaState passes.
	if err := validateShape(shapes[1], fetchWithReplicaState(0)[11:], 12, true); err != nil {
		t.Errorf("fetch with ReplicaState: %v", err)
	}

	// Too many elements in all, each present.
	body := []byte{0x00, 0x10, 0x00, 0x01} // 0x100001 topics
	for i := 0; i < maxRequestElements+1; i++ {
		body = append(body, 0, 0) // empty names
	}
	if err := validateShape(shapes[3], body, 1, false); err == nil {
		t.Errorf("accepted %d array elements", maxRequestElements+1)
	}
}
