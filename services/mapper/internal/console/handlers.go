package console

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/ownersync/ownersync/libs/provider"

	"github.com/ownersync/ownersync/libs/sfid"
	"github.com/ownersync/ownersync/libs/tenant"
	"github.com/ownersync/ownersync/services/mapper/internal/auth"
	"github.com/ownersync/ownersync/services/mapper/internal/domain"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

const (
	defaultPerPage = 25
	maxQueryLen    = 200
	maxIDLen       = 128
)

var (
	safeIDRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@+-]*$`)
	digitsRE  = regexp.MustCompile(`^[0-9]{1,20}$`)
	serviceRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
)

// --- sign-in ---

func (c *Console) signinForm(r *req) error {
	if ck, err := r.ec.Cookie(SessionCookie); err == nil {
		if s, err := c.lookup(r.ctx, ck.Value); err != nil {
			return err
		} else if s != nil {
			return r.ec.Redirect(http.StatusSeeOther, "/admin/")
		}
	}
	return c.renderSignin(r, http.StatusOK, "")
}

func (c *Console) renderSignin(r *req, status int, problem string) error {
	tok := randomToken()
	c.setCookie(r.ec, signinCookie, tok, 3600)
	next := r.ec.QueryParam("next")
	if r.ec.Request().Method == http.MethodPost {
		next = r.ec.Request().PostFormValue("next")
	}
	return c.render(r, status, "signin", "Sign in", map[string]any{
		"SigninCSRF": tok, "Next": safeNext(next), "Problem": problem,
	})
}

// safeNext keeps a post-sign-in redirect inside the console.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/admin/") || strings.HasPrefix(n, "//") || strings.ContainsAny(n, "\\\r\n") {
		return "/admin/"
	}
	return n
}

func (c *Console) signin(r *req) error {
	ck, err := r.ec.Cookie(signinCookie)
	// Form fields only from the body: a query string leaks through logs, history and Referer.
	form := r.ec.Request().PostFormValue("csrf")
	if err != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(form)) != 1 {
		return pageError(http.StatusForbidden, "The sign-in form had expired. Go back, reload the page and sign in again.")
	}
	now, client := c.cfg.Now(), r.ec.RealIP()
	token := strings.TrimSpace(r.ec.Request().PostFormValue("token"))
	th := auth.Hash(token)
	tokenKey := string(th[:])
	if !c.signins.clients.allow(now, client) || c.signins.failed.exhausted(now, tokenKey) || !c.signins.global.AllowN(now, 1) {
		c.log.InfoContext(r.ctx, "console sign-in rate limited", "client", client)
		r.ec.Response().Header().Set("Retry-After", "60")
		return pageError(http.StatusTooManyRequests, "Too many sign-in attempts. Wait a minute and try again.")
	}
	p, err := c.tokens.Authenticate(r.ctx, token)
	if err != nil {
		if errors.Is(err, auth.ErrUnauthenticated) {
			c.signins.failed.allow(now, tokenKey)
		}
		c.log.InfoContext(r.ctx, "console sign-in refused", "client", client)
		return c.renderSignin(r, http.StatusUnauthorized, "That token was not accepted. Check it and try again.")
	}
	if old, err := r.ec.Cookie(SessionCookie); err == nil {
		if err := c.endSession(r.ctx, old.Value); err != nil { // a sign-in always starts a fresh session
			return err
		}
	}
	id, err := c.newSession(r.ctx, p, th)
	if err != nil {
		return err
	}
	c.setCookie(r.ec, SessionCookie, id, int(c.cfg.SessionTTL.Seconds()))
	c.setCookie(r.ec, signinCookie, "", -1)
	c.log.InfoContext(r.ctx, "console sign-in", "actor", p.Actor())
	return r.ec.Redirect(http.StatusSeeOther, safeNext(r.ec.Request().PostFormValue("next")))
}

func (c *Console) signout(r *req) error {
	// Deleted from the shared store: the session ends on every replica.
	if err := c.endSession(r.ctx, r.sid); err != nil {
		return err
	}
	c.setCookie(r.ec, SessionCookie, "", -1)
	return r.ec.Redirect(http.StatusSeeOther, "/admin/signin?done=signedout")
}

func (c *Console) home(r *req) error {
	p := r.sess.principal
	if !p.Operator {
		return r.ec.Redirect(http.StatusSeeOther, "/admin/t/"+url.PathEscape(p.Tenant)+"/")
	}
	ts, err := c.tenants.List(r.ctx)
	if err != nil {
		return err
	}
	return c.render(r, http.StatusOK, "tenants", "Tenants", map[string]any{"Tenants": ts})
}

// --- user mapping ---

func (c *Console) overview(r *req) error {
	ov, err := c.svc.Overview(r.ctx, r.tenant.ID)
	if err != nil {
		return err
	}
	failures, err := c.failureCounts(r)
	if err != nil {
		return err
	}
	return c.render(r, http.StatusOK, "overview", "Overview", map[string]any{"Overview": overviewView{Providers: ov.Providers}, "KeyMissing": r.tenant.Salesforce.KeyMissing(),
		"Failures": failures})
}

var statuses = []string{"synced", "conflict", "error", "pending_team"}

func (c *Console) mappings(r *req) error {
	q := strings.TrimSpace(r.ec.QueryParam("q"))
	if len(q) > maxQueryLen {
		q = q[:maxQueryLen]
	}
	status := r.ec.QueryParam("status")
	if status != "" && !contains(statuses, status) {
		return pageError(http.StatusBadRequest, "Unknown status filter.")
	}
	pageNo := atoiDefault(r.ec.QueryParam("page"), 1, 1, 1<<20)
	per := atoiDefault(r.ec.QueryParam("per_page"), defaultPerPage, 1, domain.MaxPerPage)
	pg, err := c.svc.ListMappings(r.ctx, r.tenant.ID, domain.MappingQuery{Provider: r.provider, Status: status, Q: q, Page: pageNo, PerPage: per})
	if err != nil {
		return err
	}
	res := newMappingPage(pg)
	pages := (res.Total + per - 1) / per
	link := func(n int) string {
		v := url.Values{}
		if q != "" {
			v.Set("q", q)
		}
		if status != "" {
			v.Set("status", status)
		}
		if per != defaultPerPage {
			v.Set("per_page", strconv.Itoa(per))
		}
		v.Set("page", strconv.Itoa(n))
		return "?" + v.Encode()
	}
	d := map[string]any{"Page": res, "Q": q, "Status": status, "Statuses": statuses, "PageNo": pageNo, "Pages": pages,
		"From": 0, "To": 0}
	if len(res.Items) > 0 {
		d["From"], d["To"] = (pageNo-1)*per+1, (pageNo-1)*per+len(res.Items)
	}
	if pageNo > 1 {
		d["Prev"] = link(pageNo - 1)
	}
	if pageNo < pages {
		d["Next"] = link(pageNo + 1)
	}
	return c.render(r, http.StatusOK, "mappings", "Mapped users", d)
}

func (c *Console) unmappedPlatform(r *req) error {
	us, err := c.svc.UnmappedPlatformUsers(r.ctx, r.tenant.ID, r.provider)
	if err != nil {
		return err
	}
	rows := unmappedRows(us, func(id string) string { return c.platformUserURL(r.tenant.ID, id) })
	return c.render(r, http.StatusOK, "unmapped", "Unmapped platform users", map[string]any{"Platform": true, "Users": rows})
}

func (c *Console) platformUserURL(tenantID, id string) string {
	if c.cfg.PlatformUserURL == "" {
		return "#"
	}
	return strings.NewReplacer("{tenant}", url.PathEscape(tenantID), "{id}", url.PathEscape(id)).Replace(c.cfg.PlatformUserURL)
}

func (c *Console) unmappedCRM(r *req) error {
	us, err := c.svc.UnmappedCRMUsers(r.ctx, r.tenant.ID, r.provider)
	if err != nil {
		return err
	}
	return c.render(r, http.StatusOK, "unmapped", "Unmapped CRM users", map[string]any{"Platform": false, "Users": unmappedRows(us, nil)})
}

// mapData is the manual mapping form.
type mapData struct {
	PlatformUserID string
	CRMUserID      string
	Problem        string
	// Warning is set when the two users' emails differ; the admin must confirm.
	Warning          bool
	PlatformEmail    string
	CRMEmail         string
	UnmappedPlatform []unmappedRow
	UnmappedCRM      []unmappedRow
}

func (c *Console) mapForm(r *req) error {
	d := &mapData{PlatformUserID: r.ec.QueryParam("platform_user_id"), CRMUserID: r.ec.QueryParam("crm_user_id")}
	return c.renderMap(r, http.StatusOK, d)
}

func (c *Console) renderMap(r *req, status int, d *mapData) error {
	// The suggestions are a convenience (datalists); the form works without them.
	if us, err := c.svc.UnmappedPlatformUsers(r.ctx, r.tenant.ID, r.provider); err == nil {
		d.UnmappedPlatform = unmappedRows(us, nil)
	}
	if us, err := c.svc.UnmappedCRMUsers(r.ctx, r.tenant.ID, r.provider); err == nil {
		d.UnmappedCRM = unmappedRows(us, nil)
	}
	return c.render(r, status, "map", "Map a user manually", d)
}

func (c *Console) mapPost(r *req) error {
	d := &mapData{PlatformUserID: strings.TrimSpace(r.ec.FormValue("platform_user_id")), CRMUserID: strings.TrimSpace(r.ec.FormValue("crm_user_id"))}
	pu, err := platformUserID(d.PlatformUserID)
	if err == nil {
		d.CRMUserID, err = crmUserID(r.provider, d.CRMUserID)
	}
	if err != nil {
		d.Problem = err.Error()
		return c.renderMap(r, http.StatusBadRequest, d)
	}
	if r.ec.FormValue("confirm") != "yes" {
		pe, ce := c.emails(r, pu, d.CRMUserID)
		if pe != "" && ce != "" && !strings.EqualFold(strings.TrimSpace(pe), strings.TrimSpace(ce)) {
			d.Warning, d.PlatformEmail, d.CRMEmail = true, pe, ce
			return c.renderMap(r, http.StatusOK, d)
		}
	}
	if _, err := c.svc.MapManually(r.ctx, r.tenant.ID, r.provider, pu, d.CRMUserID, r.sess.principal.Actor()); err != nil {
		if !isUserError(err) {
			return err
		}
		d.Problem = publicMessage(err, userErrorText(err))
		return c.renderMap(r, statusOf(err), d)
	}
	c.log.InfoContext(r.ctx, "console manual mapping", "tenant", r.tenant.ID, "provider", r.provider, "platform_user", pu, "crm_user", d.CRMUserID, "actor", r.sess.principal.Actor())
	return r.ec.Redirect(http.StatusSeeOther, c.tenantURL(r, "p/"+string(r.provider)+"/mappings?done=mapped&q="+url.QueryEscape(pu)))
}

// emails finds both users' emails (unmapped lists first, then the mapped list); "" when unknown.
func (c *Console) emails(r *req, pu, crm string) (string, string) {
	var pe, ce string
	if us, err := c.svc.UnmappedPlatformUsers(r.ctx, r.tenant.ID, r.provider); err == nil {
		for _, u := range us {
			if u.ID == pu {
				pe = u.Email
			}
		}
	}
	if us, err := c.svc.UnmappedCRMUsers(r.ctx, r.tenant.ID, r.provider); err == nil {
		for _, u := range us {
			if sameCRMID(u.ID, crm) {
				ce = u.Email
			}
		}
	}
	if pe == "" {
		if pg, err := c.svc.ListMappings(r.ctx, r.tenant.ID, domain.MappingQuery{Provider: r.provider, Q: pu, Page: 1, PerPage: domain.MaxPerPage}); err == nil {
			for _, m := range pg.Items {
				if m.PlatformUserID == pu {
					pe = m.PlatformUserEmail
				}
			}
		}
	}
	if ce == "" {
		if pg, err := c.svc.ListMappings(r.ctx, r.tenant.ID, domain.MappingQuery{Provider: r.provider, Q: crm, Page: 1, PerPage: domain.MaxPerPage}); err == nil {
			for _, m := range pg.Items {
				if sameCRMID(m.CRMUserID, crm) {
					ce = m.CRMUserEmail
				}
			}
		}
	}
	return pe, ce
}

func sameCRMID(a, b string) bool { return a == b || (len(a) >= 15 && sfid.Equal(a, b)) }

func (c *Console) unmapPost(r *req) error {
	pu, err := platformUserID(strings.TrimSpace(r.ec.FormValue("platform_user_id")))
	if err != nil {
		return pageError(http.StatusBadRequest, "%s", err.Error())
	}
	if r.ec.FormValue("confirm") != "yes" {
		return c.render(r, http.StatusOK, "confirm", "Confirm unmapping", map[string]any{
			"Question": fmt.Sprintf("Remove the %s mapping of platform user %s? Record owners of this user will no longer sync until the user is mapped again.", providerName(r.provider), pu),
			"Action":   c.tenantURL(r, "p/"+string(r.provider)+"/unmap"),
			"Fields":   map[string]string{"platform_user_id": pu},
			"Button":   "Unmap",
			"Back":     c.tenantURL(r, "p/"+string(r.provider)+"/mappings"),
		})
	}
	if err := c.svc.Unmap(r.ctx, r.tenant.ID, r.provider, pu, r.sess.principal.Actor()); err != nil {
		return err
	}
	c.log.InfoContext(r.ctx, "console unmap", "tenant", r.tenant.ID, "provider", r.provider, "platform_user", pu, "actor", r.sess.principal.Actor())
	return r.ec.Redirect(http.StatusSeeOther, c.tenantURL(r, "p/"+string(r.provider)+"/mappings?done=unmapped"))
}

// --- Sync Users ---

func (c *Console) syncPage(r *req) error {
	runs, err := c.svc.Runs(r.ctx, r.tenant.ID, c.cfg.RunsShown)
	if err != nil {
		return err
	}
	return c.render(r, http.StatusOK, "sync", "Sync Users", map[string]any{"Runs": runViews(runs)})
}

func (c *Console) syncPost(r *req) error {
	form := r.ec.Request().PostForm
	dry := form.Get("dry_run") == "on" || form.Get("dry_run") == "true"
	email := dry && (form.Get("email_report") == "on" || form.Get("email_report") == "true")
	run, created, err := c.svc.StartSync(r.ctx, r.tenant.ID, domain.SyncRequest{Tenant: r.tenant.ID, DryRun: dry, EmailReport: email, Trigger: domain.TriggerManual, Actor: r.sess.principal.Actor()})
	if err != nil {
		return err
	}
	u := c.tenantURL(r, "runs/"+url.PathEscape(run.ID))
	if !created {
		u += "?done=already"
	}
	return r.ec.Redirect(http.StatusSeeOther, u)
}

func runID(v string) (string, error) {
	if v == "" || len(v) > maxIDLen || !safeIDRE.MatchString(v) {
		return "", pageError(http.StatusNotFound, "There is no such run.")
	}
	return v, nil
}

func (c *Console) runPage(r *req) error {
	id, err := runID(r.ec.Param("run"))
	if err != nil {
		return err
	}
	sr, err := c.svc.Run(r.ctx, r.tenant.ID, id)
	if err != nil {
		return err
	}
	run := newRunView(sr)
	d := map[string]any{"Run": run, "PollMillis": c.cfg.PollInterval.Milliseconds(),
		"ProgressURL": c.tenantURL(r, "runs/"+url.PathEscape(run.ID)+"/progress")}
	if run.State == "running" {
		d["Refresh"] = max(1, int(c.cfg.PollInterval.Round(1e9).Seconds()))
	}
	return c.render(r, http.StatusOK, "run", "Sync Users run", d)
}

// progress is the JSON the run page polls.
type progress struct {
	State     string `json:"state"`
	Phase     string `json:"phase"`
	Pulled    int    `json:"pulled"`
	Processed int    `json:"processed"`
	Running   bool   `json:"running"`
}

func (c *Console) runProgress(r *req) error {
	id, err := runID(r.ec.Param("run"))
	if err != nil {
		return err
	}
	sr, err := c.svc.Run(r.ctx, r.tenant.ID, id)
	if err != nil {
		return err
	}
	run := newRunView(sr)
	return r.ec.JSON(http.StatusOK, progress{State: run.State, Phase: run.Phase, Pulled: run.Pulled, Processed: run.Processed, Running: run.State == "running"})
}

// --- settings ---

// crmOption is one active CRM user offered as fallback owner.
type crmOption struct{ ID, Label string }

// providerForm is one provider's part of the settings page.
type providerForm struct {
	Provider provider.Provider
	Settings tenant.Settings
	Modules  []string
	Options  []crmOption
	// Secrets are the references of the provider's secrets (never their values).
	Secrets [][2]string
	Facts   [][2]string
}

// activeCRMUsers lists the provider's active CRM users: unmapped ones and mapped ones.
func (c *Console) activeCRMUsers(r *req, provider provider.Provider) ([]crmOption, error) {
	seen := map[string]bool{}
	var out []crmOption
	addOpt := func(id, name, email string) {
		if id == "" || seen[id] {
			return
		}
		seen[id] = true
		label := strings.TrimSpace(name)
		if email != "" {
			label = strings.TrimSpace(label + " <" + email + ">")
		}
		out = append(out, crmOption{ID: id, Label: label + " — " + id})
	}
	us, err := c.svc.UnmappedCRMUsers(r.ctx, r.tenant.ID, provider)
	if err != nil {
		return nil, err
	}
	for _, u := range us {
		if u.Status == "" || u.Status == "active" {
			addOpt(u.ID, u.Name, u.Email)
		}
	}
	for page := 1; page <= 20; page++ {
		pg, err := c.svc.ListMappings(r.ctx, r.tenant.ID, domain.MappingQuery{Provider: provider, Page: page, PerPage: domain.MaxPerPage})
		if err != nil {
			return nil, err
		}
		for _, m := range pg.Items {
			if m.CRMUserActive {
				addOpt(m.CRMUserID, m.CRMUserName, m.CRMUserEmail)
			}
		}
		if page*domain.MaxPerPage >= pg.Total || len(pg.Items) == 0 {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].Label) < strings.ToLower(out[j].Label) })
	return out, nil
}

func (c *Console) settingsPage(r *req) error {
	return c.renderSettings(r, http.StatusOK, r.tenant, nil)
}

func (c *Console) renderSettings(r *req, status int, t *tenant.Tenant, problems []string) error {
	var forms []providerForm
	for _, p := range mapping.Providers {
		s, ok := t.ProviderSettings(provider.Provider(p))
		if !ok {
			continue
		}
		opts, err := c.activeCRMUsers(r, p)
		if err != nil {
			return err
		}
		f := providerForm{Provider: p, Settings: s, Modules: []string{"contact"}, Options: opts}
		if s.FallbackOwnerID != "" && !hasOption(opts, s.FallbackOwnerID) {
			f.Options = append([]crmOption{{ID: s.FallbackOwnerID, Label: s.FallbackOwnerID + " (current; not among the active users)"}}, f.Options...)
		}
		switch p {
		case mapping.Salesforce:
			sf := t.Salesforce
			f.Modules = []string{"contact", "lead"}
			f.Facts = [][2]string{{"Org id", sf.OrgID}, {"Instance URL", sf.InstanceURL}, {"API version", sf.APIVersion}, {"Auth flow", sf.Auth.Flow}, {"Client id", sf.Auth.ClientID}}
			f.Secrets = refs("Client secret", sf.Auth.ClientSecretRef, "Private key", sf.Auth.PrivateKeyRef, "Outbound message key", sf.SharedKeyRef)
		case mapping.HubSpot:
			hs := t.HubSpot
			f.Facts = [][2]string{{"Portal id", strconv.FormatInt(hs.PortalID, 10)}, {"App id", strconv.FormatInt(hs.AppID, 10)}, {"Auth kind", hs.Auth.Kind}}
			f.Secrets = refs("App client secret", hs.ClientSecretRef, "Access token", hs.Auth.TokenRef, "OAuth client secret", hs.Auth.ClientSecretRef, "Refresh token", hs.Auth.RefreshTokenRef)
		}
		forms = append(forms, f)
	}
	return c.render(r, status, "settings", "Settings", map[string]any{
		"T": t, "Forms": forms, "Problems": problems, "Recipients": strings.Join(t.ReportRecipients, "\n"),
		"Directions": []tenant.Direction{tenant.Bidirectional, tenant.CRMToPlatform, tenant.PlatformToCRM},
		"TimeZones":  commonTimeZones,
	})
}

func hasOption(opts []crmOption, id string) bool {
	for _, o := range opts {
		if sameCRMID(o.ID, id) {
			return true
		}
	}
	return false
}

// refs keeps the non-empty (label, reference) pairs. A reference is "env:NAME" or "file:/path";
// anything else is shown only as "set" so that a literal secret can never reach the page.
func refs(kv ...string) [][2]string {
	var out [][2]string
	for i := 0; i+1 < len(kv); i += 2 {
		v := kv[i+1]
		if v == "" {
			continue
		}
		if !strings.HasPrefix(v, "env:") && !strings.HasPrefix(v, "file:") {
			v = "(set, not a reference)"
		}
		out = append(out, [2]string{kv[i], v})
	}
	return out
}

func (c *Console) settingsPost(r *req) error {
	if err := r.ec.Request().ParseForm(); err != nil {
		return pageError(http.StatusBadRequest, "The form could not be read.")
	}
	f := r.ec.Request().PostForm
	t := *r.tenant // shallow copy; provider configs are copied below before changing them
	var problems []string
	t.Name = strings.TrimSpace(f.Get("name"))
	t.ReportRecipients = nil
	for _, s := range strings.FieldsFunc(f.Get("report_recipients"), func(r rune) bool { return r == ',' || r == '\n' || r == '\r' || r == ';' }) {
		if s = strings.TrimSpace(s); s != "" {
			t.ReportRecipients = append(t.ReportRecipients, s)
		}
	}
	t.ReportsEnabled = f.Get("reports_enabled") == "on"
	if t.ReportsEnabled && len(t.ReportRecipients) == 0 {
		problems = append(problems, "reports are on but there is no report recipient")
	}
	t.Schedule = tenant.Schedule{Enabled: f.Get("schedule_enabled") == "on", Interval: strings.TrimSpace(f.Get("schedule_interval"))}
	t.TimeZone = strings.TrimSpace(f.Get("time_zone"))
	apply := func(p provider.Provider, s *tenant.Settings) {
		s.Enabled = f.Get(string(p)+"_enabled") == "on"
		s.Direction = tenant.Direction(f.Get(string(p) + "_direction"))
		s.ObjectModules = append([]string(nil), f[string(p)+"_modules"]...)
		if len(s.ObjectModules) == 0 {
			problems = append(problems, providerName(p)+": choose at least one object module")
		}
		s.RemapOnDeactivation = f.Get(string(p)+"_remap") == "on"
		s.AutoProvisioning = f.Get(string(p)+"_autoprov") == "on"
		fb := strings.TrimSpace(f.Get(string(p) + "_fallback"))
		if fb != "" && fb != s.FallbackOwnerID {
			opts, err := c.activeCRMUsers(r, p)
			if err != nil || !hasOption(opts, fb) {
				problems = append(problems, fmt.Sprintf("%s: the fallback owner must be one of the active %s users", providerName(p), providerName(p)))
			}
		}
		s.FallbackOwnerID = fb
	}
	if t.Salesforce != nil {
		sf := *t.Salesforce
		apply(mapping.Salesforce, &sf.Settings)
		t.Salesforce = &sf
	}
	if t.HubSpot != nil {
		hs := *t.HubSpot
		apply(mapping.HubSpot, &hs.Settings)
		t.HubSpot = &hs
	}
	if len(problems) == 0 {
		err := c.tenants.Put(r.ctx, &t)
		var ve *tenant.ValidationError
		switch {
		case errors.As(err, &ve):
			problems = ve.Problems
		case err != nil && isUserError(err):
			problems = []string{publicMessage(err, userErrorText(err))}
		case err != nil:
			return err
		}
	}
	if len(problems) > 0 {
		return c.renderSettings(r, http.StatusUnprocessableEntity, &t, problems)
	}
	c.log.InfoContext(r.ctx, "console settings saved", "tenant", t.ID, "actor", r.sess.principal.Actor())
	return r.ec.Redirect(http.StatusSeeOther, c.tenantURL(r, "settings?done=saved"))
}

// --- record history and dead letters ---

func (c *Console) historyPage(r *req) error {
	name, rt, id := r.ec.QueryParam("provider"), r.ec.QueryParam("type"), strings.TrimSpace(r.ec.QueryParam("id"))
	prov, known := provider.Parse(name)
	d := map[string]any{"Provider": name, "Type": rt, "ID": id}
	if name == "" && rt == "" && id == "" {
		return c.render(r, http.StatusOK, "history", "Record history", d)
	}
	problem := ""
	var prefix string
	switch {
	case !known:
		problem = "Choose Salesforce or HubSpot."
	case rt == "contact":
		prefix = sfid.PrefixContact
	case rt == "lead" && prov == mapping.Salesforce:
		prefix = sfid.PrefixLead
	default:
		problem = "The record type must be contact, or lead for Salesforce."
	}
	if problem == "" {
		norm, err := crmID(prov, id, prefix)
		if err != nil {
			problem = err.Error()
		}
		id = norm
	}
	if problem != "" {
		d["Problem"] = problem
		return c.render(r, http.StatusBadRequest, "history", "Record history", d)
	}
	hs, err := c.svc.RecordHistory(r.ctx, r.tenant.ID, prov, rt, id)
	if err != nil {
		return err
	}
	d["ID"], d["Entries"], d["Searched"] = id, historyRows(hs), true
	return c.render(r, http.StatusOK, "history", "Record history", d)
}

const dlqShown = 100

func (c *Console) dlqPage(r *req) error {
	svc := r.ec.QueryParam("service")
	if svc != "" && !serviceRE.MatchString(svc) {
		return pageError(http.StatusBadRequest, "Unknown service filter.")
	}
	return c.renderDLQ(r, http.StatusOK, svc, nil)
}

func (c *Console) renderDLQ(r *req, status int, svc string, res *domain.ReplayResult) error {
	ls, err := c.dlq.List(r.ctx, r.tenant.ID, domain.DLQFilter{Service: svc, Limit: dlqShown})
	if err != nil {
		return err
	}
	return c.render(r, status, "dlq", "Dead letters", map[string]any{"Letters": deadLetterRows(ls), "Service": svc, "Result": res})
}

func (c *Console) dlqReplay(r *req) error {
	if err := r.ec.Request().ParseForm(); err != nil {
		return pageError(http.StatusBadRequest, "The form could not be read.")
	}
	var ids []uint64
	for _, s := range r.ec.Request().PostForm["id"] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return pageError(http.StatusBadRequest, "Dead letter ids are positive numbers.")
		}
		ids = append(ids, n)
	}
	if len(ids) == 0 {
		return pageError(http.StatusBadRequest, "Choose at least one dead letter to replay.")
	}
	if len(ids) > dlqShown {
		return pageError(http.StatusBadRequest, "Replay at most %d dead letters at once.", dlqShown)
	}
	if r.ec.FormValue("confirm") != "yes" {
		strs := make([]string, len(ids))
		for i, id := range ids {
			strs[i] = strconv.FormatUint(id, 10)
		}
		return c.render(r, http.StatusOK, "confirm", "Confirm replay", map[string]any{
			"Question": fmt.Sprintf("Replay %d dead letter(s) (%s)? Each is published again on its original subject.", len(ids), strings.Join(strs, ", ")),
			"Action":   c.tenantURL(r, "dlq/replay"),
			"IDs":      strs,
			"Button":   "Replay",
			"Back":     c.tenantURL(r, "dlq"),
		})
	}
	res, err := c.dlq.Replay(r.ctx, r.tenant.ID, domain.DLQFilter{IDs: ids, Limit: len(ids)})
	if err != nil {
		return err
	}
	c.log.InfoContext(r.ctx, "console dead letters replayed", "tenant", r.tenant.ID, "actor", r.sess.principal.Actor(), "replayed", len(res.Replayed), "failed", len(res.Failed))
	return c.renderDLQ(r, http.StatusOK, "", &res)
}

// providerRedirect sends /admin/t/{t}/{view}?provider=p&… to /admin/t/{t}/p/{p}/{view}?…; without
// a provider it picks the tenant's first connected one.
func (c *Console) providerRedirect(view string) handler {
	return func(r *req) error {
		q := r.ec.Request().URL.Query()
		p := provider.Provider(q.Get("provider"))
		q.Del("provider")
		if p == "" {
			for _, pr := range mapping.Providers {
				if _, ok := r.tenant.ProviderSettings(pr); ok {
					p = pr
					break
				}
			}
		}
		if _, ok := r.tenant.ProviderSettings(p); !ok || !p.Valid() {
			return pageError(http.StatusNotFound, "No such CRM is connected for this tenant.")
		}
		u := c.tenantURL(r, "p/"+string(p)+"/"+view)
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
		return r.ec.Redirect(http.StatusSeeOther, u)
	}
}

// --- helpers ---

func (c *Console) tenantURL(r *req, rest string) string {
	return "/admin/t/" + url.PathEscape(r.tenant.ID) + "/" + rest
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

func atoiDefault(s string, def, lo, hi int) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < lo {
		return def
	}
	return min(n, hi)
}

// userError is a form problem shown next to the form.
type userError string

func (e userError) Error() string { return string(e) }

func platformUserID(v string) (string, error) {
	if v == "" || len(v) > maxIDLen || !safeIDRE.MatchString(v) {
		return "", userError(fmt.Sprintf("The platform user id must be 1-%d letters, digits or ._:@+-", maxIDLen))
	}
	return v, nil
}

func crmUserID(provider provider.Provider, v string) (string, error) {
	return crmID(provider, v, sfid.PrefixUser)
}

func crmID(provider provider.Provider, v, prefix string) (string, error) {
	if provider == mapping.Salesforce {
		id, err := sfid.To18(v)
		if err != nil || sfid.Prefix(id) != prefix {
			return "", userError(fmt.Sprintf("Enter a 15- or 18-character Salesforce id starting with %s.", prefix))
		}
		return id, nil
	}
	if !digitsRE.MatchString(v) {
		return "", userError("Enter a numeric HubSpot id.")
	}
	return v, nil
}

func isUserError(err error) bool {
	return errors.Is(err, domain.ErrInvalid) || errors.Is(err, domain.ErrConflict) || errors.Is(err, domain.ErrNotFound)
}

func userErrorText(err error) string {
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return "One of the users does not exist."
	case errors.Is(err, domain.ErrConflict):
		return "That conflicts with an existing manual mapping."
	}
	return "The request was not valid."
}

func statusOf(err error) int { return domain.HTTPStatus(domain.ErrorCode(err)) }

// commonTimeZones are offered as suggestions in the settings' time zone field; any IANA name the
// server knows is accepted.
var commonTimeZones = []string{
	"UTC", "Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Paris", "Europe/Berlin", "Europe/Madrid",
	"Europe/Rome", "Europe/Amsterdam", "Europe/Stockholm", "Europe/Warsaw", "Europe/Athens", "Europe/Helsinki",
	"Europe/Istanbul", "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
	"America/Los_Angeles", "America/Anchorage", "America/Toronto", "America/Mexico_City", "America/Sao_Paulo",
	"America/Buenos_Aires", "Pacific/Honolulu", "Asia/Dubai", "Asia/Kolkata", "Asia/Singapore", "Asia/Shanghai",
	"Asia/Tokyo", "Asia/Seoul", "Australia/Sydney", "Australia/Perth", "Pacific/Auckland", "Africa/Johannesburg",
}
