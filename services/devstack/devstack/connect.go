package devstack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ownersync/ownersync/libs/secretbox"
	"github.com/ownersync/ownersync/workbench/crmsim/sandbox"
)

// connectEnv configures the console's Connect flows against the demo sandboxes (issue 16): the
// sandboxes are the apps' authorize and API hosts, and the stored-token key lives in the data
// directory so tokens survive a restart of the stack.
func (s *Stack) connectEnv(ingressURL string) (map[string]string, error) {
	if s.demo == nil || s.demo.crm == nil {
		return nil, nil
	}
	keyFile := filepath.Join(s.Opts.DataDir, "stored-secret-keys")
	b, err := os.ReadFile(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		b = []byte(secretbox.NewKey("devstack1"))
		err = os.WriteFile(keyFile, b, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("stored secret key %s: %w", keyFile, err)
	}
	crm := s.demo.crm
	seed := sandbox.Demo()
	env := map[string]string{
		"OWNERSYNC_STORED_SECRET_KEYS":           strings.TrimSpace(string(b)),
		"OWNERSYNC_INGRESS_URL":                  ingressURL,
		"OWNERSYNC_HUBSPOT_APP_CLIENT_ID":        "ownersync-demo-hubspot",
		"OWNERSYNC_HUBSPOT_APP_CLIENT_SECRET":    seed.HubSpot.ClientSecret,
		"OWNERSYNC_HUBSPOT_APP_ID":               fmt.Sprint(seed.HubSpot.AppID),
		"OWNERSYNC_HUBSPOT_AUTHORIZE_URL":        crm.HubSpotURL + "/oauth/authorize",
		"OWNERSYNC_HUBSPOT_API_URL":              crm.HubSpotURL,
		"OWNERSYNC_SALESFORCE_APP_CLIENT_ID":     seed.Salesforce.ClientID,
		"OWNERSYNC_SALESFORCE_APP_CLIENT_SECRET": seed.Salesforce.ClientSecret,
		"OWNERSYNC_SALESFORCE_SANDBOX_ORIGINS":   crm.SalesforceURL,
	}
	return env, nil
}
