package soap

import (
	"bytes"
	"encoding/xml"
)

// ContentType is the Content-Type of every response envelope (SOAP 1.1;
// docs/crm-protocols.md#outbound-message-acknowledgement).
const ContentType = "text/xml; charset=utf-8"

// ack is the exact acknowledgement of docs/crm-protocols.md#outbound-message-acknowledgement. One
// Ack covers every notification of the message, so it is sent only when all of them were stored.
const ack = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body>
  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">
   <Ack>true</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>
`

// Ack returns the notificationsResponse envelope with <Ack>true</Ack>.
func Ack() []byte { return []byte(ack) }

// Fault codes of SOAP 1.1: Client means the message was wrong, Server means the receiver failed.
// Salesforce retries both until the message is 24 hours old.
const (
	FaultClient = "soapenv:Client"
	FaultServer = "soapenv:Server"
)

// Fault returns a SOAP 1.1 fault envelope. code is FaultClient or FaultServer; message is escaped.
func Fault(code, message string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body>
  <soapenv:Fault>
   <faultcode>`)
	_ = xml.EscapeText(&b, []byte(code))
	b.WriteString("</faultcode>\n   <faultstring>")
	_ = xml.EscapeText(&b, []byte(message))
	b.WriteString(`</faultstring>
  </soapenv:Fault>
 </soapenv:Body>
</soapenv:Envelope>
`)
	return b.Bytes()
}
