package credential

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestSpecValidate(t *testing.T) {
	good := []string{
		`{"secret":"helpdesk-token","header":"Authorization","format":"Bearer {secret}"}`,
		`{"secret":"k","header":"X-API-Key"}`,
		`{"secret":"k"}`,
		`{"secret":"maps.key","query":"key"}`,
		`{"basic":{"username":"svc","passwordSecret":"crm-pw"}}`,
		`{"basic":{"usernameSecret":"crm-user","passwordSecret":"crm-pw"}}`,
		`{"oauth2":{"tokenURL":"https://idp.example/token","clientID":"pc","clientSecret":"crm-cs","scopes":["read","write"],"audience":"crm"}}`,
		`{"oauth2":{"tokenURL":"http://127.0.0.1:9000/token","clientID":"pc","clientSecret":"crm-cs","authStyle":"body"}}`,
	}
	for _, j := range good {
		var s Spec
		if err := json.Unmarshal([]byte(j), &s); err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", j, err)
		}
		if len(s.Secrets()) == 0 {
			t.Errorf("%s: no secrets listed", j)
		}
	}
	bad := map[string]string{
		`{}`: "credential",
		`{"secret":"a","header":"Authorization","basic":{"username":"u","passwordSecret":"p"}}`: "credential",
		`{"header":"Authorization"}`:                                                                                "credential.secret",
		`{"secret":"../etc/passwd","header":"Authorization"}`:                                                       "credential.secret",
		`{"secret":"a","header":"X","query":"k"}`:                                                                   "credential.query",
		`{"secret":"a","header":"Bad Header"}`:                                                                      "credential.header",
		`{"secret":"a","header":"host"}`:                                                                            "credential.header",
		`{"secret":"a","header":"Authorization","format":"Bearer"}`:                                                 "credential.format",
		`{"secret":"a","header":"Authorization","format":"{secret}{secret}"}`:                                       "credential.format",
		`{"secret":"a","header":"Authorization","format":"x\r\n{secret}"}`:                                          "credential.format",
		`{"secret":"a","query":"k&x=1"}`:                                                                            "credential.query",
		`{"basic":{"passwordSecret":"p"}}`:                                                                          "credential.basic.username",
		`{"basic":{"username":"u","usernameSecret":"s","passwordSecret":"p"}}`:                                      "credential.basic.usernameSecret",
		`{"basic":{"username":"u:x","passwordSecret":"p"}}`:                                                         "credential.basic.username",
		`{"basic":{"username":"u"}}`:                                                                                "credential.basic.passwordSecret",
		`{"oauth2":{"clientID":"c","clientSecret":"s"}}`:                                                            "credential.oauth2.tokenURL",
		`{"oauth2":{"tokenURL":"/token","clientID":"c","clientSecret":"s"}}`:                                        "credential.oauth2.tokenURL",
		`{"oauth2":{"tokenURL":"http://idp.example/token","clientID":"c","clientSecret":"s"}}`:                      "credential.oauth2.tokenURL",
		`{"oauth2":{"tokenURL":"https://u:p@idp.example/token","clientID":"c","clientSecret":"s"}}`:                 "credential.oauth2.tokenURL",
		`{"oauth2":{"tokenURL":"https://idp.example/token","clientSecret":"s"}}`:                                    "credential.oauth2.clientID",
		`{"oauth2":{"tokenURL":"https://idp.example/token","clientID":"c"}}`:                                        "credential.oauth2.clientSecret",
		`{"oauth2":{"tokenURL":"https://idp.example/token","clientID":"c","clientSecret":"s","scopes":["a b"]}}`:    "credential.oauth2.scopes[0]",
		`{"oauth2":{"tokenURL":"https://idp.example/token","clientID":"c","clientSecret":"s","authStyle":"basic"}}`: "credential.oauth2.authStyle",
	}
	for j, field := range bad {
		var s Spec
		if err := json.Unmarshal([]byte(j), &s); err != nil {
			t.Fatal(err)
		}
		err := s.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: got %v, want a FieldError on %s", j, err, field)
		}
	}
}
