package appliance

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/behavior"
	"github.com/portcullis-gw/portcullis/internal/state"
)

// openBehaviour builds the behaviour stage (sequence rules, default
// runaway protections, holds, quarantines). Quarantines and approvals go
// through raft like admin writes (a.propose forwards to the leader); the
// sequence counts stay on the node (see internal/behavior).
func (a *Appliance) openBehaviour(nodeID string) (*behavior.Engine, error) {
	return behavior.New(behavior.Config{
		Logger: a.log.With("component", "behaviour"),
		State:  a.store,
		Node:   nodeID,
		Alert:  a.onBehaviourAlert,
		Propose: func(ctx context.Context, cmd *state.Command) error {
			_, err := a.propose(ctx, cmd)
			return err
		},
	})
}

// validateObject is the admin API's extra check of applied objects: DLP
// rules must name known detectors, sequence rule conditions must compile.
func validateObject(o state.Object) []*state.FieldError {
	return append(validateDLP(o), behavior.ValidateRule(o)...)
}

// behaviourRoutes: approvals (list, approve, deny) and quarantines (list,
// release), from any node.
func (a *Appliance) behaviourRoutes() []api.Route {
	return []api.Route{
		{Method: http.MethodGet, Path: "/approvals", Handler: http.HandlerFunc(a.listApprovals)},
		{Method: http.MethodPost, Path: "/approvals/:id/approve", Handler: http.HandlerFunc(a.decideApproval)},
		{Method: http.MethodPost, Path: "/approvals/:id/deny", Handler: http.HandlerFunc(a.decideApproval)},
		{Method: http.MethodGet, Path: "/quarantines", Handler: http.HandlerFunc(a.listQuarantines)},
		{Method: http.MethodDelete, Path: "/quarantines/:agent", Handler: http.HandlerFunc(a.releaseAgent)},
	}
}

func (a *Appliance) listApprovals(w http.ResponseWriter, _ *http.Request) {
	snap := a.store.Current()
	items := make([]*state.Approval, 0, len(snap.Approvals))
	now := time.Now()
	for _, ap := range snap.Approvals {
		c := *ap
		if c.State == state.ApprovalPending && !now.Before(c.Expires) {
			c.State = state.ApprovalExpired // its holder denied it; the mark may lag
		}
		items = append(items, &c)
	}
	slices.SortFunc(items, func(x, y *state.Approval) int { return x.Created.Compare(y.Created) })
	api.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (a *Appliance) decideApproval(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/v1/approvals/")
	id, verb, _ := strings.Cut(rest, "/")
	st := state.ApprovalApproved
	if verb == "deny" {
		st = state.ApprovalDenied
	}
	if a.store.Current().Approvals[id] == nil {
		api.WriteError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("approval %q is not known to this cluster (decided and expired ones are kept for an hour)", id), nil)
		return
	}
	if _, err := a.propose(r.Context(), &state.Command{Op: state.OpApprovalDecide, Time: time.Now().UTC(),
		Approval: &state.Approval{ID: id, State: st, DecidedBy: "admin"}}); err != nil {
		a.writeProposeError(w, err)
		return
	}
	a.log.Info("approval decided", "id", id, "state", st)
	api.WriteJSON(w, http.StatusOK, a.store.Current().Approvals[id])
}

func (a *Appliance) listQuarantines(w http.ResponseWriter, _ *http.Request) {
	snap := a.store.Current()
	items := make([]*state.Quarantine, 0, len(snap.Quarantines))
	for _, q := range snap.Quarantines {
		items = append(items, q)
	}
	slices.SortFunc(items, func(x, y *state.Quarantine) int { return strings.Compare(x.Agent, y.Agent) })
	api.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (a *Appliance) releaseAgent(w http.ResponseWriter, r *http.Request) {
	agent := strings.TrimPrefix(r.URL.Path, "/v1/quarantines/")
	if a.store.Current().Quarantines[agent] == nil {
		api.WriteError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("agent %q is not quarantined", agent), nil)
		return
	}
	if _, err := a.propose(r.Context(), &state.Command{Op: state.OpAgentRelease, Time: time.Now().UTC(), Name: agent}); err != nil {
		a.writeProposeError(w, err)
		return
	}
	a.log.Info("agent released from quarantine", "agent", agent)
	w.WriteHeader(http.StatusNoContent)
}
