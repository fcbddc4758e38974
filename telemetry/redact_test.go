package telemetry_test

import (
	"encoding/base64"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluice-gw/sluice/telemetry"
)

// Fake secrets of each shape. They are built from parts so that no secret
// scanner takes this file for a leak.
var (
	projKey      = "sk-" + "proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z_Ab3-dEf6hIj9kLm2n"
	svcacctKey   = "sk-" + "svcacct-" + "Zy9xWv8uTs7rQp6oNm5lKj4iHg3fEd2cBa1"
	legacyKey    = "sk-" + "Xq3LbPzW7nK2mR9vT1yU" + "T3BlbkFJ" + "aB4cD5eF6gH7iJ8kL9mN"
	anthropicKey = "sk-" + "ant-api03-" + "Qw3rTy6uIo9pAs2dFg5hJk8lZx1cVb4nM7qW0eRt3yUi6oP9aS2dF5gH8jK1lZ4x-" + "AA"
	adminKey     = "sk-" + "ant-admin01-" + "Mn7bVc4xZl1kJh8gFd5sAp2oIu9yTr6eWq3"
	sluiceKey    = "sk-" + "sluice-" + strings.Repeat("a1B2c", 8) + "d3E"
	genericKey   = "sk-" + "9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c"
	stripeKey    = "sk_" + "live_" + "51HxYzAbCdEfGhIjKlMnOpQr"
	stripeRK     = "rk_" + "live_" + "51HxYzAbCdEfGhIjKlMnOpQrStUv"
	stripePK     = "pk_" + "test_" + "TYooMQauvdEDq54NiTphI7jx"
	awsKeyID     = "AKIA" + "IOSFODNN7EXAMPLE"
	awsSTSKeyID  = "ASIA" + "Y34FZKBOKMUTVV7A"
	awsSecret    = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
	githubToken  = "ghp_" + "R4nd0mT0k3nV4lu3F0rT3st1ngPurp0s3s12"
	githubPAT    = "github_pat_" + "11ABCDEFG0aBcDeFgHiJkLm_" + "Op3Qr5St7Uv9Wx1Yz3Ab5Cd7Ef9Gh1Ij3Kl5Mn7Op9Qr1St3Uv5Wx7Yz9Ab1Cd3E"
	googleKey    = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
	slackToken   = "xox" + "b-" + "2048123456-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	jwtToken     = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." +
		"eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ." +
		"SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	pemBody = "MIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi8Zx0gXvK1JmY2fB7hQk5aLq0T\n" +
		"Wv3nJ8mD0pE4rG9sH6tK2uL7xN1yC5zB3aQ8wF0vR4iS6oU2eY9hI1jM7kP3lT5g"
)

// redactCases are texts with secrets in them, and what Redact makes of
// them.
var redactCases = []struct {
	name, in, want string
}{
	// API keys.
	{"openai project key in prose", "my key is " + projKey + " please keep it", "my key is [REDACTED:openai_key] please keep it"},
	{"openai service account key in JSON", `{"cfg":"` + svcacctKey + `","n":1}`, `{"cfg":"[REDACTED:openai_key]","n":1}`},
	{"openai legacy key", "old: " + legacyKey + ".", "old: [REDACTED:openai_key]."},
	{"anthropic key", "use " + anthropicKey + "\nthen", "use [REDACTED:anthropic_key]\nthen"},
	{"anthropic admin key", "(" + adminKey + ")", "([REDACTED:anthropic_key])"},
	{"sluice key", "key " + sluiceKey + ".", "key [REDACTED:sluice_key]."},
	{"generic sk key", "token=" + genericKey + "&v=2", "token=[REDACTED:api_key]&v=2"},
	{"env assignment wins over the key's own kind", "ANTHROPIC_API_KEY=" + anthropicKey, "ANTHROPIC_API_KEY=[REDACTED:api_key]"},
	{"stripe secret key", "Stripe: " + stripeKey, "Stripe: [REDACTED:stripe_key]"},
	{"stripe restricted key in a URL", "https://x.test/hook?k=" + stripeRK + "&y=1", "https://x.test/hook?k=[REDACTED:stripe_key]&y=1"},
	{"stripe test publishable key", "'" + stripePK + "'", "'[REDACTED:stripe_key]'"},
	{"aws credentials file",
		"[default]\naws_access_key_id = " + awsKeyID + "\naws_secret_access_key = " + awsSecret + "\n",
		"[default]\naws_access_key_id = [REDACTED:aws_access_key]\naws_secret_access_key = [REDACTED:aws_secret_key]\n"},
	{"aws sts key id in JSON", `{"AccessKeyId":"` + awsSTSKeyID + `","SecretAccessKey":"` + awsSecret + `"}`,
		`{"AccessKeyId":"[REDACTED:aws_access_key]","SecretAccessKey":"[REDACTED:aws_secret_key]"}`},
	{"github token in a clone URL", "git clone https://" + githubToken + "@github.com/o/r.git", "git clone https://[REDACTED:github_token]@github.com/o/r.git"},
	{"github fine-grained token", "GH " + githubPAT, "GH [REDACTED:github_token]"},
	{"google key in a query string", "https://maps.googleapis.com/maps/api/geocode/json?address=x&key=" + googleKey,
		"https://maps.googleapis.com/maps/api/geocode/json?address=x&key=[REDACTED:google_api_key]"},
	{"slack token", "slack: " + slackToken + " ok", "slack: [REDACTED:slack_token] ok"},
	{"jwt", "id_token=" + jwtToken + "&state=1", "id_token=[REDACTED:jwt]&state=1"},
	{"key after a JSON newline escape", `"text": "mine:\n` + projKey + `\n"`, `"text": "mine:\n[REDACTED:openai_key]\n"`},
	{"key after a JSON unicode escape", `"\u0022` + githubToken + `"`, `"\u0022[REDACTED:github_token]"`},

	// Bearer and Basic.
	{"authorization header", "curl -H 'Authorization: Bearer " + sluiceKey + "' https://gw", "curl -H 'Authorization: Bearer [REDACTED:bearer]' https://gw"},
	{"authorization header, short token", "authorization: bearer abc", "authorization: bearer [REDACTED:bearer]"},
	{"bearer token in prose", "send it as bearer AbCdEfGh12345678 to the API", "send it as bearer [REDACTED:bearer] to the API"},
	{"bearer jwt", "BEARER\t" + jwtToken, "BEARER\t[REDACTED:bearer]"},
	{"basic auth header", "Authorization: Basic dXNlcjpwYXNzd29yZA==\r\nHost: x", "Authorization: Basic [REDACTED:basic_auth]\r\nHost: x"},
	{"basic auth in JSON headers", `{"Authorization":"basic dXNlcjpwYXNz","Accept":"*/*"}`, `{"Authorization":"basic [REDACTED:basic_auth]","Accept":"*/*"}`},
	{"other scheme", "Proxy-Authorization: Token 9a8b7c6d", "Proxy-Authorization: Token [REDACTED:authorization]"},
	{"authorization without a scheme", "Authorization: " + githubToken, "Authorization: [REDACTED:authorization]"},

	// Private keys.
	{"rsa key", "here:\n-----BEGIN RSA PRIVATE KEY-----\n" + pemBody + "\n-----END RSA PRIVATE KEY-----\nthanks",
		"here:\n[REDACTED:private_key]\nthanks"},
	{"pkcs8 key in JSON", `{"pem": "-----BEGIN PRIVATE KEY-----\n` + strings.ReplaceAll(pemBody, "\n", `\n`) + `\n-----END PRIVATE KEY-----\n", "x": 1}`,
		`{"pem": "[REDACTED:private_key]\n", "x": 1}`},
	{"service account private_key field", `{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}`,
		`{"type": "service_account", "private_key": "[REDACTED:private_key]\n"}`},
	{"value running into a key", "password=abc-----BEGIN RSA PRIVATE KEY-----\n" + pemBody + "\n-----END RSA PRIVATE KEY-----",
		"password=[REDACTED:password][REDACTED:private_key]"},
	{"header running into a key", "Authorization: Bearer abc-----BEGIN PRIVATE KEY-----\n" + pemBody,
		"Authorization: Bearer [REDACTED:bearer][REDACTED:private_key]"},
	{"ec key", "-----BEGIN EC PRIVATE KEY-----\r\n" + pemBody + "\r\n-----END EC PRIVATE KEY-----", "[REDACTED:private_key]"},
	{"openssh key", "k=-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----.", "k=[REDACTED:private_key]."},
	{"encrypted key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + pemBody + "\n-----END ENCRYPTED PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
		"[REDACTED:private_key]\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
	{"a key right after an unlabelled END", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END -----BEGIN EC PRIVATE KEY-----\n" + pemBody,
		"[REDACTED:private_key][REDACTED:private_key]"},
	{"a key right after an END and one dash", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END ------BEGIN EC PRIVATE KEY-----\n" + pemBody,
		"[REDACTED:private_key][REDACTED:private_key]"},
	{"unterminated key", "oops -----BEGIN RSA PRIVATE KEY-----\n" + pemBody + "\n(truncated", "oops [REDACTED:private_key]"},

	// Cards.
	{"visa grouped by spaces", "card 4111 1111 1111 1111 exp 12/29", "card [REDACTED:card] exp 12/29"},
	{"mastercard grouped by dashes", "5555-5555-5555-4444.", "[REDACTED:card]."},
	{"visa together in JSON", `{"number":"4111111111111111","cvc":"123"}`, `{"number":"[REDACTED:card]","cvc":"123"}`},
	{"amex 4-6-5", "amex 3782 822463 10005", "amex [REDACTED:card]"},
	{"13-digit visa", "old visa 4222222222222,", "old visa [REDACTED:card],"},
	{"19-digit card", "pan=4000000000000000006;", "pan=[REDACTED:card];"},
	{"card after a JSON newline escape", `paid with\n5555555555554444\n`, `paid with\n[REDACTED:card]\n`},

	// Assignments.
	{"password in a query string", "https://x.test/login?user=bob&password=hunter2&next=/", "https://x.test/login?user=bob&password=[REDACTED:password]&next=/"},
	{"env password", "PGPASSWORD=hunter2 psql -h db", "PGPASSWORD=[REDACTED:password] psql -h db"},
	{"JSON password with spaces and escapes", `{"password": "correct \"horse\" battery", "user": "bob"}`, `{"password": "[REDACTED:password]", "user": "bob"}`},
	{"JSON in a JSON string", `{"body": "{\"client_secret\": \"s3cr3t-v4lue\", \"id\": 7}"}`, `{"body": "{\"client_secret\": \"[REDACTED:secret]\", \"id\": 7}"}`},
	{"yaml api key", "openai:\n  api_key: abc123def\n  model: gpt", "openai:\n  api_key: [REDACTED:api_key]\n  model: gpt"},
	{"camel case api key", "apiKey: 'abc123def'", "apiKey: '[REDACTED:api_key]'"},
	{"header api key", "x-api-key: " + anthropicKey + "\r\n", "x-api-key: [REDACTED:api_key]\r\n"},
	{"tokens in a query string", "cb?access_token=ya29.a0Af&refresh_token=1//0g&x=1", "cb?access_token=[REDACTED:token]&refresh_token=[REDACTED:token]&x=1"},
	{"go assignment", `password := "hunter2"`, `password := "[REDACTED:password]"`},
	{"php array", `['passwd' => 'hunter2']`, `['passwd' => '[REDACTED:password]']`},
	{"django secret key", "SECRET_KEY = 'django-insecure-abc'", "SECRET_KEY = '[REDACTED:secret]'"},
	{"private_key assignment", "private_key=abc", "private_key=[REDACTED:private_key]"},
	{"aws session token", "AWS_SESSION_TOKEN=FwoGZXIvYXdzEJr", "AWS_SESSION_TOKEN=[REDACTED:token]"},
	{"unterminated quoted value ends at the line", "password=\"abc\nnext line", "password=\"[REDACTED:password]\nnext line"},

	// URL passwords.
	{"database URL", "DATABASE_URL=postgres://app:s3cr3t@db.internal:5432/app", "DATABASE_URL=postgres://app:[REDACTED:url_password]@db.internal:5432/app"},
	{"redis URL with no user", "redis://:p%40ss@cache:6379/0", "redis://:[REDACTED:url_password]@cache:6379/0"},
	{"unescaped @ in the password", "amqp://guest:p@ss@mq/", "amqp://guest:[REDACTED:url_password]@mq/"},

	// Several at once.
	{"multi-line prompt",
		"Debug this:\nOPENAI_KEY=" + projKey + "\ncard: 4111-1111-1111-1111\nAuthorization: Bearer " + jwtToken + "\nthanks",
		"Debug this:\nOPENAI_KEY=[REDACTED:openai_key]\ncard: [REDACTED:card]\nAuthorization: Bearer [REDACTED:bearer]\nthanks"},
	{"adjacent secrets", awsKeyID + "," + googleKey + " " + githubToken, "[REDACTED:aws_access_key],[REDACTED:google_api_key] [REDACTED:github_token]"},

	// Accepted false positives: assignment-shaped prose, and a Luhn-valid
	// number that starts like a card.
	{"accepted: prose password", "Password: required", "Password: [REDACTED:password]"},
	{"accepted: prose secret", "The secret: it is in the sauce", "The secret: [REDACTED:secret] is in the sauce"},
	{"accepted: luhn-valid number", "ref 4000000000000002", "ref [REDACTED:card]"},
}

func TestRedact(t *testing.T) {
	for _, tc := range redactCases {
		t.Run(tc.name, func(t *testing.T) {
			got := telemetry.Redact(tc.in)
			if got != tc.want {
				t.Errorf("Redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			if again := telemetry.Redact(got); again != got {
				t.Errorf("not idempotent: Redact(%q) = %q", got, again)
			}
			if got := string(telemetry.AppendRedacted([]byte("x:"), tc.in)); got != "x:"+tc.want {
				t.Errorf("AppendRedacted = %q, want %q", got, "x:"+tc.want)
			}
		})
	}
}

// negatives are texts that hold no secret and must come back as they are.
var negatives = []string{
	"The quick brown fox jumps over the lazy dog.",
	"a skeleton, a task-list, risk-free desk-top work; sk-learn is a library",
	"Bearer bonds are bearer instruments; the bearer of bad news.",
	"uuid 123e4567-e89b-12d3-a456-426614174000",
	"order 123456789012 shipped; call +1 415-555-0100",
	"not a card: 4111 1111 1111 1112, nor 1234567812345678",
	"timestamps 1712345678907 (Luhn-valid) and 1712345678901000000",
	"ISBN 978-3-16-148410-0 and 9783161484102",
	"dates 2024-05-01, 2024-05-01T12:34:56Z, 12/31/2024, 2024 05 01",
	"versions v1.2.3, go1.26.0, 10.0.19045.3803",
	"a list 2 3 4 5 6 7 8 9 10 11 12 13 14 15 and 4111 1111 1111 1111 2",
	"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 9fceb02d0ae598e95dc970b74767f19372d61af8",
	"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
	`{"model":"gpt-4o","temperature":0.2,"max_tokens":1024,"stop":["\n"],"user":"u_42"}`,
	`{"eos_token": "</s>", "token_count": 42, "password_required": true, "secret_name": "db"}`,
	"Password:\nSecret:\n",
	"DB_PASSWORD=\n" + `api_key="" password=[REDACTED:password]`,
	"https://example.com:8443/path?x=1 user@example.com mailto:a@b.c http://[::1]:80/",
	"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----",
	"ghp_short AKIA ASIA-PACIFIC AKIAMAIN eyJ sk- sk_live_ xoxb- AIza",
	"xsk-" + strings.Repeat("a1", 12) + " " + "Xghp_" + strings.Repeat("b2", 18),
	"Authorization: Bearer\nAuthorization: Basic",
	"Authorization: Bearer [REDACTED:bearer] and [REDACTED:api_key]",
	"naïve café — 東京 🙂 \xff\xfe invalid bytes",
	"",
}

func TestRedactNegatives(t *testing.T) {
	for _, in := range negatives {
		if got := telemetry.Redact(in); got != in {
			t.Errorf("Redact(%q) = %q, want it unchanged", in, got)
		}
	}
}

// TestRedactAllocs checks that text with no secret is returned without
// allocating, and that AppendRedacted allocates only to grow dst.
func TestRedactAllocs(t *testing.T) {
	clean := prompt(false)
	if n := testing.AllocsPerRun(100, func() { _ = telemetry.Redact(clean) }); n != 0 {
		t.Errorf("Redact of a clean prompt: %v allocations, want 0", n)
	}
	dst := make([]byte, 0, 2*len(clean))
	if n := testing.AllocsPerRun(100, func() { dst = telemetry.AppendRedacted(dst[:0], clean) }); n != 0 {
		t.Errorf("AppendRedacted into a large enough slice: %v allocations, want 0", n)
	}
	dirty := prompt(true)
	if n := testing.AllocsPerRun(100, func() { dst = telemetry.AppendRedacted(dst[:0], dirty) }); n != 0 {
		t.Errorf("AppendRedacted of secrets into a large enough slice: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _ = telemetry.Redact(dirty) }); n != 1 {
		t.Errorf("Redact of a prompt with secrets: %v allocations, want 1", n)
	}
}

// TestRedactRepetitions runs Redact over long repetitions of half-made
// secrets: the inputs on which a scanner that measured a rejected
// candidate again from every position inside it would take quadratic time
// (seconds, not milliseconds, for these 64 KiB). The outputs must be
// idempotent and keep to the length bound.
func TestRedactRepetitions(t *testing.T) {
	const n = 1 << 16
	for _, unit := range []string{
		"sk-", "xoxb-", "eyJ", "eyJabcdefghij.eyJ", "Bearer a-", "AIza-", "ghp_", "github_pat_",
		"://u:", "password", "4111 ", "-----BEGIN CERTIFICATE-----",
	} {
		in := strings.Repeat(unit, n/len(unit))
		checkRedacted(t, in, telemetry.Redact(in))
	}
}

// maxMarker is the length of the longest marker, "[REDACTED:aws_access_key]".
const maxMarker = len("[REDACTED:aws_access_key]")

// checkRedacted checks the properties every output has.
func checkRedacted(t *testing.T, in, out string) {
	t.Helper()
	if utf8.ValidString(in) && !utf8.ValidString(out) {
		t.Fatalf("Redact(%q) = %q: invalid UTF-8", in, out)
	}
	if again := telemetry.Redact(out); again != out {
		t.Fatalf("not idempotent:\n  in %q\n out %q\nagain %q", in, out, again)
	}
	if bound := len(in) + maxMarker*strings.Count(out, "[REDACTED:"); len(out) > bound {
		t.Fatalf("Redact(%q) = %q: %d bytes, more than %d", in, out, len(out), bound)
	}
	if got := telemetry.AppendRedacted([]byte("pre"), in); string(got) != "pre"+out {
		t.Fatalf("AppendRedacted(%q) = %q, want %q", in, got, "pre"+out)
	}
}

func FuzzRedact(f *testing.F) {
	for i, tc := range redactCases {
		f.Add(tc.in, uint64(i))
	}
	for _, in := range negatives {
		f.Add(in, uint64(len(in)))
	}
	f.Add("card 4111 1111 1111 1111 and password=hunter2", uint64(1))
	f.Add("Authorization: Bearer "+jwtToken, uint64(2))
	f.Add(`{"private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"}`, uint64(3))
	f.Add("postgres://app:s3cr3t@db:5432/app "+projKey+" "+awsKeyID+" "+slackToken, uint64(4))
	f.Add(prompt(true), uint64(5))
	f.Fuzz(func(t *testing.T, text string, seed uint64) {
		checkRedacted(t, text, telemetry.Redact(text))

		r := rand.New(rand.NewPCG(seed, seed>>7^0x9e3779b97f4a7c15))
		shape := secretShapes[r.IntN(len(secretShapes))]
		secret, core := shape.gen(r)
		w := wrappers[r.IntN(len(wrappers))]
		pos := r.IntN(len(text) + 1)
		in := text[:pos] + "\n" + w[0] + secret + w[1] + "\n" + text[pos:]
		out := telemetry.Redact(in)
		checkRedacted(t, in, out)
		// The core holds a digit, so no marker holds it; it is in out only
		// if the secret survived, or if the text held it already.
		if strings.Contains(out, core) && !strings.Contains(text, core) {
			t.Fatalf("%s %q survived in %q", shape.name, secret, out)
		}

		// A private key is found wherever it starts, even in the middle of
		// a word or a value.
		key, core := secretShapes[privateKeyShape].gen(r)
		glued := text[:pos] + key + text[pos:]
		if out := telemetry.Redact(glued); strings.Contains(out, core) && !strings.Contains(text, core) {
			t.Fatalf("private key %q survived in %q", key, out)
		}

		// Pieces of secrets run together with no separator between them,
		// where one rule's match borders another's.
		soup := fragmentSoup(r, text)
		checkRedacted(t, soup, telemetry.Redact(soup))
	})
}

// fragments are pieces of the shapes Redact looks for.
var fragments = []string{
	"sk-", "sk-proj-", "sk-ant-", "sk_live_", "rk_test_", "ghp_", "github_pat_", "AKIA", "ASIA", "AIza", "eyJ", ".eyJ",
	".", "xoxb-", "Bearer ", "bearer\t", "Authorization: ", "authorization=", "Basic ", "Token ", "password", "Secret",
	"api_key", "x-api-key", "=", ":", ":=", "=>", " ", "  ", "\n", `\n`, `\u0041`, `"`, "'", `\"`, "-----BEGIN RSA PRIVATE KEY-----",
	"-----END RSA PRIVATE KEY-----", "-----BEGIN ", "-----", "PRIVATE KEY", "://", "@", "u:", "4111", "1111", " 1111",
	"-1111", "4111111111111111", "5555555555554444", "-", "_", "[REDACTED:card]", "[REDACTED:", "]", "T3BlbkFJ", "&",
	",", "\r\n", "é", "\xff",
}

// fragmentSoup returns up to 24 fragments, random runs and pieces of text,
// run together.
func fragmentSoup(r *rand.Rand, text string) string {
	var b strings.Builder
	for range r.IntN(24) {
		switch r.IntN(6) {
		case 0:
			b.WriteString(randCore(r, b64url, 1, 48))
		case 1:
			b.WriteString(randCore(r, digits, 1, 20))
		case 2:
			if text != "" {
				i := r.IntN(len(text))
				b.WriteString(text[i:min(len(text), i+1+r.IntN(16))])
			}
		default:
			b.WriteString(fragments[r.IntN(len(fragments))])
		}
	}
	return b.String()
}

// wrappers are what a secret may stand in: prose, a JSON string, a JSON
// string's escapes, brackets.
var wrappers = [][2]string{
	{"", ""},
	{"my key is ", ", thanks"},
	{`{"content": "`, `"}`},
	{`\n`, `\n`},
	{"(", ")"},
}

const (
	upper   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lower   = "abcdefghijklmnopqrstuvwxyz"
	digits  = "0123456789"
	alnum   = upper + lower + digits
	b64url  = alnum + "-_"
	b64std  = alnum + "+/"
	token68 = alnum + "-._~+/"
)

// privateKeyShape is the index of the private key in secretShapes.
const privateKeyShape = 14

// secretShapes make a random secret of each kind and its core: the random
// part, which must not survive redaction. Every core holds a digit.
var secretShapes = []struct {
	name string
	gen  func(r *rand.Rand) (secret, core string)
}{
	{"openai", func(r *rand.Rand) (string, string) {
		body := randCore(r, b64url, 20, 160)
		return pick(r, "sk-proj-", "sk-svcacct-", "sk-admin-") + body, body
	}},
	{"openai legacy", func(r *rand.Rand) (string, string) {
		body := randCore(r, alnum, 20, 20) + "T3BlbkFJ" + randCore(r, alnum, 20, 20)
		return "sk-" + body, body
	}},
	{"anthropic", func(r *rand.Rand) (string, string) {
		body := randCore(r, b64url, 93, 93)
		return pick(r, "sk-ant-api03-", "sk-ant-admin01-") + body + "AA", body
	}},
	{"sluice", func(r *rand.Rand) (string, string) {
		body := randCore(r, alnum, 43, 43)
		return "sk-sluice-" + body, body
	}},
	{"generic sk", func(r *rand.Rand) (string, string) {
		body := randCore(r, alnum, 20, 64)
		return "sk-" + body, body
	}},
	{"stripe", func(r *rand.Rand) (string, string) {
		body := randCore(r, alnum, 10, 99)
		return pick(r, "sk_", "rk_", "pk_") + pick(r, "live_", "test_") + body, body
	}},
	{"aws access key id", func(r *rand.Rand) (string, string) {
		body := randCore(r, upper+digits, 16, 16)
		return pick(r, "AKIA", "ASIA") + body, body
	}},
	{"aws secret", func(r *rand.Rand) (string, string) {
		v := randCore(r, b64std, 40, 40)
		return assign(r, pick(r, "aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "SecretAccessKey"), v), v
	}},
	{"github", func(r *rand.Rand) (string, string) {
		if r.IntN(2) == 0 {
			body := randCore(r, alnum+"_", 82, 82)
			return "github_pat_" + body, body
		}
		body := randCore(r, alnum, 36, 36)
		return pick(r, "ghp_", "gho_", "ghs_", "ghu_", "ghr_") + body, body
	}},
	{"google", func(r *rand.Rand) (string, string) {
		body := randCore(r, b64url, 35, 35)
		return "AIza" + body, body
	}},
	{"slack", func(r *rand.Rand) (string, string) {
		body := randCore(r, digits, 10, 13) + "-" + randCore(r, digits, 13, 13) + "-" + randCore(r, alnum, 24, 32)
		return pick(r, "xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-") + body, body
	}},
	{"jwt", func(r *rand.Rand) (string, string) {
		sig := randCore(r, b64url, 16, 86)
		return "eyJ" + randCore(r, b64url, 10, 60) + ".eyJ" + randCore(r, b64url, 4, 300) + "." + sig, sig
	}},
	{"bearer", func(r *rand.Rand) (string, string) {
		tok := randCore(r, token68, 16, 200)
		return pick(r, "Bearer ", "bearer  ", "BEARER\t") + tok, tok
	}},
	{"authorization", func(r *rand.Rand) (string, string) {
		if r.IntN(2) == 0 {
			tok := randCore(r, token68, 8, 200)
			return pick(r, "Authorization: Bearer ", `"authorization": "Bearer `) + tok, tok
		}
		var b64 string
		for !strings.ContainsAny(b64, digits) || len(b64) < 8 {
			b := make([]byte, 6+r.IntN(60))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			b64 = base64.StdEncoding.EncodeToString(b)
		}
		return pick(r, "Authorization: Basic ", "authorization:basic ", `"Authorization": "Basic `) + b64, b64
	}},
	privateKeyShape: {"private key", func(r *rand.Rand) (string, string) {
		label := pick(r, "RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "PRIVATE KEY", "DSA PRIVATE KEY")
		nl := pick(r, "\n", "\r\n", `\n`)
		lines := make([]string, 1+r.IntN(8))
		for i := range lines {
			lines[i] = randCore(r, b64std, 64, 64)
		}
		key := "-----BEGIN " + label + "-----" + nl + strings.Join(lines, nl)
		if r.IntN(4) > 0 {
			key += nl + "-----END " + label + "-----"
		}
		return key, lines[0]
	}},
	{"card", func(r *rand.Rand) (string, string) {
		card := randCard(r)
		return card, card
	}},
	{"assignment", func(r *rand.Rand) (string, string) {
		name := pick(r, "password", "PASSWORD", "db_password", "PGPASSWORD", "passwd", "client_secret", "clientSecret",
			"api_key", "apiKey", "X-Api-Key", "access_token", "refresh_token", "private_key", "secret", "SECRET_KEY",
			"auth_token", "aws_session_token")
		v := randCore(r, alnum+"-_.+/~!@#$%^*", 8, 40)
		return assign(r, name, v), v
	}},
	{"url password", func(r *rand.Rand) (string, string) {
		pass := randCore(r, alnum+"-._~%!$*+", 8, 32)
		user := pick(r, "", "app", "u"+randCore(r, alnum, 1, 12))
		return pick(r, "postgres", "mysql", "redis", "amqp", "https", "mongodb+srv") + "://" + user + ":" + pass + "@" +
			pick(r, "db.internal", "10.0.0.7", "cache") + pick(r, "", ":5432", ":6379/0", "/app?sslmode=require"), pass
	}},
}

// assign writes name = v in one of the assignment styles.
func assign(r *rand.Rand, name, v string) string {
	switch r.IntN(8) {
	case 0:
		return name + "=" + v
	case 1:
		return name + ": " + v
	case 2:
		return name + ` = "` + v + `"`
	case 3:
		return `"` + name + `": "` + v + `"`
	case 4:
		return `'` + name + `': '` + v + `'`
	case 5:
		return name + ` := "` + v + `"`
	case 6:
		return `\"` + name + `\": \"` + v + `\"`
	default:
		return "https://x.test/cb?state=1&" + name + "=" + v + "&y=2"
	}
}

// randCore returns lo to hi random bytes of charset, one of them a digit.
func randCore(r *rand.Rand, charset string, lo, hi int) string {
	b := make([]byte, lo+r.IntN(hi-lo+1))
	for i := range b {
		b[i] = charset[r.IntN(len(charset))]
	}
	b[r.IntN(len(b))] = digits[r.IntN(10)]
	return string(b)
}

// randCard returns a random Luhn-valid card number of 13 to 19 digits
// starting with 2 to 6, written together or in groups of four.
func randCard(r *rand.Rand) string {
	d := make([]byte, 13+r.IntN(7))
	d[0] = byte('2' + r.IntN(5))
	for i := 1; i < len(d)-1; i++ {
		d[i] = byte('0' + r.IntN(10))
	}
	d[len(d)-1] = '0'
	sum := 0
	for i := len(d) - 2; i >= 0; i-- {
		v := int(d[i] - '0')
		if (len(d)-1-i)%2 == 1 {
			if v *= 2; v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	d[len(d)-1] = byte('0' + (10-sum%10)%10)
	sep := pick(r, "", " ", "-")
	if sep == "" {
		return string(d)
	}
	var groups []string
	for i := 0; i < len(d); i += 4 {
		groups = append(groups, string(d[i:min(i+4, len(d))]))
	}
	return strings.Join(groups, sep)
}

func pick(r *rand.Rand, options ...string) string { return options[r.IntN(len(options))] }

// prompt returns a prompt of about 2 KB, with an API key and a password in
// it if secrets is set.
func prompt(secrets bool) string {
	var b strings.Builder
	b.WriteString("system: You are a careful assistant. Answer in JSON that matches the schema {\"type\":\"object\",\"required\":[\"answer\"]}.\n")
	for i := 0; b.Len() < 1900; i++ {
		b.WriteString("user: In 2024-05-0" + strconv.Itoa(i%9+1) + " the build of version v1." + strconv.Itoa(i) +
			".3 failed at step " + strconv.Itoa(i*37) + " of the pipeline; the log says: error: exit status 1 (see https://ci.example.com/runs/" +
			strconv.Itoa(123456+i) + "). What went wrong, and what should we try next?\n")
		if secrets && i == 2 {
			b.WriteString("user: my config has OPENAI_KEY=" + projKey + " in it\n")
		}
		if secrets && i == 5 {
			b.WriteString(`user: {"db": {"host": "db.internal", "password": "hunter2-but-longer"}}` + "\n")
		}
	}
	return b.String()
}

func BenchmarkRedact(b *testing.B) {
	for _, bc := range []struct {
		name    string
		secrets bool
	}{{"clean", false}, {"two-secrets", true}} {
		in := prompt(bc.secrets)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				_ = telemetry.Redact(in)
			}
		})
	}
}
