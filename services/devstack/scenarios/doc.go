// Package scenarios holds the whole-system tests of ownersync (issue 8): one scenario per story of
// the product brief and fault tests, each run against the dev stack (embedded NATS, FerretDB, the
// SMTP sink, the CRM and platform sandboxes and the four services). The package has no non-test
// code besides this comment; the tests are in *_test.go, the long fault runs behind the soak tag.
package scenarios
