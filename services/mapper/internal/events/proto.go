package events

import (
	"github.com/ownersync/ownersync/libs/provider"
	"github.com/ownersync/ownersync/libs/provider/providerpb"
	ownersyncv1 "github.com/ownersync/ownersync/proto/gen/go/ownersync/v1"
	"github.com/ownersync/ownersync/services/mapper/internal/mapping"
)

// mappingChanged converts a change to its event (without meta).
func mappingChanged(ch mapping.Change) *ownersyncv1.MappingChanged {
	return &ownersyncv1.MappingChanged{
		Provider: Provider(ch.Provider), PlatformUserId: ch.PlatformUserID, CrmUserId: ch.CRMUserID,
		PreviousCrmUserId: ch.PreviousCRMUserID, Email: ch.Email, Status: Status(ch.Status),
		Change: Kind(ch.Kind), Reason: ch.Reason, MadeBy: MadeBy(ch.MadeBy),
	}
}

// Provider converts a provider.
func Provider(p provider.Provider) ownersyncv1.Provider { return providerpb.ToProto(p) }

// ProviderName converts a provider enum ("" for an unknown one).
func ProviderName(p ownersyncv1.Provider) provider.Provider {
	name, _ := providerpb.FromProto(p)
	return name
}

// Status converts a mapping status.
func Status(s mapping.Status) ownersyncv1.MappingStatus {
	switch s {
	case mapping.StatusSynced:
		return ownersyncv1.MappingStatus_MAPPING_STATUS_SYNCED
	case mapping.StatusConflict:
		return ownersyncv1.MappingStatus_MAPPING_STATUS_CONFLICT
	case mapping.StatusError:
		return ownersyncv1.MappingStatus_MAPPING_STATUS_ERROR
	case mapping.StatusPendingTeam:
		return ownersyncv1.MappingStatus_MAPPING_STATUS_PENDING_TEAM
	}
	return ownersyncv1.MappingStatus_MAPPING_STATUS_UNSPECIFIED
}

// Kind converts a change kind.
func Kind(k mapping.ChangeKind) ownersyncv1.MappingChange {
	switch k {
	case mapping.ChangeCreated:
		return ownersyncv1.MappingChange_MAPPING_CHANGE_CREATED
	case mapping.ChangeRemapped:
		return ownersyncv1.MappingChange_MAPPING_CHANGE_REMAPPED
	case mapping.ChangeRemoved:
		return ownersyncv1.MappingChange_MAPPING_CHANGE_REMOVED
	case mapping.ChangeConflict:
		return ownersyncv1.MappingChange_MAPPING_CHANGE_CONFLICT
	case mapping.ChangeError:
		return ownersyncv1.MappingChange_MAPPING_CHANGE_ERROR
	case mapping.ChangeResolved:
		return ownersyncv1.MappingChange_MAPPING_CHANGE_RESOLVED
	}
	return ownersyncv1.MappingChange_MAPPING_CHANGE_UNSPECIFIED
}

// MadeBy converts how a mapping was made.
func MadeBy(m mapping.MadeBy) ownersyncv1.MadeBy {
	switch m {
	case mapping.MadeByEmail:
		return ownersyncv1.MadeBy_MADE_BY_EMAIL
	case mapping.MadeByManual:
		return ownersyncv1.MadeBy_MADE_BY_MANUAL
	case mapping.MadeByRemapInactive:
		return ownersyncv1.MadeBy_MADE_BY_REMAP_INACTIVE
	case mapping.MadeByAutoProvisioned:
		return ownersyncv1.MadeBy_MADE_BY_AUTO_PROVISIONED
	}
	return ownersyncv1.MadeBy_MADE_BY_UNSPECIFIED
}
