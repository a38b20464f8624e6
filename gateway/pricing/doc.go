// Package pricing prices one LLM call exactly, in integer nano-dollars.
//
// Contract:
//   - Every rate is an int64 number of nano-dollars (1e-9 USD) per token.
//     Prices are written the way providers publish them, USD per million
//     tokens, and converted by parsing the decimal text: $5/MTok is exactly
//     5000 n$/token, $0.075/MTok exactly 75. No float is ever involved, so a
//     price that is not a whole number of nano-dollars per token (more than
//     three decimals per MTok) is refused at load time, naming the model
//     and the field, instead of being rounded silently.
//   - Cost is the sum over the five usage figures of tokens × rate,
//     overflow-checked; it never rounds.
//   - A model is found by exact ID first, then by the longest configured
//     ID that is a prefix of it at a '-', '@' or ':' boundary, so dated
//     IDs ("claude-sonnet-4-6-20260101") price as their family. An unknown
//     model is an error, never a zero price: an unpriced call must not be
//     free.
//   - The `pricing` config map merges over the defaults (see NewTable).
//   - Retired models (the `models` config key) are a separate table that
//     answers only once the retirement date is reached; the caller passes
//     the time in.
package pricing
