package api

import (
	"encoding/base64"
	"encoding/json"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// jsonOf renders a message for the HTTP API: proto field names, every field
// present, 64-bit integers as JSON numbers (protojson would quote them,
// which shell tools and most clients do not expect), bytes as base64,
// timestamps as RFC 3339.
func jsonOf(m proto.Message) ([]byte, error) {
	return json.Marshal(messageValue(m.ProtoReflect()))
}

func messageValue(m protoreflect.Message) any {
	if ts, ok := m.Interface().(*timestamppb.Timestamp); ok {
		return ts.AsTime().Format(time.RFC3339Nano)
	}
	out := map[string]any{}
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if fd.ContainingOneof() != nil && !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		switch {
		case fd.IsMap():
			mv := map[string]any{}
			v.Map().Range(func(k protoreflect.MapKey, val protoreflect.Value) bool {
				mv[k.String()] = scalarValue(fd.MapValue(), val)
				return true
			})
			out[string(fd.Name())] = mv
		case fd.IsList():
			lv := make([]any, 0, v.List().Len())
			for j := 0; j < v.List().Len(); j++ {
				lv = append(lv, scalarValue(fd, v.List().Get(j)))
			}
			out[string(fd.Name())] = lv
		case fd.Kind() == protoreflect.MessageKind:
			if m.Has(fd) {
				out[string(fd.Name())] = messageValue(v.Message())
			} else {
				out[string(fd.Name())] = nil
			}
		default:
			out[string(fd.Name())] = scalarValue(fd, v)
		}
	}
	return out
}

func scalarValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageValue(v.Message())
	case protoreflect.BytesKind:
		return base64.StdEncoding.EncodeToString(v.Bytes())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return int32(v.Enum())
	default:
		return v.Interface()
	}
}
