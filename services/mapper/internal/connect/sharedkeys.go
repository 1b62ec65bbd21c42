package connect

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ownersync/ownersync/libs/crmconn"
	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/libs/tenant"
)

// KeyStore is what the shared-key migration needs of the tenant store (tenantstore.Store).
type KeyStore interface {
	List(ctx context.Context) ([]tenant.Tenant, error)
	Get(ctx context.Context, id string) (*tenant.Tenant, error)
	// SwapSharedKey replaces the keys when current and previous are still the stored ones.
	SwapSharedKey(ctx context.Context, id, current, previous string, next tenant.SFConfig) (bool, error)
}

// Migration is what MigrateSharedKeys did.
type Migration struct {
	// Migrated names the tenants whose keys this call turned into digests.
	Migrated []string
	// Failed names the tenants whose current key could not be read (unresolvable reference): their
	// key stays as it was, ingress answers 503 for it, and rotating the key ends it.
	Failed map[string]error
	// Keyless names the tenants with an enabled Salesforce connection and no key: ingress refuses
	// their messages while keys are required; the console and API flag them ("generate a key").
	Keyless []string
}

// MigrateSharedKeys brings every tenant to the one shared-key model (issue 13 item 3): a
// Salesforce shared key kept as a secret reference — stored: (encrypted by Connect Salesforce
// before the one model), env: or file: (set by the operator) — is read once, replaced by its
// SHA-256 digest (the key the org's Outbound Messages carry keeps working), and a stored value is
// deleted. A previous key still in its overlap is migrated alike; one that cannot be read, or whose
// overlap ended, is dropped. mapper runs it at start, before serving.
//
// It is idempotent and safe with two replicas at once: the digest is written with a
// compare-and-set on the old references (KeyStore.SwapSharedKey), the loser re-reads and finds
// the digest; the stored value is deleted only after a digest replaced it (and again at any later
// run, for a replica that stopped in between).
func MigrateSharedKeys(ctx context.Context, ks KeyStore, secrets crmconn.Resolver, stored *secretbox.Store, now time.Time) (Migration, error) {
	m := Migration{Failed: map[string]error{}}
	all, err := ks.List(ctx)
	if err != nil {
		return m, err
	}
	for i := range all {
		t := &all[i]
		for attempt := 0; t.Salesforce != nil && attempt < 3; attempt++ {
			sf := t.Salesforce
			if !tenant.IsLegacySharedKeyRef(sf.SharedKeyRef) && !tenant.IsLegacySharedKeyRef(sf.PreviousSharedKeyRef) {
				break
			}
			next, err := migrated(*sf, secrets, now)
			if err != nil {
				// Another replica may have migrated it and deleted the stored value meanwhile.
				if fresh, gerr := ks.Get(ctx, t.ID); gerr == nil && fresh.Salesforce != nil && fresh.Salesforce.SharedKeyRef != sf.SharedKeyRef {
					t = fresh
					continue
				}
				m.Failed[t.ID] = err
				break
			}
			ok, err := ks.SwapSharedKey(ctx, t.ID, sf.SharedKeyRef, sf.PreviousSharedKeyRef, next)
			if err != nil {
				return m, err
			}
			if ok {
				m.Migrated = append(m.Migrated, t.ID)
				t.Salesforce = &next
				break
			}
			if t, err = ks.Get(ctx, t.ID); err != nil {
				if errors.Is(err, tenant.ErrNotFound) {
					break
				}
				return m, err
			}
		}
		if t.Salesforce.KeyMissing() {
			m.Keyless = append(m.Keyless, t.ID)
		}
		// The value Connect Salesforce stored goes once no reference names it any more.
		if stored != nil && t.Salesforce != nil {
			ref := secretbox.Ref(t.ID, SalesforceSharedKey)
			if t.Salesforce.SharedKeyRef != ref && t.Salesforce.PreviousSharedKeyRef != ref {
				if err := stored.Delete(ctx, t.ID, SalesforceSharedKey); err != nil {
					return m, err
				}
			}
		}
	}
	return m, nil
}

// migrated is sf with its legacy key references replaced by their digests.
func migrated(sf tenant.SFConfig, secrets crmconn.Resolver, now time.Time) (tenant.SFConfig, error) {
	digest := func(ref string) (string, error) {
		if !tenant.IsLegacySharedKeyRef(ref) {
			return ref, nil
		}
		if secrets == nil {
			return "", errors.New("no secret resolver to read the key")
		}
		key, err := secrets.Resolve(ref)
		if err != nil {
			return "", fmt.Errorf("read shared key %s: %w", ref, err)
		}
		if key == "" {
			return "", fmt.Errorf("shared key %s is empty", ref)
		}
		return tenant.SharedKeyDigest(key), nil
	}
	var err error
	if sf.SharedKeyRef, err = digest(sf.SharedKeyRef); err != nil {
		return sf, err
	}
	if sf.SharedKeyCreatedAt.IsZero() && sf.SharedKeyRef != "" {
		sf.SharedKeyCreatedAt = now.UTC().Truncate(time.Millisecond)
	}
	if sf.PreviousSharedKeyRef != "" {
		prev, err := digest(sf.PreviousSharedKeyRef)
		if err != nil || !now.Before(sf.PreviousSharedKeyUntil) {
			prev = "" // unreadable or over: the rotation is finished
		}
		sf.PreviousSharedKeyRef = prev
		if prev == "" {
			sf.PreviousSharedKeyUntil = time.Time{}
		}
	}
	return sf, nil
}
