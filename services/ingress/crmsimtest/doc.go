// Package crmsimtest holds tests only: they check that what the CRM sandboxes (workbench/crmsim) send
// — Salesforce Outbound Messages and signed HubSpot webhooks, fired by real writes through the
// real API clients — is accepted by ingress's SOAP parser, signature verifier, webhook decoder and
// webhook handler. It lives inside the ingress module so that it may import ingress's internal
// packages.
package crmsimtest
