package appliance

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/audit"
	"github.com/portcullis-gw/portcullis/internal/incident"
)

// maxReportRecords bounds the records one report reads (a runaway's
// millions of calls: the newest ones; the report says how many it read).
const maxReportRecords = 1_000_000

// incidentRoutes serve incident reports on the admin API.
func (a *Appliance) incidentRoutes() []api.Route {
	return []api.Route{{Method: http.MethodGet, Path: "/incidents/report", Handler: http.HandlerFunc(a.serveIncidentReport)}}
}

// serveIncidentReport is GET /v1/incidents/report?agent=A&since=T[&until=T]
// [&format=json|html]: the incident report of one agent over a window,
// from this node's audit trail and its replicas of the other members'
// (audit replication), as JSON (default) or an HTML page.
func (a *Appliance) serveIncidentReport(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	agent := q.Get("agent")
	if agent == "" {
		api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, "agent is required (?agent=NAME)", nil)
		return
	}
	now := time.Now().UTC()
	since, until := now.Add(-24*time.Hour), now
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &since}, {"until", &until}} {
		if v := q.Get(p.name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf("%s %q: want an RFC 3339 time", p.name, v), nil)
				return
			}
			*p.t = t
		}
	}
	if !until.After(since) {
		api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, "until must be after since", nil)
		return
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "html" {
		api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf("format %q: want json or html (the CLI prints PDF from the HTML)", format), nil)
		return
	}
	if err := a.audit.Flush(); err != nil {
		a.log.Warn("audit: flush before a report", "err", err)
	}
	// This node's trail and its replicas of the other nodes' trails: the
	// agent's calls wherever in the cluster they were served.
	dirs := []string{a.audit.Dir()}
	if more, _ := filepath.Glob(filepath.Join(a.audit.Dir(), "replicas", "*")); len(more) > 0 {
		for _, d := range more {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				dirs = append(dirs, d)
			}
		}
	}
	var recs []audit.Record
	for _, dir := range dirs {
		rs, err := audit.Search(dir, audit.Filter{Agent: agent, Kind: audit.KindRequest, Since: since, Until: until, Limit: maxReportRecords})
		if err != nil {
			a.log.Error("incident report: audit search", "dir", dir, "err", err)
			api.WriteError(w, http.StatusInternalServerError, api.CodeInternal, "the audit trail could not be read; see the server log (portcullis audit verify names the damage)", nil)
			return
		}
		recs = append(recs, rs...)
	}
	if len(dirs) > 1 {
		sort.SliceStable(recs, func(i, j int) bool { return recs[i].Time.Before(recs[j].Time) })
	}
	snap := a.store.Current()
	in := incident.Input{Agent: agent, Since: since, Until: until, Records: recs, StateIndex: snap.Index, Generated: now, Trigger: q.Get("trigger")}
	if ag := snap.Agents[agent]; ag != nil {
		in.Persona = snap.Personas[ag.Persona]
	} else if len(recs) > 0 {
		in.Persona = snap.Personas[recs[len(recs)-1].Persona]
	}
	if in.Persona != nil {
		in.Skills = snap.Skills
	}
	rep := incident.Build(in)
	if format == "html" {
		b, err := rep.HTML()
		if err != nil {
			api.WriteError(w, http.StatusInternalServerError, api.CodeInternal, err.Error(), nil)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.Write(b)
		return
	}
	api.WriteJSON(w, http.StatusOK, rep)
}
