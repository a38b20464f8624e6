package h1

// commonNames are the response header names upstreams commonly send: what
// LLM providers, their proxies and local servers answer with. A parsed
// name found here is this interned string, so nothing is allocated for it
// and the head's string is not kept alive through it.
var commonNames = [...]string{
	"Accept-Ranges",
	"Access-Control-Allow-Credentials",
	"Access-Control-Allow-Headers",
	"Access-Control-Allow-Methods",
	"Access-Control-Allow-Origin",
	"Access-Control-Expose-Headers",
	"Access-Control-Max-Age",
	"Age",
	"Alt-Svc",
	"Anthropic-Organization-Id",
	"Anthropic-Ratelimit-Input-Tokens-Limit",
	"Anthropic-Ratelimit-Input-Tokens-Remaining",
	"Anthropic-Ratelimit-Input-Tokens-Reset",
	"Anthropic-Ratelimit-Output-Tokens-Limit",
	"Anthropic-Ratelimit-Output-Tokens-Remaining",
	"Anthropic-Ratelimit-Output-Tokens-Reset",
	"Anthropic-Ratelimit-Requests-Limit",
	"Anthropic-Ratelimit-Requests-Remaining",
	"Anthropic-Ratelimit-Requests-Reset",
	"Anthropic-Ratelimit-Tokens-Limit",
	"Anthropic-Ratelimit-Tokens-Remaining",
	"Anthropic-Ratelimit-Tokens-Reset",
	"Cache-Control",
	"Cf-Cache-Status",
	"Cf-Ray",
	"Connection",
	"Content-Encoding",
	"Content-Language",
	"Content-Length",
	"Content-Type",
	"Date",
	"Etag",
	"Expires",
	"Keep-Alive",
	"Last-Modified",
	"Link",
	"Location",
	"Openai-Organization",
	"Openai-Processing-Ms",
	"Openai-Project",
	"Openai-Version",
	"Pragma",
	"Request-Id",
	"Retry-After",
	"Retry-After-Ms",
	"Server",
	"Server-Timing",
	"Set-Cookie",
	"Strict-Transport-Security",
	"Trailer",
	"Transfer-Encoding",
	"Vary",
	"Via",
	"Www-Authenticate",
	"X-Content-Type-Options",
	"X-Envoy-Upstream-Service-Time",
	"X-Frame-Options",
	"X-Ratelimit-Limit-Requests",
	"X-Ratelimit-Limit-Tokens",
	"X-Ratelimit-Remaining-Requests",
	"X-Ratelimit-Remaining-Tokens",
	"X-Ratelimit-Reset-Requests",
	"X-Ratelimit-Reset-Tokens",
	"X-Request-Id",
	"X-Should-Retry",
}

// Indices in commonNames of the names framing looks at.
const (
	keyCacheControl     = 22
	keyConnection       = 25
	keyContentLength    = 28
	keyPragma           = 41
	keyTrailer          = 49
	keyTransferEncoding = 50
)

// commonKey returns the index in commonNames of canonical name b, or -1.
// A switch on string(b) neither allocates nor hashes: the compiler
// searches by length, then by value.
func commonKey(b []byte) int {
	switch string(b) {
	case "Accept-Ranges":
		return 0
	case "Access-Control-Allow-Credentials":
		return 1
	case "Access-Control-Allow-Headers":
		return 2
	case "Access-Control-Allow-Methods":
		return 3
	case "Access-Control-Allow-Origin":
		return 4
	case "Access-Control-Expose-Headers":
		return 5
	case "Access-Control-Max-Age":
		return 6
	case "Age":
		return 7
	case "Alt-Svc":
		return 8
	case "Anthropic-Organization-Id":
		return 9
	case "Anthropic-Ratelimit-Input-Tokens-Limit":
		return 10
	case "Anthropic-Ratelimit-Input-Tokens-Remaining":
		return 11
	case "Anthropic-Ratelimit-Input-Tokens-Reset":
		return 12
	case "Anthropic-Ratelimit-Output-Tokens-Limit":
		return 13
	case "Anthropic-Ratelimit-Output-Tokens-Remaining":
		return 14
	case "Anthropic-Ratelimit-Output-Tokens-Reset":
		return 15
	case "Anthropic-Ratelimit-Requests-Limit":
		return 16
	case "Anthropic-Ratelimit-Requests-Remaining":
		return 17
	case "Anthropic-Ratelimit-Requests-Reset":
		return 18
	case "Anthropic-Ratelimit-Tokens-Limit":
		return 19
	case "Anthropic-Ratelimit-Tokens-Remaining":
		return 20
	case "Anthropic-Ratelimit-Tokens-Reset":
		return 21
	case "Cache-Control":
		return 22
	case "Cf-Cache-Status":
		return 23
	case "Cf-Ray":
		return 24
	case "Connection":
		return 25
	case "Content-Encoding":
		return 26
	case "Content-Language":
		return 27
	case "Content-Length":
		return 28
	case "Content-Type":
		return 29
	case "Date":
		return 30
	case "Etag":
		return 31
	case "Expires":
		return 32
	case "Keep-Alive":
		return 33
	case "Last-Modified":
		return 34
	case "Link":
		return 35
	case "Location":
		return 36
	case "Openai-Organization":
		return 37
	case "Openai-Processing-Ms":
		return 38
	case "Openai-Project":
		return 39
	case "Openai-Version":
		return 40
	case "Pragma":
		return 41
	case "Request-Id":
		return 42
	case "Retry-After":
		return 43
	case "Retry-After-Ms":
		return 44
	case "Server":
		return 45
	case "Server-Timing":
		return 46
	case "Set-Cookie":
		return 47
	case "Strict-Transport-Security":
		return 48
	case "Trailer":
		return 49
	case "Transfer-Encoding":
		return 50
	case "Vary":
		return 51
	case "Via":
		return 52
	case "Www-Authenticate":
		return 53
	case "X-Content-Type-Options":
		return 54
	case "X-Envoy-Upstream-Service-Time":
		return 55
	case "X-Frame-Options":
		return 56
	case "X-Ratelimit-Limit-Requests":
		return 57
	case "X-Ratelimit-Limit-Tokens":
		return 58
	case "X-Ratelimit-Remaining-Requests":
		return 59
	case "X-Ratelimit-Remaining-Tokens":
		return 60
	case "X-Ratelimit-Reset-Requests":
		return 61
	case "X-Ratelimit-Reset-Tokens":
		return 62
	case "X-Request-Id":
		return 63
	case "X-Should-Retry":
		return 64
	}
	return -1
}
