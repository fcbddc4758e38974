package guard

// A Refusal names the limit that refused a call at admission: the cause
// (sluice.Error.Err) of every refusal, for the metrics
// (sluice_limit_refusals_total{limit}). The set is closed.
type Refusal string

// The limits that refuse calls.
const (
	RefusedRPM           Refusal = "rpm"            // the key's requests per minute
	RefusedTPM           Refusal = "tpm"            // the key's tokens per minute
	RefusedUserRPM       Refusal = "user_rpm"       // a user's requests per minute
	RefusedUserTPM       Refusal = "user_tpm"       // a user's tokens per minute
	RefusedIPRPM         Refusal = "ip_rpm"         // a client address's requests per minute
	RefusedIPTPM         Refusal = "ip_tpm"         // a client address's tokens per minute
	RefusedStreams       Refusal = "streams"        // the key's concurrent streams
	RefusedPromptTokens  Refusal = "prompt_tokens"  // the tier's max prompt tokens
	RefusedOutputTokens  Refusal = "output_tokens"  // the tier's max output tokens (policy refuse)
	RefusedMessages      Refusal = "messages"       // the tier's max messages
	RefusedBodySize      Refusal = "body_size"      // the tier's max body size
	RefusedModel         Refusal = "model"          // a model the tier does not allow
	RefusedTools         Refusal = "tools"          // a tool the route does not allow
	RefusedDailyBudget   Refusal = "budget_daily"   // a key's or tenant's daily budget
	RefusedMonthlyBudget Refusal = "budget_monthly" // a key's or tenant's monthly budget
	RefusedLimiterDown   Refusal = "limiter_down"   // the shared limiter failed (limiter_failure: closed)
)

func (r Refusal) Error() string { return "refused by the limit " + string(r) }
