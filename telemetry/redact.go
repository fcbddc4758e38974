package telemetry

import "strings"

// Redact returns s with every secret-looking substring replaced by a marker
// "[REDACTED:<kind>]", for logging prompts and completions. It returns s
// itself, without allocating, when nothing matches. It reads s once, in
// time linear in its length, accepts any bytes (invalid UTF-8 included: it
// cuts only next to ASCII bytes, so valid UTF-8 stays valid), never grows s
// by more than a marker's length per marker, and is idempotent:
// Redact(Redact(s)) == Redact(s). It is safe for concurrent use.
//
// The kinds, and the shapes matched:
//
//	openai_key      sk-proj-, sk-svcacct-, sk-admin- or sk-None- and 20 or more
//	                of [A-Za-z0-9_-]; a legacy sk- key holding "T3BlbkFJ"
//	anthropic_key   sk-ant- and 20 or more of [A-Za-z0-9_-] (sk-ant-api03-,
//	                sk-ant-admin01-, sk-ant-oat01-, ...)
//	sluice_key      sk-sluice- and 20 or more of [A-Za-z0-9_-]: Sluice's own
//	                keys are sk-sluice- and 43 base62 digits
//	api_key         any other sk- and 20 or more of [A-Za-z0-9_-] with a digit
//	                among them, or with no '-' or '_' (so that "sk-" before a
//	                run of hyphenated words is no key)
//	stripe_key      sk_, rk_ or pk_, then live_ or test_, then 10 or more
//	                [A-Za-z0-9]
//	aws_access_key  AKIA or ASIA and exactly 16 [A-Z0-9]
//	github_token    ghp_, gho_, ghs_, ghu_ or ghr_ and 30 or more [A-Za-z0-9];
//	                github_pat_ and 30 or more [A-Za-z0-9_]
//	google_api_key  AIza and 35 or more [A-Za-z0-9_-]
//	slack_token     xoxa-, xoxb-, xoxp-, xoxr- or xoxs- and 11 or more
//	                [A-Za-z0-9-]
//	jwt             eyJ and 7 or more [A-Za-z0-9_-], ".", eyJ and 1 or more,
//	                ".", and the signature (possibly empty)
//	bearer          the token after "Bearer" (any case) and blanks: 16 or more
//	                of [A-Za-z0-9._~+/=-], or 8 or more with a digit among
//	                them. "Bearer" is kept. After an authorization name (see
//	                the assignments below) the token may have any length
//	basic_auth      the credentials after an authorization name and "Basic"
//	                (any case): "Authorization: Basic dXNlcjpwYXNz"
//	private_key     a whole PEM block, from "-----BEGIN <label>-----" where the
//	                label holds "PRIVATE KEY" (RSA, EC, DSA, OPENSSH,
//	                ENCRYPTED, PGP ... BLOCK, or none) to the end of the next
//	                "-----END <label>-----", or to the end of s if there is
//	                none. Certificates and public keys are kept
//	card            13 to 19 digits starting with 2 to 6 (the card networks'
//	                first digits, which millisecond timestamps are not),
//	                together or in groups joined by single spaces or single
//	                dashes (one kind of separator; the first group of 4
//	                digits, middle ones of 3 to 6, the last of 1 to 6), that
//	                pass the Luhn check and are not part of a word or of a
//	                longer run of digits (digits joined by single separators
//	                included). All the digits are redacted
//	url_password    the password in a URL's user information,
//	                scheme://user:password@host (up to the last '@')
//
// Assignments: the value of "name=value", "name: value", "name := value",
// "name == value" or "name => value", the name optionally quoted ("name":
// "value" in JSON, with escaped quotes too), is redacted when the name ends,
// in any case and with single '_' or '-' allowed between letters, in
//
//	password, passwd                                    password
//	secret (client_secret, api_secret...), secret_key  secret
//	api_key, apikey (x-api-key, OPENAI_API_KEY...)      api_key
//	access_token, refresh_token, auth_token,
//	session_token                                       token
//	private_key                                         private_key
//	secret_access_key (aws_secret_access_key)           aws_secret_key
//	authorization (Proxy-Authorization...)              authorization
//
// A quoted value is redacted to its closing quote (JSON escapes respected)
// or the end of the line, an unquoted one to the first blank, line end or
// one of "'`\&,;<>()[]}|. Either stops before a "-----BEGIN", where a key
// may start, and a value that already starts with a marker is left as it
// is. For authorization, a scheme (Bearer, Basic, Token, Digest, Negotiate,
// NTLM, Bot, DPoP, ApiKey) is kept and the credentials after it redacted.
//
// Tokens are matched only where a word starts: after a byte that is not an
// ASCII letter or digit, or after a JSON escape (\n, \t, \r, \uXXXX), so
// that a token glued to a longer word is taken for part of it.
//
// False positives accepted: assignment-shaped prose ("Password: required",
// "The secret: it is...") loses the word after the colon, and one in ten
// numbers of card length and first digit passes the Luhn check. Not
// detected: secrets with neither a shape nor a name (a password in a
// sentence), names joined to values by other than '=' or ':' (XML elements,
// .netrc lines, curl -u), and tokens cut short: a text cut to a length may
// leave a token too short to recognise, so redact before cutting.
func Redact(s string) string {
	sc := secretScanner{s: s}
	m, ok := sc.next()
	if !ok {
		return s
	}
	var b strings.Builder
	// Room for two markers longer than what they replace (short
	// assignment values): one allocation in the common case.
	b.Grow(len(s) + 2*len("[REDACTED:authorization]"))
	last := 0
	for ; ok; m, ok = sc.next() {
		b.WriteString(s[last:m.start])
		b.WriteString("[REDACTED:")
		b.WriteString(m.kind)
		b.WriteByte(']')
		last = m.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// AppendRedacted appends Redact(s) to dst and returns the extended slice.
// It allocates only to grow dst.
func AppendRedacted(dst []byte, s string) []byte {
	sc := secretScanner{s: s}
	last := 0
	for m, ok := sc.next(); ok; m, ok = sc.next() {
		dst = append(dst, s[last:m.start]...)
		dst = append(dst, "[REDACTED:"...)
		dst = append(dst, m.kind...)
		dst = append(dst, ']')
		last = m.end
	}
	return append(dst, s[last:]...)
}

// A secretSpan is one secret found: s[start:end] is replaced by the marker
// of kind.
type secretSpan struct {
	start, end int
	kind       string
}

// A secretScanner finds the secrets of s left to right, one call to next
// at a time.
//
// Idempotence rests on one rule: whatever a check reads to the left of its
// position stops at lo, the end of the last secret replaced, as if the text
// began there. In the redacted text the marker's closing ']' stands there,
// and ']' is, for every check, a byte that begins a word and belongs to no
// name, token or user name, just like the start of the text. To the right,
// the runs of token bytes stop before "-----BEGIN", where a PEM block would
// be replaced by a marker starting with '['.
//
// Linear time rests on the spanCaches: each token rule measures its runs
// through its own cache, and its queries come in increasing positions, so
// each cache reads each byte at most once.
type secretScanner struct {
	s       string
	pos, lo int

	sk, stripe, github, githubPAT, google, slack, bearer spanCache
	jwtHead, jwtBody, jwtSig                             spanCache
}

// next returns the next secret, or false when there is none left.
func (sc *secretScanner) next() (secretSpan, bool) {
	s := sc.s
	for i := sc.pos; i < len(s); i++ {
		c := s[i]
		if byteClass[c]&cTrigger == 0 {
			continue
		}
		var m secretSpan
		switch {
		case '0' <= c && c <= '9':
			m = sc.card(i)
		case c == '-':
			m = sc.dash(i)
		case c == '_':
			m = sc.underscore(i)
		case c == 'A':
			m = sc.upperA(i)
		case c == 'J':
			m = sc.jwt(i)
		case c == 'b' || c == 'B':
			m = sc.bearerToken(i)
		case c == ':' || c == '=':
			m = sc.assignment(i)
		}
		if m.kind != "" {
			// Every secret ends after the byte that triggered it, so
			// the scan moves on.
			sc.pos, sc.lo = m.end, m.end
			return m, true
		}
	}
	sc.pos = len(s)
	return secretSpan{}, false
}

// dash checks a '-' at i: a PEM block, an sk- key or a Slack token.
func (sc *secretScanner) dash(i int) secretSpan {
	s, lo := sc.s, sc.lo
	if strings.HasPrefix(s[i:], "-----BEGIN ") {
		return privateKey(s, i)
	}
	if i-2 >= lo && s[i-2] == 's' && s[i-1] == 'k' && wordStart(s, i-2, lo) {
		return sc.skKey(i)
	}
	if i-4 >= lo && s[i-4:i-1] == "xox" && strings.IndexByte("abprs", s[i-1]) >= 0 && wordStart(s, i-4, lo) {
		if end := sc.slack.runEnd(s, i+1, cAlnumDash); end-(i+1) >= 11 {
			return secretSpan{i - 4, end, "slack_token"}
		}
	}
	return secretSpan{}
}

// skPrefixes are the sk- keys known by what follows "sk-".
var skPrefixes = [...]struct{ prefix, kind string }{
	{"ant-", "anthropic_key"},
	{"sluice-", "sluice_key"},
	{"proj-", "openai_key"},
	{"svcacct-", "openai_key"},
	{"admin-", "openai_key"},
	{"None-", "openai_key"},
}

// skKey checks the "sk-" whose '-' is at i.
func (sc *secretScanner) skKey(i int) secretSpan {
	s, b := sc.s, i+1
	end := sc.sk.runEnd(s, b, cWord)
	body := s[b:end]
	for _, p := range skPrefixes {
		if strings.HasPrefix(body, p.prefix) {
			if len(body)-len(p.prefix) >= 20 {
				return secretSpan{i - 2, end, p.kind}
			}
			return secretSpan{}
		}
	}
	if len(body) < 20 || sc.sk.lastDigit < b && sc.sk.lastPunct >= b {
		return secretSpan{}
	}
	if strings.Contains(body, "T3BlbkFJ") { // "OpenAI" in base64: legacy OpenAI keys
		return secretSpan{i - 2, end, "openai_key"}
	}
	return secretSpan{i - 2, end, "api_key"}
}

// underscore checks a '_' at i: a Stripe key or a GitHub token.
func (sc *secretScanner) underscore(i int) secretSpan {
	s, lo := sc.s, sc.lo
	if i-2 >= lo && strings.IndexByte("spr", s[i-2]) >= 0 && s[i-1] == 'k' && wordStart(s, i-2, lo) &&
		(strings.HasPrefix(s[i+1:], "live_") || strings.HasPrefix(s[i+1:], "test_")) {
		b := i + len("_live_")
		if end := sc.stripe.runEnd(s, b, cAlnum); end-b >= 10 {
			return secretSpan{i - 2, end, "stripe_key"}
		}
	}
	if i-3 >= lo && s[i-3] == 'g' && s[i-2] == 'h' && strings.IndexByte("posur", s[i-1]) >= 0 && wordStart(s, i-3, lo) {
		if end := sc.github.runEnd(s, i+1, cAlnum); end-(i+1) >= 30 {
			return secretSpan{i - 3, end, "github_token"}
		}
	}
	if i-6 >= lo && s[i-6:i] == "github" && strings.HasPrefix(s[i:], "_pat_") && wordStart(s, i-6, lo) {
		b := i + len("_pat_")
		if end := sc.githubPAT.runEnd(s, b, cAlnumUnder); end-b >= 30 {
			return secretSpan{i - 6, end, "github_token"}
		}
	}
	return secretSpan{}
}

// upperA checks an 'A' at i: an AWS access key id or a Google API key.
func (sc *secretScanner) upperA(i int) secretSpan {
	s := sc.s
	if !wordStart(s, i, sc.lo) {
		return secretSpan{}
	}
	if i+20 <= len(s) && (s[i+1] == 'K' || s[i+1] == 'S') && s[i+2] == 'I' && s[i+3] == 'A' {
		j := i + 4
		for j < i+20 && byteClass[s[j]]&cUpperDigit != 0 {
			j++
		}
		if j == i+20 && (j == len(s) || byteClass[s[j]]&cAlnum == 0) {
			return secretSpan{i, j, "aws_access_key"}
		}
	}
	if strings.HasPrefix(s[i:], "AIza") {
		b := i + 4
		if end := sc.google.runEnd(s, b, cWord); end-b >= 35 {
			return secretSpan{i, end, "google_api_key"}
		}
	}
	return secretSpan{}
}

// jwt checks the 'J' of an "eyJ" at i-2.
func (sc *secretScanner) jwt(i int) secretSpan {
	s, lo := sc.s, sc.lo
	a := i - 2
	if a < lo || s[a] != 'e' || s[a+1] != 'y' || !wordStart(s, a, lo) {
		return secretSpan{}
	}
	e1 := sc.jwtHead.runEnd(s, a, cWord)
	if e1-a < 10 || e1 >= len(s) || s[e1] != '.' || !strings.HasPrefix(s[e1+1:], "eyJ") {
		return secretSpan{}
	}
	e2 := sc.jwtBody.runEnd(s, e1+1, cWord)
	if e2-(e1+1) < 4 || e2 >= len(s) || s[e2] != '.' {
		return secretSpan{}
	}
	return secretSpan{a, sc.jwtSig.runEnd(s, e2+1, cWord), "jwt"}
}

// bearerToken checks a 'b' or 'B' at i: "Bearer" and a token.
func (sc *secretScanner) bearerToken(i int) secretSpan {
	s := sc.s
	if len(s)-i < 8 || !equalFoldASCII(s[i:i+6], "bearer") || !blank(s[i+6]) || !wordStart(s, i, sc.lo) {
		return secretSpan{}
	}
	j := i + 7
	for j < len(s) && blank(s[j]) {
		j++
	}
	end := sc.bearer.runEnd(s, j, cToken)
	if n := end - j; n >= 16 || n >= 8 && sc.bearer.lastDigit >= j {
		return secretSpan{j, end, "bearer"}
	}
	return secretSpan{}
}

// privateKey checks the "-----BEGIN " at i.
func privateKey(s string, i int) secretSpan {
	j := i + len("-----BEGIN ")
	k := pemLabel(s, j)
	if !strings.HasPrefix(s[k:], "-----") || !strings.Contains(s[j:k], "PRIVATE KEY") {
		return secretSpan{}
	}
	body := k + len("-----")
	e := strings.Index(s[body:], "-----END ")
	if e < 0 {
		return secretSpan{i, len(s), "private_key"}
	}
	end := pemLabel(s, body+e+len("-----END "))
	// The closing dashes, but not those of a next block's BEGIN.
	for n := 0; n < len("-----") && end < len(s) && s[end] == '-' && !pemAt(s, end); n++ {
		end++
	}
	return secretSpan{i, end, "private_key"}
}

// pemLabel returns the end of the PEM label (at most 64 of [A-Z0-9 ])
// starting at j.
func pemLabel(s string, j int) int {
	k := j
	for k < len(s) && k-j < 64 && (byteClass[s[k]]&cUpperDigit != 0 || s[k] == ' ') {
		k++
	}
	return k
}

// card checks the digit at i, which may start a card number.
func (sc *secretScanner) card(i int) secretSpan {
	s, lo := sc.s, sc.lo
	if i > lo {
		p := s[i-1]
		if isDigit(p) || (p == ' ' || p == '-') && i-2 >= lo && isDigit(s[i-2]) {
			return secretSpan{} // inside a run of digits that started before
		}
	}
	if s[i] < '2' || s[i] > '6' || !wordStart(s, i, lo) {
		return secretSpan{}
	}
	var sep byte
	digits, groups, first, j, grouped := 0, 0, 0, i, true
	for {
		g := j
		for j < len(s) && isDigit(s[j]) {
			if j++; digits+j-g > 19 {
				return secretSpan{} // the rest of the run starts no card either
			}
		}
		n := j - g
		digits += n
		groups++
		more := j+1 < len(s) && (s[j] == ' ' || s[j] == '-') && isDigit(s[j+1])
		switch {
		case groups == 1:
			first = n
		case n > 6 || more && n < 3:
			grouped = false
		}
		if !more {
			break
		}
		if sep == 0 {
			sep = s[j]
		} else if s[j] != sep {
			grouped = false
		}
		j++
	}
	if digits < 13 || groups > 1 && (!grouped || first != 4) ||
		j < len(s) && byteClass[s[j]]&cAlnum != 0 || !luhn(s[i:j]) {
		return secretSpan{}
	}
	return secretSpan{i, j, "card"}
}

// luhn reports whether the digits of s pass the Luhn check; other bytes
// are skipped.
func luhn(s string) bool {
	sum, double := 0, false
	for k := len(s) - 1; k >= 0; k-- {
		if !isDigit(s[k]) {
			continue
		}
		d := int(s[k] - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// assignment checks a ':' or '=' at i: a URL's password, or the value
// given to a secret's name.
func (sc *secretScanner) assignment(i int) secretSpan {
	s := sc.s
	if s[i] == ':' {
		if m := sc.urlPassword(i); m.kind != "" {
			return m
		}
	}
	kind := sc.nameBefore(i)
	if kind == "" {
		return secretSpan{}
	}
	j := i + 1
	if j < len(s) && (s[i] == ':' && s[j] == '=' || s[i] == '=' && (s[j] == '=' || s[j] == '>')) {
		j++ // := == =>
	}
	for j < len(s) && blank(s[j]) {
		j++
	}
	if kind == "authorization" {
		if m, ok := authorization(s, j); ok {
			return m
		}
	}
	start, end := valueSpan(s, j)
	if end <= start || strings.HasPrefix(s[start:end], "[REDACTED:") {
		return secretSpan{}
	}
	return secretSpan{start, end, kind}
}

// urlPassword checks the ':' at i for a URL's "://user:password@".
func (sc *secretScanner) urlPassword(i int) secretSpan {
	s, lo := sc.s, sc.lo
	k := i
	for k > lo && byteClass[s[k-1]]&cUser != 0 {
		k--
	}
	if k-3 < lo || s[k-3:k] != "://" {
		return secretSpan{}
	}
	at := -1
	for j := i + 1; j < len(s) && (byteClass[s[j]]&cUser != 0 || s[j] == ':' || s[j] == '@'); j++ {
		if s[j] == '@' {
			at = j // the last '@': an unescaped one may be in the password
		}
	}
	if at <= i+1 {
		return secretSpan{}
	}
	return secretSpan{i + 1, at, "url_password"}
}

// secretNames are the names whose values are redacted, lower case without
// separators, each with its kind. The first whose name ends the
// identifier wins.
var secretNames = [...]struct{ name, kind string }{
	{"secretaccesskey", "aws_secret_key"},
	{"secret", "secret"}, // client_secret and api_secret too
	{"secretkey", "secret"},
	{"password", "password"},
	{"passwd", "password"},
	{"apikey", "api_key"},
	{"privatekey", "private_key"},
	{"accesstoken", "token"},
	{"refreshtoken", "token"},
	{"authtoken", "token"},
	{"sessiontoken", "token"},
	{"authorization", "authorization"},
}

// nameBefore returns the kind of the secret named before the separator at
// i, or "" if the name there is no secret's. The name may be quoted, with
// an escaped quote too, and followed by blanks.
func (sc *secretScanner) nameBefore(i int) string {
	s, lo := sc.s, sc.lo
	j := i
	for j > lo && blank(s[j-1]) {
		j--
	}
	if j > lo && (s[j-1] == '"' || s[j-1] == '\'') {
		if j--; j > lo && s[j-1] == '\\' {
			j--
		}
	}
	if j <= lo {
		return ""
	}
	switch lower(s[j-1]) {
	case 'd', 't', 'y', 'n': // the last letters of the names
	default:
		return ""
	}
	for _, n := range secretNames {
		if endsWithName(s, j, lo, n.name) {
			return n.kind
		}
	}
	return ""
}

// endsWithName reports whether s[lo:j] ends with name, in any case, with
// single '_' or '-' allowed between its letters.
func endsWithName(s string, j, lo int, name string) bool {
	k := len(name)
	for k > 0 {
		if j <= lo {
			return false
		}
		c := lower(s[j-1])
		switch {
		case c == name[k-1]:
			k--
		case (c == '_' || c == '-') && k < len(name) && j-1 > lo && lower(s[j-2]) == name[k-1]:
			// a separator between two letters of the name
		default:
			return false
		}
		j--
	}
	return true
}

// authSchemes are the Authorization schemes whose credentials follow a
// blank, with the kind of those credentials.
var authSchemes = [...]struct{ scheme, kind string }{
	{"bearer", "bearer"},
	{"basic", "basic_auth"},
	{"token", "authorization"},
	{"digest", "authorization"},
	{"negotiate", "authorization"},
	{"ntlm", "authorization"},
	{"bot", "authorization"},
	{"dpop", "authorization"},
	{"apikey", "authorization"},
}

// authorization returns the credentials of an Authorization value starting
// at j that begins with a scheme: ok is true if the value has a scheme,
// and then a zero secretSpan means there is nothing to redact.
func authorization(s string, j int) (m secretSpan, ok bool) {
	q := j
	if q < len(s) && (s[q] == '"' || s[q] == '\'') {
		q++
	} else if strings.HasPrefix(s[q:], `\"`) {
		q += 2
	}
	w := q
	for w < len(s) && byteClass[s[w]]&cAlnumDash != 0 {
		w++
	}
	kind := ""
	for _, a := range authSchemes {
		if equalFoldASCII(s[q:w], a.scheme) {
			kind = a.kind
			break
		}
	}
	switch {
	case kind == "":
		return secretSpan{}, false
	case w == len(s) || byteClass[s[w]]&cStop != 0 && !blank(s[w]):
		return secretSpan{}, true // a scheme alone
	case !blank(s[w]):
		return secretSpan{}, false // not a scheme after all ("Bearer%20...")
	}
	for w < len(s) && blank(s[w]) {
		w++
	}
	end := w
	for end < len(s) && byteClass[s[end]]&cStop == 0 && !pemAt(s, end) {
		end++
	}
	if end == w {
		return secretSpan{}, true
	}
	return secretSpan{w, end, kind}, true
}

// valueSpan returns the value starting at j: inside its quotes if quoted
// (to the closing quote or the end of the line), else up to the first
// byte of class cStop. A value stops before a PEM block's "-----BEGIN",
// which is redacted whole: that way a value that runs into a private key
// does not swallow its first line and leave the rest.
func valueSpan(s string, j int) (start, end int) {
	if j >= len(s) {
		return j, j
	}
	k := j + 1
	switch {
	case s[j] == '"':
		for k < len(s) && s[k] != '"' && !newline(s[k]) && !pemAt(s, k) {
			if s[k] == '\\' && k+1 < len(s) && !newline(s[k+1]) && !pemAt(s, k+1) {
				k++ // an escaped byte
			}
			k++
		}
		return j + 1, k
	case s[j] == '\'':
		for k < len(s) && s[k] != '\'' && !newline(s[k]) && !pemAt(s, k) {
			k++
		}
		return j + 1, k
	case strings.HasPrefix(s[j:], `\"`): // a JSON string inside a JSON string
		k++
		for k < len(s) && s[k] != '"' && !newline(s[k]) && !pemAt(s, k) {
			k++
		}
		if k < len(s) && s[k] == '"' && s[k-1] == '\\' && k-1 > j+1 {
			k--
		}
		return j + 2, k
	}
	k = j
	for k < len(s) && byteClass[s[k]]&cStop == 0 && !pemAt(s, k) {
		k++
	}
	return j, k
}

// pemAt reports whether a PEM block's "-----BEGIN" starts at k.
func pemAt(s string, k int) bool {
	return s[k] == '-' && strings.HasPrefix(s[k:], "-----BEGIN")
}

// wordStart reports whether a token may start at p: p is lo (the start of
// the text or the end of the last secret) or follows a byte that is not an
// ASCII letter or digit, or a JSON escape such as \n or \u0020.
func wordStart(s string, p, lo int) bool {
	if p <= lo {
		return true
	}
	c := s[p-1]
	if byteClass[c]&cAlnum == 0 {
		return true
	}
	if (c == 'n' || c == 't' || c == 'r') && p-2 >= lo && s[p-2] == '\\' {
		return true
	}
	return p-6 >= lo && s[p-6] == '\\' && s[p-5] == 'u' &&
		isHex(s[p-4]) && isHex(s[p-3]) && isHex(s[p-2]) && isHex(c)
}

// A spanCache remembers the last run of bytes of one class that a rule
// measured, so that the rule's later queries inside it cost nothing.
type spanCache struct {
	valid      bool
	start, end int // the run s[start:end]; end is the answer for any p in [start, end]
	lastDigit  int // the index of the last digit in the run, or -1
	lastPunct  int // the index of the last '-' or '_' in the run, or -1
}

// runEnd returns the end of the run of bytes of class c starting at p. A run
// stops before "-----BEGIN", where a PEM block may start.
func (r *spanCache) runEnd(s string, p int, c uint16) int {
	if r.valid && r.start <= p && p <= r.end {
		return r.end
	}
	r.valid, r.start, r.lastDigit, r.lastPunct = true, p, -1, -1
	j := p
	for ; j < len(s) && byteClass[s[j]]&c != 0; j++ {
		switch b := s[j]; {
		case isDigit(b):
			r.lastDigit = j
		case pemAt(s, j):
			r.end = j
			return j
		case b == '-' || b == '_':
			r.lastPunct = j
		}
	}
	r.end = j
	return j
}

// Byte classes.
const (
	cTrigger    uint16 = 1 << iota // a byte where a check starts
	cAlnum                         // [A-Za-z0-9]
	cUpperDigit                    // [A-Z0-9]
	cWord                          // [A-Za-z0-9_-]: base64url
	cAlnumDash                     // [A-Za-z0-9-]
	cAlnumUnder                    // [A-Za-z0-9_]
	cToken                         // [A-Za-z0-9._~+/=-]: a bearer token
	cUser                          // the bytes of a URL's user name
	cStop                          // the bytes that end an unquoted value
)

// byteClass holds the classes of each byte; it is never written after it
// is built.
var byteClass = func() (t [256]uint16) {
	set := func(chars string, c uint16) {
		for i := 0; i < len(chars); i++ {
			t[chars[i]] |= c
		}
	}
	const (
		upper  = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		lowerc = "abcdefghijklmnopqrstuvwxyz"
		digits = "0123456789"
		alnum  = upper + lowerc + digits
	)
	set(digits+"-_AJbB:=", cTrigger)
	set(alnum, cAlnum|cWord|cAlnumDash|cAlnumUnder|cToken|cUser)
	set(upper+digits, cUpperDigit)
	set("-_", cWord)
	set("-", cAlnumDash)
	set("_", cAlnumUnder)
	set("-._~+/=", cToken)
	set("-._~%!$&'()*+,;=", cUser)
	set(" \t\n\r\v\f\"'`\\&,;<>()[]}|", cStop)
	return t
}()

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'f' }
func blank(c byte) bool   { return c == ' ' || c == '\t' }
func newline(c byte) bool { return c == '\n' || c == '\r' }
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFoldASCII reports whether s equals the lower-case ASCII word w in
// any case.
func equalFoldASCII(s, w string) bool {
	if len(s) != len(w) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != w[i] {
			return false
		}
	}
	return true
}
