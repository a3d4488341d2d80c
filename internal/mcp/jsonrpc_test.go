package mcp

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in       string
		kind     Kind
		code     int // 0: valid
		wantID   string
		wantMeth string
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, KindRequest, 0, `1`, "tools/list"},
		{`{"jsonrpc":"2.0","id":"a\u00e9","method":"x","params":{}}`, KindRequest, 0, `"a\u00e9"`, "x"},
		{`{"jsonrpc":"2.0","id":12345678901234567890,"method":"x"}`, KindRequest, 0, `12345678901234567890`, "x"},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, KindNotification, 0, ``, "notifications/initialized"},
		{`{"jsonrpc":"2.0","id":7,"result":{}}`, KindResponse, 0, `7`, ""},
		{`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}}`, KindResponse, 0, ``, ""},
		{`{"jsonrpc":"2.0","id":1.5,"method":"x"}`, KindInvalid, CodeInvalidRequest, ``, ""},
		{`{"jsonrpc":"2.0","id":null,"method":"x"}`, KindInvalid, CodeInvalidRequest, ``, ""},
		{`{"jsonrpc":"2.0","id":{},"method":"x"}`, KindInvalid, CodeInvalidRequest, ``, ""},
		{`{"jsonrpc":"1.0","id":1,"method":"x"}`, KindInvalid, CodeInvalidRequest, `1`, ""},
		{`{"id":1,"method":"x"}`, KindInvalid, CodeInvalidRequest, `1`, ""},
		{`{"jsonrpc":"2.0","id":1,"method":""}`, KindInvalid, CodeInvalidRequest, `1`, ""},
		{`{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}`, KindInvalid, CodeInvalidRequest, `1`, ""},
		{`{"jsonrpc":"2.0","id":1,"method":5}`, KindInvalid, CodeInvalidRequest, ``, ""},
		{`{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}`, KindInvalid, CodeInvalidRequest, `1`, ""},
		{`{"jsonrpc":"2.0","id":1}`, KindInvalid, CodeInvalidRequest, `1`, ""},
		{`{"jsonrpc":"2.0","id":1,"method":"x"`, KindInvalid, CodeParseError, ``, ""},
		{`[`, KindInvalid, CodeParseError, ``, ""},
		{`42`, KindInvalid, CodeInvalidRequest, ``, ""},
		{``, KindInvalid, CodeParseError, ``, ""},
	}
	for _, tt := range tests {
		m, err := Parse([]byte(tt.in))
		if tt.code != 0 {
			if err == nil || err.Code != tt.code {
				t.Errorf("Parse(%s) err = %v, want code %d", tt.in, err, tt.code)
			}
			if tt.wantID != "" && (m == nil || string(m.ID) != tt.wantID) {
				t.Errorf("Parse(%s) should keep id %s for the error reply", tt.in, tt.wantID)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%s) = %v", tt.in, err)
			continue
		}
		if m.Kind() != tt.kind || string(m.ID) != tt.wantID || m.Method != tt.wantMeth {
			t.Errorf("Parse(%s) = kind %v id %s method %q", tt.in, m.Kind(), m.ID, m.Method)
		}
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, in := range []string{
		`{"jsonrpc":"2.0","id":"x-1","method":"tools/call","params":{"name":"a","arguments":{"b":[1,2]}}}`,
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":0.5}}`,
		`{"jsonrpc":"2.0","id":99,"result":{"content":[]}}`,
		`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad"}}`,
	} {
		m, err := Parse([]byte(in))
		if err != nil {
			t.Fatalf("Parse(%s): %v", in, err)
		}
		out := m.AppendJSON(nil)
		if !bytes.Equal(Compact(out), Compact([]byte(in))) {
			t.Errorf("round trip:\n in  %s\n out %s", in, out)
		}
	}
}

func TestParseBodyBatch(t *testing.T) {
	body := []byte(`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"bad":1}]`)
	if _, _, _, err := ParseBody(body, false); err == nil || err.Code != CodeInvalidRequest {
		t.Fatalf("batch without permission: err = %v, want invalid request", err)
	}
	msgs, errs, batch, err := ParseBody(body, true)
	if err != nil || !batch || len(msgs) != 3 {
		t.Fatalf("ParseBody = %d msgs, batch %v, err %v", len(msgs), batch, err)
	}
	if errs[0] != nil || errs[1] != nil || errs[2] == nil {
		t.Fatalf("per-message errors = %v", errs)
	}
	if _, _, _, err := ParseBody([]byte(`[]`), true); err == nil {
		t.Fatal("empty batch accepted")
	}
}

func TestPeekParams(t *testing.T) {
	h, err := PeekParams(json.RawMessage(`{"name":"t","arguments":{"a":1},"_meta":{"progressToken":"p"}}`))
	if err != nil || h.Name != "t" || string(h.Arguments) != `{"a":1}` || string(GetField(h.Meta, "progressToken")) != `"p"` {
		t.Fatalf("PeekParams = %+v, %v", h, err)
	}
	if _, err := PeekParams(json.RawMessage(`{"name":5}`)); err == nil || err.Code != CodeInvalidParams {
		t.Fatalf("numeric name: err = %v", err)
	}
	if _, err := PeekParams(json.RawMessage(`{"arguments":"x"}`)); err == nil {
		t.Fatal("string arguments accepted")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{}}}`,
		`{"jsonrpc":"2.0","method":"n"}`,
		`{"jsonrpc":"2.0","id":"s","result":{}}`,
		`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m","data":[1]}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
		`{"jsonrpc":"2.0","id":-0,"method":"x"}`,
		`{"jsonrpc":"2.0","id":"\ud800","method":"x"}`,
		`nul`, `{}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, errs, _, _ := ParseBody(data, true)
		for i, m := range msgs {
			if m == nil || errs[i] != nil {
				continue
			}
			if m.Kind() == KindInvalid {
				t.Fatalf("valid parse of %q gave an invalid message", data)
			}
			out := m.AppendJSON(nil)
			m2, err := Parse(out)
			if err != nil {
				t.Fatalf("re-parse of %s: %v", out, err)
			}
			if m2.Kind() != m.Kind() || !bytes.Equal(m2.ID, m.ID) || m2.Method != m.Method {
				t.Fatalf("round trip changed the message: %s -> %s", data, out)
			}
		}
		_, _ = PeekParams(data)
		_, _ = ParseMeta(data)
	})
}
