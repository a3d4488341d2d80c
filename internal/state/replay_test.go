package state

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/portcullis-gw/portcullis/internal/geoip"
)

// The replay golden test: testdata/replay/<name>.log.jsonl holds raft log
// entries exactly as a released binary wrote them; <name>.want.jsonl the
// outcome of applying each entry (result or refusal, and a digest of the
// whole state after it); <name>.state.json the final state, serialized as
// a snapshot. Replaying the log through today's Store must reproduce all
// three byte for byte, so no change can make a committed log replay
// differently.
//
//	go test ./internal/state -run TestReplay -rewrite         rewrites the want/state files
//	go test ./internal/state -run TestReplay -write-log=v1    regenerates v1.log.jsonl (only
//	                                                           ever with the binary that wrote it)
//
// v0 is the format of binaries before command versions (written by the
// last of them); v1 is what Prepare proposes: the same script, each command
// validated, so that only refusals a race can cause (a version or
// reference that changed meanwhile) reach the log.
var (
	rewrite  = flag.Bool("rewrite", false, "rewrite the replay golden outcomes and states")
	writeLog = flag.String("write-log", "", "regenerate testdata/replay/<v0|v1>.log.jsonl from the command script")
)

// logEntry is one raft log entry of a fixture. Data is the exact entry
// bytes (the command JSON) as a string.
type logEntry struct {
	Index uint64 `json:"index"`
	Type  string `json:"type"` // command, noop
	Data  string `json:"data,omitempty"`
}

// outcome is what applying one entry returned, and the state after it.
type outcome struct {
	Index  uint64          `json:"index"`
	Result *Result         `json:"result,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
	None   bool            `json:"none,omitempty"` // Apply returned nil (not a command)
	State  string          `json:"state"`          // sha256 of the state dump after the entry
}

func TestReplay(t *testing.T) {
	if *writeLog != "" {
		writeScriptLog(t, *writeLog)
	}
	for _, name := range replayFixtures(t) {
		t.Run(name, func(t *testing.T) { replayFixture(t, name) })
	}
}

func replayFixtures(t *testing.T) []string {
	m, err := filepath.Glob("testdata/replay/*.log.jsonl")
	if err != nil || len(m) == 0 {
		t.Fatalf("no replay fixtures: %v", err)
	}
	var out []string
	for _, p := range m {
		out = append(out, strings.TrimSuffix(filepath.Base(p), ".log.jsonl"))
	}
	return out
}

func replayFixture(t *testing.T, name string) {
	base := filepath.Join("testdata", "replay", name)
	entries := readJSONL[logEntry](t, base+".log.jsonl")
	s := NewStore(nil)
	var got []outcome
	for _, e := range entries {
		l := &raft.Log{Index: e.Index, Type: raft.LogCommand, Data: []byte(e.Data)}
		if e.Type == "noop" {
			l.Type = raft.LogNoop
		}
		o := outcome{Index: e.Index}
		switch r := s.Apply(l).(type) {
		case nil:
			o.None = true
		case *Result:
			o.Result = r
		case error:
			o.Error = encodeReplayError(r)
		default:
			t.Fatalf("entry %d: Apply returned %T", e.Index, r)
		}
		sum := sha256.Sum256(dumpState(t, s))
		o.State = hex.EncodeToString(sum[:])
		got = append(got, o)
	}
	final := dumpState(t, s)
	if *rewrite {
		var b bytes.Buffer
		for _, o := range got {
			line, _ := json.Marshal(o)
			b.Write(line)
			b.WriteByte('\n')
		}
		if err := os.WriteFile(base+".want.jsonl", b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(base+".state.json", final, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want := readJSONL[outcome](t, base+".want.jsonl")
	if len(want) != len(got) {
		t.Fatalf("%d outcomes, want %d", len(got), len(want))
	}
	for i := range want {
		g, _ := json.Marshal(got[i])
		w, _ := json.Marshal(want[i])
		if !bytes.Equal(g, w) {
			t.Errorf("entry %d replays differently:\n got %s\nwant %s", want[i].Index, g, w)
		}
	}
	wantState, err := os.ReadFile(base + ".state.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(final, wantState) {
		t.Errorf("final state differs from %s.state.json:\n got %s\nwant %s", base, final, wantState)
	}
}

// encodeReplayError records a refusal: its class, its text and, for a
// validation error, every field error.
func encodeReplayError(err error) json.RawMessage {
	type field = wireProblem // the same fields as on the wire
	out := struct {
		Class   string  `json:"class"`
		Message string  `json:"message"`
		Fields  []field `json:"fields,omitempty"`
	}{Class: "other", Message: err.Error()}
	var ve *ValidationError
	switch {
	case errors.As(err, &ve):
		out.Class = "validation"
		for _, fe := range ve.Errors {
			out.Fields = append(out.Fields, field{fe.File, fe.Doc, fe.Line, fe.Kind, fe.Name, fe.Field, fe.Msg})
		}
	case errors.Is(err, ErrNotFound):
		out.Class = "not_found"
	case errors.Is(err, ErrInUse):
		out.Class = "in_use"
	case errors.Is(err, ErrConflict):
		out.Class = "conflict"
	}
	b, _ := json.Marshal(out)
	return b
}

// dumpState serializes the whole state deterministically (the snapshot
// format, which sorts everything).
func dumpState(t *testing.T, s *Store) []byte {
	t.Helper()
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	return sink.Bytes()
}

func readJSONL[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// writeScriptLog writes a fixture log from a representative sequence of
// commands. For v0, in the format every binary before command versions
// wrote (no "v" field), including entries those binaries refused; for v1,
// each command as Validate prepares it (commands it refuses never reach a
// log; neither do the raw entries).
func writeScriptLog(t *testing.T, format string) {
	if format != "v0" && format != "v1" {
		t.Fatalf("-write-log=%s: want v0 or v1", format)
	}
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	docs := func(yaml string) []Document {
		objs, err := ParseDocuments("fixture.yaml", []byte(yaml))
		if err != nil {
			t.Fatalf("fixture documents: %v", err)
		}
		var out []Document
		for _, o := range objs {
			out = append(out, EncodeDocument(o))
		}
		return out
	}
	// Fake ciphertexts: the state never looks inside them. No real secret
	// is ever committed.
	fake := func(s string) []byte { return []byte("fake-sealed:" + s) }
	tbl, err := geoip.ParseDBIPCSV(strings.NewReader("10.77.0.0,10.77.0.255,DE\n10.78.0.0,10.78.0.255,CN\n2001:db8::,2001:db8::ffff,FR\n"))
	if err != nil {
		t.Fatal(err)
	}
	geo, err := tbl.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	tbl2, _ := geoip.ParseDBIPCSV(strings.NewReader("10.77.0.0,10.77.0.255,AT\n"))
	geo2, _ := tbl2.MarshalBinary()
	hash := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

	const world = `apiVersion: portcullis/v1
kind: Upstream
metadata: {name: crm, labels: {team: sales}}
spec:
  url: https://crm.internal.example/mcp
  toolPrefix: ""
  timeout: 45s
  protocolVersion: "2025-06-18"
  credential: {secret: crm-token, header: X-Api-Key, format: "Token {secret}"}
  environment: prod
  egress: internal
---
apiVersion: portcullis/v1
kind: Upstream
metadata: {name: helpdesk}
spec:
  url: http://127.0.0.1:9101/mcp
  transport: sse
  credential:
    oauth2: {tokenURL: "http://127.0.0.1:9102/token", clientID: portcullis, clientSecret: helpdesk-client, scopes: [tickets.read], authStyle: body}
---
apiVersion: portcullis/v1
kind: Upstream
metadata: {name: wiki}
spec:
  url: https://wiki.example/mcp
  credential: {basic: {username: bot, passwordSecret: wiki-pass}}
  egress: external
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: read-tickets}
spec:
  description: Search and read support tickets
  tools:
    - tool: helpdesk/search_tickets
      args:
        query: {maxLength: 200, regex: "[^;]*"}
        limit: {min: 1, max: 50, optional: true}
    - tool: helpdesk/get_ticket
      args:
        project: {in: [SUPPORT, BILLING]}
        filter: {fields: {status: {notIn: [deleted]}}, optional: true}
        tags: {items: {prefix: "t-"}, optional: true}
  resources:
    - {uri: "ticket://*", upstream: helpdesk}
  prompts:
    - {prompt: "helpdesk/summarize_*"}
---
apiVersion: portcullis/v1
kind: Skill
metadata: {name: crm-lookup}
spec:
  tools: [{tool: crm/get_*, args: {account: {equals: ACME}}}]
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: support-triage}
spec:
  description: Reads and triages customer support tickets
  skills: [read-tickets, crm-lookup]
  dlp:
    - {categories: [pci], action: mask, keepTail: 4}
    - {categories: [pii, secrets], direction: response, action: redact}
    - {detectors: [iban], action: tokenize, format: ff1}
  endpoint: {listen: "127.0.0.1:9301"}
  network:
    allowCIDRs: [10.77.0.0/16, "2001:db8::/32"]
    denyCIDRs: [10.77.9.0/24]
    denyCountries: [CN]
    unknownCountry: allow
---
apiVersion: portcullis/v1
kind: Persona
metadata: {name: pinned}
spec:
  skills: [read-tickets]
  network: {allowCountries: [DE, AT], pinTokensToIP: true}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: triage-bot}
spec: {persona: support-triage, description: the triage agent}
---
apiVersion: portcullis/v1
kind: Agent
metadata: {name: pinned-bot}
spec: {persona: pinned}
---
apiVersion: portcullis/v1
kind: NetworkPolicy
metadata: {name: corp}
spec: {description: corporate ranges only, allowCIDRs: [10.0.0.0/8, "2001:db8::/32"], denyCIDRs: [10.66.0.0/16], unknownCountry: deny}
`
	world2 := strings.Replace(world, "Reads and triages customer support tickets", "Reads, triages and answers support tickets", 1)
	world2 = strings.Replace(world2, "metadata: {name: pinned}", "metadata: {name: pinned, labels: {tier: gold}}", 1)

	type entry struct {
		noop bool
		raw  string
		cmd  *Command
	}
	script := []entry{
		{cmd: &Command{Op: OpSecretPut, Time: at(1), Secret: &Secret{Name: "crm-token", Version: 1, Sealed: fake("crm-token v1")}}},
		{cmd: &Command{Op: OpSecretPut, Time: at(2), Secret: &Secret{Name: "helpdesk-client", Version: 1, Sealed: fake("helpdesk-client v1")}}},
		{cmd: &Command{Op: OpSecretPut, Time: at(3), Secret: &Secret{Name: "wiki-pass", Version: 1, Sealed: fake("wiki-pass v1")}}},
		{noop: true},
		// Refused: a skill of the batch refers to an upstream that is missing.
		{cmd: &Command{Op: OpApply, Time: at(4), Documents: docs(strings.Replace(world, "tool: crm/get_*", "tool: erp/get_*", 1))}},
		{cmd: &Command{Op: OpApply, Time: at(5), Documents: docs(world)}},
		{cmd: &Command{Op: OpApply, Time: at(6), Documents: docs(world)}}, // unchanged
		{cmd: &Command{Op: OpApply, Time: at(7), Documents: docs(world2)}},
		// Refused: a document no binary's API would have proposed (unknown field).
		{raw: `{"op":"apply","time":"2026-12-01T09:08:00Z","documents":[{"apiVersion":"portcullis/v1","kind":"Agent","metadata":{"name":"x"},"spec":{"persona":"pinned","colour":"red"}}]}`},
		// Refused: listener taken by another persona.
		{cmd: &Command{Op: OpApply, Time: at(9), Documents: docs("apiVersion: portcullis/v1\nkind: Persona\nmetadata: {name: copycat}\nspec: {skills: [crm-lookup], endpoint: {listen: \"0.0.0.0:9301\"}}\n")}},
		{cmd: &Command{Op: OpKeyCreate, Time: at(10), Key: &APIKey{ID: "k1triage", Agent: "triage-bot", Hash: hash(1), Expires: at(60 * 24 * 30)}}},
		// Refused: the pinned persona needs a pin.
		{cmd: &Command{Op: OpKeyCreate, Time: at(11), Key: &APIKey{ID: "k2pinned", Agent: "pinned-bot", Hash: hash(2)}}},
		{cmd: &Command{Op: OpKeyCreate, Time: at(12), Key: &APIKey{ID: "k2pinned", Agent: "pinned-bot", Hash: hash(2), PinIP: "10.77.0.7"}}},
		// Refused: the key ID exists; a malformed key; an unknown agent.
		{cmd: &Command{Op: OpKeyCreate, Time: at(13), Key: &APIKey{ID: "k1triage", Agent: "triage-bot", Hash: hash(3)}}},
		{cmd: &Command{Op: OpKeyCreate, Time: at(14), Key: &APIKey{ID: "k3", Agent: "triage-bot", Hash: hash(3)[:8]}}},
		{cmd: &Command{Op: OpKeyCreate, Time: at(15), Key: &APIKey{ID: "k4", Agent: "ghost", Hash: hash(4)}}},
		{cmd: &Command{Op: OpKeyCreate, Time: at(16), Key: &APIKey{ID: "k5", Agent: "triage-bot", Hash: hash(5)}}},
		// Refused: revoking a key through another agent.
		{cmd: &Command{Op: OpKeyRevoke, Time: at(17), Name: "pinned-bot", KeyID: "k5"}},
		{cmd: &Command{Op: OpKeyRevoke, Time: at(18), Name: "triage-bot", KeyID: "k5"}},
		// Secrets: a stale put, a put, a reseal, a stale reseal, a delete in use.
		{cmd: &Command{Op: OpSecretPut, Time: at(19), Secret: &Secret{Name: "crm-token", Version: 1, Sealed: fake("crm-token stale")}}},
		{cmd: &Command{Op: OpSecretPut, Time: at(20), Secret: &Secret{Name: "crm-token", Version: 2, Sealed: fake("crm-token v2")}}},
		{cmd: &Command{Op: OpSecretReseal, Time: at(21), Secret: &Secret{Name: "crm-token", Version: 2, Sealed: fake("crm-token v2 resealed")}}},
		{cmd: &Command{Op: OpSecretReseal, Time: at(22), Secret: &Secret{Name: "crm-token", Version: 1, Sealed: fake("crm-token v1 resealed")}}},
		{cmd: &Command{Op: OpSecretReseal, Time: at(23), Secret: &Secret{Name: "nothing", Version: 1, Sealed: fake("x")}}},
		{cmd: &Command{Op: OpSecretDelete, Time: at(24), Name: "crm-token"}},
		{cmd: &Command{Op: OpSecretPut, Time: at(25), Secret: &Secret{Name: "spare", Version: 1, Sealed: fake("spare v1")}}},
		{cmd: &Command{Op: OpSecretDelete, Time: at(26), Name: "spare"}},
		{cmd: &Command{Op: OpSecretDelete, Time: at(27), Name: "spare"}},
		{cmd: &Command{Op: OpSecretPut, Time: at(28), Secret: &Secret{Name: "Bad Name", Version: 1, Sealed: fake("x")}}},
		// GeoIP: an import, a refused blob, a replacement.
		{cmd: &Command{Op: OpGeoIPImport, Time: at(29), GeoIP: geo}},
		{cmd: &Command{Op: OpGeoIPImport, Time: at(30), GeoIP: []byte("not a table")}},
		{cmd: &Command{Op: OpGeoIPImport, Time: at(31), GeoIP: geo2}},
		// Deletes: in use, missing, then bottom-up.
		{cmd: &Command{Op: OpDelete, Time: at(32), Kind: KindSkill, Name: "read-tickets"}},
		{cmd: &Command{Op: OpDelete, Time: at(33), Kind: KindPersona, Name: "nobody"}},
		{cmd: &Command{Op: OpDelete, Time: at(34), Kind: KindUpstream, Name: "wiki"}},
		{cmd: &Command{Op: OpDelete, Time: at(35), Kind: KindAgent, Name: "pinned-bot"}},
		{cmd: &Command{Op: OpDelete, Time: at(36), Kind: KindPersona, Name: "pinned"}},
		{cmd: &Command{Op: OpDelete, Time: at(37), Kind: KindNetworkPolicy, Name: "corp"}},
		{cmd: &Command{Op: OpSecretDelete, Time: at(38), Name: "wiki-pass"}},
		// Refused: an operation no binary knows, and bytes that are not a command.
		{raw: `{"op":"persona.teleport","time":"2026-12-01T09:39:00Z","name":"x"}`},
		{raw: "\x00\x01not json"},
		{noop: true},
		{cmd: &Command{Op: OpApply, Time: at(41), Documents: docs("apiVersion: portcullis/v1\nkind: Agent\nmetadata: {name: late-bot}\nspec: {persona: support-triage}\n")}},
	}
	var b bytes.Buffer
	index := uint64(9)
	for _, e := range script {
		le := logEntry{Index: index + 1, Type: "command"}
		switch {
		case e.noop:
			le.Type = "noop"
		case e.cmd != nil:
			cmd := e.cmd
			if format == "v1" {
				var err error
				if cmd, err = Validate(cmd, Node{}); err != nil {
					continue
				}
			}
			data, err := cmd.Encode()
			if err != nil {
				t.Fatal(err)
			}
			le.Data = string(data)
		case format == "v1":
			continue
		default:
			le.Data = e.raw
		}
		line, err := json.Marshal(le)
		if err != nil {
			t.Fatal(err)
		}
		index++
		b.Write(line)
		b.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Join("testdata", "replay"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "replay", format+".log.jsonl")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(os.Stderr, "wrote", path)
}
