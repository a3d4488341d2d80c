package api

import (
	"errors"
	"testing"
	"time"

	"github.com/portcullis-gw/portcullis/internal/state"
)

// FuzzBuildApply feeds arbitrary YAML to the apply path: it must never
// panic, and it either builds a command or returns a located 422.
func FuzzBuildApply(f *testing.F) {
	f.Add(example(f), "")
	f.Add(brokenSeed, "kind: Agent\n")
	f.Add("---\n---\n", "{}")
	f.Add("apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: a}\nspec: {url: 'http://x'}\n", "apiVersion: portcullis/v1\nkind: Upstream\nmetadata: {name: a}\nspec: {url: 'http://y'}\n")
	f.Fuzz(func(t *testing.T, a, b string) {
		cmd, _, err := buildApply(&ApplyRequest{Files: []ApplyFile{{Name: "a.yaml", Content: a}, {Name: "b.yaml", Content: b}}}, time.Unix(0, 0), nil)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalid || e.Status != 422 {
				t.Fatalf("error is not a 422 invalid: %v", err)
			}
			for _, p := range e.Details.([]Problem) {
				if p.File != "a.yaml" && p.File != "b.yaml" {
					t.Fatalf("problem without its file: %+v", p)
				}
			}
			return
		}
		if len(cmd.Documents) == 0 || cmd.Op != state.OpApply {
			t.Fatalf("command without documents: %+v", cmd)
		}
	})
}

const brokenSeed = "apiVersion: portcullis/v1\nkind: Skill\nmetadata: {name: s}\nspec: {tools: [{tool: 'x'}]}\n"
