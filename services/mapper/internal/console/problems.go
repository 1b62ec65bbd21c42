package console

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// problemKinds are the Errors page's kind filter values (mapping.Problem.Kind).
var problemKinds = []string{mapping.ProblemKindError, mapping.ProblemKindConflict}

// problemFilter is the Errors page's search: a kind and a text.
type problemFilter struct {
	Kind string // "", error, conflict
	Q    string
}

func (c *Console) problemFilter(r *req) (problemFilter, error) {
	f := problemFilter{Kind: r.ec.QueryParam("kind"), Q: strings.TrimSpace(r.ec.QueryParam("q"))}
	if f.Kind != "" && !contains(problemKinds, f.Kind) {
		return f, pageError(http.StatusBadRequest, "Unknown kind filter: choose error or conflict.")
	}
	if len(f.Q) > maxQueryLen {
		f.Q = f.Q[:maxQueryLen]
	}
	return f, nil
}

// match reports whether a problem passes the filter: its kind, and the text as a case-insensitive
// substring of the user's name or email, either id, the code or the message.
func (f problemFilter) match(p problemView) bool {
	if f.Kind != "" && p.Kind() != f.Kind {
		return false
	}
	if f.Q == "" {
		return true
	}
	q := strings.ToLower(f.Q)
	for _, s := range append([]string{p.Name, p.Email, p.PlatformUserID, p.CRMUserID, p.Code, p.Message}, append(p.PlatformUserIDs, p.CRMUserIDs...)...) {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

func (f problemFilter) query() url.Values {
	v := url.Values{}
	if f.Kind != "" {
		v.Set("kind", f.Kind)
	}
	if f.Q != "" {
		v.Set("q", f.Q)
	}
	return v
}

// fixLink is the console page where the admin fixes a problem.
func (c *Console) fixLink(r *req, p mapping.Problem) (string, string) {
	switch p.Code {
	case domain.CodeCRMAPIError:
		return c.tenantURL(r, "connections"), "Check the connection"
	case mapping.CodeFallbackOwnerInvalid:
		return c.tenantURL(r, "settings"), "Choose another fallback owner"
	}
	v := url.Values{}
	switch {
	case p.PlatformUserID != "":
		v.Set("platform_user_id", p.PlatformUserID)
	case p.CRMUserID != "":
		v.Set("crm_user_id", p.CRMUserID)
	default:
		return "", ""
	}
	return c.tenantURL(r, "p/"+string(r.provider)+"/map") + "?" + v.Encode(), "Map manually"
}

// problems is the Errors page: every stored problem of the provider, counted the one way the
// overview, the run and the report count them (mapping.CountProblems), searchable and filtered
// by kind.
func (c *Console) problems(r *req) error {
	f, err := c.problemFilter(r)
	if err != nil {
		return err
	}
	ps, err := c.svc.Errors(r.ctx, r.tenant.ID, r.provider)
	if err != nil {
		return err
	}
	var counts mapping.ProblemCounts
	shown := []problemView{}
	for _, v := range problemViews(ps) {
		counts.Add(v.Problem)
		if f.match(v) {
			v.FixURL, v.FixLabel = c.fixLink(r, v.Problem)
			shown = append(shown, v)
		}
	}
	csvURL := c.tenantURL(r, "p/"+string(r.provider)+"/errors.csv")
	if q := f.query(); len(q) > 0 {
		csvURL += "?" + q.Encode()
	}
	return c.render(r, http.StatusOK, "errors", "Errors", map[string]any{"Problems": shown, "Counts": counts,
		"Filtered": f.Kind != "" || f.Q != "", "Kind": f.Kind, "Kinds": problemKinds, "Q": f.Q, "CSV": csvURL})
}

// problemsCSV exports the Errors page's list (the same filter) as CSV.
func (c *Console) problemsCSV(r *req) error {
	f, err := c.problemFilter(r)
	if err != nil {
		return err
	}
	ps, err := c.svc.Errors(r.ctx, r.tenant.ID, r.provider)
	if err != nil {
		return err
	}
	rows := [][]string{{"provider", "kind", "code", "name", "email", "platform_user_id", "crm_user_id", "message", "fix", "since"}}
	for _, p := range problemViews(ps) {
		if !f.match(p) {
			continue
		}
		since := ""
		if p.Since != nil && !p.Since.IsZero() {
			since = p.Since.UTC().Format(time.RFC3339)
		}
		rows = append(rows, []string{string(p.Provider), p.Kind(), p.Code, p.Name, p.Email, p.PlatformUserID, p.CRMUserID, p.Message, p.Fix, since})
	}
	h := r.ec.Response().Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="ownersync-`+r.tenant.ID+"-"+string(r.provider)+`-errors.csv"`)
	r.ec.Response().WriteHeader(http.StatusOK)
	return writeCSV(r.ec.Response(), rows)
}

// writeCSV writes rows as RFC 4180 CSV (encoding/csv quotes commas, quotes and line breaks) with
// every cell made safe for spreadsheets (csvCell).
func writeCSV(w interface{ Write([]byte) (int, error) }, rows [][]string) error {
	cw := csv.NewWriter(w)
	for _, row := range rows {
		safe := make([]string, len(row))
		for i, cell := range row {
			safe[i] = csvCell(cell)
		}
		if err := cw.Write(safe); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvCell guards against formula injection: a spreadsheet runs a cell that starts with = + - @
// (or a tab or carriage return before one) as a formula, and names and messages come from the
// CRMs and the platform. Such a cell gets a leading apostrophe, which spreadsheets show as text.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
