package icap

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// Verdict is what an external DLP said about a body.
type Verdict struct {
	Blocked  bool   // the server replaced the message with an error response
	Modified bool   // the server returned a different body
	Status   int    // HTTP status of the returned response (0 if unchanged)
	Reason   string // X-Infection-Found / X-Violations-Found / X-Blocked-Reason, if any
	ISTag    string
}

// Inspect hands a JSON body to the ICAP service the way the gateway sees
// it: a request body (tool arguments) goes out as REQMOD of a POST, a
// response body (tool result) as RESPMOD of a 200 response. It returns the
// body to forward (the server's version when it changed it) and a Verdict.
// A server that answers with an HTTP status of 400 or more blocks the call.
func (c *Client) Inspect(ctx context.Context, response bool, target string, body []byte) ([]byte, Verdict, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, nil)
	if err != nil {
		return nil, Verdict{}, fmt.Errorf("icap: inspect: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	var res *Result
	if response {
		resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{
			"Content-Type":   {"application/json"},
			"Content-Length": {strconv.Itoa(len(body))},
		}}
		res, err = c.RespMod(ctx, req, resp, body)
	} else {
		req.Header.Set("Content-Length", strconv.Itoa(len(body)))
		res, err = c.ReqMod(ctx, req, body)
	}
	if err != nil {
		return nil, Verdict{}, err
	}
	v := Verdict{ISTag: res.Header.Get("ISTag")}
	for _, h := range []string{"X-Infection-Found", "X-Violations-Found", "X-Blocked-Reason"} {
		if r := res.Header.Get(h); r != "" {
			v.Reason = r
			break
		}
	}
	if res.Unchanged() {
		return body, v, nil
	}
	if res.Response != nil {
		v.Status = res.Response.StatusCode
		if res.Response.Body != nil {
			_, _ = io.Copy(io.Discard, res.Response.Body)
		}
		if v.Status >= 400 {
			v.Blocked = true
			return nil, v, nil
		}
	}
	if string(res.Body) != string(body) {
		v.Modified = true
	}
	return res.Body, v, nil
}
