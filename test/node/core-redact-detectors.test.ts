import { describe, expect, it } from "vitest";
import { DETECTOR_NAMES, type DetectorName, type Finding, findPii, partialForm } from "../../src/redact/detectors.ts";
import { prng } from "../../bench/prng.ts";

/** The matched texts (and kinds) one detector finds. */
const matches = (text: string, detector: DetectorName) => findPii(text, [detector]).map((f) => text.slice(f.start, f.end));
const kinds = (text: string, detector: DetectorName) => findPii(text, [detector]).map((f) => f.kind);

/** base64url without padding, as a JWT encodes its segments. */
const b64url = (value: unknown) => btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
const JWT = `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url({ sub: "1234567890", name: "Jane" })}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`;
const GATEWAY_KEY = `gw_${"Ab3_-x9Z".repeat(5)}K7q`;
const CONNECTOR_TOKEN = `gwc_${"Zz0-_a1B".repeat(5)}p2Q`;
const OPENAI_KEY = `sk-${"Ab3Cd4Ef5Gh6".repeat(4)}`;
const OPENAI_PROJECT_KEY = `sk-proj-${"Ab3_Cd-4Ef5Gh6".repeat(10)}T3BlbkFJ${"x9Y8".repeat(10)}`;
const ANTHROPIC_KEY = `sk-ant-api03-${"Ab3_Cd-4Ef5Gh6".repeat(6)}AbCdEfGhI-AA`;
const PEM = ["-----BEGIN RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun", "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK", "-----END RSA PRIVATE KEY-----"].join("\n");

describe("ssn", () => {
  it.each([
    ["123-45-6789", "123-45-6789"],
    ["SSN 123 45 6789.", "123 45 6789"],
    ["ssn: 123456789", "123456789"],
    ["SSN#123456789", "123456789"],
    ["Social Security number 078051120", "078051120"],
    ["(123-45-6789)", "123-45-6789"],
    ["id 899-99-9999", "899-99-9999"],
    // The context word joined into an identifier, quoted, camelCase, before a colon or "=".
    ["patient_ssn: 123456789", "123456789"],
    ["socialSecurityNumber: 123456789", "123456789"],
    ['"ssn":"123456789"', "123456789"],
    ['{"patient": {"ssn": "123456789"}}', "123456789"],
    ["patientSsn=123456789", "123456789"],
    ["SOCIAL_SECURITY_NO=123456789", "123456789"],
    ["social-security: 123456789", "123456789"],
    ["SSNs: 123456789", "123456789"],
  ])("finds %j", (text, expected) => {
    expect(matches(text, "ssn")).toEqual([expected]);
  });

  it.each([
    ["000-12-3456", "area 000"],
    ["666-12-3456", "area 666"],
    ["900-12-3456", "area 9xx"],
    ["999-12-3456", "area 9xx"],
    ["123-00-4567", "group 00"],
    ["123-45-0000", "serial 0000"],
    ["123-45 6789", "mixed separators"],
    ["1123-45-6789", "longer digit run before"],
    ["123-45-67890", "longer digit run after"],
    ["0-123-45-6789", "dash-joined run before"],
    ["123-45-6789-1", "dash-joined run after"],
    ["1.123-45-6789", "decimal before"],
    ["x123-45-6789", "inside a word"],
    ["123456789", "bare digits without context"],
    ["zip 123456789", "bare digits with other context"],
    ["the SSN field is documented elsewhere: 123456789", "context more than 20 characters before"],
    ["ssn: 000123456", "bare digits with context but an invalid area"],
    ["ssn: 1234567890", "ten bare digits"],
    ["classname: 123456789", "ssn inside a word"],
    ["grossness 123456789", "ssn inside a word"],
    ["assn: 123456789", "ssn at the end of a word"],
    ["ssnumber 123456789", "ssn at the start of a word"],
    ["patient_ssn_field_that_is_long: 123456789", "context word more than 20 characters before"],
    ["ssn\n123456789", "context word on the line before"],
    ["patient_ssn: 900123456", "context, invalid area"],
  ])("ignores %j (%s)", (text) => {
    expect(matches(text, "ssn")).toEqual([]);
  });
});

describe("card", () => {
  it.each([
    ["4242424242424242", "visa"],
    ["4242 4242 4242 4242", "visa"],
    ["4242-4242-4242-4242", "visa"],
    ["4111111111111111", "visa"],
    ["4222222222222", "visa"],
    ["5555 5555 5555 4444", "mastercard"],
    ["2223003122003222", "mastercard"],
    ["378282246310005", "amex"],
    ["3782 822463 10005", "amex"],
    ["371449635398431", "amex"],
    ["6011111111111117", "discover"],
    ["6500000000000002", "discover"],
    ["6445644564456445", "discover"],
    ["3530111333300000", "jcb"],
    ["3566-0020-2036-0505", "jcb"],
    ["30569309025904", "diners"],
    ["3852 000002 3237", "diners"],
    ["36227206271667", "diners"],
    ["6200000000000005", "unionpay"],
  ])("finds %j (%s)", (text, scheme) => {
    expect(matches(text, "card")).toEqual([text]);
    expect(kinds(text, "card")).toEqual([scheme]);
  });

  it.each([
    ["card: 4242 4242 4242 4242.", "4242 4242 4242 4242"],
    ["order 1234 4242 4242 4242 4242", "4242 4242 4242 4242"],
    ["4242424242424242,4000056655665556", "4242424242424242"],
    ["/cards/4242424242424242/charge", "4242424242424242"],
    // A CVC or expiry after ":" or "/" does not hide the card (the card part is the finding).
    ["4111111111111111:123", "4111111111111111"],
    ["4111111111111111/1225", "4111111111111111"],
    ["4111 1111 1111 1111/12/26", "4111 1111 1111 1111"],
    ["card=4111-1111-1111-1111:123:1226", "4111-1111-1111-1111"],
    ["exp 12/26/4111111111111111", "4111111111111111"],
  ])("finds the card in %j", (text, expected) => {
    expect(matches(text, "card")[0]).toBe(expected);
  });

  it.each([
    ["4242424242424241", "invalid Luhn"],
    ["1234567812345670", "Luhn-valid, unknown IIN"],
    ["9999999999999995", "Luhn-valid, unknown IIN"],
    ["order #1234567812345670", "an order number"],
    ["424242424242424", "Visa prefix, 15 digits"],
    ["3782822463100052", "Amex prefix, 16 digits"],
    ["555555555555442", "Mastercard prefix, 15 digits"],
    ["94242424242424242", "inside a longer digit run (before)"],
    ["42424242424242421", "inside a longer digit run (after)"],
    ["42424242424242421234", "20 digits"],
    ["1234-4242-4242-4242-4242", "dash-joined to another group"],
    ["4242-4242-4242-4242-1", "dash-joined to another group after"],
    ["1.4242424242424242", "decimal digits"],
    ["4242424242424242.5", "decimal digits after"],
    ["tok_4242424242424242", "inside a token"],
    ["4242 4242 4242-4242", "mixed separators"],
    ["4242  4242 4242 4242", "double space"],
    ["42 42 42 42 42 42 42 42", "two-digit groups"],
    ["4242424242424241:123", "invalid Luhn before a colon"],
    ["4111111111111112/1225", "invalid Luhn before a slash"],
    ["94242424242424242:123", "inside a longer digit run, before a colon"],
    ["1.4242424242424242:123", "decimal digits, before a colon"],
    ["4242424242424242.5:1", "decimal digits after"],
    ["12:30:4242424242424241", "invalid Luhn after a colon"],
  ])("ignores %j (%s)", (text) => {
    expect(matches(text, "card")).toEqual([]);
  });
});

describe("email", () => {
  it.each([
    ["jane@example.com", "jane@example.com"],
    ["Jane.Doe+tag@mail.example.co.uk", "Jane.Doe+tag@mail.example.co.uk"],
    ["first_last-1@sub.example.io", "first_last-1@sub.example.io"],
    ["<jane@example.com>", "jane@example.com"],
    ["write to jane@example.com.", "jane@example.com"],
    ['"email":"jane@example.com"', "jane@example.com"],
    ["mailto:jane@example.com", "jane@example.com"],
    ["https://x.com/?u=jane@example.com", "jane@example.com"],
    ["https://x.com/users/jane@example.com/profile", "jane@example.com"],
    ["jane@xn--bcher-kva.example", "jane@xn--bcher-kva.example"],
    ["...jane@example.com", "jane@example.com"],
    [`${"a".repeat(64)}@example.com`, `${"a".repeat(64)}@example.com`],
    // A local part over 64 characters is taken whole (fail closed).
    [`${"a".repeat(65)}@example.com`, `${"a".repeat(65)}@example.com`],
    [`x ${"b.c".repeat(100)}@example.com`, `${"b.c".repeat(100)}@example.com`],
    // Internationalised domains and local parts.
    ["jane@bücher.de", "jane@bücher.de"],
    ["jane@例え.jp", "jane@例え.jp"],
    ["jane@пример.рф", "jane@пример.рф"],
    ["jörg@bücher.de", "jörg@bücher.de"],
    ["田中@例え.テスト", "田中@例え.テスト"],
    ["mail: jane@bücher.de.", "jane@bücher.de"],
    // In text without spaces between words, the address is only the address.
    ["連絡はjane@example.comまで", "jane@example.com"],
    ["连接jane@例子.中国。", "jane@例子.中国"],
  ])("finds the email in %j", (text, expected) => {
    expect(matches(text, "email")).toEqual([expected]);
  });

  it.each([
    ["https://user:pass@host.com/", "URL userinfo with a password"],
    ["https://jane@host.com/path", "URL userinfo"],
    ["ftp://anonymous@ftp.example.org/pub", "URL userinfo"],
    ["jane@localhost", "no TLD"],
    ["jane@example.c", "one-letter TLD"],
    ["jane@example.123", "numeric TLD"],
    ["@example.com", "no local part"],
    ["jane@", "no domain"],
    ["jane@-example.com", "label starting with a dash"],
    ["jane@example..com", "empty label"],
    ["a@b@c", "no domain"],
    ["jane@bücher", "IDN without a TLD"],
    ["jane@例え", "IDN without a TLD"],
    ["jane@例え.j", "one-letter TLD after an IDN label"],
    ["jane@例え.1", "numeric TLD after an IDN label"],
    ["jane@例え.jp2", "TLD with a digit"],
    ["https://jörg@bücher.de/", "IRI userinfo"],
  ])("ignores %j (%s)", (text) => {
    expect(matches(text, "email")).toEqual([]);
  });
});

describe("phone", () => {
  it.each([
    ["(415) 555-0132", "nanp"],
    ["(415)555-0132", "nanp"],
    ["415-555-0132", "nanp"],
    ["415.555.0132", "nanp"],
    ["415 555 0132", "nanp"],
    ["1-415-555-0132", "nanp"],
    ["+1 415 555 0132", "e164"],
    ["+1 (415) 555-0132", "e164"],
    ["+1-415-555-0132", "e164"],
    ["+14155550132", "e164"],
    ["020 7946 0958", "national"],
    ["(020) 7946 0958", "national"],
    ["+44 20 7946 0958", "e164"],
    ["+44 (0)20 7946 0958", "e164"],
    ["+33 1 23 45 67 89", "e164"],
    ["01 23 45 67 89", "national"],
    ["01.23.45.67.89", "national"],
    ["+49 30 123456", "e164"],
    ["030 123456", "national"],
    ["0221-1234567", "national"],
  ])("finds %j (%s)", (text, kind) => {
    expect(matches(text, "phone")).toEqual([text]);
    expect(kinds(text, "phone")).toEqual([kind]);
  });

  it.each([
    ["Call 415-555-0132 2 times", "415-555-0132"],
    ["ref 12 (415) 555-0132", "(415) 555-0132"],
    ["tel:+14155550132", "+14155550132"],
    ["2026-11-25 415-555-0132", "415-555-0132"],
    // Bare digits after a context word.
    ["phone: 4155550132", "4155550132"],
    ["Tel. 4155550132", "4155550132"],
    ["mobileNumber: 14155550132", "14155550132"],
    ['{"cell":"4155550132"}', "4155550132"],
    ["fax 4155550132", "4155550132"],
    ["Call me at 4155550132", "4155550132"],
    ["phone_number=4155550132", "4155550132"],
    ["contact_phone: 4155550132", "4155550132"],
    ["tel:02079460958", "02079460958"],
  ])("finds the phone in %j", (text, expected) => {
    expect(matches(text, "phone")).toEqual([expected]);
  });

  it.each([
    ["2026-11-25", "ISO date"],
    ["25.11.2026", "European date"],
    ["11/25/2026", "US date"],
    ["05 11 2026", "spaced date"],
    ["2026-11-25 10:30:45", "timestamp"],
    ["12:30:45", "time"],
    ["1.2.3.4", "IP / version"],
    ["192.168.100.200", "IP"],
    ["v1.2.3", "version"],
    ["14155550132", "long number without separators or +"],
    ["1699999999123", "epoch milliseconds"],
    ["555-0132", "seven digits"],
    ["415-555-0132-99", "dash-joined to more digits"],
    ["x415-555-0132", "inside a word"],
    ["123-456-7890", "NANP area code starting 1"],
    ["415-155-0132", "NANP exchange starting 1"],
    ["415-555.0132", "mixed separators"],
    ["+1 2", "too few digits"],
    ["+1234567", "seven digits after +"],
    ["+0 20 7946 0958", "country code 0"],
    ["1 000 000", "thousands"],
    ["1+14155550132", "+ inside an expression"],
    ["0012 3456 7890", "00 prefix without +"],
    ["4242 4242 4242 4242", "card number"],
    ["4155550132", "bare ten digits without context"],
    ["order 4155550132", "bare digits after another word"],
    ["hotel 4155550132", "tel inside a word"],
    ["telemetry 4155550132", "tel at the start of a word"],
    ["recall 4155550132", "call inside a word"],
    ["phone: 1234567890", "context, NANP area code starting 1"],
    ["phone: 4151550132", "context, NANP exchange starting 1"],
    ["phone: 41555501321", "context, 11 digits not starting 1"],
    ["phone: 415555013", "context, nine digits"],
    ["phone: 4155550132123", "context, thirteen digits"],
    ["phone: 4155550132.5", "context, decimal"],
    ["phone number in the footer, ref 4155550132", "context word more than 20 characters before"],
    ["phone\n4155550132", "context word on the line before"],
  ])("ignores %j (%s)", (text) => {
    expect(matches(text, "phone")).toEqual([]);
  });
});

describe("iban", () => {
  it.each([
    "DE89 3704 0044 0532 0130 00",
    "DE89370400440532013000",
    "GB29 NWBK 6016 1331 9268 19",
    "FR14 2004 1010 0505 0001 3M02 606",
    "NL91ABNA0417164300",
    "CH93 0076 2011 6238 5295 7",
    "BE68539007547034",
  ])("finds %j", (iban) => {
    expect(matches(`IBAN: ${iban}.`, "iban")).toEqual([iban]);
  });

  it.each([
    ["DE89370400440532013001", "wrong check digits"],
    ["DE88 3704 0044 0532 0130 00", "wrong check digits"],
    ["DE8937040044053201300", "too short for DE"],
    ["DE893704004405320130000", "too long for DE"],
    ["XX89370400440532013000", "unknown country"],
    ["de89370400440532013000", "lower case"],
    ["DE89370400440532013000X", "followed by more characters"],
    ["XDE89370400440532013000", "inside a word"],
    ["DE89 37040 04405 32013 000", "spaces not every 4"],
  ])("ignores %j (%s)", (text) => {
    expect(matches(text, "iban")).toEqual([]);
  });
});

describe("ip", () => {
  it.each([
    ["203.0.113.42", "203.0.113.42", "ipv4"],
    ["0.0.0.0", "0.0.0.0", "ipv4"],
    ["255.255.255.255", "255.255.255.255", "ipv4"],
    ["host 10.0.0.1:8080", "10.0.0.1", "ipv4"],
    ["Server 10.0.0.1.", "10.0.0.1", "ipv4"],
    ["version 1.2.3.4", "1.2.3.4", "ipv4"],
    ["net 10.0.0.0/8", "10.0.0.0", "ipv4"],
    ["2001:db8::1", "2001:db8::1", "ipv6"],
    ["::1", "::1", "ipv6"],
    ["fe80::1%eth0", "fe80::1%eth0", "ipv6"],
    ["2001:0db8:85a3:0000:0000:8a2e:0370:7334", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "ipv6"],
    ["::ffff:192.0.2.1", "::ffff:192.0.2.1", "ipv6"],
    ["[2001:db8::1]:443", "2001:db8::1", "ipv6"],
    ["prefix 2001:db8::/32", "2001:db8::", "ipv6"],
    ["loopback ::1.", "::1", "ipv6"],
  ])("finds the address in %j", (text, expected, kind) => {
    expect(matches(text, "ip")).toEqual([expected]);
    expect(kinds(text, "ip")).toEqual([kind]);
  });

  it.each([
    ["10.0.0.256", "octet 256"],
    ["256.1.1.1", "octet 256"],
    ["01.2.3.4", "leading zero"],
    ["1.2.3.4.5", "longer dotted run (version)"],
    ["v1.2.3.4", "version"],
    ["1.2.3", "three parts"],
    ["10.0.0.1.nip.io", "part of a hostname"],
    ["12:30:45", "time"],
    ["12:30:45.123", "time with fraction"],
    ["10:30", "short time"],
    ["00:1a:2b:3c:4d:5e", "MAC address"],
    ["1:2:3", "three groups"],
    ["::", "unspecified without a digit"],
    ["std::vector", "C++ scope"],
    [":: add", "separator"],
    ["::add", "all-letter groups"],
    ["1::2::3", "two ::"],
    ["12345::1", "group over 4 hex digits"],
  ])("ignores %j (%s)", (text) => {
    expect(matches(text, "ip")).toEqual([]);
  });
});

describe("secret", () => {
  it.each([
    ["AKIAIOSFODNN7EXAMPLE", "aws-access-key"],
    ["ASIAY34FZKBOKMUTVV7A", "aws-access-key"],
    [`ghp_${"A1b2C3d4E5".repeat(3)}f6G7h8`, "github-token"],
    [`gho_${"x".repeat(36)}`, "github-token"],
    [`ghs_${"0".repeat(36)}`, "github-token"],
    [`github_pat_11ABCDEFG0${"a".repeat(12)}_${"Z9".repeat(29)}x`, "github-token"],
    ["xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack-token"],
    ["xoxp-1234567890-abcdefghij", "slack-token"],
    ["sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe-key"],
    ["sk_test_4eC39HqLyjWDarjtT1zdp7dc", "stripe-key"],
    ["rk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe-key"],
    [JWT, "jwt"],
    [PEM, "private-key"],
    [GATEWAY_KEY, "gateway-api-key"],
    [CONNECTOR_TOKEN, "gateway-connector-token"],
    [OPENAI_KEY, "openai-key"],
    [OPENAI_PROJECT_KEY, "openai-key"],
    [`sk-svcacct-${"Xy9_".repeat(10)}`, "openai-key"],
    [ANTHROPIC_KEY, "anthropic-key"],
    ["AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "google-api-key"],
    ["glpat-xKzJ4bNq8vRt2WpLm6Yc", "gitlab-token"],
    ["glpat-xKzJ4bNq8vRt2WpLm6Yc.01.171nq8vrt", "gitlab-token"],
    [`npm_${"aB3d".repeat(9)}`, "npm-token"],
  ])("finds %j (%s)", (secret, kind) => {
    const text = `token: ${secret} end`;
    expect(matches(text, "secret")).toEqual([secret]);
    expect(kinds(text, "secret")).toEqual([kind]);
  });

  it.each([
    ["aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
    ["AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"],
    ['{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}'],
  ])("finds the AWS secret access key in %j", (text) => {
    expect(matches(text, "secret")).toEqual(["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"]);
    expect(kinds(text, "secret")).toEqual(["aws-secret-key"]);
  });

  it.each([
    // Bearer tokens: the token part, after Authorization: or alone; a shaped token keeps its own kind.
    ["Authorization: Bearer abcdefghij0123456789_-.~+/", "abcdefghij0123456789_-.~+/", "bearer-token"],
    ["Bearer 0123456789abcdefghijKLMN=", "0123456789abcdefghijKLMN=", "bearer-token"],
    ["authorization: bearer 0123456789abcdefghijKLMN.", "0123456789abcdefghijKLMN", "bearer-token"],
    ['{"Authorization": "Bearer mF_9.B5f-4.1JqM"}', "mF_9.B5f-4.1JqM", "bearer-token"],
    [`Authorization: Bearer ${JWT}`, JWT, "jwt"],
    ["-H 'Authorization: Basic dXNlcjpwYXNzd29yZA=='", "dXNlcjpwYXNzd29yZA==", "basic-auth"],
    ["Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "auth-token"],
    // Assignments in query strings and config text: the value.
    ["https://api.example.com/v1?user=jane&password=hunter2&page=2", "hunter2", "assigned-secret"],
    ["passwd=s3cr3t; user=jane", "s3cr3t", "assigned-secret"],
    ["secret=abc123", "abc123", "assigned-secret"],
    ["/callback?token=abc123&state=xyz", "abc123", "assigned-secret"],
    ["api_key=0123456789abcdef", "0123456789abcdef", "assigned-secret"],
    ["DB_PASSWORD=hunter2", "hunter2", "assigned-secret"],
    ['password: "correct horse battery staple"', "correct horse battery staple", "assigned-secret"],
    ["password = 'it\\'s'", "it\\'s", "assigned-secret"],
    ['{"client_secret":"s3cr3t","id":1}', "s3cr3t", "assigned-secret"],
    ["apiKey: 'k-123'", "k-123", "assigned-secret"],
    ["x-api-key: abc123def456", "abc123def456", "assigned-secret"],
    ["accessToken => q1w2e3r4", "q1w2e3r4", "assigned-secret"],
    ["new_password_confirmation=hunter2", "hunter2", "assigned-secret"],
    ['{\\"password\\":\\"hunter2\\"}', "hunter2", "assigned-secret"],
    ['password: "unclosed quote', "unclosed", "assigned-secret"],
    ["aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYX", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYX", "assigned-secret"],
    [`token: ${OPENAI_KEY}`, OPENAI_KEY, "openai-key"],
    // URL userinfo passwords: the password.
    ["postgres://user:pw@db.example.com:5432/app", "pw", "url-password"],
    ["https://user:pw@host", "pw", "url-password"],
    ["redis://:p@ss@cache:6379", "p@ss", "url-password"],
    ['"mongodb+srv://admin:S3cr3t%21@cluster0.example.net/test"', "S3cr3t%21", "url-password"],
  ])("finds the credential in %j", (text, expected, kind) => {
    expect(matches(text, "secret")).toEqual([expected]);
    expect(kinds(text, "secret")).toEqual([kind]);
  });

  it("takes a PEM private key whole, BEGIN through END, in JSON-escaped text too", () => {
    const text = `key:\n${PEM}\nnext line`;
    const [finding] = findPii(text, ["secret"]);
    expect(finding).toEqual({ detector: "secret", start: 5, end: 5 + PEM.length, kind: "private-key" });
    const escaped = JSON.stringify({ key: PEM });
    expect(matches(escaped, "secret")).toEqual([JSON.stringify(PEM).slice(1, -1)]);
  });

  it("takes a truncated PEM private key through its base64 lines, not the prose after it", () => {
    const text = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\nthe rest is prose.";
    expect(matches(text, "secret")).toEqual(["-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7"]);
  });

  it.each([
    ["AKIAIOSFODNN7EXAMPL", "AWS key id, 15 characters"],
    ["AKIAIOSFODNN7EXAMPLE1", "AWS key id, 17 characters"],
    ["akiaiosfodnn7example", "lower case"],
    ["XAKIAIOSFODNN7EXAMPLE", "inside a word"],
    ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "40 base64 characters without their name"],
    [`ghp_${"a".repeat(35)}`, "GitHub token, 35 characters"],
    [`ghx_${"a".repeat(36)}`, "unknown GitHub prefix"],
    [`github_pat_${"a".repeat(81)}`, "fine-grained PAT, 81 characters"],
    ["xoxz-1234567890-abcdefghij", "unknown Slack prefix"],
    ["pk_live_4eC39HqLyjWDarjtT1zdp7dc", "Stripe publishable key"],
    ["sk_live_short", "Stripe prefix, too short"],
    [`gw_${"a".repeat(42)}`, "gateway key, 42 characters"],
    [`gw_${"a".repeat(44)}`, "gateway key, 44 characters"],
    [`xgw_${"a".repeat(43)}`, "gateway prefix inside a word"],
    [`${btoa("{not json}").replace(/=+$/, "")}.${b64url({ sub: "1" })}.c2ln`, "JWT-looking, header not JSON"],
    [`${b64url({ typ: "JWT" })}.${b64url({ sub: "1" })}.c2ln`, "JWT-looking, header without alg"],
    [`${b64url(["alg"])}.${b64url({ sub: "1" })}.c2ln`, "JWT-looking, header an array"],
    [`${b64url({ alg: 1 })}.${b64url({ sub: "1" })}.c2ln`, "JWT-looking, alg not a string"],
    ["example.com.evil", "dotted words"],
    ["-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END PUBLIC KEY-----", "public key"],
    ["-----BEGIN CERTIFICATE-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A\n-----END CERTIFICATE-----", "certificate"],
    // Shaped near-misses.
    ["sk-learn-model-selection-guide-for-beginners", "slug starting sk-"],
    [`sk-${"a1".repeat(15)}b`, "sk- with 31 characters"],
    [`task-${"a1".repeat(20)}`, "sk- inside a word"],
    ["sk-ant-short", "Anthropic prefix, too short"],
    [`AIza${"a".repeat(34)}`, "Google key, 34 characters"],
    [`AIza${"a".repeat(36)}`, "Google key, 36 characters"],
    [`glpat-${"a".repeat(19)}`, "GitLab token, 19 characters"],
    [`npm_${"a".repeat(35)}`, "npm token, 35 characters"],
    [`npm_${"a".repeat(37)}`, "npm token, 37 characters"],
    // Bearer near-misses.
    ["Authorization: Bearer <token>", "placeholder"],
    ["Authorization: Bearer ${TOKEN}", "placeholder"],
    ["Authorization: Bearer abc", "too short after Authorization"],
    ["Bearer short-token", "too short alone"],
    ["the bearer of this note is entitled to", "prose"],
    ['WWW-Authenticate: Bearer realm="example"', "challenge"],
    ["basic 0123456789abcdefghijklmn", "Basic without Authorization"],
    ["token 0123456789abcdefghijklmn", "Token without Authorization"],
    // Assignment near-misses.
    ["password: null", "null"],
    ['"password": ""', "empty"],
    ["password=", "empty"],
    ["Enter your password: ", "no value"],
    ['password: "********"', "masked"],
    ["password: [REDACTED]", "redacted"],
    ["secret: true", "boolean"],
    ['"secret": {"type": "string"}', "a schema"],
    ["password: ${DB_PASSWORD}", "an interpolation"],
    ["if password == expected", "a comparison"],
    ["max_tokens: 1024", "plural"],
    ["token_count: 12", "a token count"],
    ["token_type=bearer", "a token type"],
    ["password_policy: strict", "a password setting"],
    ['nextPageToken: "CiAKGjBpNDd2Nmp2"', "a page token"],
    ["page_token=CiAKGjBp", "a page token"],
    ["bypass=1", "pass inside a word"],
    ["compass: north", "pass inside a word"],
    ["mysecret=abc", "secret inside a word"],
    ["password\n  hunter2", "no separator"],
    // URL near-misses.
    ["https://jane@host.com/", "userinfo without a password"],
    ["https://host.com:8443/path", "port"],
    ["https://host.com/a:b@c", "colon and @ in the path"],
    ["mailto:jane@example.com", "mailto"],
    ["http://user:@host/", "empty password"],
    ["1://user:pw@host/", "scheme starting with a digit"],
  ])("ignores %j (%s)", (text) => {
    expect(matches(text, "secret")).toEqual([]);
  });
});

describe("findPii", () => {
  it("reports exact offsets, in text order, for every detector", () => {
    const text =
      "Jane (jane@example.com, SSN 123-45-6789) paid with 4242 4242 4242 4242 from DE89370400440532013000; " +
      "call +1 415 555 0132 from 203.0.113.42 with key AKIAIOSFODNN7EXAMPLE.";
    expect(findPii(text, DETECTOR_NAMES)).toEqual<Finding[]>([
      { detector: "email", start: 6, end: 22 },
      { detector: "ssn", start: 28, end: 39 },
      { detector: "card", start: 51, end: 70, kind: "visa" },
      { detector: "iban", start: 76, end: 98 },
      { detector: "phone", start: 105, end: 120, kind: "e164" },
      { detector: "ip", start: 126, end: 138, kind: "ipv4" },
      { detector: "secret", start: 148, end: 168, kind: "aws-access-key" },
    ]);
    expect(text.slice(105, 120)).toBe("+1 415 555 0132");
  });

  it("finds only what the chosen detectors find", () => {
    const text = "jane@example.com 123-45-6789 203.0.113.42";
    expect(findPii(text, ["ip"]).map((f) => f.detector)).toEqual(["ip"]);
    expect(findPii(text, ["email", "ssn"]).map((f) => f.detector)).toEqual(["email", "ssn"]);
    expect(findPii(text, [])).toEqual([]);
    expect(findPii(text, ["ip", "ip"])).toHaveLength(1);
  });

  it("reports a card number that a naive phone pattern would also take as one card finding", () => {
    for (const text of ["4242 4242 4242 4242", "4242-4242-4242-4242", "3782 822463 10005"]) {
      expect(findPii(text, ["card", "phone"])).toEqual([{ detector: "card", start: 0, end: text.length, kind: expect.any(String) }]);
    }
  });

  it("prefers a card to a phone that overlaps it, so no digit of the card survives", () => {
    for (const [text, start] of [["+1 4242 4242 4242 4242", 3], ["tel +1 4242 4242 4242 4242 ok", 7], ["+44 4111 1111 1111 1111", 4]] as const) {
      expect(findPii(text, ["card", "phone"])).toEqual([{ detector: "card", start, end: start + 19, kind: "visa" }]);
      expect(findPii(text, DETECTOR_NAMES).map((f) => f.detector)).toEqual(["card"]);
    }
    // Without the card detector the phone still redacts what it can; a phone beside a card stays.
    expect(findPii("+1 4242 4242 4242 4242", ["phone"])).toEqual([{ detector: "phone", start: 0, end: 17, kind: "e164" }]);
    expect(findPii("+1 415 555 0132, 4242 4242 4242 4242", ["card", "phone"]).map((f) => f.detector)).toEqual(["phone", "card"]);
  });

  it("breaks a tie at the same start by priority (secret > card > … > email)", () => {
    const secret = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";
    const text = `${secret}@example.com`;
    // Each detector alone finds its own match at offset 0…
    expect(findPii(text, ["email"])).toEqual([{ detector: "email", start: 0, end: text.length }]);
    expect(findPii(text, ["secret"])).toEqual([{ detector: "secret", start: 0, end: secret.length, kind: "stripe-key" }]);
    // …together the secret wins, whichever order they are asked in.
    expect(findPii(text, ["email", "secret"])).toEqual([{ detector: "secret", start: 0, end: secret.length, kind: "stripe-key" }]);
    const card = "4242424242424242@example.com";
    expect(findPii(card, ["email", "card"]).map((f) => f.detector)).toEqual(["card"]);
  });

  it("lets the earlier-starting finding win an overlap, whatever the priority", () => {
    const text = "jane.4242424242424242@example.com";
    expect(findPii(text, ["card"])).toEqual([{ detector: "card", start: 5, end: 21, kind: "visa" }]);
    expect(findPii(text, ["card", "email"])).toEqual([{ detector: "email", start: 0, end: text.length }]);
    // An IPv6 address with an IPv4 tail is one finding.
    expect(findPii("::ffff:192.0.2.1", ["ip"])).toEqual([{ detector: "ip", start: 0, end: 16, kind: "ipv6" }]);
  });

  it("throws on an unknown detector name (a bug in the caller)", () => {
    expect(() => findPii("x", ["nope" as DetectorName])).toThrow(TypeError);
  });

  const FRAGMENTS = [
    "4242 4242 4242 4242", "4242424242424242", "123-45-6789", "ssn 123456789", "jane@example.com", "https://u:p@h.io/",
    "(415) 555-0132", "+44 20 7946 0958", "020 7946 0958", "DE89 3704 0044 0532 0130 00", "203.0.113.42", "2001:db8::1",
    "fe80::1%eth0", "AKIAIOSFODNN7EXAMPLE", JWT, PEM, GATEWAY_KEY, "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "1.2.3.4.5",
    "12:30:45", "2026-11-25", "::", "@", "+", "(", ")", "-", ".", ":", " ", "\n", "%", "_",
    "phone 4155550132", "patient_ssn: 123456789", "4111111111111111:123", "jane@bücher.de", "jane@例え.jp", "例え",
    "Bearer abcdefghijklmnopqrstuvwxyz", "Authorization: Basic dXNlcjpwYXNzd29yZA==", "password=hunter2", 'token: "x y"',
    "postgres://u:pw@h/db", "+1 4242 4242 4242 4242", OPENAI_KEY, "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "=", '"', "'", "&",
  ];
  const ALPHABET = "0123456789 .-:@+()%_/abcdefxyzABCDEFKSI\n=&\"'ü例";

  it.each([1, 2, 3, 4, 5, 6, 7, 8])("never returns overlapping or out-of-order findings on random text (seed %i)", (seed) => {
    const random = prng(seed);
    for (let round = 0; round < 150; round++) {
      let text = "";
      while (text.length < 300) {
        text += random() < 0.3 ? FRAGMENTS[Math.floor(random() * FRAGMENTS.length)] : ALPHABET[Math.floor(random() * ALPHABET.length)];
      }
      const chosen = DETECTOR_NAMES.filter(() => random() < 0.6);
      const detectors = chosen.length > 0 ? chosen : DETECTOR_NAMES;
      const findings = findPii(text, detectors);
      let end = 0;
      for (const f of findings) {
        expect(detectors).toContain(f.detector);
        expect(f.start).toBeGreaterThanOrEqual(end);
        expect(f.end).toBeGreaterThan(f.start);
        expect(f.end).toBeLessThanOrEqual(text.length);
        // Its own detector alone reports it, or an overlapping finding that starts no later (the merge only drops).
        expect(findPii(text, [f.detector]).some((g) => (g.start === f.start && g.end === f.end) || (g.start <= f.start && g.end > f.start))).toBe(true);
        end = f.end;
      }
      // Deterministic: the detectors' global regexes keep no state between calls.
      expect(findPii(text, detectors)).toEqual(findings);
    }
  });

  it.each([
    ["digits", "8"],
    ["a@", "a@"],
    ["1.", "1."],
    ["1 ", "1 "],
    ["1-", "1-"],
    ["1:", "1:"],
    ["e", "e"],
    ["ea.", "ea."],
    ["hex and colons", "a1:"],
    ["BEGIN lines", "-----BEGIN PRIVATE KEY-----\n"],
    ["near-JWTs", "eyJhbGciOiJub25lIn0."],
    ["IBAN anchors", "AB12 "],
    ["spaced pairs", "01 "],
    ["context words and bare numbers", "ssn phone 4155550132 123456789 "],
    ["cards before colons", "4242424242424242:"],
    ["non-ASCII local parts", "ü@"],
    ["CJK then @", "例え@"],
    ["IDN labels", "@例え."],
    ["Bearer", "Bearer "],
    ["Bearer tokens", "Bearer abcdefghijklmnopqrstuvwxyz "],
    ["Authorization headers", "Authorization: Basic "],
    ["unclosed quoted assignments", 'password="a '],
    ["escaped quoted assignments", 'token=\\"a '],
    ["assignments", "password=x&"],
    ["URL schemes", "a://b:c@"],
    ["scheme separators", "://"],
    ["sk- prefixes", "sk-"],
  ])("scans 512 KiB of %s in linear time", (_label, unit) => {
    const text = unit.repeat(Math.ceil((512 * 1024) / unit.length));
    const started = performance.now();
    findPii(text, DETECTOR_NAMES);
    // Linear is tens of milliseconds here; a quadratic scan would take minutes.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe("partialForm", () => {
  it.each<[string, DetectorName, string]>([
    ["123-45-6789", "ssn", "***-**-6789"],
    ["123 45 6789", "ssn", "*** ** 6789"],
    ["ssn 123456789", "ssn", "*****6789"],
    ["4242 4242 4242 4242", "card", "**** **** **** 4242"],
    ["4242-4242-4242-4242", "card", "****-****-****-4242"],
    ["4242424242424242", "card", "************4242"],
    ["3782 822463 10005", "card", "**** ****** *0005"],
    ["jane.doe@example.com", "email", "j***@example.com"],
    ["(415) 555-0132", "phone", "(***) ***-**32"],
    ["+1 415 555 0132", "phone", "+* *** *** **32"],
    ["+44 20 7946 0958", "phone", "+** ** **** **58"],
    ["DE89 3704 0044 0532 0130 00", "iban", "DE** **** … 3000"],
    ["GB29NWBK60161331926819", "iban", "GB** **** … 6819"],
    ["203.0.113.42", "ip", "203.0.113.***"],
    ["2001:db8::1", "ip", "2001::***"],
    ["fe80::1%eth0", "ip", "fe80::***"],
    ["::1", "ip", "::***"],
    ["AKIAIOSFODNN7EXAMPLE", "secret", "AKIA…"],
    [GATEWAY_KEY, "secret", "gw_A…"],
    [JWT, "secret", "eyJh…"],
    [PEM, "secret", "----…"],
    ["jörg@bücher.de", "email", "j***@bücher.de"],
    ["田中@例え.jp", "email", "田***@例え.jp"],
    ["phone: 4155550132", "phone", "********32"],
    ["patient_ssn: 123456789", "ssn", "*****6789"],
    ["4111111111111111:123", "card", "************1111"],
    ["Authorization: Bearer 0123456789abcdefghijKLMN", "secret", "0123…"],
    ["postgres://user:hunter2@host/db", "secret", "…"],
    ["password=hunter2", "secret", "…"],
    ["Authorization: Basic dXNlcjpwYXNzd29yZA==", "secret", "…"],
    ["Authorization: Bearer mF_9.B5f-4.1JqM", "secret", "…"],
  ])("%j (%s) → %j", (text, detector, expected) => {
    const [finding] = findPii(text, [detector]);
    expect(finding).toBeDefined();
    expect(partialForm(finding as Finding, text)).toBe(expected);
  });

  it("never shows more than four characters of a secret", () => {
    for (const secret of [GATEWAY_KEY, CONNECTOR_TOKEN, JWT, "sk_live_4eC39HqLyjWDarjtT1zdp7dc", OPENAI_KEY, ANTHROPIC_KEY]) {
      const [finding] = findPii(secret, ["secret"]);
      const partial = partialForm(finding as Finding, secret);
      expect(partial).toBe(`${secret.slice(0, 4)}…`);
    }
  });
});
