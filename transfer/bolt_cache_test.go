package transfer

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Clone shares no pointer or map with its original: the record cache
// hands out clones of what it keeps.
func TestTransferCloneIsDeep(t *testing.T) {
	orig := &Transfer{ID: "t1"}
	fill(t, reflect.ValueOf(orig).Elem())
	c := orig.Clone()
	if !reflect.DeepEqual(orig, c) {
		t.Fatalf("clone differs:\n%+v\n%+v", orig, c)
	}
	noneShared(t, "Transfer", reflect.ValueOf(orig).Elem(), reflect.ValueOf(c).Elem())
}

// fill gives every pointer, map and slice in v a value.
func fill(t *testing.T, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(t, v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i))
			}
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(t, e)
		v.SetMapIndex(k, e)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0))
	}
}

func noneShared(t *testing.T, path string, a, b reflect.Value) {
	switch a.Kind() {
	case reflect.Pointer, reflect.Map:
		if !a.IsNil() && a.UnsafePointer() == b.UnsafePointer() {
			t.Errorf("%s is shared by the clone", path)
		}
		if a.Kind() == reflect.Pointer && !a.IsNil() {
			noneShared(t, path, a.Elem(), b.Elem())
		}
	case reflect.Slice:
		if a.Len() > 0 && a.UnsafePointer() == b.UnsafePointer() {
			t.Errorf("%s is shared by the clone", path)
		}
		for i := range min(a.Len(), b.Len()) {
			noneShared(t, path+"[]", a.Index(i), b.Index(i))
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				noneShared(t, path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i))
			}
		}
	}
}

// What the embedded store reads is what decoding its bytes gives, cached
// or not, and a reader's changes never reach the next reader.
func TestBoltReadsAreDecodes(t *testing.T) {
	svc, _, st := newTestService(t, storeKinds[0], nil, 0)
	bs := st.(*BoltStore)
	ctx := context.Background()
	if _, _, err := svc.Create(ctx, "ivr", CreateRequest{ID: "t1", ExternalConversationID: "c", Type: TypeSIP,
		InputContext: &InputContext{TaskName: "x", InputVariables: map[string]string{"a": "b"}}}); err != nil {
		t.Fatal(err)
	}
	first, _ := st.Get(ctx, "t1")
	first.InputContext.InputVariables["a"] = "changed"
	if again, _ := st.Get(ctx, "t1"); again.InputContext.InputVariables["a"] != "b" {
		t.Fatalf("a reader's change reached the next read: %v", again.InputContext.InputVariables)
	}
	// An empty map is written as nothing and so reads back nil.
	if _, err := st.Update(ctx, "t1", svc.Now(), func(tr *Transfer) error {
		tr.InputContext.InputVariables = map[string]string{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ := st.Get(ctx, "t1")
	var want Transfer
	_ = bs.db.View(func(tx *bolt.Tx) error {
		return json.Unmarshal(tx.Bucket(bucketTransfers).Get([]byte("t1")), &want)
	})
	if !reflect.DeepEqual(got, &want) || got.InputContext.InputVariables != nil {
		t.Fatalf("read %+v, the stored bytes decode to %+v", got, &want)
	}
}
