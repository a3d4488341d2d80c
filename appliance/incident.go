package appliance

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/portcullis-gw/portcullis/internal/api"
	"github.com/portcullis-gw/portcullis/internal/audit"
	"github.com/portcullis-gw/portcullis/internal/behavior"
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
	rep, err := a.buildReport(agent, since, until, q.Get("trigger"), now)
	if err != nil {
		a.log.Error("incident report", "err", err)
		api.WriteError(w, http.StatusInternalServerError, api.CodeInternal, "the audit trail could not be read; see the server log (portcullis audit verify names the damage)", nil)
		return
	}
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

// buildReport builds agent's incident report over [since, until) from this
// node's trail and its replicas of the other members' trails.
func (a *Appliance) buildReport(agent string, since, until time.Time, trigger string, now time.Time) (*incident.Report, error) {
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
			return nil, fmt.Errorf("search %s: %w", dir, err)
		}
		recs = append(recs, rs...)
	}
	if len(dirs) > 1 {
		sort.SliceStable(recs, func(i, j int) bool { return recs[i].Time.Before(recs[j].Time) })
	}
	snap := a.store.Current()
	in := incident.Input{Agent: agent, Since: since, Until: until, Records: recs, StateIndex: snap.Index, Generated: now, Trigger: trigger}
	if ag := snap.Agents[agent]; ag != nil {
		in.Persona = snap.Personas[ag.Persona]
	} else if len(recs) > 0 {
		in.Persona = snap.Personas[recs[len(recs)-1].Persona]
	}
	if in.Persona != nil {
		in.Skills = snap.Skills
	}
	return incident.Build(in), nil
}

// reportEvery bounds the incident reports written on their own: one per
// agent per interval (a blocked agent that keeps trying gets one).
const reportEvery = 10 * time.Minute

// onBehaviourAlert is the behaviour engine's Alert: for a block, stop or
// quarantine it writes the agent's incident report of the last hour, as
// JSON and HTML, to DATA_DIR/incidents/ (from the records written so far),
// at most one per agent per reportEvery. It never blocks; Close waits for
// reports being written.
func (a *Appliance) onBehaviourAlert(al behavior.Alert) {
	if al.Action == "hold" || a.audit == nil {
		return
	}
	a.reportMu.Lock()
	if last, ok := a.reported[al.Agent]; ok && al.Time.Sub(last) < reportEvery {
		a.reportMu.Unlock()
		return
	}
	if a.reported == nil {
		a.reported = map[string]time.Time{}
	}
	a.reported[al.Agent] = al.Time
	a.reportMu.Unlock()
	a.reports.Add(1)
	go func() {
		defer a.reports.Done()
		now := time.Now().UTC()
		rep, err := a.buildReport(al.Agent, now.Add(-time.Hour), now, fmt.Sprintf("%s by %s: %s", al.Action, al.Rule, al.Reason), now)
		if err != nil {
			a.log.Error("incident report after a behaviour action", "agent", al.Agent, "err", err)
			return
		}
		dir := filepath.Join(a.cfg.DataDir, "incidents")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			a.log.Error("incident report after a behaviour action", "err", err)
			return
		}
		base := filepath.Join(dir, fmt.Sprintf("%s-%s-%s", now.Format("20060102T150405Z"), safeName(al.Agent), al.Action))
		js, err := rep.JSON()
		if err == nil {
			err = os.WriteFile(base+".json", js, 0o600)
		}
		if err == nil {
			var page []byte
			if page, err = rep.HTML(); err == nil {
				err = os.WriteFile(base+".html", page, 0o600)
			}
		}
		if err != nil {
			a.log.Error("incident report after a behaviour action", "agent", al.Agent, "err", err)
			return
		}
		a.log.Warn("incident report written", "agent", al.Agent, "action", al.Action, "rule", al.Rule, "file", base+".html")
	}()
}

// safeName keeps letters, digits, '-' and '_' of a name for a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') {
			return r
		}
		return '_'
	}, s)
}
