// Package jsonscan reads the few top-level fields of a JSON request body that
// the gateway needs (model and its byte span, stream,
// stream_options.include_usage, max_tokens / max_completion_tokens) without
// decoding the rest, and makes the one sanctioned textual edit to a body.
//
// Contract:
//
//   - The body is never decoded into a Go value: nested values are skipped by
//     a byte scanner, so a multi-megabyte "messages" array placed before
//     "model" (as the official SDKs write it) costs one linear pass and no
//     allocation.
//   - The scanner is strict: Scan succeeds exactly when encoding/json.Valid
//     accepts the body and the body is an object (same grammar, same
//     whitespace set, same nesting limit of 10000). Anything else is a
//     *SyntaxError carrying the byte offset.
//   - Keys are compared after JSON unescaping and case-sensitively, as an
//     upstream provider would: "mod\u0065l" is "model", "Model" is not.
//   - Duplicate top-level keys: the last occurrence wins, as with
//     encoding/json decoding into a map and most other parsers. The same
//     applies to include_usage inside stream_options.
//   - Only top-level keys count; "model" keys nested in messages or tools are
//     skipped like any other nested value.
//   - The same scanner is exported for reading a few nested fields of any
//     JSON document in one validating pass without allocating (Members,
//     SkipValue, Key.Fold, DecodeString, ParseInt); package usage reads
//     provider events with it. Key.Fold matches a key to a name exactly as
//     encoding/json matches a struct field (after unescaping, under
//     Unicode case folding); ParseInt accepts what strconv.ParseInt does.
//   - InsertIncludeUsage never rewrites a body: it returns the original bytes
//     with one inserted fragment (or a null replaced by an object), every
//     other byte identical, so unknown fields such as cache_control survive.
package jsonscan
