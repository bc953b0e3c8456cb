package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestFields: each section's fields() lists its struct's fields, in
// order, each under its json tag and pointing at that field, so that
// decode reads every key the struct declares and no other.
func TestFields(t *testing.T) {
	var f File
	for _, o := range []object{
		&f, &f.Relay, &f.Relay.TLS, &Room{}, &f.Relay.Store, &f.Relay.Listen, &f.Relay.Limits,
		&f.Relay.Timeouts, &f.Client, &f.Peer, &f.Echo,
	} {
		v := reflect.ValueOf(o).Elem()
		fields := o.fields()
		if len(fields) != v.NumField() {
			t.Errorf("%s: fields() lists %d fields, the struct has %d", v.Type(), len(fields), v.NumField())
			continue
		}
		for i, fd := range fields {
			sf := v.Type().Field(i)
			tag, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if fd.key != tag {
				t.Errorf("%s.%s: fields() has key %q, the tag %q", v.Type(), sf.Name, fd.key, tag)
			}
			if p := reflect.ValueOf(fd.ptr); p.Pointer() != v.Field(i).Addr().Pointer() || p.Type().Elem() != sf.Type {
				t.Errorf("%s.%s: fields()[%d] (%q) points elsewhere", v.Type(), sf.Name, i, fd.key)
			}
		}
	}
	// Every section is an object; every Room reached through the map.
	for _, typ := range []reflect.Type{reflect.TypeOf(File{}), reflect.TypeOf(Config{})} {
		for i := range typ.NumField() {
			ft := typ.Field(i).Type
			if ft.Kind() == reflect.Struct && !reflect.PointerTo(ft).Implements(reflect.TypeOf((*object)(nil)).Elem()) {
				t.Errorf("%s.%s: a section that is no object", typ, typ.Field(i).Name)
			}
		}
	}
}
