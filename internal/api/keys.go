package api

import (
	"bytes"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/portcullis-gw/portcullis/internal/authn"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// KeyRequest is the optional JSON body of POST /v1/agents/{name}/keys.
type KeyRequest struct {
	// ExpiresIn is a Go duration ("720h"); empty means the key never expires.
	ExpiresIn string `json:"expiresIn,omitempty"`
	// PinIP restricts the key to one client address.
	PinIP string `json:"pinIP,omitempty"`
}

// Key is an API key's metadata; Key (the secret) is set only in the answer
// to create.
type Key struct {
	ID        string     `json:"id"`
	Agent     string     `json:"agent"`
	Key       string     `json:"key,omitempty"`
	Prefix    string     `json:"prefix"` // how the key starts, to recognise it
	CreatedAt time.Time  `json:"createdAt"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	PinIP     string     `json:"pinIP,omitempty"`
}

func keyInfo(k *state.APIKey) Key {
	out := Key{ID: k.ID, Agent: k.Agent, Prefix: authn.KeyPrefix + k.ID + "_", CreatedAt: k.Created, PinIP: k.PinIP}
	if !k.Expires.IsZero() {
		e := k.Expires
		out.ExpiresAt = &e
	}
	return out
}

func (a *API) agentExists(c *gin.Context) (string, bool) {
	name := c.Param("name")
	if a.cfg.Store.Current().Agents[name] == nil {
		a.writeError(c, errorf(http.StatusNotFound, CodeNotFound, "Agent %q not found", name))
		return "", false
	}
	return name, true
}

func (a *API) createKey(c *gin.Context) {
	agent, ok := a.agentExists(c)
	if !ok {
		return
	}
	var req KeyRequest
	if body, err := readBody(c); err != nil {
		a.writeError(c, err)
		return
	} else if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeStrict(body, &req); err != nil {
			a.writeError(c, errorf(http.StatusBadRequest, CodeBadRequest, "body is not a valid key request: %v", err))
			return
		}
	}
	now := a.cfg.Now().UTC()
	token, key, err := authn.NewAPIKey(agent, nil)
	if err != nil {
		a.writeError(c, err)
		return
	}
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 {
			a.writeError(c, errorf(http.StatusBadRequest, CodeBadRequest, "expiresIn %q is not a positive duration such as \"720h\"", req.ExpiresIn))
			return
		}
		key.Expires = now.Add(d)
	}
	if req.PinIP != "" {
		ip, err := netip.ParseAddr(req.PinIP)
		if err != nil {
			a.writeError(c, errorf(http.StatusBadRequest, CodeBadRequest, "pinIP %q is not an IP address", req.PinIP))
			return
		}
		key.PinIP = ip.Unmap().String()
	}
	if _, err := a.proposeRaw(c.Request.Context(), &state.Command{Op: state.OpKeyCreate, Time: now, Key: key}); err != nil {
		// The state refuses a key by a rule about keys (pinning), not a
		// document: say so plainly rather than as "problems in the documents".
		var ve *state.ValidationError
		if errors.As(err, &ve) {
			msgs := make([]string, len(ve.Errors))
			for i, fe := range ve.Errors {
				msgs[i] = fe.Msg
			}
			a.writeError(c, errorf(http.StatusUnprocessableEntity, CodeInvalid, "cannot create a key for agent %q: %s", agent, strings.Join(msgs, "; ")))
			return
		}
		a.writeError(c, mapWriteError(err))
		return
	}
	stored := a.cfg.Store.Current().Keys[key.ID]
	if stored == nil {
		a.writeError(c, errors.New("created key missing from the local state"))
		return
	}
	out := keyInfo(stored)
	out.Key = token
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, out)
}

func (a *API) listKeys(c *gin.Context) {
	if !a.syncRead(c) {
		return
	}
	agent, ok := a.agentExists(c)
	if !ok {
		return
	}
	keys := a.cfg.Store.Current().AgentKeys(agent)
	items := make([]Key, 0, len(keys))
	for _, k := range keys {
		items = append(items, keyInfo(k))
	}
	c.JSON(http.StatusOK, gin.H{"items": items})
}

func (a *API) revokeKey(c *gin.Context) {
	agent, ok := a.agentExists(c)
	if !ok {
		return
	}
	res, err := a.propose(c.Request.Context(), &state.Command{Op: state.OpKeyRevoke, Time: a.cfg.Now().UTC(), Name: agent, KeyID: c.Param("id")})
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"results": res.Changes, "index": res.Index})
}

// DraftRequest is the body of POST /v1/personas/draft.
type DraftRequest struct {
	Description string `json:"description"`
}

func (a *API) draft(c *gin.Context) {
	var req DraftRequest
	body, err := readBody(c)
	if err != nil {
		a.writeError(c, err)
		return
	}
	if err := decodeStrict(body, &req); err != nil {
		a.writeError(c, errorf(http.StatusBadRequest, CodeBadRequest, "body must be {\"description\": \"...\"}"))
		return
	}
	if len(strings.TrimSpace(req.Description)) < 3 {
		a.writeError(c, errorf(http.StatusBadRequest, CodeBadRequest, "description is required: describe the job the persona does"))
		return
	}
	if len(req.Description) > 16<<10 {
		a.writeError(c, errorf(http.StatusBadRequest, CodeBadRequest, "description is longer than 16 KiB"))
		return
	}
	if a.cfg.Drafter == nil {
		a.writeError(c, errorf(http.StatusNotImplemented, CodeNotImplemented, "persona drafting is not available on this node"))
		return
	}
	p, err := a.cfg.Drafter(c.Request.Context(), req.Description, a.cfg.Store.Current())
	if err != nil {
		a.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, p)
}
