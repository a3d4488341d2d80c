package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// resolve finds the target of a request once, per method: the upstream and
// the upstream's own name for the name or URI the agent used, the decoded
// arguments, and the params to send upstream (names rewritten, the agent's
// protocol _meta dropped). A request without a valid target is answered
// here: a malformed one as a protocol refusal, a name or URI outside the
// persona's catalog as a policy refusal (the catalog lists only what the
// role grants), an upstream whose list cannot be loaded as an upstream
// failure. It reports whether the call goes on to govern.
func (g *Gateway) resolve(c *Call) bool {
	var v Verdict
	switch c.msg.Method {
	case mcp.MethodToolsCall:
		v = g.resolveTool(c)
	case mcp.MethodResourcesRead, mcp.MethodResourcesSubscribe, mcp.MethodResourcesUnsub:
		v = g.resolveResource(c, c.head.URI, "")
	case mcp.MethodPromptsGet:
		v = g.resolvePrompt(c, c.head.Name, nil)
	case mcp.MethodComplete:
		v = g.resolveCompletion(c)
	}
	if v.Stage != "" {
		c.verdict(v)
	}
	return c.resp == nil
}

func (g *Gateway) resolveTool(c *Call) Verdict {
	m, head := c.msg, c.head
	c.rec.Tool = head.Name
	if !head.HasName {
		return c.denyError(StageProtocol, "missing tool name", mcp.Errorf(mcp.CodeInvalidParams, "invalid params: tools/call needs a tool name"), http.StatusOK)
	}
	cat := g.catalog(c.r.Context(), c.persona, c.role, c.view, kindTools)
	e := cat.toolsByName[head.Name]
	if e == nil {
		if up := cat.failedUpstreamFor(head.Name, c.view); up != "" {
			c.rec.Upstream = up
			if ce, status, ok := credentialFailure(up, cat.errors[up]); ok {
				return c.fail(StageUpstream, "upstream tool list unavailable", status, ce)
			}
			return c.fail(StageUpstream, "upstream tool list unavailable", "unavailable", mcp.Errorf(mcp.CodeInternalError, "tool %q is unavailable: upstream %q cannot be reached", head.Name, up))
		}
		return c.denyError(StagePolicy, "tool not in the persona's role", mcp.Errorf(mcp.CodeInvalidParams, "Unknown tool: %q is not available to persona %q", head.Name, c.persona), http.StatusOK)
	}
	c.target = Target{Upstream: e.upstream, Name: e.name, Exposed: head.Name, field: "arguments", headers: e.params}
	c.rec.Upstream, c.rec.UpstreamTool = e.upstream, e.name
	c.args = map[string]any{}
	if head.Arguments != nil {
		if err := json.Unmarshal(head.Arguments, &c.args); err != nil {
			return c.denyError(StageProtocol, "malformed arguments", mcp.Errorf(mcp.CodeInvalidParams, "invalid params: arguments must be a JSON object"), http.StatusOK)
		}
		// The policy sees the decoded arguments, the upstream the agent's
		// bytes: a repeated member name could show each a different value.
		if p, dup := mcp.DuplicateKey(head.Arguments); dup {
			return c.denyError(StageProtocol, "duplicate argument "+p, mcp.Errorf(mcp.CodeInvalidParams, "invalid params: argument %q appears more than once", p), http.StatusOK)
		}
	}
	if len(e.params) > 0 {
		if c.modern {
			if herr := mcp.CheckParamHeaders(c.r.Header, e.params, c.args); herr != nil {
				return c.denyError(StageProtocol, herr.Message, herr, http.StatusBadRequest)
			}
		}
		h, err := mcp.ParamHeaderValues(e.params, c.args)
		if err != nil {
			return c.denyError(StageProtocol, err.Error(), mcp.Errorf(mcp.CodeInvalidParams, "invalid params: %v", err), http.StatusOK)
		}
		c.upHdr = h
	}
	return g.rewrite(c, m.Params, map[string]json.RawMessage{"name": mcp.Quote(e.name)})
}

// rewrite sets the params that go upstream.
func (g *Gateway) rewrite(c *Call, params json.RawMessage, set map[string]json.RawMessage) Verdict {
	out, err := g.upstreamParams(&c.reqCtx, params, set)
	if err != nil {
		return c.denyError(StageProtocol, "malformed params", mcp.Errorf(mcp.CodeInvalidParams, "invalid params"), http.StatusOK)
	}
	c.params = out
	return Verdict{}
}

// resolveResource routes uri (resources/read, subscribe, a completion's
// ref/resource); field is the member DLP inspects ("" for none).
func (g *Gateway) resolveResource(c *Call, uri, field string) Verdict {
	c.rec.Tool = uri
	up := g.resourceRoute(&c.reqCtx, uri)
	if up == "" {
		return c.denyError(StagePolicy, "resource not in the persona's role", g.resourceNotFound(&c.reqCtx, uri), http.StatusOK)
	}
	c.target = Target{Upstream: up, Name: uri, Exposed: uri, field: field}
	c.rec.Upstream, c.rec.UpstreamTool = up, uri
	if c.msg.Method != mcp.MethodResourcesRead && c.msg.Method != mcp.MethodComplete {
		return Verdict{} // subscriptions send nothing of the agent's upstream
	}
	return g.rewrite(c, c.msg.Params, map[string]json.RawMessage{})
}

// resolvePrompt finds prompt name (prompts/get, or a completion's
// ref/prompt whose rewritten ref is given).
func (g *Gateway) resolvePrompt(c *Call, name string, ref json.RawMessage) Verdict {
	c.rec.Tool = name
	e := g.catalog(c.r.Context(), c.persona, c.role, c.view, kindPrompts).promptsByName[name]
	if e == nil {
		return c.denyError(StagePolicy, "prompt not in the persona's role", mcp.Errorf(mcp.CodeInvalidParams, "Unknown prompt: %q is not available to persona %q", name, c.persona), http.StatusOK)
	}
	c.target = Target{Upstream: e.upstream, Name: e.name, Exposed: name, field: "arguments"}
	c.rec.Upstream, c.rec.UpstreamTool = e.upstream, e.name
	if ref == nil {
		return g.rewrite(c, c.msg.Params, map[string]json.RawMessage{"name": mcp.Quote(e.name)})
	}
	c.target.field = "argument"
	nref, _ := mcp.SetField(ref, "name", mcp.Quote(e.name))
	return g.rewrite(c, c.msg.Params, map[string]json.RawMessage{"ref": nref})
}

func (g *Gateway) resolveCompletion(c *Call) Verdict {
	var p struct {
		Ref struct {
			Type string `json:"type"`
			Name string `json:"name"`
			URI  string `json:"uri"`
		} `json:"ref"`
	}
	if err := json.Unmarshal(c.msg.Params, &p); err != nil {
		return c.denyError(StageProtocol, "malformed completion/complete", mcp.Errorf(mcp.CodeInvalidParams, "invalid params: completion/complete needs a ref"), http.StatusOK)
	}
	switch p.Ref.Type {
	case "ref/prompt":
		return g.resolvePrompt(c, p.Ref.Name, mcp.GetField(c.msg.Params, "ref"))
	case "ref/resource":
		return g.resolveResource(c, p.Ref.URI, "argument")
	}
	return c.denyError(StageProtocol, "unknown completion ref type", mcp.Errorf(mcp.CodeInvalidParams, "invalid params: unknown ref type %q", p.Ref.Type), http.StatusOK)
}
