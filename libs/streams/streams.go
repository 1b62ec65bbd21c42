// Package streams names the JetStream streams, subjects, consumers and KV buckets of ownersync
// (docs/architecture.md#events-and-subjects) and builds their configurations from data, so that
// every service declares the same topology and one embedded server and an R3 cluster run the same
// code.
package streams

import (
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownersync/ownersync/libs/provider"
)

// Stream names.
const (
	CRM      = "CRM"
	Platform = "PLATFORM"
	Sync     = "SYNC"
	DLQ      = "DLQ"
)

// KV bucket names.
const (
	MappingsBucket = "ownersync_mappings"
	RecordsBucket  = "ownersync_records"
	// CoordBucket holds what replicas of a service agree on (package libs/coord): the CRM API
	// budgets of the writers, the mappers' rule leases and scheduler firings, the notifiers'
	// digest and report claims.
	CoordBucket    = "ownersync_coord"
	CRMUsersBucket = "ownersync_crm_users"
)

// CoordMaxAge is how long an untouched key of CoordBucket lives: longer than any hold or claim
// (a daily quota hold lasts until the next midnight).
const CoordMaxAge = 72 * time.Hour

// Header names set on every ownersync message besides Nats-Msg-Id and the trace context.
const (
	HeaderContentType = "Content-Type"
	HeaderEventType   = "Ownersync-Event-Type"
	ContentTypeProto  = "application/protobuf"

	// HeaderEmailReport on a report.sync message asks for a dry run's report to be emailed
	// ("true"); without it the notifier records a dry run's report and sends nothing.
	HeaderEmailReport = "Ownersync-Email-Report"

	// Dead-letter headers: where the message came from and why it died.
	HeaderDLQSubject  = "Ownersync-Dlq-Subject"
	HeaderDLQStream   = "Ownersync-Dlq-Stream"
	HeaderDLQSequence = "Ownersync-Dlq-Sequence"
	HeaderDLQError    = "Ownersync-Dlq-Error"
	HeaderDLQService  = "Ownersync-Dlq-Service"
	HeaderDLQMsgID    = "Ownersync-Dlq-Msg-Id"
	HeaderDLQTime     = "Ownersync-Dlq-Time"
)

// Subject builders. Tenant ids are validated before use (tenant.ValidID); provider is a
// provider.Provider's name.

// CrmOwnerChanged is crm.owner.changed.<tenant>.<provider>.
func CrmOwnerChanged(tenant string, p provider.Provider) string {
	return "crm.owner.changed." + tenant + "." + string(p)
}

// CrmUserChanged is crm.user.changed.<tenant>.<provider>.
func CrmUserChanged(tenant string, p provider.Provider) string {
	return "crm.user.changed." + tenant + "." + string(p)
}

// PlatformOwnerChanged is platform.owner.changed.<tenant>.
func PlatformOwnerChanged(tenant string) string { return "platform.owner.changed." + tenant }

// PlatformUserChanged is platform.user.changed.<tenant>.
func PlatformUserChanged(tenant string) string { return "platform.user.changed." + tenant }

// PlatformUserProvision is platform.user.provision.<tenant>.
func PlatformUserProvision(tenant string) string { return "platform.user.provision." + tenant }

// MappingChanged is mapping.changed.<tenant>.<provider>.
func MappingChanged(tenant string, p provider.Provider) string {
	return "mapping.changed." + tenant + "." + string(p)
}

// OwnerAssign is owner.assign.<tenant>.
func OwnerAssign(tenant string) string { return "owner.assign." + tenant }

// ReportSync is report.sync.<tenant>.
func ReportSync(tenant string) string { return "report.sync." + tenant }

// Alert is alert.<tenant>.
func Alert(tenant string) string { return "alert." + tenant }

// UserRefresh is user.refresh.<tenant>.<provider>.
func UserRefresh(tenant string, p provider.Provider) string {
	return "user.refresh." + tenant + "." + string(p)
}

// DeadLetter is dlq.<service>.<tenant>.
func DeadLetter(service, tenant string) string { return "dlq." + service + "." + tenant }

// TenantOf returns the tenant token of an ownersync subject, or "" when the subject has none.
// It knows every subject family of docs/architecture.md#subjects-and-streams.
func TenantOf(subject string) string {
	p := strings.Split(subject, ".")
	var i int
	switch {
	case len(p) >= 4 && (p[0] == "crm" || p[0] == "platform"):
		i = 3
	case len(p) >= 3 && (p[0] == "mapping" || p[0] == "owner" || p[0] == "report" || p[0] == "user" || p[0] == "dlq"):
		i = 2
	case len(p) >= 2 && p[0] == "alert":
		i = 1
	default:
		return ""
	}
	return p[i]
}

// ProviderOf returns the provider token of a subject that carries one (crm.*, mapping.*, user.*), or "".
func ProviderOf(subject string) provider.Provider {
	p := strings.Split(subject, ".")
	switch {
	case len(p) >= 5 && p[0] == "crm":
		return provider.Provider(p[4])
	case len(p) >= 4 && (p[0] == "mapping" || p[0] == "user"):
		return provider.Provider(p[3])
	}
	return ""
}

// Options size the streams and buckets; zero values take the defaults of
// docs/architecture.md#subjects-and-streams.
type Options struct {
	// Replicas is the stream and bucket replica count (1 embedded, 3 in production).
	Replicas int
	// MaxAge bounds how long messages are kept (default 7 days; DLQ 30 days).
	MaxAge time.Duration
	// CRMDuplicates is the CRM stream's duplicate window (default 24 h, Salesforce's retry window).
	CRMDuplicates time.Duration
	// PlatformDuplicates is the PLATFORM stream's duplicate window (default 10 min).
	PlatformDuplicates time.Duration
	// SyncDuplicates is the SYNC and DLQ streams' duplicate window (default 1 h).
	SyncDuplicates time.Duration
	// MemoryStorage selects memory storage (tests only); default is file storage.
	MemoryStorage bool
}

func (o Options) withDefaults() Options {
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 7 * 24 * time.Hour
	}
	if o.CRMDuplicates <= 0 {
		o.CRMDuplicates = 24 * time.Hour
	}
	if o.PlatformDuplicates <= 0 {
		o.PlatformDuplicates = 10 * time.Minute
	}
	if o.SyncDuplicates <= 0 {
		o.SyncDuplicates = time.Hour
	}
	return o
}

// Configs returns the four stream configurations. Each captures whole subject prefixes so a new
// subject such as platform.user.provision.<tenant> needs no stream change.
func Configs(o Options) []jetstream.StreamConfig {
	o = o.withDefaults()
	storage := jetstream.FileStorage
	if o.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	mk := func(name, desc string, subjects []string, dup, age time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    subjects,
			Retention:   jetstream.LimitsPolicy,
			Storage:     storage,
			Replicas:    o.Replicas,
			MaxAge:      age,
			Duplicates:  dup,
			Discard:     jetstream.DiscardOld,
		}
	}
	return []jetstream.StreamConfig{
		mk(CRM, "owner and user changes from Salesforce and HubSpot", []string{"crm.>"}, o.CRMDuplicates, o.MaxAge),
		mk(Platform, "owner and user changes from the platform", []string{"platform.>"}, o.PlatformDuplicates, o.MaxAge),
		mk(Sync, "mapping changes, owner assignments, reports, alerts and refresh requests",
			[]string{"mapping.>", "owner.>", "report.>", "alert.>", "user.>"}, o.SyncDuplicates, o.MaxAge),
		mk(DLQ, "dead letters of every consumer, replayable", []string{"dlq.>"}, o.SyncDuplicates, 4*o.MaxAge+2*24*time.Hour),
	}
}

// KVConfigs returns the KV bucket configurations of docs/architecture.md#kv-buckets.
func KVConfigs(o Options) []jetstream.KeyValueConfig {
	o = o.withDefaults()
	storage := jetstream.FileStorage
	if o.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	return []jetstream.KeyValueConfig{
		{Bucket: MappingsBucket, Description: "current mappings per tenant and provider (mapper)", History: 1, Replicas: o.Replicas, Storage: storage},
		{Bucket: RecordsBucket, Description: "last applied and last written owner per record (writer)", History: 1, Replicas: o.Replicas, Storage: storage},
		{Bucket: CoordBucket, Description: "what replicas agree on: CRM budgets, rule leases, scheduler firings, digest and report claims",
			History: 1, TTL: CoordMaxAge, Replicas: o.Replicas, Storage: storage},
		{Bucket: CRMUsersBucket, Description: "every known CRM user's kind and active flag per tenant and provider (mapper)", History: 1, Replicas: o.Replicas, Storage: storage},
	}
}

// KVKey joins key tokens with dots after making each token safe for a KV key.
func KVKey(tokens ...string) string {
	for i, t := range tokens {
		tokens[i] = kvToken(t)
	}
	return strings.Join(tokens, ".")
}

// kvToken keeps [A-Za-z0-9_-=] and escapes everything else as _xx so that emails and ids are valid keys.
func kvToken(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '=':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}
