package api

import (
	"net/url"
	"sort"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func protoString(s string) protoreflect.Value { return protoreflect.ValueOfString(s) }

func protoMessageValue(m proto.Message) protoreflect.Value {
	return protoreflect.ValueOfMessage(m.ProtoReflect())
}

func unescape(s string) (string, error) { return url.PathUnescape(s) }

func sortedStrings(s []string) []string {
	sort.Strings(s)
	return s
}
