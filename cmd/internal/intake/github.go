package intake

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/go-github/v72/github"

	"github.com/dobrobot/dobrobot/commands"
)

// run is what the intake takes from a completed workflow run or check
// suite.
type run struct {
	id, repo, branch, sha, message, conclusion, url string
}

// github serves POST /github: GitHub's webhooks, verified with
// X-Hub-Signature-256 by go-github before anything in them is read.
func (h *handler) github(w http.ResponseWriter, r *http.Request) {
	if h.o.GitHubSecret == "" {
		writeJSON(w, http.StatusNotFound, reply{Error: "/github is off: intake.github_secret is not set"})
		return
	}
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	if r.Header.Get(github.SHA256SignatureHeader) == "" {
		// go-github would fall back to the SHA-1 header; we take only SHA-256.
		h.refuse(w, r, http.StatusUnauthorized, "missing "+github.SHA256SignatureHeader)
		return
	}
	switch ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct {
	case "application/json", "application/x-www-form-urlencoded":
	default:
		h.refuse(w, r, http.StatusBadRequest, "the webhook's content type must be application/json")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	payload, err := github.ValidatePayload(r, []byte(h.o.GitHubSecret))
	if err != nil {
		h.refuse(w, r, http.StatusUnauthorized, "the webhook's signature is not valid: "+err.Error())
		return
	}
	delivery := github.DeliveryID(r)
	if delivery == "" || len(delivery) > maxField {
		h.refuse(w, r, http.StatusBadRequest, "missing X-GitHub-Delivery")
		return
	}
	kind := github.WebHookType(r)
	var rn run
	switch kind {
	case "ping":
		w.WriteHeader(http.StatusOK)
		return
	case "workflow_run", "check_suite":
	default:
		w.WriteHeader(http.StatusNoContent) // not an event the intake handles: ignored, not stored
		return
	}
	event, err := github.ParseWebHook(kind, payload)
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, "the "+kind+" payload does not parse: "+err.Error())
		return
	}
	switch e := event.(type) {
	case *github.WorkflowRunEvent:
		if e.GetAction() != "completed" || e.WorkflowRun == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		wr := e.WorkflowRun
		rn = run{id: strconv.FormatInt(wr.GetID(), 10), repo: e.GetRepo().GetFullName(), branch: wr.GetHeadBranch(),
			sha: wr.GetHeadSHA(), message: wr.GetHeadCommit().GetMessage(), conclusion: wr.GetConclusion(), url: wr.GetHTMLURL()}
	case *github.CheckSuiteEvent:
		if e.GetAction() != "completed" || e.CheckSuite == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		cs := e.CheckSuite
		rn = run{id: strconv.FormatInt(cs.GetID(), 10), repo: e.GetRepo().GetFullName(), branch: cs.GetHeadBranch(),
			sha: cs.GetHeadSHA(), message: cs.GetHeadCommit().GetMessage(), conclusion: cs.GetConclusion()}
		// A check suite has no page of its own: its commit's checks are it.
		if u := e.GetRepo().GetHTMLURL(); u != "" && rn.sha != "" {
			rn.url = u + "/commit/" + rn.sha + "/checks"
		}
	}
	comps, known := h.repo(rn.repo)
	if !known {
		h.refuse(w, r, http.StatusUnprocessableEntity, "the repository "+strconv.Quote(rn.repo)+" is not a configured component's repo")
		return
	}
	ticket := h.ticket.FindString(rn.branch)
	if ticket == "" {
		ticket = h.ticket.FindString(rn.message)
	}
	version := rn.sha
	if len(version) > 12 {
		version = version[:12]
	}
	h.ask(w, r, commands.Build{
		Delivery:   "github:" + delivery,
		BodyHash:   bodyHash(body),
		Source:     "github",
		ID:         rn.id,
		Ticket:     ticket,
		Components: comps,
		Version:    version,
		Commit:     rn.sha,
		Branch:     rn.branch,
		URL:        rn.url,
		Status:     status(rn.conclusion),
		Received:   h.now(),
	})
}

// repo returns the components built from a repository ("owner/name",
// compared without case, as GitHub does).
func (h *handler) repo(name string) ([]string, bool) {
	for r, comps := range h.o.Repos {
		if strings.EqualFold(r, name) {
			return comps, true
		}
	}
	return nil, false
}

// status maps a GitHub conclusion to a build status: a run that did not
// finish its work (cancelled, timed out) failed as far as a release is
// concerned; one that is neutral, skipped or needs action is not yet a
// success.
func status(conclusion string) commands.BuildStatus {
	switch conclusion {
	case "success":
		return commands.BuildSuccess
	case "failure", "cancelled", "timed_out":
		return commands.BuildFailure
	}
	return commands.BuildPending
}
