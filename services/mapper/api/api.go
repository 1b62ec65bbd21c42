// Package api holds the admin API's OpenAPI document, embedded so that mapper serves it at
// GET /v1/openapi.yaml and tests check it against the registered routes.
package api

import _ "embed"

// OpenAPI is the OpenAPI 3 document of mapper's admin API.
//
//go:embed openapi.yaml
var OpenAPI []byte
