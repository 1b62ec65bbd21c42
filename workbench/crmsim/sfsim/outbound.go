package sfsim

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SOAP namespaces of Outbound Messages (docs/crm-protocols.md#outbound-message-format).
const (
	NSSoapEnv  = "http://schemas.xmlsoap.org/soap/envelope/"
	NSOutbound = "http://soap.sforce.com/2005/09/outbound"
	NSSObject  = "urn:sobject.enterprise.soap.sforce.com"
	NSXSI      = "http://www.w3.org/2001/XMLSchema-instance"
	NSXSD      = "http://www.w3.org/2001/XMLSchema"
	// MaxNotifications is the most notifications one message carries (§1.6).
	MaxNotifications = 100
)

// OutboundConfig configures Outbound Messages. Delivery scheduling uses the wall clock.
type OutboundConfig struct {
	// URL is the endpoint for every object; URLs overrides it per object ("Contact", "Lead",
	// "User"). With neither, no messages are sent.
	URL  string            `json:"url,omitempty" yaml:"url,omitempty"`
	URLs map[string]string `json:"urls,omitempty" yaml:"urls,omitempty"`
	// Key, when set, is appended to the endpoint URL as ?key=<Key> (a shared secret in the URL).
	Key string `json:"key,omitempty" yaml:"key,omitempty"`
	// Objects lists the objects with an outbound message defined (default Contact, Lead, User).
	Objects []string `json:"objects,omitempty" yaml:"objects,omitempty"`
	// Fields lists the fields sent per object (sf:Id is always first). Defaults: Contact and Lead
	// Email, LastModifiedById, OwnerId; User Email, FirstName, IsActive, LastName, UserType.
	Fields map[string][]string `json:"fields,omitempty" yaml:"fields,omitempty"`
	// BaseDelay is the first redelivery wait (default 1 s); each retry doubles it up to MaxDelay
	// (default 2 h). Window is how long a message is retried before it is dropped (default 24 h).
	BaseDelay time.Duration `json:"baseDelay,omitempty" yaml:"baseDelay,omitempty"`
	MaxDelay  time.Duration `json:"maxDelay,omitempty" yaml:"maxDelay,omitempty"`
	Window    time.Duration `json:"window,omitempty" yaml:"window,omitempty"`
	// BatchDelay is how long changes are collected before a message is formed (default 20 ms).
	BatchDelay time.Duration `json:"batchDelay,omitempty" yaml:"batchDelay,omitempty"`
	// Timeout bounds one delivery attempt (default 30 s).
	Timeout time.Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Concurrency is how many messages are in flight at once (default 4).
	Concurrency int `json:"concurrency,omitempty" yaml:"concurrency,omitempty"`
	// OmitEmptyFields leaves empty fields out instead of sending them as xsi:nil="true".
	OmitEmptyFields bool `json:"omitEmptyFields,omitempty" yaml:"omitEmptyFields,omitempty"`
	// SendSessionID sends a session id for the integration user instead of xsi:nil.
	SendSessionID bool `json:"sendSessionId,omitempty" yaml:"sendSessionId,omitempty"`
	// SuppressUsers lists users (ids or usernames) whose changes fire no messages, like clearing
	// the "Send Outbound Messages" permission on them (§1.1).
	SuppressUsers []string `json:"suppressUsers,omitempty" yaml:"suppressUsers,omitempty"`
	// APIVersion goes into EnterpriseUrl and PartnerUrl (default 62.0).
	APIVersion string `json:"apiVersion,omitempty" yaml:"apiVersion,omitempty"`
}

func (c *OutboundConfig) defaults() {
	if len(c.Objects) == 0 {
		c.Objects = []string{ObjectContact, ObjectLead, ObjectUser}
	}
	def := map[string][]string{
		ObjectContact: {"Email", "LastModifiedById", "OwnerId"},
		ObjectLead:    {"Email", "LastModifiedById", "OwnerId"},
		ObjectUser:    {"Email", "FirstName", "IsActive", "LastName", "UserType"},
	}
	if c.Fields == nil {
		c.Fields = map[string][]string{}
	}
	for k, v := range def {
		if _, ok := c.Fields[k]; !ok {
			c.Fields[k] = v
		}
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = time.Second
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 2 * time.Hour
	}
	if c.Window <= 0 {
		c.Window = 24 * time.Hour
	}
	if c.BatchDelay <= 0 {
		c.BatchDelay = 20 * time.Millisecond
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.APIVersion == "" {
		c.APIVersion = "62.0"
	}
}

func (c *OutboundConfig) endpoint(object string) string {
	u := c.URL
	if v, ok := c.URLs[object]; ok {
		u = v
	}
	if u == "" || c.Key == "" {
		return u
	}
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + "key=" + url.QueryEscape(c.Key)
}

// Delivery is one delivery attempt of an Outbound Message (or the drop of one).
type Delivery struct {
	Object          string    `json:"object"`
	URL             string    `json:"url"`
	NotificationIDs []string  `json:"notificationIds"`
	RecordIDs       []string  `json:"recordIds"`
	Attempt         int       `json:"attempt"`
	Time            time.Time `json:"time"`
	Status          int       `json:"status,omitempty"`
	Acked           bool      `json:"acked"`
	Dropped         bool      `json:"dropped,omitempty"`
	Error           string    `json:"error,omitempty"`
	Body            []byte    `json:"-"`
}

// OutboundStats counts Outbound Message traffic.
type OutboundStats struct {
	Pending  int `json:"pending"`  // notifications not yet in a message
	Queued   int `json:"queued"`   // messages waiting for an ack
	Acked    int `json:"acked"`    // messages acknowledged
	Dropped  int `json:"dropped"`  // messages given up after the window
	Attempts int `json:"attempts"` // delivery attempts made
}

type notification struct {
	id       string
	object   string
	recordID string
}

type message struct {
	object   string
	notes    []notification
	attempts int
	created  time.Time
	next     time.Time
	inflight bool
}

type outbound struct {
	org    *Org
	cfg    OutboundConfig
	client *http.Client

	urlMu sync.RWMutex // guards cfg.URL, cfg.URLs and cfg.Key

	mu           sync.Mutex
	pending      map[string][]notification
	pendingSince map[string]time.Time
	queue        []*message
	deliveries   []Delivery
	stats        OutboundStats
	noteSeq      int
	actionIDs    map[string]string

	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}
}

const maxDeliveriesKept = 1000

func newOutbound(o *Org) *outbound {
	ctx, cancel := context.WithCancel(context.Background())
	ob := &outbound{
		org: o, cfg: o.cfg.Outbound, client: o.cfg.HTTPClient,
		pending: map[string][]notification{}, pendingSince: map[string]time.Time{},
		actionIDs: map[string]string{},
		wake:      make(chan struct{}, 1), ctx: ctx, cancel: cancel,
		sem: make(chan struct{}, o.cfg.Outbound.Concurrency),
	}
	if ob.client == nil {
		ob.client = &http.Client{Timeout: ob.cfg.Timeout}
	}
	for i, obj := range []string{ObjectContact, ObjectLead, ObjectUser} {
		ob.actionIDs[obj] = makeID("04k", o.st.pod, 1+i)
	}
	ob.wg.Add(1)
	go ob.run()
	return ob
}

// endpoint is the current delivery URL for object ("" when none).
func (ob *outbound) endpoint(object string) string {
	ob.urlMu.RLock()
	defer ob.urlMu.RUnlock()
	return ob.cfg.endpoint(object)
}

func (ob *outbound) close() {
	ob.cancel()
	ob.wg.Wait()
}

func (ob *outbound) signal() {
	select {
	case ob.wake <- struct{}{}:
	default:
	}
}

// enqueue records that record id of object changed by actor. Called with org.mu held.
func (ob *outbound) enqueue(object, id, actor string, _ time.Time) {
	if !slices.Contains(ob.cfg.Objects, object) || ob.endpoint(object) == "" {
		return
	}
	for _, s := range ob.cfg.SuppressUsers {
		if norm(s) == actor && actor != "" {
			return
		}
		if uid, ok := ob.org.st.usernames[strings.ToLower(s)]; ok && uid == actor {
			return
		}
	}
	ob.mu.Lock()
	ob.noteSeq++
	n := notification{id: makeID("04l", ob.org.st.pod, ob.noteSeq), object: object, recordID: id}
	if len(ob.pending[object]) == 0 {
		ob.pendingSince[object] = time.Now()
	}
	ob.pending[object] = append(ob.pending[object], n)
	ob.stats.Pending++
	ob.mu.Unlock()
	ob.signal()
}

// kick flushes pending notifications and makes every queued message due now.
func (ob *outbound) kick() {
	ob.mu.Lock()
	for obj := range ob.pendingSince {
		ob.pendingSince[obj] = time.Time{}
	}
	for _, m := range ob.queue {
		m.next = time.Time{}
	}
	ob.mu.Unlock()
	ob.signal()
}

func (ob *outbound) run() {
	defer ob.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := ob.step(time.Now())
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-ob.ctx.Done():
			return
		case <-ob.wake:
		case <-timer.C:
		}
	}
}

// step forms due messages, starts due deliveries, drops expired messages and returns how long to
// sleep until something is due.
func (ob *outbound) step(now time.Time) time.Duration {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	wait := time.Hour
	for obj, notes := range ob.pending {
		if len(notes) == 0 {
			continue
		}
		due := ob.pendingSince[obj].Add(ob.cfg.BatchDelay)
		if len(notes) < MaxNotifications && now.Before(due) {
			wait = min(wait, due.Sub(now))
			continue
		}
		for len(notes) > 0 {
			n := min(len(notes), MaxNotifications)
			ob.queue = append(ob.queue, &message{object: obj, notes: notes[:n:n], created: now, next: now})
			notes = notes[n:]
		}
		ob.stats.Pending -= len(ob.pending[obj])
		delete(ob.pending, obj)
	}
	kept := ob.queue[:0]
	for _, m := range ob.queue {
		if !m.inflight && !now.Before(m.created.Add(ob.cfg.Window)) {
			ob.stats.Dropped++
			ob.record(Delivery{Object: m.object, URL: ob.endpoint(m.object), NotificationIDs: noteIDs(m), RecordIDs: recIDs(m), Attempt: m.attempts, Time: now, Dropped: true})
			ob.org.logger.Warn("outbound message dropped after window", "object", m.object, "attempts", m.attempts)
			continue
		}
		kept = append(kept, m)
	}
	ob.queue = kept
	for _, m := range ob.queue {
		if m.inflight {
			continue
		}
		if now.Before(m.next) {
			wait = min(wait, m.next.Sub(now))
			continue
		}
		select {
		case ob.sem <- struct{}{}:
		default:
			return min(wait, 10*time.Millisecond)
		}
		m.inflight = true
		ob.wg.Add(1)
		go ob.deliver(m)
	}
	for _, m := range ob.queue {
		if !m.inflight {
			wait = min(wait, max(m.created.Add(ob.cfg.Window).Sub(now), 0))
		}
	}
	return max(wait, time.Millisecond)
}

func noteIDs(m *message) []string {
	out := make([]string, len(m.notes))
	for i, n := range m.notes {
		out[i] = n.id
	}
	return out
}

func recIDs(m *message) []string {
	out := make([]string, len(m.notes))
	for i, n := range m.notes {
		out[i] = n.recordID
	}
	return out
}

// record keeps a delivery; ob.mu held.
func (ob *outbound) record(d Delivery) {
	if len(ob.deliveries) >= maxDeliveriesKept {
		ob.deliveries = append(ob.deliveries[:0], ob.deliveries[len(ob.deliveries)/2:]...)
	}
	ob.deliveries = append(ob.deliveries, d)
}

func (ob *outbound) deliver(m *message) {
	defer ob.wg.Done()
	defer func() { <-ob.sem }()
	endpoint := ob.endpoint(m.object)
	sessionID := ""
	if ob.cfg.SendSessionID {
		sessionID = ob.org.IssueToken("")
	}
	body := ob.org.renderMessage(m.object, m.notes, sessionID)
	status, acked, err := ob.post(endpoint, body)
	ob.mu.Lock()
	m.attempts++
	ob.stats.Attempts++
	d := Delivery{Object: m.object, URL: endpoint, NotificationIDs: noteIDs(m), RecordIDs: recIDs(m), Attempt: m.attempts, Time: time.Now(), Status: status, Acked: acked, Body: body}
	if err != nil {
		d.Error = err.Error()
	}
	ob.record(d)
	m.inflight = false
	if acked {
		ob.stats.Acked++
		ob.queue = slices.DeleteFunc(ob.queue, func(x *message) bool { return x == m })
	} else {
		delay := ob.cfg.BaseDelay
		for i := 1; i < m.attempts && delay < ob.cfg.MaxDelay; i++ {
			delay *= 2
		}
		m.next = time.Now().Add(min(delay, ob.cfg.MaxDelay))
	}
	ob.mu.Unlock()
	ob.signal()
}

// post sends one message and reports whether the answer was an HTTP 200 carrying
// notificationsResponse/Ack = true (§1.5, §1.6).
func (ob *outbound) post(endpoint string, body []byte) (status int, acked bool, err error) {
	ctx, cancel := context.WithTimeout(ob.ctx, ob.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, false, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `""`)
	req.Header.Set("User-Agent", "Salesforce Outbound Messaging (crmsim)")
	resp, err := ob.client.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, false, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, false, fmt.Errorf("status %d", resp.StatusCode)
	}
	ok, err := ParseAck(rb)
	return resp.StatusCode, ok, err
}

// ParseAck reports whether body is a SOAP envelope whose notificationsResponse carries
// <Ack>true</Ack>, matching on namespaces, not prefixes.
func ParseAck(body []byte) (bool, error) {
	var env struct {
		XMLName xml.Name `xml:"http://schemas.xmlsoap.org/soap/envelope/ Envelope"`
		Body    struct {
			Resp *struct {
				Ack string `xml:"http://soap.sforce.com/2005/09/outbound Ack"`
			} `xml:"http://soap.sforce.com/2005/09/outbound notificationsResponse"`
		} `xml:"http://schemas.xmlsoap.org/soap/envelope/ Body"`
	}
	if err := xml.Unmarshal(body, &env); err != nil {
		return false, fmt.Errorf("ack is not a SOAP envelope: %w", err)
	}
	if env.Body.Resp == nil {
		return false, fmt.Errorf("no notificationsResponse in answer")
	}
	switch strings.TrimSpace(env.Body.Resp.Ack) {
	case "true", "1":
		return true, nil
	}
	return false, fmt.Errorf("ack is %q", env.Body.Resp.Ack)
}

// omTime is the datetime format in Outbound Messages.
const omTime = "2006-01-02T15:04:05.000Z"

func xmlText(b *bytes.Buffer, s string) {
	_ = xml.EscapeText(b, []byte(s))
}

// renderMessage builds the SOAP notifications() request for notes with the records' current values.
func (o *Org) renderMessage(object string, notes []notification, sessionID string) []byte {
	cfg := o.om.cfg
	o.mu.RLock()
	defer o.mu.RUnlock()
	base := o.instanceURL
	if base == "" {
		base = "https://crmsim.my.salesforce.com"
	}
	org15 := o.cfg.OrgID[:15]
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="` + NSSoapEnv + `" xmlns:xsd="` + NSXSD + `" xmlns:xsi="` + NSXSI + `">` + "\n")
	b.WriteString(" <soapenv:Body>\n")
	b.WriteString(`  <notifications xmlns="` + NSOutbound + `">` + "\n")
	b.WriteString("   <OrganizationId>" + o.cfg.OrgID + "</OrganizationId>\n")
	b.WriteString("   <ActionId>" + o.om.actionIDs[object] + "</ActionId>\n")
	if sessionID == "" {
		b.WriteString("   <SessionId xsi:nil=\"true\"/>\n")
	} else {
		b.WriteString("   <SessionId>")
		xmlText(&b, sessionID)
		b.WriteString("</SessionId>\n")
	}
	b.WriteString("   <EnterpriseUrl>")
	xmlText(&b, base+"/services/Soap/c/"+cfg.APIVersion+"/"+org15)
	b.WriteString("</EnterpriseUrl>\n   <PartnerUrl>")
	xmlText(&b, base+"/services/Soap/u/"+cfg.APIVersion+"/"+org15)
	b.WriteString("</PartnerUrl>\n")
	obj := objects[strings.ToLower(object)]
	for _, n := range notes {
		var row any
		switch object {
		case ObjectUser:
			if u, ok := o.st.users[n.recordID]; ok {
				row = u
			}
		default:
			if r, ok := o.st.records[n.recordID]; ok {
				row = r
			}
		}
		b.WriteString("   <Notification>\n    <Id>" + n.id + "</Id>\n")
		b.WriteString(`    <sObject xsi:type="sf:` + object + `" xmlns:sf="` + NSSObject + `">` + "\n")
		b.WriteString("     <sf:Id>" + n.recordID + "</sf:Id>\n")
		for _, name := range cfg.Fields[object] {
			f, ok := lookupField(obj.fields, name)
			if !ok || f.name == "Id" {
				continue
			}
			var text string
			if row != nil {
				switch v := f.get(row).(type) {
				case string:
					text = v
				case bool:
					text = strconv.FormatBool(v)
				case time.Time:
					if !v.IsZero() {
						text = v.UTC().Format(omTime)
					}
				}
			}
			if text == "" {
				if !cfg.OmitEmptyFields {
					b.WriteString("     <sf:" + f.name + " xsi:nil=\"true\"/>\n")
				}
				continue
			}
			b.WriteString("     <sf:" + f.name + ">")
			xmlText(&b, text)
			b.WriteString("</sf:" + f.name + ">\n")
		}
		b.WriteString("    </sObject>\n   </Notification>\n")
	}
	b.WriteString("  </notifications>\n </soapenv:Body>\n</soapenv:Envelope>\n")
	return b.Bytes()
}

// Deliveries returns the Outbound Message delivery attempts made so far, oldest first.
func (o *Org) Deliveries() []Delivery {
	o.om.mu.Lock()
	defer o.om.mu.Unlock()
	return append([]Delivery(nil), o.om.deliveries...)
}

// OutboundStats returns Outbound Message counters.
func (o *Org) OutboundStats() OutboundStats {
	o.om.mu.Lock()
	defer o.om.mu.Unlock()
	s := o.om.stats
	s.Queued = len(o.om.queue)
	return s
}

// SetOutboundURL changes the endpoint URL of every object's outbound message and the shared key
// (empty: none) at run time, e.g. once the listener's port is known. Messages already queued go
// to the new URL on their next attempt.
func (o *Org) SetOutboundURL(url, key string) {
	o.om.urlMu.Lock()
	o.om.cfg.URL, o.om.cfg.URLs, o.om.cfg.Key = url, nil, key
	o.om.urlMu.Unlock()
}

// FlushOutbound sends pending notifications now and makes every waiting message due now instead
// of at its next redelivery time.
func (o *Org) FlushOutbound() { o.om.kick() }
