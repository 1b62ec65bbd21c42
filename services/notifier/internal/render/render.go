// Package render turns sync reports and alert digests into emails: a subject, an HTML part and a
// plain-text part (html/template and text/template).
//
// Everything that comes from a CRM or the platform (names, emails, reasons, payload excerpts) is
// untrusted: it is stripped of control and bidirectional-override characters, truncated, and
// escaped by html/template. The HTML needs no scripts, web fonts or remote images: the visual
// summary is bars drawn with table cells and inline styles, which every mail client shows.
//
// Proto messages are converted into this package's own view model at the edge (Report, Alerts);
// the templates only see plain values.
package render

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"sort"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/ownersync/ownersync/libs/provider/providerpb"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
)

// Email is a rendered email, ready for the mailer.
type Email struct {
	// To are the recipients (from Options.To).
	To []string
	// Subject is a single line, free of control characters.
	Subject string
	// Text is the plain-text part.
	Text string
	// HTML is the HTML part (a whole document).
	HTML string
	// MessageID is the Message-ID without angle brackets. It is deterministic (from the report's run
	// id, or from the ids of the alerts in a digest), so a duplicate send is recognisable.
	MessageID string
	// Headers are extra headers (X-Ownersync-Tenant, X-Ownersync-Run-Id, …).
	Headers map[string]string
}

// Options tune rendering. The zero value is usable.
type Options struct {
	// To are the recipients copied into Email.To.
	To []string
	// AdminURL is the admin console/API base URL used when the report carries none.
	AdminURL string
	// TenantName is used when the report carries none.
	TenantName string
	// MaxChanges and MaxErrors cap the lists per provider (defaults 50 and 100); the totals and a
	// link to the full list are always shown.
	MaxChanges int
	MaxErrors  int
	// MaxAlerts caps the alerts listed in a digest (default 100).
	MaxAlerts int
	// Location formats times (default UTC).
	Location *time.Location
	// CRMUserURL, when set, is the CRM's page of a CRM user (provider "salesforce" or "hubspot"),
	// empty when there is none: the email links CRM user ids there (tenant.Tenant.CRMUserURL).
	CRMUserURL func(provider, id string) string
	// MessageIDDomain is the right-hand side of Message-IDs (default "ownersync.local").
	MessageIDDomain string
}

// Defaults for Options.
const (
	DefaultMaxChanges      = 50
	DefaultMaxErrors       = 100
	DefaultMaxAlerts       = 100
	DefaultMessageIDDomain = "ownersync.local"
)

func (o Options) withDefaults() Options {
	if o.MaxChanges <= 0 {
		o.MaxChanges = DefaultMaxChanges
	}
	if o.MaxErrors <= 0 {
		o.MaxErrors = DefaultMaxErrors
	}
	if o.MaxAlerts <= 0 {
		o.MaxAlerts = DefaultMaxAlerts
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.MessageIDDomain == "" {
		o.MessageIDDomain = DefaultMessageIDDomain
	}
	return o
}

//go:embed templates
var templateFS embed.FS

var (
	htmlTemplates = htmltemplate.Must(htmltemplate.New("").Funcs(htmltemplate.FuncMap{"plural": plural, "pair": pair}).
			ParseFS(templateFS, "templates/*.html"))
	textTemplates = texttemplate.Must(texttemplate.New("").Funcs(texttemplate.FuncMap{"plural": plural, "pad": pad}).
			ParseFS(templateFS, "templates/*.txt"))
)

// idLink is an id and the URL of its page (empty when there is none), for the "crm" template.
type idLink struct{ ID, URL string }

func pair(id, url string) idLink { return idLink{ID: id, URL: url} }

// Report renders the email for one Sync Users run.
func Report(r *ownersyncv1.SyncReport, opts Options) (Email, error) {
	if r == nil {
		return Email{}, fmt.Errorf("render report: nil report")
	}
	opts = opts.withDefaults()
	v := reportFromProto(r, opts)
	html, text, err := execute("report", v)
	if err != nil {
		return Email{}, fmt.Errorf("render report %s: %w", v.RunID, err)
	}
	id := r.GetRunId()
	if id == "" {
		id = r.GetMeta().GetEventId()
	}
	headers := map[string]string{"X-Ownersync-Tenant": v.TenantID, "X-Ownersync-Run-Id": clean(id, maxField)}
	if v.DryRun {
		headers["X-Ownersync-Dry-Run"] = "true"
	}
	return Email{
		To:        append([]string(nil), opts.To...),
		Subject:   reportSubject(v),
		Text:      text,
		HTML:      html,
		MessageID: messageID("report", id, v.TenantID, opts.MessageIDDomain),
		Headers:   headers,
	}, nil
}

// Preview returns the HTML part of a report's email, for the preview route and command.
func Preview(r *ownersyncv1.SyncReport, opts Options) (string, error) {
	e, err := Report(r, opts)
	if err != nil {
		return "", err
	}
	return e.HTML, nil
}

// Window is the period an alert digest covers.
type Window struct {
	Since, Until time.Time
}

// Alerts renders one alert digest for a tenant: every alert since the last digest, oldest first.
func Alerts(tenantID string, alerts []*ownersyncv1.Alert, w Window, opts Options) (Email, error) {
	if len(alerts) == 0 {
		return Email{}, fmt.Errorf("render alerts for %s: no alerts", tenantID)
	}
	opts = opts.withDefaults()
	v := alertsFromProto(tenantID, alerts, w, opts)
	html, text, err := execute("alerts", v)
	if err != nil {
		return Email{}, fmt.Errorf("render alerts for %s: %w", tenantID, err)
	}
	ids := make([]string, 0, len(alerts))
	for i, a := range alerts {
		id := a.GetMeta().GetEventId()
		if id == "" {
			id = fmt.Sprintf("#%d:%s", i, a.GetSummary())
		}
		ids = append(ids, id)
	}
	sort.Strings(ids) // the same alerts give the same Message-ID whatever their arrival order
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return Email{
		To:        append([]string(nil), opts.To...),
		Subject:   alertsSubject(v),
		Text:      text,
		HTML:      html,
		MessageID: messageID("alerts", hex.EncodeToString(sum[:12]), v.TenantID, opts.MessageIDDomain),
		Headers:   map[string]string{"X-Ownersync-Tenant": v.TenantID, "X-Ownersync-Alerts": fmt.Sprint(len(alerts))},
	}, nil
}

func execute(name string, data any) (html, text string, err error) {
	var h, t bytes.Buffer
	if err := htmlTemplates.ExecuteTemplate(&h, name+".html", data); err != nil {
		return "", "", err
	}
	if err := textTemplates.ExecuteTemplate(&t, name+".txt", data); err != nil {
		return "", "", err
	}
	return h.String(), t.String(), nil
}

func reportSubject(v reportView) string {
	var b strings.Builder
	b.WriteString("[ownersync] ")
	if v.DryRun {
		b.WriteString("DRY RUN: ")
	}
	name := v.TenantName
	if name == "" {
		name = v.TenantID
	}
	fmt.Fprintf(&b, "%s: %s sync %s", name, v.ProviderNames, v.Outcome.Label)
	if v.Outcome.Label != "failed" && len(v.Providers) > 0 {
		c := v.Totals
		fmt.Fprintf(&b, " (%d mapped, %d new, %d remapped, %d removed)", c.Mapped, c.Created, c.Remapped, c.Removed)
	}
	return clean(b.String(), 250)
}

func alertsSubject(v alertsView) string {
	name := v.TenantName
	if name == "" {
		name = v.TenantID
	}
	s := fmt.Sprintf("[ownersync] %s: %s", name, plural(v.Total, "alert", "alerts"))
	if v.Critical > 0 {
		s += fmt.Sprintf(" (%d critical)", v.Critical)
	}
	if len(v.Alerts) > 0 {
		s += ": " + v.Alerts[0].Summary
		if v.Total > 1 {
			s += ", …"
		}
	}
	return clean(s, 250)
}

// messageID builds "<kind>.<id>.<tenant>@<domain>" from safe characters only; an id that needed
// sanitising gets a short hash of the original so distinct ids stay distinct.
func messageID(kind, id, tenant, domain string) string {
	safe := func(s string) string {
		out := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
				return r
			}
			return '_'
		}, s)
		if out != s || len(out) > 64 {
			sum := sha256.Sum256([]byte(s))
			out = truncate(out, 40)
			out = strings.TrimSuffix(out, "…") + "-" + hex.EncodeToString(sum[:6])
		}
		return strings.Trim(out, ".")
	}
	return fmt.Sprintf("%s.%s.%s@%s", kind, safe(id), safe(tenant), safe(domain))
}

// pad right-pads s to n runes for the plain-text tables.
func pad(n int, s string) string {
	if c := len([]rune(s)); c < n {
		return s + strings.Repeat(" ", n-c)
	}
	return s
}

// reportFromProto converts the report at the edge into the view model.
func reportFromProto(r *ownersyncv1.SyncReport, opts Options) reportView {
	tenantID := clean(r.GetMeta().GetTenantId(), 63)
	admin := r.GetAdminUrl()
	if admin == "" {
		admin = opts.AdminURL
	}
	name := clean(r.GetTenantName(), maxField)
	if name == "" {
		name = clean(opts.TenantName, maxField)
	}
	started, finished := r.GetStartedAt().AsTime(), r.GetFinishedAt().AsTime()
	if r.GetStartedAt() == nil {
		started = time.Time{}
	}
	if r.GetFinishedAt() == nil {
		finished = time.Time{}
	}
	runID := clean(r.GetRunId(), maxField)
	v := reportView{
		TenantID:   tenantID,
		TenantName: name,
		RunID:      runID,
		Trigger:    triggerLabel(r.GetTrigger()),
		DryRun:     r.GetDryRun(),
		Started:    formatTime(started, opts.Location),
		Finished:   formatTime(finished, opts.Location),
		Duration:   formatDuration(started, finished),
		Links: reportLinks{
			Console: link(admin, nil, "admin", "t", tenantID, ""),
			Run:     link(admin, nil, "admin", "t", tenantID, "runs", runID),
		},
	}
	var names []string
	for _, p := range r.GetProviders() {
		pv := providerFromProto(p, admin, tenantID, r.GetRunId(), opts)
		v.Totals.add(pv.Counts)
		v.Providers = append(v.Providers, pv)
		names = append(names, pv.Name)
	}
	v.ProviderNames = strings.Join(names, " + ")
	if v.ProviderNames == "" {
		v.ProviderNames = "no provider"
	}
	v.Outcome = outcomeOf(&v)
	return v
}

// fragment adds #id to a link (none when there is no link).
func fragment(link, id string) string {
	if link == "" {
		return ""
	}
	return link + "#" + url.PathEscape(id)
}

func providerFromProto(p *ownersyncv1.ProviderReport, admin, tenantID, runID string, opts Options) providerView {
	key := providerKey(p.GetProvider())
	c := p.GetCounts()
	pv := providerView{
		Key:     key,
		Name:    providerName(key),
		Failure: cleanBlock(p.GetFailure(), maxText),
		Counts: counts{
			Mapped: int(c.GetMapped()), Created: int(c.GetCreated()), Remapped: int(c.GetRemapped()),
			Removed: int(c.GetRemoved()), Conflicts: int(c.GetConflicts()), Errors: int(c.GetErrors()),
			UnmappedPlatform: int(c.GetUnmappedPlatform()), UnmappedCRM: int(c.GetUnmappedCrm()), Pulled: int(c.GetPulled()),
			NotMappable: int(c.GetNotMappable()),
		},
		NotMappableURL: fragment(link(admin, nil, "admin", "t", tenantID, "runs", clean(runID, maxField)), "not-mappable-"+key),
		ErrorsURL:      link(admin, url.Values{"provider": {key}}, "admin", "t", tenantID, "errors"),
		MappingsURL:    link(admin, url.Values{"provider": {key}}, "admin", "t", tenantID, "mappings"),
	}
	pv.Bars = summaryBars(pv.Counts)
	crmURL := func(id string) string {
		if opts.CRMUserURL == nil || id == "" {
			return ""
		}
		return opts.CRMUserURL(key, id)
	}

	changes := p.GetChanges()
	pv.ChangesTotal = max(int(p.GetChangesTotal()), len(changes))
	for _, ch := range changes[:min(len(changes), opts.MaxChanges)] {
		kind, color := changeLabel(ch.GetChange())
		pv.Changes = append(pv.Changes, changeView{
			Kind: kind, Color: color,
			Name:       clean(ch.GetName(), maxField),
			Email:      clean(ch.GetEmail(), maxField),
			PlatformID: clean(ch.GetPlatformUserId(), maxField),
			CRMID:      clean(ch.GetCrmUserId(), maxField),
			PreviousID: clean(ch.GetPreviousCrmUserId(), maxField),
			Reason:     clean(ch.GetReason(), maxText),
		})
		cv := &pv.Changes[len(pv.Changes)-1]
		cv.CRMURL, cv.PreviousURL = crmURL(cv.CRMID), crmURL(cv.PreviousID)
	}
	pv.ChangesMore = pv.ChangesTotal - len(pv.Changes)

	errs := p.GetErrors()
	pv.ErrorsTotal = max(int(p.GetErrorsTotal()), len(errs))
	for _, e := range errs[:min(len(errs), opts.MaxErrors)] {
		kind := "error"
		if e.GetConflict() {
			kind = "conflict"
		}
		pv.Errors = append(pv.Errors, errorView{
			Kind:       kind,
			Name:       clean(e.GetName(), maxField),
			Code:       clean(e.GetCode(), maxField),
			Message:    clean(e.GetMessage(), maxText),
			Fix:        clean(e.GetFix(), maxText),
			Email:      clean(e.GetEmail(), maxField),
			PlatformID: clean(e.GetPlatformUserId(), maxField),
			CRMID:      clean(e.GetCrmUserId(), maxField),
		})
		ev := &pv.Errors[len(pv.Errors)-1]
		ev.CRMURL = crmURL(ev.CRMID)
	}
	pv.ErrorsMore = pv.ErrorsTotal - len(pv.Errors)

	nm := p.GetNotMappable()
	pv.NotMappableTotal = max(int(p.GetNotMappableTotal()), len(nm))
	for _, n := range nm[:min(len(nm), opts.MaxErrors)] {
		pv.NotMappable = append(pv.NotMappable, notMappableView{
			Name:     clean(n.GetName(), maxField),
			Email:    clean(n.GetEmail(), maxField),
			CRMID:    clean(n.GetCrmUserId(), maxField),
			UserType: clean(n.GetUserType(), maxField),
			License:  clean(n.GetLicense(), maxField),
			Reason:   clean(n.GetReason(), maxText),
		})
		nv := &pv.NotMappable[len(pv.NotMappable)-1]
		nv.CRMURL = crmURL(nv.CRMID)
	}
	pv.NotMappableMore = pv.NotMappableTotal - len(pv.NotMappable)
	return pv
}

func alertsFromProto(tenantID string, alerts []*ownersyncv1.Alert, w Window, opts Options) alertsView {
	tenantID = clean(tenantID, 63)
	v := alertsView{
		TenantID:   tenantID,
		TenantName: clean(opts.TenantName, maxField),
		Since:      formatTime(w.Since, opts.Location),
		Until:      formatTime(w.Until, opts.Location),
		Total:      len(alerts),
		Links: alertLinks{
			Console: link(opts.AdminURL, nil, "admin", "t", tenantID, ""),
			Errors:  link(opts.AdminURL, nil, "admin", "t", tenantID, ""), // no page lists alerts: the overview
		},
	}
	all := make([]alertView, 0, len(alerts))
	times := make([]time.Time, 0, len(alerts))
	for _, a := range alerts {
		sev, color := severityLabel(a.GetSeverity())
		switch a.GetSeverity() {
		case ownersyncv1.AlertSeverity_ALERT_SEVERITY_CRITICAL:
			v.Critical++
		case ownersyncv1.AlertSeverity_ALERT_SEVERITY_WARNING:
			v.Warning++
		}
		t := alertTime(a)
		times = append(times, t)
		all = append(all, alertView{
			Time:     formatTime(t, opts.Location),
			Severity: sev,
			Color:    color,
			Kind:     kindLabel(a.GetKind()),
			Provider: providerName(providerKey(a.GetProvider())),
			Summary:  clean(a.GetSummary(), maxField),
			Details:  cleanBlock(a.GetDetails(), maxText),
			Record:   clean(a.GetRecord(), maxField),
			Payload:  cleanBlock(a.GetPayloadExcerpt(), maxPayload),
			EventID:  clean(a.GetMeta().GetEventId(), maxField),
		})
		if a.GetProvider() == ownersyncv1.Provider_PROVIDER_UNSPECIFIED {
			all[len(all)-1].Provider = ""
		}
	}
	all = sortedAlerts(all, times)
	v.Alerts = all[:min(len(all), opts.MaxAlerts)]
	v.More = v.Total - len(v.Alerts)
	return v
}

func alertTime(a *ownersyncv1.Alert) time.Time {
	if ts := a.GetMeta().GetOccurredAt(); ts != nil {
		return ts.AsTime()
	}
	if ts := a.GetMeta().GetReceivedAt(); ts != nil {
		return ts.AsTime()
	}
	return time.Time{}
}

func providerKey(p ownersyncv1.Provider) string {
	name, _ := providerpb.FromProto(p)
	return string(name)
}

func triggerLabel(t ownersyncv1.SyncTrigger) string {
	switch t {
	case ownersyncv1.SyncTrigger_SYNC_TRIGGER_MANUAL:
		return "manual (Sync Users)"
	case ownersyncv1.SyncTrigger_SYNC_TRIGGER_SCHEDULE:
		return "schedule"
	case ownersyncv1.SyncTrigger_SYNC_TRIGGER_API:
		return "API"
	}
	return "unknown"
}

func changeLabel(c ownersyncv1.MappingChange) (string, string) {
	switch c {
	case ownersyncv1.MappingChange_MAPPING_CHANGE_CREATED:
		return "newly mapped", colorBlue
	case ownersyncv1.MappingChange_MAPPING_CHANGE_REMAPPED:
		return "remapped", colorPurple
	case ownersyncv1.MappingChange_MAPPING_CHANGE_REMOVED:
		return "removed", colorGrey
	case ownersyncv1.MappingChange_MAPPING_CHANGE_CONFLICT:
		return "conflict", colorAmber
	case ownersyncv1.MappingChange_MAPPING_CHANGE_ERROR:
		return "error", colorRed
	case ownersyncv1.MappingChange_MAPPING_CHANGE_RESOLVED:
		return "resolved", colorGreen
	}
	return "changed", colorGrey
}

func severityLabel(s ownersyncv1.AlertSeverity) (string, string) {
	switch s {
	case ownersyncv1.AlertSeverity_ALERT_SEVERITY_CRITICAL:
		return "critical", colorRed
	case ownersyncv1.AlertSeverity_ALERT_SEVERITY_WARNING:
		return "warning", colorAmber
	case ownersyncv1.AlertSeverity_ALERT_SEVERITY_INFO:
		return "info", colorBlue
	}
	return "unknown", colorGrey
}

func kindLabel(k ownersyncv1.AlertKind) string {
	switch k {
	case ownersyncv1.AlertKind_ALERT_KIND_WRITEBACK_FAILED:
		return "Owner write-back failed"
	case ownersyncv1.AlertKind_ALERT_KIND_AUTH_FAILED:
		return "Authentication failed"
	case ownersyncv1.AlertKind_ALERT_KIND_QUOTA_EXHAUSTED:
		return "API quota exhausted"
	case ownersyncv1.AlertKind_ALERT_KIND_DLQ:
		return "Message dead-lettered"
	case ownersyncv1.AlertKind_ALERT_KIND_UNKNOWN_SOURCE:
		return "Webhook from an unknown source"
	}
	return "Alert"
}
