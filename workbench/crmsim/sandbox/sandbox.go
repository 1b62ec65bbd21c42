// Package sandbox starts the Salesforce and HubSpot sandboxes together from one seed file. It is
// what cmd/crmsim and devstack use; tests usually build sfsim.Org and hssim.Account directly.
//
// The seed file is YAML (JSON works too, being YAML). Both top-level keys are optional:
//
//	salesforce:
//	  orgId: 00D5g000004XyZaEAK          # optional, 18 characters
//	  instanceUrl: ""                    # default: the listening URL
//	  clientId: demo-client              # empty: any client accepted
//	  clientSecret: demo-secret
//	  runAsUsername: integration@acme.example
//	  jwtPublicKeyFile: ""               # PEM public key for the JWT bearer flow
//	  jwtAcceptUnverified: false
//	  dailyLimit: 100000
//	  burstLimit: 0                      # per burstInterval; 0 = none
//	  burstInterval: 1s
//	  latency: 0s
//	  outbound: {url: "http://…/sfdc/om", key: "", baseDelay: 1s, maxDelay: 2h, window: 24h}
//	  users:    [{id, username, email, firstName, lastName, isActive, userType, federationIdentifier}]
//	  queues:   [{id, name, email, sobjectTypes: [Lead]}]
//	  contacts: [{id, email, firstName, lastName, owner, deleted}]   # owner: id, username, email or queue name
//	  leads:    [{id, email, firstName, lastName, company, owner, deleted}]
//	hubspot:
//	  portalId: 4412345
//	  appId: 3100456
//	  accessTokens: [pat-na1-…]
//	  clientId: ""
//	  clientSecret: demo-client-secret   # signs webhooks
//	  refreshTokens: []
//	  burstLimit: 190
//	  burstInterval: 10s
//	  dailyLimit: 625000
//	  latency: 0s
//	  acceptArchivedOwners: false
//	  partialWithoutTraceId: false
//	  webhooks: {targetUrl: "http://…/hubspot/webhooks", baseDelay: 1s, maxRetries: 10}
//	  owners:   [{id, email, type, firstName, lastName, userId, archived, teams: [{id, name, primary}]}]
//	  contacts: [{id, email, firstname, lastname, owner, properties: {…}}]   # owner: owner id or email
package sandbox

import (
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ownersync/ownersync/workbench/crmsim/hssim"
	"github.com/ownersync/ownersync/workbench/crmsim/sfsim"
)

// File is a seed file.
type File struct {
	Salesforce *Salesforce `yaml:"salesforce,omitempty"`
	HubSpot    *HubSpot    `yaml:"hubspot,omitempty"`
}

// Salesforce is the salesforce section: org settings plus sfsim.Seed data.
type Salesforce struct {
	sfsim.Seed          `yaml:",inline"`
	InstanceURL         string               `yaml:"instanceUrl,omitempty"`
	ClientID            string               `yaml:"clientId,omitempty"`
	ClientSecret        string               `yaml:"clientSecret,omitempty"`
	RunAsUsername       string               `yaml:"runAsUsername,omitempty"`
	JWTPublicKeyFile    string               `yaml:"jwtPublicKeyFile,omitempty"`
	JWTAcceptUnverified bool                 `yaml:"jwtAcceptUnverified,omitempty"`
	DailyLimit          int64                `yaml:"dailyLimit,omitempty"`
	BurstLimit          int                  `yaml:"burstLimit,omitempty"`
	BurstInterval       time.Duration        `yaml:"burstInterval,omitempty"`
	Latency             time.Duration        `yaml:"latency,omitempty"`
	Outbound            sfsim.OutboundConfig `yaml:"outbound,omitempty"`
}

// HubSpot is the hubspot section: account settings plus hssim.Seed data.
type HubSpot struct {
	hssim.Seed            `yaml:",inline"`
	AppID                 int64               `yaml:"appId,omitempty"`
	AccessTokens          []string            `yaml:"accessTokens,omitempty"`
	ClientID              string              `yaml:"clientId,omitempty"`
	ClientSecret          string              `yaml:"clientSecret,omitempty"`
	RefreshTokens         []string            `yaml:"refreshTokens,omitempty"`
	BurstLimit            int                 `yaml:"burstLimit,omitempty"`
	BurstInterval         time.Duration       `yaml:"burstInterval,omitempty"`
	DailyLimit            int64               `yaml:"dailyLimit,omitempty"`
	Latency               time.Duration       `yaml:"latency,omitempty"`
	AcceptArchivedOwners  bool                `yaml:"acceptArchivedOwners,omitempty"`
	PartialWithoutTraceID bool                `yaml:"partialWithoutTraceId,omitempty"`
	Webhooks              hssim.WebhookConfig `yaml:"webhooks,omitempty"`
}

// Parse reads a seed file's contents (YAML or JSON).
func Parse(data []byte) (File, error) {
	var f File
	if err := yaml.Unmarshal(data, &f); err != nil {
		return File{}, fmt.Errorf("parse seed: %w", err)
	}
	return f, nil
}

// ReadFile reads and parses a seed file.
func ReadFile(path string) (File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return File{}, fmt.Errorf("read seed: %w", err)
	}
	return Parse(data)
}

// SalesforceConfig turns the salesforce section into an sfsim.Config.
func (s *Salesforce) SalesforceConfig(logger *slog.Logger) (sfsim.Config, error) {
	cfg := sfsim.Config{
		OrgID: s.OrgID, InstanceURL: s.InstanceURL, ClientID: s.ClientID, ClientSecret: s.ClientSecret,
		RunAsUsername: s.RunAsUsername, JWTAcceptUnverified: s.JWTAcceptUnverified, DailyLimit: s.DailyLimit,
		BurstLimit: s.BurstLimit, BurstInterval: s.BurstInterval, Latency: s.Latency, Outbound: s.Outbound, Logger: logger,
	}
	if s.JWTPublicKeyFile != "" {
		pemBytes, err := os.ReadFile(s.JWTPublicKeyFile)
		if err != nil {
			return cfg, fmt.Errorf("read jwt public key: %w", err)
		}
		block, _ := pem.Decode(pemBytes)
		if block == nil {
			return cfg, errors.New("jwt public key: no PEM block")
		}
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			cert, cerr := x509.ParseCertificate(block.Bytes)
			if cerr != nil {
				return cfg, fmt.Errorf("jwt public key: %w", err)
			}
			key = cert.PublicKey
		}
		cfg.JWTPublicKey = key
	}
	return cfg, nil
}

// HubSpotConfig turns the hubspot section into an hssim.Config.
func (h *HubSpot) HubSpotConfig(logger *slog.Logger) hssim.Config {
	return hssim.Config{
		PortalID: h.PortalID, AppID: h.AppID, AccessTokens: h.AccessTokens, ClientID: h.ClientID,
		ClientSecret: h.ClientSecret, RefreshTokens: h.RefreshTokens, BurstLimit: h.BurstLimit,
		BurstInterval: h.BurstInterval, DailyLimit: h.DailyLimit, Latency: h.Latency,
		AcceptArchivedOwners: h.AcceptArchivedOwners, PartialWithoutTraceID: h.PartialWithoutTraceID,
		Webhooks: h.Webhooks, Logger: logger,
	}
}

// Options are the listen addresses ("" = 127.0.0.1:0) and the logger.
type Options struct {
	SalesforceAddr string
	HubSpotAddr    string
	Logger         *slog.Logger
}

// Sandboxes are the running sandboxes; either is nil when its section was absent.
type Sandboxes struct {
	Salesforce    *sfsim.Org
	SalesforceURL string
	HubSpot       *hssim.Account
	HubSpotURL    string
}

// Start builds, seeds and starts the sandboxes the file describes.
func Start(f File, opts Options) (*Sandboxes, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	sb := &Sandboxes{}
	if f.Salesforce != nil {
		cfg, err := f.Salesforce.SalesforceConfig(opts.Logger.With("sandbox", "salesforce"))
		if err != nil {
			return nil, err
		}
		org, err := sfsim.New(cfg)
		if err != nil {
			return nil, err
		}
		if err := org.Load(f.Salesforce.Seed); err != nil {
			_ = org.Close()
			return nil, err
		}
		if sb.SalesforceURL, err = org.Start(opts.SalesforceAddr); err != nil {
			_ = org.Close()
			return nil, err
		}
		sb.Salesforce = org
	}
	if f.HubSpot != nil {
		acct, err := hssim.New(f.HubSpot.HubSpotConfig(opts.Logger.With("sandbox", "hubspot")))
		if err != nil {
			_ = sb.Close()
			return nil, err
		}
		if err := acct.Load(f.HubSpot.Seed); err != nil {
			_ = acct.Close()
			_ = sb.Close()
			return nil, err
		}
		if sb.HubSpotURL, err = acct.Start(opts.HubSpotAddr); err != nil {
			_ = acct.Close()
			_ = sb.Close()
			return nil, err
		}
		sb.HubSpot = acct
	}
	return sb, nil
}

// Close stops both sandboxes.
func (sb *Sandboxes) Close() error {
	var errs []error
	if sb.Salesforce != nil {
		errs = append(errs, sb.Salesforce.Close())
	}
	if sb.HubSpot != nil {
		errs = append(errs, sb.HubSpot.Close())
	}
	return errors.Join(errs...)
}

//go:embed demo.yaml
var demo []byte

// Demo returns the demo seed: a few dozen users and owners on each side covering every mapping
// case (matches, different-case emails, duplicate emails, a deactivated user with a re-created
// active one, an archived owner, a queue and a queue-type owner, CRM-only users), with contacts
// and leads owned by them. Platform-facing users have emails <first>.<last>@acme.example.
func Demo() File {
	f, err := Parse(demo)
	if err != nil {
		panic("crmsim demo seed: " + err.Error())
	}
	return f
}
