package mcp

import "slices"

// Protocol revisions.
const (
	Rev20241105 = "2024-11-05" // only over the deprecated HTTP+SSE transport
	Rev20250326 = "2025-03-26"
	Rev20250618 = "2025-06-18"
	Rev20251125 = "2025-11-25"
	Rev20260728 = "2026-07-28"

	// LatestLegacy is the newest revision with an initialize handshake.
	LatestLegacy = Rev20251125
	// Latest is the newest revision this package speaks.
	Latest = Rev20260728
)

// Revisions lists the revisions spoken over Streamable HTTP, newest first.
var Revisions = []string{Rev20260728, Rev20251125, Rev20250618, Rev20250326}

// LegacyRevisions lists the handshake-based revisions, newest first.
var LegacyRevisions = []string{Rev20251125, Rev20250618, Rev20250326}

// Known reports whether rev is one of Revisions.
func Known(rev string) bool { return slices.Contains(Revisions, rev) }

// Modern reports whether rev is stateless: no initialize, no sessions,
// per-request _meta, request metadata headers, resultType, MRTR.
func Modern(rev string) bool { return rev >= Rev20260728 }

// AllowsBatch reports whether JSON-RPC batches are allowed (2025-03-26 only).
func AllowsBatch(rev string) bool { return rev == Rev20250326 }

// HasVersionHeader reports whether HTTP requests carry MCP-Protocol-Version
// (2025-06-18 and later).
func HasVersionHeader(rev string) bool { return rev >= Rev20250618 }

// Resumable reports whether SSE streams may be resumed with Last-Event-ID.
func Resumable(rev string) bool { return !Modern(rev) }

// HTTP header names of the Streamable HTTP transport.
const (
	HeaderSessionID       = "Mcp-Session-Id"
	HeaderProtocolVersion = "Mcp-Protocol-Version"
	HeaderMethod          = "Mcp-Method"
	HeaderName            = "Mcp-Name"
	HeaderLastEventID     = "Last-Event-Id"
)

// Reserved _meta keys of 2026-07-28.
const (
	MetaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	MetaClientInfo         = "io.modelcontextprotocol/clientInfo"
	MetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	MetaServerInfo         = "io.modelcontextprotocol/serverInfo"
	MetaLogLevel           = "io.modelcontextprotocol/logLevel"
	MetaSubscriptionID     = "io.modelcontextprotocol/subscriptionId"
	MetaProgressToken      = "progressToken"
)

// Result types of 2026-07-28.
const (
	ResultComplete      = "complete"
	ResultInputRequired = "input_required"
)

// Method names the gateway routes on.
const (
	MethodInitialize          = "initialize"
	MethodInitialized         = "notifications/initialized"
	MethodPing                = "ping"
	MethodDiscover            = "server/discover"
	MethodSubscriptionsListen = "subscriptions/listen"
	MethodToolsList           = "tools/list"
	MethodToolsCall           = "tools/call"
	MethodResourcesList       = "resources/list"
	MethodResourceTemplates   = "resources/templates/list"
	MethodResourcesRead       = "resources/read"
	MethodResourcesSubscribe  = "resources/subscribe"
	MethodResourcesUnsub      = "resources/unsubscribe"
	MethodPromptsList         = "prompts/list"
	MethodPromptsGet          = "prompts/get"
	MethodComplete            = "completion/complete"
	MethodSetLevel            = "logging/setLevel"

	NotifyCancelled        = "notifications/cancelled"
	NotifyProgress         = "notifications/progress"
	NotifyMessage          = "notifications/message"
	NotifyToolsChanged     = "notifications/tools/list_changed"
	NotifyResourcesChanged = "notifications/resources/list_changed"
	NotifyPromptsChanged   = "notifications/prompts/list_changed"
	NotifyResourceUpdated  = "notifications/resources/updated"
	NotifyRootsChanged     = "notifications/roots/list_changed"
	NotifyAcknowledged     = "notifications/subscriptions/acknowledged"

	MethodSampling    = "sampling/createMessage"
	MethodElicitation = "elicitation/create"
	MethodRootsList   = "roots/list"
)

// NameHeaderMethod reports whether method carries Mcp-Name (from
// params.name or params.uri) in 2026-07-28.
func NameHeaderMethod(method string) bool {
	return method == MethodToolsCall || method == MethodResourcesRead || method == MethodPromptsGet
}
