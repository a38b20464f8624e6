package envelope

// Kind is a neutral reason for refusing a request.
type Kind int

const (
	BadRequest      Kind = iota + 1 // malformed request
	Unauthenticated                 // missing, malformed or revoked key
	Forbidden                       // key valid but not allowed (model, route)
	NotFound                        // no such route or model
	TooLarge                        // body over the size limit
	RateLimited                     // a rate limit; retry later helps
	BudgetExhausted                 // spend budget used up for the period
	Internal                        // gateway bug or unexpected failure
	Unavailable                     // overloaded, no owner, upstream down
	Timeout                         // upstream or turn deadline passed
)

// Overloaded is Unavailable: both mean "temporarily cannot serve" and map
// to Anthropic's 529 overloaded_error.
const Overloaded = Unavailable

var kindNames = map[Kind]string{
	BadRequest: "bad_request", Unauthenticated: "unauthenticated",
	Forbidden: "forbidden", NotFound: "not_found", TooLarge: "too_large",
	RateLimited: "rate_limited", BudgetExhausted: "budget_exhausted",
	Internal: "internal", Unavailable: "unavailable", Timeout: "timeout",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return "unknown"
}

// wire is how one family spells one kind.
type wire struct {
	status int
	typ    string // Anthropic/OpenAI error.type; Gemini error.status
	code   string // OpenAI error.code; "" encodes as null
}

// The mapping. Anthropic follows its documented error types. OpenAI
// clients branch on the status only (openai-go maps it to its error
// type), so type/code follow OpenAI's bodies where they exist
// (rate_limit_exceeded, insufficient_quota, invalid_api_key). Gemini uses
// google.rpc status names. BudgetExhausted is a 429 everywhere: the
// period's budget resets, so "too many requests" is the right class, and
// the distinct OpenAI type lets clients tell it from a burst limit.
var table = map[Family]map[Kind]wire{
	Anthropic: {
		BadRequest:      {400, "invalid_request_error", ""},
		Unauthenticated: {401, "authentication_error", ""},
		Forbidden:       {403, "permission_error", ""},
		NotFound:        {404, "not_found_error", ""},
		TooLarge:        {413, "request_too_large", ""},
		RateLimited:     {429, "rate_limit_error", ""},
		BudgetExhausted: {429, "rate_limit_error", ""},
		Internal:        {500, "api_error", ""},
		Unavailable:     {529, "overloaded_error", ""},
		Timeout:         {504, "timeout_error", ""},
	},
	OpenAI: {
		BadRequest:      {400, "invalid_request_error", ""},
		Unauthenticated: {401, "authentication_error", "invalid_api_key"},
		Forbidden:       {403, "permission_error", ""},
		NotFound:        {404, "invalid_request_error", ""},
		TooLarge:        {413, "invalid_request_error", ""},
		RateLimited:     {429, "rate_limit_exceeded", "rate_limit_exceeded"},
		BudgetExhausted: {429, "insufficient_quota", "insufficient_quota"},
		Internal:        {500, "server_error", ""},
		Unavailable:     {503, "server_error", ""},
		Timeout:         {504, "server_error", ""},
	},
	Gemini: {
		BadRequest:      {400, "INVALID_ARGUMENT", ""},
		Unauthenticated: {401, "UNAUTHENTICATED", ""},
		Forbidden:       {403, "PERMISSION_DENIED", ""},
		NotFound:        {404, "NOT_FOUND", ""},
		TooLarge:        {413, "INVALID_ARGUMENT", ""},
		RateLimited:     {429, "RESOURCE_EXHAUSTED", ""},
		BudgetExhausted: {429, "RESOURCE_EXHAUSTED", ""},
		Internal:        {500, "INTERNAL", ""},
		Unavailable:     {503, "UNAVAILABLE", ""},
		Timeout:         {504, "DEADLINE_EXCEEDED", ""},
	},
}

// defaultMessages are used when a refusal carries no message.
var defaultMessages = map[Kind]string{
	BadRequest: "Invalid request.", Unauthenticated: "Invalid API key.",
	Forbidden: "This key is not allowed to make this request.",
	NotFound:  "Not found.", TooLarge: "Request body too large.",
	RateLimited: "Rate limit exceeded.", BudgetExhausted: "Spend budget exhausted.",
	Internal: "Internal error.", Unavailable: "Overloaded.",
	Timeout: "Request timed out.",
}

// lookup resolves (f, k). An unknown family or kind is a caller bug; it
// becomes the OpenAI shape (the most widely understood) or Internal,
// a well-formed 500 rather than a panic on the request path.
func lookup(f Family, k Kind) (Family, Kind, wire) {
	if _, ok := table[f]; !ok {
		f = OpenAI
	}
	w, ok := table[f][k]
	if !ok {
		k = Internal
		w = table[f][k]
	}
	return f, k, w
}

// Status returns the HTTP status f uses for k.
func Status(f Family, k Kind) int {
	_, _, w := lookup(f, k)
	return w.status
}
