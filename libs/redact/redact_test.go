package redact

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	tests := []struct {
		name, in, want string
		secrets        []string
	}{
		{name: "no credentials", in: "nats://127.0.0.1:4222", want: "nats://127.0.0.1:4222"},
		{name: "user and password", in: "nats://ops:hunter2@nats.internal:4222", want: "nats://ops:xxxxx@nats.internal:4222", secrets: []string{"hunter2"}},
		{name: "bare token as user", in: "nats://s3cr3tt0ken@nats.internal:4222", want: "nats://xxxxx@nats.internal:4222", secrets: []string{"s3cr3tt0ken"}},
		{name: "list of servers", in: "nats://a:pw1@h1:4222,nats://b:pw2@h2:4222", want: "nats://a:xxxxx@h1:4222,nats://b:xxxxx@h2:4222", secrets: []string{"pw1", "pw2"}},
		{name: "secret query parameters", in: "https://x.example/hook?key=k3y&tenant=acme&access_token=t0k", want: "https://x.example/hook?access_token=xxxxx&key=xxxxx&tenant=acme", secrets: []string{"k3y", "t0k"}},
		{name: "unparseable escape in the password", in: "smtp://mailer:p%zzword@smtp.example.com:587", want: "smtp://xxxxx@smtp.example.com:587", secrets: []string{"p%zzword", "mailer"}},
		{name: "unparseable with slash and at in the password", in: "smtp://u:a/b@c%@smtp.example.com:587/x?password=pw", want: "smtp://xxxxx@smtp.example.com:587/x?xxxxx", secrets: []string{"a/b", "b@c", "pw"}},
		{name: "unparseable host", in: "mongodb://root:rootpw@[::1:27017/", want: "mongodb://xxxxx@[::1:27017/", secrets: []string{"rootpw"}},
		{name: "mongodb with options", in: "mongodb://app:pw@db1,db2/?replicaSet=rs0&authSource=admin", secrets: []string{"pw"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := URL(tt.in)
			if tt.want != "" && got != tt.want {
				t.Errorf("URL(%q) = %q, want %q", tt.in, got, tt.want)
			}
			for _, s := range tt.secrets {
				if strings.Contains(got, s) {
					t.Errorf("URL(%q) = %q still holds %q", tt.in, got, s)
				}
			}
		})
	}
}

func TestError(t *testing.T) {
	raw := "nats://ops:natspw@[::1:4222"
	_, perr := url.Parse(raw)
	err := Error(perr, raw)
	if strings.Contains(err.Error(), "natspw") || !strings.Contains(err.Error(), "missing ']'") {
		t.Errorf("Error = %v", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Error("the url.Error is no longer reachable")
	}
}
