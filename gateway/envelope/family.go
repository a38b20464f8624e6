package envelope

import "strings"

// Family is an API family whose error format a client expects.
type Family int

const (
	Anthropic Family = iota + 1 // zero is invalid, so a forgotten field is caught
	OpenAI
	Gemini
)

func (f Family) String() string {
	switch f {
	case Anthropic:
		return "anthropic"
	case OpenAI:
		return "openai"
	case Gemini:
		return "gemini"
	}
	return "unknown"
}

// geminiMethods are the ":method" suffixes of Gemini model calls, which
// also exist under /v1/models/ where OpenAI has GET /v1/models/{id}.
// OpenAI model IDs may contain ':' ("ft:gpt-4o:org::id"), so the suffix
// itself, not the colon, decides.
var geminiMethods = []string{
	":generateContent", ":streamGenerateContent", ":countTokens",
	":embedContent", ":batchEmbedContents",
}

// FamilyForPath returns the family whose clients call path, and false for
// paths of no family (the caller then picks one for its 404):
//
//	/v1/messages, /v1/messages/...          Anthropic
//	/v1beta/..., /v1alpha/...               Gemini
//	/v1/models/{m}:generateContent etc.     Gemini (its v1 surface)
//	/v1/chat/completions, other /v1/...     OpenAI
//
// A query string, if present, is ignored.
func FamilyForPath(path string) (Family, bool) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	switch {
	case path == "/v1/messages" || strings.HasPrefix(path, "/v1/messages/"):
		return Anthropic, true
	case strings.HasPrefix(path, "/v1beta/") || strings.HasPrefix(path, "/v1alpha/"):
		return Gemini, true
	case strings.HasPrefix(path, "/v1/models/") && hasGeminiMethod(path):
		return Gemini, true
	case strings.HasPrefix(path, "/v1/"):
		return OpenAI, true
	}
	return 0, false
}

func hasGeminiMethod(path string) bool {
	for _, m := range geminiMethods {
		if strings.HasSuffix(path, m) {
			return true
		}
	}
	return false
}
