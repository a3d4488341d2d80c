package credential

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func FuzzSpec(f *testing.F) {
	for _, s := range []string{
		`{"secret":"helpdesk-token","header":"Authorization","format":"Bearer {secret}"}`,
		`{"secret":"k","query":"key"}`,
		`{"basic":{"usernameSecret":"u","passwordSecret":"p"}}`,
		`{"oauth2":{"tokenURL":"https://idp.example/token","clientID":"c","clientSecret":"s","scopes":["a"]}}`,
		`{"secret":"a","header":"Host"}`,
		`{}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, js string) {
		var s Spec
		if json.Unmarshal([]byte(js), &s) != nil {
			return
		}
		err := s.Validate()
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, "credential") {
				t.Fatalf("error %v is not a FieldError on a credential field", err)
			}
			return
		}
		if len(s.Secrets()) == 0 {
			t.Fatal("a valid spec names no secret")
		}
		if strings.ContainsAny(s.Format+s.Header+s.Query, "\r\n") {
			t.Fatal("a valid spec holds a line break")
		}
	})
}

func FuzzTokenResponse(f *testing.F) {
	f.Add(200, `{"access_token":"at-1","token_type":"Bearer","expires_in":3600}`)
	f.Add(200, `{"access_token":"at-1","token_type":"bearer","expires_in":"60"}`)
	f.Add(200, `{"access_token":"a b","token_type":"Bearer"}`)
	f.Add(200, `{"access_token":"at","token_type":"mac"}`)
	f.Add(400, `{"error":"invalid_client","error_description":"secret s3cr3t wrong"}`)
	f.Add(500, `<html>`)
	f.Fuzz(func(t *testing.T, status int, body string) {
		tok, life, err := parseTokenResponse(status, strings.NewReader(body))
		if err != nil {
			if strings.Contains(err.Error(), "error_description") || (len(body) > 40 && strings.Contains(err.Error(), body)) {
				t.Fatal("error echoes the response body")
			}
			return
		}
		if status != http.StatusOK || tok == "" || life <= 0 || !validHeaderValue(tok) || strings.ContainsAny(tok, " \t") {
			t.Fatalf("accepted status %d token %q life %v", status, tok, life)
		}
	})
}
