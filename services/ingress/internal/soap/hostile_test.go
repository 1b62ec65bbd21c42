package soap

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const hostileSize = 1 << 20

// envelope wraps a header and notifications in an Outbound Message envelope.
func envelope(header, notifications string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<soapenv:Header>` + header + `</soapenv:Header>
<soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound">
<OrganizationId>00D5g000004XyZaEAK</OrganizationId>` + notifications + `</notifications></soapenv:Body></soapenv:Envelope>`)
}

func notification(i int, fields string) string {
	return fmt.Sprintf(`<Notification><Id>04l5g00000Ab%03d</Id><sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
<sf:Id>0035g00000Qw%03d</sf:Id><sf:OwnerId>0055g00000AsDfGAAV</sf:OwnerId>%s</sObject></Notification>`, i, i, fields)
}

// ordinaryMessage is a valid Outbound Message of about size bytes: 100 notifications whose
// sObjects carry many fields.
func ordinaryMessage(size int) []byte {
	var fields strings.Builder
	for i := 0; fields.Len() < size/100; i++ {
		fmt.Fprintf(&fields, "<sf:Custom%d__c>value %d of an ordinary field</sf:Custom%d__c>\n", i, i, i)
	}
	var n strings.Builder
	for i := range 100 {
		n.WriteString(notification(i, fields.String()))
	}
	return envelope("", n.String())
}

// wideElement is the finding of issue 13 item 6: one element with thousands of namespace
// declarations and prefixed attributes (name is "h" or, to force the reference decoder, "hé").
func wideElement(size int, name string) []byte {
	var b strings.Builder
	b.WriteString("<" + name)
	n := size / 38
	for i := range n {
		fmt.Fprintf(&b, ` xmlns:p%d="urn:x:%d"`, i, i)
	}
	for i := range n {
		fmt.Fprintf(&b, ` p%d:a="v"`, i)
	}
	b.WriteString("/>")
	return envelope(b.String(), notification(1, ""))
}

// deepScopes stays within the per-element caps but fills the scope: every level of a deep header
// declares the most prefixes allowed, and a wide run of elements below looks up the outermost
// prefixes on every attribute.
func deepScopes(size int) []byte {
	var b strings.Builder
	depth := MaxDepth - 3
	for d := range depth {
		b.WriteString("<d")
		for i := range MaxNamespaceDeclarations {
			fmt.Fprintf(&b, ` xmlns:q%d_%d="urn:q:%d:%d"`, d, i, d, i)
		}
		b.WriteString(">")
	}
	for b.Len() < size {
		b.WriteString("<e")
		for i := range MaxAttributes {
			fmt.Fprintf(&b, ` q0_%d:a%d="v"`, i%MaxNamespaceDeclarations, i)
		}
		b.WriteString("/>")
	}
	for range depth {
		b.WriteString("</d>")
	}
	return envelope(b.String(), notification(1, ""))
}

// parseCost is the least time of several parses of body: the minimum is what the parse itself
// costs, free of other processes' noise on a shared machine.
func parseCost(body []byte) time.Duration {
	best := time.Duration(1 << 62)
	for range 3 {
		start := time.Now()
		_, _ = Parse(body)
		if d := time.Since(start); d < best {
			best = d
		}
	}
	return best
}

// TestHostileMarkupCostsLinear covers issue 13 item 6: the adversarial inputs cost at most a small
// multiple of an ordinary message of the same size (a ratio measured in one run, never a
// wall-clock bound), and the element over the caps is refused as such.
func TestHostileMarkupCostsLinear(t *testing.T) {
	ordinary := ordinaryMessage(hostileSize)
	if _, err := Parse(ordinary); err != nil {
		t.Fatalf("the ordinary message does not parse: %v", err)
	}
	const maxRatio = 4
	// A non-ASCII element name sends a body to the encoding/xml reference decoder; its baseline is
	// an ordinary message that goes the same way.
	ordinaryRef := bytes.Replace(ordinary, []byte("<soapenv:Header>"), []byte("<soapenv:Header><hé/>"), 1)
	tests := []struct {
		name     string
		body     []byte
		ordinary []byte
		wantErr  error
	}{
		{name: "namespace declarations and prefixed attributes on one element", body: wideElement(hostileSize, "h"), ordinary: ordinary, wantErr: ErrTooManyAttributes},
		{name: "the same through the reference decoder", body: wideElement(hostileSize, "hé"), ordinary: ordinaryRef, wantErr: ErrTooManyAttributes},
		{name: "deep scopes within the caps", body: deepScopes(hostileSize), ordinary: ordinary},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ratio := float64(len(tt.body)) / float64(len(tt.ordinary)); ratio < 0.8 || ratio > 1.25 {
				t.Fatalf("input is %d bytes, the ordinary message %d: not the same size", len(tt.body), len(tt.ordinary))
			}
			_, err := Parse(tt.body)
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
				t.Errorf("Parse error = %v, want %v", err, tt.wantErr)
			}
			// Interleave the measurements so that a busy machine slows both alike.
			var hostile, base time.Duration
			for range 3 {
				hostile += parseCost(tt.body)
				base += parseCost(tt.ordinary)
			}
			ratio := float64(hostile) / float64(base)
			t.Logf("hostile %s, ordinary %s: ratio %.2f", hostile/3, base/3, ratio)
			if ratio > maxRatio {
				t.Errorf("the hostile input costs %.1f× an ordinary message of the same size, want at most %d×", ratio, maxRatio)
			}
		})
	}
}

// hostileSeeds are smaller versions of the adversarial inputs, plus elements exactly at and just
// over the caps.
func hostileSeeds() [][]byte {
	atCap := func(decls, attrs int) []byte {
		var b strings.Builder
		b.WriteString("<h")
		for i := range decls {
			fmt.Fprintf(&b, ` xmlns:p%d="urn:x:%d"`, i, i)
		}
		for i := range attrs {
			fmt.Fprintf(&b, ` p0:a%d="v"`, i)
		}
		b.WriteString("/>")
		return envelope(b.String(), notification(1, ""))
	}
	return [][]byte{
		wideElement(64<<10, "h"), wideElement(64<<10, "hé"), deepScopes(64 << 10),
		atCap(MaxNamespaceDeclarations, MaxAttributes-MaxNamespaceDeclarations),
		atCap(MaxNamespaceDeclarations+1, 0),
		atCap(1, MaxAttributes),
		atCap(0, MaxAttributes+1),
	}
}

func TestHostileSeedsAgreeWithReference(t *testing.T) {
	for _, b := range hostileSeeds() {
		checkDifferential(t, b)
	}
	if _, err := Parse(hostileSeeds()[4]); !errors.Is(err, ErrTooManyNamespaces) {
		t.Errorf("one declaration over the cap: %v, want %v", err, ErrTooManyNamespaces)
	}
	if _, err := Parse(hostileSeeds()[3]); err != nil {
		t.Errorf("an element at the caps: %v", err)
	}
}

// FuzzParseHostile checks the scanner against the reference on inputs grown from the adversarial
// ones (seed corpus: hostileSeeds and the 1 MB finding itself).
func FuzzParseHostile(f *testing.F) {
	for _, b := range hostileSeeds() {
		f.Add(b)
	}
	f.Add(wideElement(hostileSize, "h"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if bytes.Count(b, []byte("<")) > 1<<16 {
			t.Skip("too many elements for one fuzz iteration")
		}
		checkDifferential(t, b)
	})
}
