package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// dispatch answers one agent request. It returns the final response and the
// HTTP status to use if the response did not turn into a stream. Requests
// with a target (tools/call, resources/read, prompts/get,
// completion/complete, resources/subscribe) are resolved, then governed;
// the rest are answered here, and a refused one is recorded as a protocol
// verdict.
func (g *Gateway) dispatch(c *Call) (*mcp.Message, int) {
	m, head := c.msg, c.head
	ok := func(res json.RawMessage) (*mcp.Message, int) { return mcp.NewResult(m.ID, res), http.StatusOK }
	fail := func(e *mcp.Error) (*mcp.Message, int) {
		status := http.StatusOK
		if c.modern {
			status = modernStatus(e.Code)
		}
		return c.refuse(c.denyError(StageProtocol, e.Message, e, status))
	}
	legacyOnly := func() bool { return !c.modern }
	switch m.Method {
	case mcp.MethodInitialize:
		if c.modern {
			break // removed in 2026-07-28: method not found
		}
		return fail(mcp.Errorf(mcp.CodeInvalidRequest, "session already initialized"))
	case mcp.MethodPing:
		if c.modern {
			break
		}
		return ok(json.RawMessage("{}"))
	case mcp.MethodDiscover:
		return ok(g.discoverResult(&c.reqCtx))
	case mcp.MethodToolsList, mcp.MethodPromptsList, mcp.MethodResourcesList, mcp.MethodResourceTemplates:
		if head.Cursor != "" {
			return fail(mcp.Errorf(mcp.CodeInvalidParams, "invalid params: unknown cursor"))
		}
		return ok(g.listResult(c.r.Context(), &c.reqCtx, m.Method))
	case mcp.MethodToolsCall, mcp.MethodResourcesRead, mcp.MethodPromptsGet, mcp.MethodComplete:
		if !g.resolve(c) {
			return c.resp, c.status
		}
		return g.govern(c)
	case mcp.MethodResourcesSubscribe, mcp.MethodResourcesUnsub:
		if legacyOnly() {
			if !g.resolve(c) {
				return c.resp, c.status
			}
			return g.govern(c)
		}
	case mcp.MethodSetLevel:
		if legacyOnly() {
			return g.setLevel(c)
		}
	}
	return fail(mcp.Errorf(mcp.CodeMethodNotFound, "method not found: %s", m.Method))
}

func (g *Gateway) discoverResult(rc *reqCtx) json.RawMessage {
	info, _ := json.Marshal(mcp.Implementation{Name: g.cfg.ServerName, Version: g.cfg.ServerVersion})
	vers, _ := json.Marshal(mcp.Revisions)
	instr, _ := json.Marshal(instructions(rc))
	return json.RawMessage(`{"supportedVersions":` + string(vers) + `,"capabilities":` + serverCaps + `,"instructions":` + string(instr) +
		`,"ttlMs":0,"cacheScope":"private","resultType":"complete","_meta":{"` + mcp.MetaServerInfo + `":` + string(info) + `}}`)
}

func (g *Gateway) listResult(ctx context.Context, rc *reqCtx, method string) json.RawMessage {
	var field string
	var arr json.RawMessage
	switch method {
	case mcp.MethodToolsList:
		field, arr = "tools", g.catalog(ctx, rc.persona, rc.role, rc.view, kindTools).toolsJSON
	case mcp.MethodPromptsList:
		field, arr = "prompts", g.catalog(ctx, rc.persona, rc.role, rc.view, kindPrompts).promptsJSON
	case mcp.MethodResourcesList:
		field, arr = "resources", g.catalog(ctx, rc.persona, rc.role, rc.view, kindResources).resourcesJSON
	case mcp.MethodResourceTemplates:
		field, arr = "resourceTemplates", g.catalog(ctx, rc.persona, rc.role, rc.view, kindTemplates).templatesJSON
	}
	b := make([]byte, 0, len(arr)+64)
	b = append(b, `{"`...)
	b = append(b, field...)
	b = append(b, `":`...)
	b = append(b, arr...)
	if rc.modern {
		b = append(b, `,"ttlMs":0,"cacheScope":"private","resultType":"complete"`...)
	}
	return append(b, '}')
}

// upstreamParams rewrites an agent's params for the upstream: the given
// fields are replaced and the agent's per-request protocol _meta (its
// revision, identity and capabilities) is dropped: the gateway's own
// connection speaks for it.
func (g *Gateway) upstreamParams(rc *reqCtx, params json.RawMessage, set map[string]json.RawMessage) (json.RawMessage, error) {
	if rc.modern {
		if meta := mcp.GetField(params, "_meta"); meta != nil {
			var mm map[string]json.RawMessage
			if err := json.Unmarshal(meta, &mm); err != nil {
				return nil, err
			}
			for k := range mm {
				if strings.HasPrefix(k, "io.modelcontextprotocol/") && k != mcp.MetaLogLevel {
					delete(mm, k)
				}
			}
			if len(mm) == 0 {
				set["_meta"] = nil
			} else {
				b, _ := json.Marshal(mm)
				set["_meta"] = b
			}
		}
	}
	return mcp.SetFields(params, set)
}

func (g *Gateway) resourceNotFound(rc *reqCtx, uri string) *mcp.Error {
	code := mcp.CodeResourceNotFound
	if rc.modern {
		code = mcp.CodeInvalidParams
	}
	return mcp.Errorf(code, "Resource not found: %q is not available to persona %q", uri, rc.persona)
}

// resourceRoute returns the upstream that serves uri for the persona, or ""
// when the role does not allow it anywhere.
func (g *Gateway) resourceRoute(rc *reqCtx, uri string) string {
	if uri == "" {
		return ""
	}
	cat := g.catalog(rc.r.Context(), rc.persona, rc.role, rc.view, kindResources, kindTemplates)
	if up := cat.resourceUpstream(uri); up != "" {
		if rc.role.Resource(up, uri) {
			return up
		}
		return ""
	}
	// Not listed: the one upstream whose grant allows it, if unambiguous.
	var found string
	for _, up := range rc.role.Upstreams() {
		if rc.role.Resource(up, uri) {
			if found != "" {
				return ""
			}
			found = up
		}
	}
	return found
}

// notification handles a notification from a legacy agent.
func (g *Gateway) notification(rc *reqCtx, m *mcp.Message) {
	switch m.Method {
	case mcp.NotifyCancelled:
		var p struct {
			RequestID json.RawMessage `json:"requestId"`
		}
		if json.Unmarshal(m.Params, &p) == nil && p.RequestID != nil {
			if c, ok := g.inflight.Load(rc.sessionNonce() + "\x00" + string(p.RequestID)); ok {
				c.(context.CancelFunc)()
			}
		}
	case mcp.MethodInitialized, mcp.NotifyRootsChanged:
	default:
		g.log.Debug("agent notification ignored", "method", m.Method, "agent", rc.p.Agent)
	}
}

// agentResponse routes an agent's answer to a relayed server-to-client
// request back to the upstream that asked.
func (g *Gateway) agentResponse(rc *reqCtx, m *mcp.Message) error {
	var id string
	if json.Unmarshal(m.ID, &id) != nil {
		return errors.New("no pending request has this id")
	}
	v, ok := g.relays.Load(id)
	if !ok {
		return errors.New("no pending request has this id (it may have ended or belong to another node)")
	}
	rl := v.(*relay)
	if rl.session != rc.sessionNonce() {
		return errors.New("no pending request has this id")
	}
	g.relays.Delete(id)
	rl.reply(m)
	return nil
}

// errorResult maps an upstream failure to the agent's error.
func upstreamFailure(name string, err error, timeout time.Duration) (*mcp.Error, string) {
	if e, status, ok := credentialFailure(name, err); ok {
		return e, status
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return mcp.Errorf(mcp.CodeInternalError, "upstream %q did not answer within %s", name, timeout), "timeout"
	case errors.Is(err, context.Canceled):
		return mcp.Errorf(mcp.CodeInternalError, "request cancelled"), "cancelled"
	}
	var he *mcp.HTTPError
	if errors.As(err, &he) {
		return mcp.Errorf(mcp.CodeInternalError, "upstream %q failed (HTTP %d)", name, he.Status), fmt.Sprintf("http %d", he.Status)
	}
	return mcp.Errorf(mcp.CodeInternalError, "upstream %q is unavailable", name), "unavailable"
}

// modernResult makes an older upstream's result valid for 2026-07-28: it
// adds resultType "complete" when absent and, for cacheable results
// (resources/read), ttlMs 0 and cacheScope "private" when absent.
func modernResult(res json.RawMessage, cacheable bool) json.RawMessage {
	t := bytes.TrimSpace(res)
	if len(t) < 2 || t[0] != '{' {
		return res
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(t, &top) != nil {
		return res
	}
	var add []byte
	if _, ok := top["resultType"]; !ok {
		add = append(add, `"resultType":"complete"`...)
	}
	if cacheable {
		if _, ok := top["ttlMs"]; !ok {
			if len(add) > 0 {
				add = append(add, ',')
			}
			add = append(add, `"ttlMs":0`...)
		}
		if _, ok := top["cacheScope"]; !ok {
			if len(add) > 0 {
				add = append(add, ',')
			}
			add = append(add, `"cacheScope":"private"`...)
		}
	}
	if len(add) == 0 {
		return res
	}
	inner := bytes.TrimSpace(t[1:])
	b := make([]byte, 0, len(t)+len(add)+2)
	b = append(b, '{')
	b = append(b, add...)
	if len(inner) > 0 && inner[0] != '}' {
		b = append(b, ',')
	}
	return append(b, inner...)
}

// logLevels are the syslog severities of MCP logging, lowest first.
var logLevels = []string{"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}

// setLevel forwards logging/setLevel to the role's upstreams that log. The
// node's upstream sessions are shared, so the most recent level wins there;
// 2026-07-28 upstreams get that level with each call of a legacy agent.
// Log messages still reach only the agent whose call produced them, and
// messages outside any call are dropped.
func (g *Gateway) setLevel(c *Call) (*mcp.Message, int) {
	rc, m := &c.reqCtx, c.msg
	var p struct {
		Level string `json:"level"`
	}
	if err := json.Unmarshal(m.Params, &p); err != nil || p.Level == "" {
		return c.refuse(c.denyError(StageProtocol, "malformed logging/setLevel", mcp.Errorf(mcp.CodeInvalidParams, "invalid params: logging/setLevel needs a level"), http.StatusOK))
	}
	// The level is shared by the node's calls to each upstream: only the
	// eight levels of the spec, so one agent cannot break the others' calls.
	if !slices.Contains(logLevels, p.Level) {
		return c.refuse(c.denyError(StageProtocol, "unknown log level", mcp.Errorf(mcp.CodeInvalidParams, "invalid params: unknown log level %q (one of %s)", p.Level, strings.Join(logLevels, ", ")), http.StatusOK))
	}
	params, _ := json.Marshal(map[string]string{"level": p.Level})
	ctx := rc.r.Context()
	var wg sync.WaitGroup
	for _, name := range rc.role.Upstreams() {
		u := g.upstream(name, rc.view)
		if u == nil {
			continue
		}
		u.logLevel.Store(&p.Level)
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, u.timeout())
			defer cancel()
			c, err := u.connect(cctx)
			if err != nil || mcp.Modern(c.Server().ProtocolVersion) || !hasCapability(c.Server().Capabilities, "logging") {
				return
			}
			if _, err := c.Call(cctx, mcp.MethodSetLevel, params, nil); err != nil {
				g.log.Debug("upstream logging/setLevel failed", "upstream", name, "err", err)
			}
		}()
	}
	wg.Wait()
	return mcp.NewResult(m.ID, json.RawMessage("{}")), http.StatusOK
}

func clientIP(rc *reqCtx) string {
	if rc.p.ClientIP.IsValid() {
		return rc.p.ClientIP.String()
	}
	return ""
}
