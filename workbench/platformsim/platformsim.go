// Package platformsim is the platform sandbox (docs/architecture.md#dev-stack-and-sandboxes): an
// in-memory stand-in for the sales platform with users (kinds, statuses, teams) and contacts/leads
// with owners. Changes made through its small HTTP API are published as platform.user.changed /
// platform.owner.changed events; it consumes owner.assign and platform.user.provision and applies
// them.
//
// It uses only the published protobuf contract (proto/ownersync/v1) and NATS JetStream, so it is
// also the worked example for internal services of the platform: publish with Nats-Msg-Id = a stable
// event id, consume with a durable pull consumer and explicit acks, and never re-publish a change
// that was applied from owner.assign (ownersync already knows it; re-publishing would only be
// recognised and dropped as an echo).
package platformsim

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ownersync/ownersync/libs/natsbus"
	"github.com/ownersync/ownersync/libs/streams"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
)

// User is a platform user.
type User struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	// Status is active, suspended or deleted.
	Status string `json:"status"`
	// Kind is user, extension or call_destination.
	Kind   string `json:"kind"`
	TeamID string `json:"team_id"`
	// ProvisionedFrom names the CRM user this user was auto-provisioned from, if any.
	ProvisionedFrom string `json:"provisioned_from,omitempty"`
}

// Record is a platform contact or lead.
type Record struct {
	ID   string `json:"id"`
	Type string `json:"type"` // contact or lead
	// Email identifies the record across systems.
	Email       string `json:"email"`
	OwnerUserID string `json:"owner_user_id"`
	// CRMRecordIDs maps provider to the CRM record id, when known.
	CRMRecordIDs map[string]string `json:"crm_record_ids,omitempty"`
	UpdatedAt    time.Time         `json:"updated_at"`
}

// Assignment is an applied owner.assign, for the demo and tests.
type Assignment struct {
	EventID     string    `json:"event_id"`
	RecordID    string    `json:"record_id"`
	Provider    string    `json:"provider"`
	CRMRecordID string    `json:"crm_record_id"`
	Outcome     string    `json:"outcome"`
	OwnerUserID string    `json:"owner_user_id"`
	Reason      string    `json:"reason"`
	Held        bool      `json:"held"`
	At          time.Time `json:"at"`
}

// Platform is one tenant's sandbox platform.
type Platform struct {
	Tenant string
	bus    *natsbus.Conn
	pub    *natsbus.Publisher
	log    *slog.Logger
	now    func() time.Time

	mu          sync.Mutex
	users       map[string]*User
	records     map[string]*Record
	assignments []Assignment
	// held are owner assignments to provisioned users without a team
	// (docs/architecture.md#rule-7-auto-provisioning).
	held []*ownersyncv1.OwnerAssign
}

// New returns a platform for tenant publishing through bus.
func New(tenant string, bus *natsbus.Conn, log *slog.Logger) *Platform {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Platform{
		Tenant:  tenant,
		bus:     bus,
		pub:     natsbus.NewPublisher(bus.JS, nil, 5*time.Second),
		log:     log.With("component", "platformsim", "tenant", tenant),
		now:     time.Now,
		users:   map[string]*User{},
		records: map[string]*Record{},
	}
}

func userToProto(u *User) *ownersyncv1.PlatformUser {
	st := map[string]ownersyncv1.PlatformUserStatus{
		"active":    ownersyncv1.PlatformUserStatus_PLATFORM_USER_STATUS_ACTIVE,
		"suspended": ownersyncv1.PlatformUserStatus_PLATFORM_USER_STATUS_SUSPENDED,
		"deleted":   ownersyncv1.PlatformUserStatus_PLATFORM_USER_STATUS_DELETED,
	}[u.Status]
	kind := map[string]ownersyncv1.PlatformUserKind{
		"user":             ownersyncv1.PlatformUserKind_PLATFORM_USER_KIND_USER,
		"extension":        ownersyncv1.PlatformUserKind_PLATFORM_USER_KIND_EXTENSION,
		"call_destination": ownersyncv1.PlatformUserKind_PLATFORM_USER_KIND_CALL_DESTINATION,
	}[u.Kind]
	return &ownersyncv1.PlatformUser{Id: u.ID, Email: u.Email, FirstName: u.FirstName, LastName: u.LastName,
		Status: st, Kind: kind, TeamId: u.TeamID}
}

func (p *Platform) meta() *ownersyncv1.EventMeta {
	id, _ := uuid.NewV7()
	now := timestamppb.New(p.now())
	return &ownersyncv1.EventMeta{EventId: "platformsim:" + id.String(), TenantId: p.Tenant, OccurredAt: now,
		ReceivedAt: now, Source: "platform"}
}

// validUser checks a user before it is stored.
func validUser(u *User) error {
	var p []string
	if u.ID == "" {
		p = append(p, "id is required")
	}
	switch u.Status {
	case "active", "suspended", "deleted":
	default:
		p = append(p, fmt.Sprintf("status %q must be active, suspended or deleted", u.Status))
	}
	switch u.Kind {
	case "user", "extension", "call_destination":
	default:
		p = append(p, fmt.Sprintf("kind %q must be user, extension or call_destination", u.Kind))
	}
	if len(p) > 0 {
		return fmt.Errorf("invalid user: %s", strings.Join(p, "; "))
	}
	return nil
}

// PutUser creates or replaces a user and publishes platform.user.changed. A user who gets a team
// releases the owner assignments held for them.
func (p *Platform) PutUser(ctx context.Context, u User) error {
	if u.Status == "" {
		u.Status = "active"
	}
	if u.Kind == "" {
		u.Kind = "user"
	}
	if err := validUser(&u); err != nil {
		return err
	}
	ev := &ownersyncv1.PlatformUserChanged{Meta: p.meta(), User: userToProto(&u)}
	if _, err := p.pub.Publish(ctx, streams.PlatformUserChanged(p.Tenant), ev.Meta.EventId, ev); err != nil {
		return err
	}
	p.mu.Lock()
	prev := p.users[u.ID]
	if prev != nil && u.ProvisionedFrom == "" {
		u.ProvisionedFrom = prev.ProvisionedFrom
	}
	p.users[u.ID] = &u
	var release []*ownersyncv1.OwnerAssign
	if u.TeamID != "" {
		kept := p.held[:0]
		for _, a := range p.held {
			if a.GetOwnerUserId() == u.ID {
				release = append(release, a)
			} else {
				kept = append(kept, a)
			}
		}
		p.held = kept
	}
	p.mu.Unlock()
	for _, a := range release {
		p.apply(a)
	}
	return nil
}

// PutRecord creates or replaces a record; an owner change is published as platform.owner.changed.
func (p *Platform) PutRecord(ctx context.Context, r Record) error {
	if r.ID == "" || (r.Type != "contact" && r.Type != "lead") {
		return fmt.Errorf("invalid record: id is required and type must be contact or lead")
	}
	p.mu.Lock()
	prev := p.records[r.ID]
	p.mu.Unlock()
	if prev == nil || prev.OwnerUserID != r.OwnerUserID {
		rt := ownersyncv1.RecordType_RECORD_TYPE_CONTACT
		if r.Type == "lead" {
			rt = ownersyncv1.RecordType_RECORD_TYPE_LEAD
		}
		ev := &ownersyncv1.PlatformOwnerChanged{Meta: p.meta(), RecordType: rt, PlatformRecordId: r.ID,
			RecordEmail: r.Email, OwnerUserId: r.OwnerUserID, CrmRecordIds: r.CRMRecordIDs}
		if _, err := p.pub.Publish(ctx, streams.PlatformOwnerChanged(p.Tenant), ev.Meta.EventId, ev); err != nil {
			return err
		}
	}
	r.UpdatedAt = p.now().UTC()
	p.mu.Lock()
	p.records[r.ID] = &r
	p.mu.Unlock()
	return nil
}

// Users returns the users sorted by id.
func (p *Platform) Users() []User {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]User, 0, len(p.users))
	for _, u := range p.users {
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// User returns one user.
func (p *Platform) User(id string) (User, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.users[id]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// Records returns the records sorted by id.
func (p *Platform) Records() []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Record, 0, len(p.records))
	for _, r := range p.records {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Record returns one record.
func (p *Platform) Record(id string) (Record, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.records[id]
	if !ok {
		return Record{}, false
	}
	return *r, true
}

// Assignments returns the owner assignments applied so far, oldest first.
func (p *Platform) Assignments() []Assignment {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Assignment(nil), p.assignments...)
}

// Run consumes owner.assign and platform.user.provision for the tenant until ctx ends.
func (p *Platform) Run(ctx context.Context) error {
	assign, err := natsbus.NewConsumer(ctx, p.bus, natsbus.ConsumerOptions{
		Service: "platformsim",
		Stream:  streams.Sync,
		// Durable per tenant; AckWait 30 s and MaxDeliver 5 are plenty for in-memory work.
		Config: jetstream.ConsumerConfig{Durable: "platformsim-assign-" + p.Tenant,
			FilterSubjects: []string{streams.OwnerAssign(p.Tenant)}, AckWait: 30 * time.Second, MaxDeliver: 5},
		Logger: p.log,
	})
	if err != nil {
		return err
	}
	provision, err := natsbus.NewConsumer(ctx, p.bus, natsbus.ConsumerOptions{
		Service: "platformsim",
		Stream:  streams.Platform,
		Config: jetstream.ConsumerConfig{Durable: "platformsim-provision-" + p.Tenant,
			FilterSubjects: []string{streams.PlatformUserProvision(p.Tenant)}, AckWait: 30 * time.Second, MaxDeliver: 5},
		Logger: p.log,
	})
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- assign.Run(ctx, p.handleAssign) }()
	go func() { errc <- provision.Run(ctx, p.handleProvision) }()
	err = <-errc
	if err2 := <-errc; err == nil {
		err = err2
	}
	return err
}

func (p *Platform) handleAssign(_ context.Context, m *natsbus.Message) error {
	var a ownersyncv1.OwnerAssign
	if err := m.Decode(&a); err != nil {
		return err
	}
	p.mu.Lock()
	owner := p.users[a.GetOwnerUserId()]
	hold := a.GetOutcome() == ownersyncv1.OwnerAssignOutcome_OWNER_ASSIGN_OUTCOME_ASSIGNED &&
		owner != nil && owner.ProvisionedFrom != "" && owner.TeamID == ""
	if hold {
		p.held = append(p.held, &a)
		p.assignments = append(p.assignments, Assignment{EventID: a.GetMeta().GetEventId(), CRMRecordID: a.GetCrmRecordId(),
			Outcome: a.GetOutcome().String(), OwnerUserID: a.GetOwnerUserId(), Held: true, At: p.now().UTC(),
			Reason: "held: the provisioned user has no team yet"})
	}
	p.mu.Unlock()
	if !hold {
		p.apply(&a)
	}
	return nil
}

// apply sets the record's owner (creating the record when the platform does not know it yet). It
// publishes nothing: the change came from ownersync.
func (p *Platform) apply(a *ownersyncv1.OwnerAssign) {
	provider := strings.TrimPrefix(strings.ToLower(a.GetSourceProvider().String()), "provider_")
	p.mu.Lock()
	defer p.mu.Unlock()
	var rec *Record
	if id := a.GetPlatformRecordId(); id != "" {
		rec = p.records[id]
	}
	if rec == nil {
		for _, r := range p.records {
			if r.CRMRecordIDs[provider] == a.GetCrmRecordId() ||
				(a.GetRecordEmail() != "" && strings.EqualFold(r.Email, a.GetRecordEmail())) {
				rec = r
				break
			}
		}
	}
	if rec == nil {
		typ := "contact"
		if a.GetRecordType() == ownersyncv1.RecordType_RECORD_TYPE_LEAD {
			typ = "lead"
		}
		rec = &Record{ID: "pr-" + provider + "-" + a.GetCrmRecordId(), Type: typ, Email: a.GetRecordEmail(), CRMRecordIDs: map[string]string{}}
		p.records[rec.ID] = rec
	}
	if rec.CRMRecordIDs == nil {
		rec.CRMRecordIDs = map[string]string{}
	}
	rec.CRMRecordIDs[provider] = a.GetCrmRecordId()
	if a.GetOutcome() == ownersyncv1.OwnerAssignOutcome_OWNER_ASSIGN_OUTCOME_ASSIGNED {
		rec.OwnerUserID = a.GetOwnerUserId()
	}
	rec.UpdatedAt = p.now().UTC()
	p.assignments = append(p.assignments, Assignment{EventID: a.GetMeta().GetEventId(), RecordID: rec.ID, Provider: provider,
		CRMRecordID: a.GetCrmRecordId(), Outcome: a.GetOutcome().String(), OwnerUserID: a.GetOwnerUserId(),
		Reason: a.GetReason(), At: rec.UpdatedAt})
}

func (p *Platform) handleProvision(ctx context.Context, m *natsbus.Message) error {
	var req ownersyncv1.PlatformUserProvision
	if err := m.Decode(&req); err != nil {
		return err
	}
	cu := req.GetCrmUser()
	if cu.GetId() == "" {
		return natsbus.Permanent(fmt.Errorf("provision request without a CRM user id"))
	}
	provider := strings.TrimPrefix(strings.ToLower(req.GetProvider().String()), "provider_")
	id := "prov-" + provider + "-" + cu.GetId()
	if _, exists := p.User(id); exists {
		return nil // idempotent: provisioned already
	}
	return p.PutUser(ctx, User{ID: id, Email: cu.GetEmail(), FirstName: cu.GetFirstName(), LastName: cu.GetLastName(),
		Status: "active", Kind: "user", ProvisionedFrom: provider + ":" + cu.GetId()})
}
