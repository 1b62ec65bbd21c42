package envconfig

import (
	"strings"
	"testing"
	"time"
)

func TestReportsEveryProblemAtOnce(t *testing.T) {
	env := map[string]string{"A_DUR": "soon", "A_INT": "9999", "A_URL": "ftp://x", "A_OK": "2s"}
	r := New(func(k string) string { return env[k] })
	r.Required("MISSING")
	r.Duration("A_DUR", time.Second)
	r.Int("A_INT", 1, 1, 100)
	r.URL("A_URL", "", "http", "https")
	if d := r.Duration("A_OK", 0); d != 2*time.Second {
		t.Errorf("A_OK = %s", d)
	}
	err := r.Err()
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"MISSING is required", "A_DUR", "A_INT", "A_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestURLProblemsAreRedacted covers issue 13 item 11: a URL named in a problem never carries its
// credentials, also when it does not parse.
func TestURLProblemsAreRedacted(t *testing.T) {
	env := map[string]string{
		"SMTP_URL": "smtp://mailer:hunter2%zz@smtp.example.com:587",
		"NATS_URL": "ftp://ops:natspw@nats.internal:4222",
	}
	r := New(func(k string) string { return env[k] })
	r.URL("SMTP_URL", "", "smtp", "smtps")
	r.URL("NATS_URL", "", "nats")
	err := r.Err()
	if err == nil {
		t.Fatal("want error")
	}
	for _, secret := range []string{"hunter2", "natspw"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("problem list holds %q:\n%v", secret, err)
		}
	}
	for _, name := range []string{"SMTP_URL", "NATS_URL", "smtp.example.com"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("problem list does not name %q:\n%v", name, err)
		}
	}
}
