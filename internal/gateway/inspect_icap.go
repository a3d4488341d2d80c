package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/portcullis-gw/portcullis/internal/icap"
	"github.com/portcullis-gw/portcullis/internal/mcp"
)

// ICAPConfig hands tool arguments and results to an existing enterprise
// DLP or anti-virus system over ICAP (RFC 3507), after the gateway's own
// DLP. Arguments travel as the body of an HTTP POST (REQMOD) and results as
// the body of an HTTP 200 response (RESPMOD), both application/json; the
// request line names the persona's upstream and tool
// (POST http://<upstream>/mcp/<method>/<name>).
//
// The service may leave the message unchanged (204 or an echo), return a
// modified body (it must still be JSON, else the message is refused), or
// answer with an HTTP error response (a block page), which refuses the call.
type ICAPConfig struct {
	Client  *icap.Client
	ReqMod  bool // inspect arguments
	RespMod bool // inspect results
	// FailOpen passes messages uninspected when the ICAP service cannot be
	// reached or answers garbage; the default refuses them (fail closed).
	FailOpen bool
}

// icapRequest runs REQMOD over a request's arguments. It returns the
// modified arguments (nil: unchanged) or a refusal.
func (g *Gateway) icapRequest(rc *reqCtx, d *Decision, method, up string, doc []byte) (json.RawMessage, *mcp.Error) {
	ic := g.dlp.icap
	req := icapHTTPRequest(rc, method, up, d.UpstreamTool)
	req.Header.Set("Content-Length", strconv.Itoa(len(doc))) // content filters skip bodies of unknown length
	res, err := ic.Client.ReqMod(rc.r.Context(), req, doc)
	if err != nil {
		return nil, g.icapFailure(d, "REQMOD", err)
	}
	d.addICAP("reqmod " + strconv.Itoa(res.Status))
	switch {
	case res.Unchanged():
		return nil, nil
	case res.Response != nil: // the service answered instead of the upstream: refused
		return nil, g.icapRefusal(d, "request", res)
	case res.Request != nil:
		return icapBody(d, res.Body, doc, "request")
	}
	return nil, nil
}

// icapResponse runs RESPMOD over a result.
func (g *Gateway) icapResponse(rc *reqCtx, d *Decision, method, up string, doc []byte) (json.RawMessage, *mcp.Error) {
	ic := g.dlp.icap
	req := icapHTTPRequest(rc, method, up, d.UpstreamTool)
	resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}, "Content-Length": {strconv.Itoa(len(doc))}}}
	res, err := ic.Client.RespMod(rc.r.Context(), req, resp, doc)
	if err != nil {
		return nil, g.icapFailure(d, "RESPMOD", err)
	}
	d.addICAP("respmod " + strconv.Itoa(res.Status))
	switch {
	case res.Unchanged():
		return nil, nil
	case res.Response != nil && res.Response.StatusCode >= 300:
		return nil, g.icapRefusal(d, "result", res)
	case res.Response != nil:
		return icapBody(d, res.Body, doc, "result")
	}
	return nil, nil
}

func icapHTTPRequest(rc *reqCtx, method, up, name string) *http.Request {
	u := &url.URL{Scheme: "http", Host: up, Path: "/mcp/" + method}
	if name != "" {
		u.Path += "/" + name
	}
	req := &http.Request{Method: http.MethodPost, URL: u, Host: up, Header: http.Header{
		"Content-Type":          {"application/json"},
		"X-Portcullis-Persona":  {rc.persona},
		"X-Portcullis-Agent":    {rc.p.Agent},
		"X-Portcullis-Upstream": {up},
	}}
	if ip := clientIP(rc); ip != "" {
		req.Header.Set("X-Client-IP", ip)
	}
	return req
}

// icapBody accepts a body the service returned: unchanged is nil; a
// modified body must be a JSON document of the same kind.
func icapBody(d *Decision, body, orig []byte, what string) (json.RawMessage, *mcp.Error) {
	if bytes.Equal(body, orig) {
		return nil, nil
	}
	t := bytes.TrimSpace(body)
	if !json.Valid(t) || len(t) == 0 || t[0] != bytes.TrimSpace(orig)[0] {
		d.Reason = "icap: the content inspection service returned a " + what + " that is not JSON"
		return nil, &mcp.Error{Code: DLPBlockedCode, Message: "blocked by content inspection: the service rewrote the " + what + " into something that is not valid JSON"}
	}
	d.ICAP += " modified"
	return json.RawMessage(t), nil
}

// icapRefusal explains a block by the ICAP service, with the violation
// headers it sent (e.g. X-Infection-Found, X-Violations-Found).
func (g *Gateway) icapRefusal(d *Decision, what string, res *icap.Result) *mcp.Error {
	why := "HTTP " + strconv.Itoa(res.Response.StatusCode)
	for _, h := range []string{"X-Infection-Found", "X-Violations-Found", "X-Blocked-Reason", "X-Response-Desc"} {
		if v := res.Header.Get(h); v != "" {
			why += "; " + h + ": " + strings.Join(strings.Fields(v), " ")
		}
	}
	d.ICAP += " blocked"
	d.Reason = "icap: the content inspection service refused the " + what + " (" + why + ")"
	return &mcp.Error{Code: DLPBlockedCode, Message: "blocked by content inspection: the " + what + " was refused by the ICAP service (" + why + ")"}
}

// icapFailure applies the fail-open/fail-closed choice to an exchange that
// did not complete.
func (g *Gateway) icapFailure(d *Decision, mode string, err error) *mcp.Error {
	if g.dlp.icap.FailOpen {
		g.dlp.log.Warn("ICAP service failed; passing the message uninspected (fail-open)", "mode", mode, "err", err)
		d.addICAP(strings.ToLower(mode) + " failed-open")
		return nil
	}
	g.dlp.log.Warn("ICAP service failed; refusing the message (fail-closed)", "mode", mode, "err", err)
	d.addICAP(strings.ToLower(mode) + " failed")
	d.Reason = "icap: content inspection service unavailable"
	return &mcp.Error{Code: mcp.CodeInternalError, Message: "content inspection is unavailable, so the call was refused; try again later"}
}

// addICAP appends one exchange's outcome to the decision.
func (d *Decision) addICAP(s string) {
	if d.ICAP != "" {
		d.ICAP += ", "
	}
	d.ICAP += s
}
