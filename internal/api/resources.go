package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/portcullis-gw/portcullis/internal/state"
)

func (a *API) kind(c *gin.Context) (state.Kind, bool) {
	seg, _, _ := strings.Cut(strings.TrimPrefix(c.FullPath(), "/v1/"), "/")
	k, err := state.ParseKind(seg)
	if err != nil {
		a.writeError(c, errorf(http.StatusNotFound, CodeNotFound, "%s", err))
		return "", false
	}
	return k, true
}

func (a *API) list(c *gin.Context) {
	k, ok := a.kind(c)
	if !ok || !a.syncRead(c) {
		return
	}
	objs := a.cfg.Store.Current().List(k)
	items := make([]withStatus, 0, len(objs))
	for _, o := range objs {
		items = append(items, a.withStatus(k, o))
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
}

func (a *API) get(c *gin.Context) {
	k, ok := a.kind(c)
	if !ok || !a.syncRead(c) {
		return
	}
	o := a.cfg.Store.Current().Get(k, c.Param("name"))
	if o == nil {
		a.writeError(c, errorf(http.StatusNotFound, CodeNotFound, "%s %q not found", k, c.Param("name")))
		return
	}
	c.JSON(http.StatusOK, a.withStatus(k, o))
}

// withStatus is a document as GET shows it: with this node's status of the
// object when there is one. apply ignores "status", so what GET prints can
// be applied again.
type withStatus struct {
	state.Document
	Status any `json:"status,omitempty"`
}

func (a *API) withStatus(k state.Kind, o state.Object) withStatus {
	d := withStatus{Document: state.EncodeDocument(o)}
	if a.cfg.Status != nil {
		d.Status = a.cfg.Status(k, o.Metadata().Name)
	}
	return d
}

func (a *API) remove(c *gin.Context) {
	k, ok := a.kind(c)
	if !ok {
		return
	}
	res, err := a.propose(c.Request.Context(), &state.Command{Op: state.OpDelete, Time: a.cfg.Now().UTC(), Kind: k, Name: c.Param("name")})
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"results": res.Changes, "index": res.Index})
}

// ApplyFile is one named YAML stream in an apply request.
type ApplyFile struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// ApplyRequest is the JSON body of POST /v1/apply. A body of any other
// content type is taken as one YAML stream, named by the ?file= query
// parameter; ?dryRun=true validates without applying.
type ApplyRequest struct {
	Files  []ApplyFile `json:"files"`
	DryRun bool        `json:"dryRun,omitempty"`
}

// docOrigin says where an object of an apply request was declared.
type docOrigin struct {
	file  string
	doc   int
	lines map[string]int // field path → line
}

func (a *API) apply(c *gin.Context) {
	req, err := readApplyRequest(c)
	if err != nil {
		a.writeError(c, err)
		return
	}
	cmd, origins, err := buildApply(req, a.cfg.Now().UTC(), a.cfg.Validate)
	if err != nil {
		a.writeError(c, err)
		return
	}
	// Validate against the local state first, so that a bad request never
	// reaches the raft log; the state machine re-checks only references,
	// which settles races with concurrent writes.
	prepared, res, err := a.prepare(c.Request.Context(), cmd)
	if err == nil && !req.DryRun {
		res, err = a.replicate(c.Request.Context(), prepared)
	}
	if err != nil {
		// Reference errors come back from the state machine located by
		// object; point them at the file and document again.
		var ve *state.ValidationError
		if errors.As(err, &ve) {
			a.writeError(c, validationError(ve, origins))
			return
		}
		a.writeError(c, mapWriteError(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"results": res.Changes, "index": res.Index, "dryRun": req.DryRun})
}

// readBody reads the whole request body; a body over the limit is a 413.
func readBody(c *gin.Context) ([]byte, error) {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errorf(http.StatusRequestEntityTooLarge, CodeTooLarge, "request body is larger than %d bytes", mbe.Limit)
		}
		return nil, errorf(http.StatusBadRequest, CodeBadRequest, "could not read the request body")
	}
	return body, nil
}

// decodeStrict decodes a JSON request body into v, refusing unknown fields
// (a misspelt "dryRun" or "expiresIn" must not be ignored silently) and
// anything after the object.
func decodeStrict(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("unexpected data after the JSON object")
	}
	return nil
}

func readApplyRequest(c *gin.Context) (*ApplyRequest, error) {
	body, err := readBody(c)
	if err != nil {
		return nil, err
	}
	req := &ApplyRequest{}
	if strings.HasPrefix(c.ContentType(), "application/json") && isApplyRequest(body) {
		if err := decodeStrict(body, req); err != nil {
			return nil, errorf(http.StatusBadRequest, CodeBadRequest, "body is not a valid apply request: %v", err)
		}
	} else {
		// A YAML stream, or a JSON document (JSON is YAML).
		name := c.Query("file")
		if name == "" {
			name = "request body"
		}
		req.Files = []ApplyFile{{Name: name, Content: string(body)}}
		req.DryRun, _ = strconv.ParseBool(c.Query("dryRun"))
	}
	if len(req.Files) == 0 {
		return nil, errorf(http.StatusBadRequest, CodeBadRequest, "no files to apply")
	}
	return req, nil
}

// isApplyRequest tells an ApplyRequest ({"files": ...}) from a JSON
// document ({"apiVersion": ...}). Anything that is not a JSON object with
// "files" is treated as a document stream, which reports its own errors.
func isApplyRequest(body []byte) bool {
	if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '[' {
		return false // a JSON list of documents
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		return true // report the JSON syntax error as such
	}
	_, ok := probe["files"]
	return ok
}

// buildApply parses every file and returns one apply command for all of
// their objects, or a validation error listing every problem in every file.
// Objects are ordered by kind (upstreams first) so that the order of files
// and documents does not matter.
func buildApply(req *ApplyRequest, now time.Time, validate func(state.Object) []*state.FieldError) (*state.Command, map[string]docOrigin, error) {
	var problems []*state.FieldError
	origins := map[string]docOrigin{}
	byKind := map[state.Kind][]state.Object{}
	for i, f := range req.Files {
		name := f.Name
		if name == "" {
			name = fmt.Sprintf("file %d", i+1)
		}
		objs, err := state.ParseFile(name, []byte(f.Content))
		if err != nil {
			var ve *state.ValidationError
			if !errors.As(err, &ve) {
				return nil, nil, fmt.Errorf("parse %s: %w", name, err)
			}
			problems = append(problems, ve.Errors...)
			continue
		}
		for _, p := range objs {
			o := p.Object
			key := originKey(o.Kind(), o.Metadata().Name)
			if prev, dup := origins[key]; dup {
				problems = append(problems, &state.FieldError{File: name, Doc: p.Doc, Line: p.Lines["metadata.name"], Kind: o.Kind(), Name: o.Metadata().Name, Field: "metadata.name",
					Msg: fmt.Sprintf("duplicate: %s document %d declares the same %s", prev.file, prev.doc, o.Kind())})
				continue
			}
			origins[key] = docOrigin{file: name, doc: p.Doc, lines: p.Lines}
			byKind[o.Kind()] = append(byKind[o.Kind()], o)
			if validate != nil {
				for _, fe := range validate(o) {
					fe.File, fe.Doc, fe.Line, fe.Kind, fe.Name = name, p.Doc, p.Lines[fe.Field], o.Kind(), o.Metadata().Name
					problems = append(problems, fe)
				}
			}
		}
	}
	if len(problems) > 0 {
		return nil, nil, validationError(&state.ValidationError{Errors: problems}, nil)
	}
	cmd := &state.Command{Op: state.OpApply, Time: now}
	for _, k := range state.Kinds {
		for _, o := range byKind[k] {
			cmd.Documents = append(cmd.Documents, state.EncodeDocument(o))
		}
	}
	return cmd, origins, nil
}

func originKey(k state.Kind, name string) string { return string(k) + "/" + name }

// Problem is one entry of an invalid-documents error's details.
type Problem struct {
	File     string     `json:"file,omitempty"`
	Document int        `json:"document,omitempty"` // 1-based, within File
	Line     int        `json:"line,omitempty"`
	Kind     state.Kind `json:"kind,omitempty"`
	Name     string     `json:"name,omitempty"`
	Field    string     `json:"field,omitempty"`
	Message  string     `json:"message"`
	// Error is the whole problem as one line, for display.
	Error string `json:"error"`
}

// validationError renders a *state.ValidationError as a 422 with one
// Problem per field error. origins, if given, relocates problems that the
// state machine reported by object to the file and document they came from.
func validationError(ve *state.ValidationError, origins map[string]docOrigin) *Error {
	details := make([]Problem, 0, len(ve.Errors))
	for _, fe := range ve.Errors {
		fe := *fe
		if o, ok := origins[originKey(fe.Kind, fe.Name)]; ok && fe.File == "" {
			fe.File, fe.Doc, fe.Line = o.file, o.doc, o.lines[fe.Field]
		}
		details = append(details, Problem{
			File: fe.File, Document: fe.Doc, Line: fe.Line, Kind: fe.Kind, Name: fe.Name,
			Field: fe.Field, Message: fe.Msg, Error: fe.Error(),
		})
	}
	what := "problem"
	if len(details) != 1 {
		what = "problems"
	}
	e := errorf(http.StatusUnprocessableEntity, CodeInvalid, "%d %s in the documents; nothing was applied", len(details), what)
	e.Details = details
	return e
}
