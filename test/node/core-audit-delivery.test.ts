/**
 * The pure parts of audit delivery (src/audit/delivery.ts): the webhook signature (checked against node:crypto),
 * its verification (good, tampered, another tenant's key, expired, malformed), batch boundaries without gaps or
 * overlaps, the retry schedule's bounds, R2 object keys, R2 objects that verify on their own, the S3 PUT of an object
 * (URL in path and virtual-host style, headers, an AWS Signature V4 checked by the worker tests' independent verifier
 * in test/worker/webhook-receiver.ts, itself checked against AWS's documented example), and the config schema.
 */
import { createHash, createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  hasDeliverySinks,
  OBJECT_CONTENT_TYPE,
  objectMetadata,
  padSeq,
  planBatch,
  r2ObjectKey,
  r2ObjectStore,
  r2ObjectText,
  RETRY_BASE_MS,
  RETRY_MAX_MS,
  retryDelayMs,
  s3EncodeKey,
  s3ObjectUrl,
  s3PutRequest,
  type S3Request,
  signWebhookBody,
  verifyWebhookSignature,
  webhookBody,
  webhookDeliveryId,
  webhookSignature,
  webhookSigningKey,
} from "../../src/audit/delivery.ts";
import { GENESIS_HASH } from "../../src/audit/entry.ts";
import { verifyExport } from "../../src/audit/export-format.ts";
import { parseGatewayConfig } from "../../src/config/schema.ts";
import { buildChain, checkpointOf, clone, OTHER_PUBLIC_KEY, PUBLIC_KEY, TENANT } from "./core-audit-fixtures.ts";
import { type SigV4Request, verifySigV4 } from "../worker/webhook-receiver.ts";

const SECRET = "a-long-random-webhook-secret";
const NOW = 1_767_225_600_123;
const BODY = JSON.stringify({ tenant: TENANT, batch: { fromSeq: 1, toSeq: 2 }, entries: [], checkpoints: [], note: "café ☕" });

describe("webhook signing key", () => {
  it("is HMAC-SHA256(secret, context + tenant), as node:crypto computes it", () => {
    const expected = createHmac("sha256", SECRET).update(`mcp-gateway audit webhook v1\n${TENANT}`).digest();
    expect(Buffer.from(webhookSigningKey(SECRET, TENANT)).equals(expected)).toBe(true);
    expect(webhookSigningKey(SECRET, TENANT)).toHaveLength(32);
  });

  it("differs per tenant and per secret", () => {
    const a = Buffer.from(webhookSigningKey(SECRET, "acme")).toString("hex");
    expect(Buffer.from(webhookSigningKey(SECRET, "acme2")).toString("hex")).not.toBe(a);
    expect(Buffer.from(webhookSigningKey(`${SECRET}x`, "acme")).toString("hex")).not.toBe(a);
  });
});

describe("webhook signature header", () => {
  const key = webhookSigningKey(SECRET, TENANT);

  it("is t=<epoch seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>'>", () => {
    const header = signWebhookBody(key, BODY, NOW);
    const t = Math.floor(NOW / 1000);
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    const expected = createHmac("sha256", Buffer.from(key)).update(`${t}.${BODY}`, "utf8").digest("hex");
    expect(header).toBe(`t=${t},v1=${expected}`);
    expect(webhookSignature(key, t, new TextEncoder().encode(BODY))).toBe(expected);
  });

  it("verifies the body it signed, as a string or as bytes, within the tolerance either way", () => {
    const header = signWebhookBody(key, BODY, NOW);
    expect(verifyWebhookSignature(key, header, BODY, NOW)).toBe(true);
    expect(verifyWebhookSignature(key, header, new TextEncoder().encode(BODY), NOW)).toBe(true);
    expect(verifyWebhookSignature(key, header, BODY, NOW + 300_000)).toBe(true);
    expect(verifyWebhookSignature(key, header, BODY, NOW - 300_000)).toBe(true);
  });

  it("refuses a tampered body, another tenant's key and another secret's key", () => {
    const header = signWebhookBody(key, BODY, NOW);
    expect(verifyWebhookSignature(key, header, BODY.replace("1", "3"), NOW)).toBe(false);
    expect(verifyWebhookSignature(key, header, `${BODY} `, NOW)).toBe(false);
    expect(verifyWebhookSignature(key, header, JSON.stringify(JSON.parse(BODY), null, 1), NOW)).toBe(false);
    expect(verifyWebhookSignature(webhookSigningKey(SECRET, "other-tenant"), header, BODY, NOW)).toBe(false);
    expect(verifyWebhookSignature(webhookSigningKey("another-secret", TENANT), header, BODY, NOW)).toBe(false);
  });

  it("refuses an expired timestamp, one too far ahead, and a re-dated signature (the timestamp is signed)", () => {
    const header = signWebhookBody(key, BODY, NOW);
    expect(verifyWebhookSignature(key, header, BODY, NOW + 301_000)).toBe(false);
    expect(verifyWebhookSignature(key, header, BODY, NOW - 301_000)).toBe(false);
    expect(verifyWebhookSignature(key, header, BODY, NOW + 61_000, 60)).toBe(false);
    expect(verifyWebhookSignature(key, header, BODY, NOW + 59_000, 60)).toBe(true);
    const redated = header.replace(/^t=(\d+)/, (_, t: string) => `t=${Number(t) + 600}`);
    expect(verifyWebhookSignature(key, redated, BODY, NOW + 600_000)).toBe(false);
  });

  it("accepts any one matching v1 among several, ignores unknown schemes, tolerates spaces and upper case hex", () => {
    const header = signWebhookBody(key, BODY, NOW);
    const [t, v1] = header.split(",") as [string, string];
    expect(verifyWebhookSignature(key, `${t},v1=${"0".repeat(64)},${v1}`, BODY, NOW)).toBe(true);
    expect(verifyWebhookSignature(key, `${t}, v0=abc, ${v1.toUpperCase().replace("V1", "v1")}`, BODY, NOW)).toBe(true);
    expect(verifyWebhookSignature(key, `${t},v1=${"0".repeat(64)}`, BODY, NOW)).toBe(false);
  });

  it.each([
    ["null", null],
    ["empty", ""],
    ["no timestamp", "v1=" + "a".repeat(64)],
    ["no signature", `t=${Math.floor(NOW / 1000)}`],
    ["two timestamps", `t=${Math.floor(NOW / 1000)},t=${Math.floor(NOW / 1000)},v1=${"a".repeat(64)}`],
    ["a non-numeric timestamp", `t=soon,v1=${"a".repeat(64)}`],
    ["a short signature", `t=${Math.floor(NOW / 1000)},v1=abcd`],
    ["garbage", "not a signature header"],
  ])("refuses a malformed header: %s", (_name, header) => {
    expect(verifyWebhookSignature(key, header, BODY, NOW)).toBe(false);
  });
});

describe("webhook batches", () => {
  it("names a batch by tenant and range, the same range always the same id", () => {
    expect(webhookDeliveryId("acme", 101, 200)).toBe("acme:101-200");
    expect(webhookDeliveryId("acme", 101, 200)).toBe(webhookDeliveryId("acme", 101, 200));
  });

  it("plans (cursor, min(cursor + batchSize, shippedSeq)]", () => {
    expect(planBatch(0, 250, 100, 1)).toEqual({ fromSeq: 1, toSeq: 100, skipped: 0 });
    expect(planBatch(100, 250, 100, 101)).toEqual({ fromSeq: 101, toSeq: 200, skipped: 0 });
    expect(planBatch(200, 250, 100, 201)).toEqual({ fromSeq: 201, toSeq: 250, skipped: 0 });
    expect(planBatch(5, 6, 1, 6)).toEqual({ fromSeq: 6, toSeq: 6, skipped: 0 });
    expect(planBatch(0, 1000, 1000, 1)).toEqual({ fromSeq: 1, toSeq: 1000, skipped: 0 });
  });

  it("plans nothing when caught up or when nothing beyond the cursor was shipped", () => {
    expect(planBatch(250, 250, 100, null)).toBeNull();
    expect(planBatch(0, 0, 100, null)).toBeNull();
    expect(planBatch(10, 20, 100, 21)).toBeNull();
    expect(planBatch(10, 20, 100, 10)).toBeNull();
  });

  it("resumes at what D1 still holds after pruning, counting what was lost", () => {
    expect(planBatch(10, 500, 100, 51)).toEqual({ fromSeq: 51, toSeq: 150, skipped: 40 });
    expect(planBatch(0, 500, 100, 301)).toEqual({ fromSeq: 301, toSeq: 400, skipped: 300 });
  });

  it("covers every seq exactly once, whatever the batch size and however shipping advances", () => {
    for (const batchSize of [1, 7, 100, 1000]) {
      const seen: number[] = [];
      let cursor = 0;
      for (const shipped of [3, 3, 17, 250, 251, 1234]) {
        for (;;) {
          const plan = planBatch(cursor, shipped, batchSize, cursor < shipped ? cursor + 1 : null);
          if (!plan) break;
          expect(plan.toSeq - plan.fromSeq + 1).toBeLessThanOrEqual(batchSize);
          for (let seq = plan.fromSeq; seq <= plan.toSeq; seq++) seen.push(seq);
          cursor = plan.toSeq;
        }
      }
      expect(seen).toEqual(Array.from({ length: 1234 }, (_, i) => i + 1));
    }
  });

  it("writes the payload as {tenant, batch: {fromSeq, toSeq}, entries, checkpoints}", () => {
    const entries = buildChain(2);
    const checkpoints = [checkpointOf(entries[1]!)];
    const body = JSON.parse(webhookBody({ tenant: TENANT, batch: { fromSeq: 1, toSeq: 2 }, entries, checkpoints }));
    expect(Object.keys(body)).toEqual(["tenant", "batch", "entries", "checkpoints"]);
    expect(body.batch).toEqual({ fromSeq: 1, toSeq: 2 });
    expect(body.entries).toEqual(entries);
    expect(body.entries[1].prevHash).toBe(entries[0]!.hash);
    expect(body.checkpoints).toEqual(checkpoints);
  });
});

describe("retry schedule", () => {
  it("starts at 1 s, doubles, and never exceeds 5 min, jitter taking off at most half", () => {
    for (let failures = 1; failures <= 40; failures++) {
      const ceiling = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (failures - 1));
      expect(retryDelayMs(failures, () => 0)).toBe(ceiling);
      expect(retryDelayMs(failures, () => 0.999999)).toBeGreaterThanOrEqual(Math.floor(ceiling / 2));
      for (let i = 0; i < 20; i++) {
        const delay = retryDelayMs(failures);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
        expect(delay).toBeLessThanOrEqual(RETRY_MAX_MS);
      }
    }
    expect([1, 2, 3, 4, 9, 10, 1000].map((n) => retryDelayMs(n, () => 0))).toEqual([1_000, 2_000, 4_000, 8_000, 256_000, 300_000, 300_000]);
  });

  it("treats nonsense failure counts as the first", () => {
    expect(retryDelayMs(0, () => 0)).toBe(1_000);
    expect(retryDelayMs(-5, () => 0)).toBe(1_000);
  });
});

describe("R2 objects", () => {
  it("are named <prefix><tenant>/<start padded to 16>-<end padded to 16>.jsonl, sorting in chain order", () => {
    expect(padSeq(0)).toBe("0000000000000000");
    expect(padSeq(25)).toBe("0000000000000025");
    expect(padSeq(Number.MAX_SAFE_INTEGER)).toBe("9007199254740991");
    expect(r2ObjectKey("audit/", "acme", 0, 25)).toBe("audit/acme/0000000000000000-0000000000000025.jsonl");
    expect(r2ObjectKey("", "t-1", 1000, 2000)).toBe("t-1/0000000000001000-0000000000002000.jsonl");
    const keys = [[900, 1000], [0, 25], [25, 100], [100, 900]].map(([a, b]) => r2ObjectKey("audit/", "acme", a!, b!));
    expect([...keys].sort()).toEqual([keys[1], keys[2], keys[3], keys[0]]);
  });

  it("each verify on their own with the public key, and are the same bytes when written again", async () => {
    const entries = buildChain(60);
    const cp = (seq: number) => checkpointOf(entries[seq - 1]!);
    const bounds = [0, 20, 45, 60];
    for (let i = 1; i < bounds.length; i++) {
      const startSeq = bounds[i - 1]!;
      const endSeq = bounds[i]!;
      const source = {
        tenant: TENANT,
        start: startSeq === 0 ? { seq: 0, hash: GENESIS_HASH } : { seq: startSeq, hash: entries[startSeq - 1]!.hash },
        startCheckpoints: startSeq === 0 ? [] : [cp(startSeq)],
        entries: entries.slice(startSeq, endSeq),
        endCheckpoints: [cp(endSeq)],
      };
      const text = await r2ObjectText(source);
      expect(text.endsWith("\n")).toBe(true);
      expect(await r2ObjectText(source)).toBe(text);
      const lines = text.split("\n");
      const result = await verifyExport(lines, PUBLIC_KEY);
      expect(result, `object ${startSeq}-${endSeq}`).toMatchObject({ ok: true, entries: endSeq - startSeq, firstSeq: startSeq + 1, head: { seq: endSeq } });
      expect(result.header?.exportedAt).toBe(cp(endSeq).time);
      expect((await verifyExport(lines, OTHER_PUBLIC_KEY)).ok).toBe(false);
      const tampered = clone(source);
      tampered.entries[3]!.latencyMs += 1;
      expect((await verifyExport((await r2ObjectText(tampered)).split("\n"), PUBLIC_KEY)).ok).toBe(false);
      const shortened = { ...source, entries: source.entries.slice(0, -1) };
      expect((await verifyExport((await r2ObjectText(shortened)).split("\n"), PUBLIC_KEY)).ok).toBe(false);
    }
  });
});

describe("S3 objects", () => {
  const CREDENTIALS = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
  const DATETIME = "20260101T120000Z";
  const SIGNED_AT = Date.UTC(2026, 0, 1, 12, 0, 0);
  const TEXT = '{"type":"header"}\n{"seq":1,"note":"café ☕"}\n';
  const KEY = r2ObjectKey("audit/", "acme", 0, 25);
  const METADATA = objectMetadata("acme", 0, { seq: 25, keyId: "k1" });
  const pathStyle = { endpoint: "https://s3.example.com", bucket: "audit-logs", region: "auto", pathStyle: true };
  const virtualHost = { ...pathStyle, endpoint: "https://s3.eu-west-3.amazonaws.com", region: "eu-west-3", pathStyle: false };

  /** The request as a server receives it: the path as sent, the headers fetch() sends (host added, lower case). */
  function received(request: S3Request, body: string = request.body): SigV4Request {
    const url = new URL(request.url);
    const headers: Record<string, string> = { host: url.host };
    request.headers.forEach((value, name) => void (headers[name] = value));
    return { method: request.method, rawPath: request.url.slice(request.url.indexOf("/", url.protocol.length + 2)).split("?")[0]!, rawQuery: url.search.slice(1), headers, body: Buffer.from(body, "utf8") };
  }
  const secretOf = (secret: string) => (id: string) => (id === CREDENTIALS.accessKeyId ? secret : undefined);

  it("are addressed path style <endpoint>/<bucket>/<key> or virtual-host style <bucket>.<host>/<key>, after the endpoint's own path", () => {
    expect(s3ObjectUrl(pathStyle, KEY)).toBe(`https://s3.example.com/audit-logs/${KEY}`);
    expect(s3ObjectUrl(virtualHost, KEY)).toBe(`https://audit-logs.s3.eu-west-3.amazonaws.com/${KEY}`);
    expect(s3ObjectUrl({ endpoint: "http://127.0.0.1:9000/base/", bucket: "b-1", pathStyle: true }, "k")).toBe("http://127.0.0.1:9000/base/b-1/k");
    expect(s3ObjectUrl({ endpoint: "https://acct.r2.cloudflarestorage.com/", bucket: "b.x", pathStyle: false }, "a/b")).toBe("https://b.x.acct.r2.cloudflarestorage.com/a/b");
  });

  it("percent-encode each key segment as SigV4's canonical URI does, so the path sent is the path signed; refuse dot segments", () => {
    expect(s3EncodeKey("gw prod+ü/(x)!'*~._-/t:1@x/a.jsonl")).toBe("gw%20prod%2B%C3%BC/%28x%29%21%27%2A~._-/t%3A1%40x/a.jsonl");
    expect(s3EncodeKey("a//b%2F")).toBe("a//b%252F");
    expect(() => s3EncodeKey("a/../b")).toThrow(/"\.\."/);
    expect(() => s3EncodeKey("./b")).toThrow(/"\."/);
    expect(s3EncodeKey("a/.../b")).toBe("a/.../b");
  });

  it("are written with one PUT: the R2 object's bytes, content type and metadata, and its SHA-256", async () => {
    const request = await s3PutRequest(pathStyle, CREDENTIALS, KEY, TEXT, METADATA, DATETIME);
    expect(request.method).toBe("PUT");
    expect(request.url).toBe(`https://s3.example.com/audit-logs/${KEY}`);
    expect(request.body).toBe(TEXT);
    expect(Object.fromEntries(request.headers)).toEqual({
      authorization: expect.any(String),
      "content-type": "application/x-ndjson; charset=utf-8",
      "x-amz-content-sha256": createHash("sha256").update(TEXT, "utf8").digest("hex"),
      "x-amz-date": DATETIME,
      "x-amz-meta-tenant": "acme",
      "x-amz-meta-startseq": "0",
      "x-amz-meta-endseq": "25",
      "x-amz-meta-keyid": "k1",
    });
    expect(OBJECT_CONTENT_TYPE).toBe("application/x-ndjson; charset=utf-8");
  });

  it("are signed AWS4-HMAC-SHA256 with the credential scope <id>/<date>/<region>/s3/aws4_request over host, the x-amz headers and the metadata", async () => {
    const request = await s3PutRequest(pathStyle, CREDENTIALS, KEY, TEXT, METADATA, DATETIME);
    expect(request.headers.get("authorization")).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20260101\/auto\/s3\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-meta-endseq;x-amz-meta-keyid;x-amz-meta-startseq;x-amz-meta-tenant, Signature=[0-9a-f]{64}$/,
    );
    const aws = await s3PutRequest(virtualHost, CREDENTIALS, KEY, TEXT, METADATA, DATETIME);
    expect(aws.headers.get("authorization")).toContain("Credential=AKIDEXAMPLE/20260101/eu-west-3/s3/aws4_request, ");
    // The same bytes signed at another time: another signature.
    const later = await s3PutRequest(pathStyle, CREDENTIALS, KEY, TEXT, METADATA, "20260101T120001Z");
    expect(later.headers.get("authorization")).not.toBe(request.headers.get("authorization"));
  });

  it.each([
    ["path style", pathStyle, KEY],
    ["virtual-host style", virtualHost, KEY],
    ["an endpoint with a path and a key needing encoding", { ...pathStyle, endpoint: "http://127.0.0.1:9000/s3/x" }, r2ObjectKey("gw prod+ü/(x)!'*~/", "t:1@x", 1000, 2000)],
  ])("carry a signature that the independent verifier accepts (%s), and that fails for another secret, body or metadata", async (_name, target, key) => {
    const request = await s3PutRequest(target, CREDENTIALS, key, TEXT, METADATA, DATETIME);
    expect(verifySigV4(received(request), secretOf(CREDENTIALS.secretAccessKey), SIGNED_AT)).toMatchObject({
      ok: true,
      accessKeyId: "AKIDEXAMPLE",
      date: "20260101",
      region: target.region,
      service: "s3",
    });
    expect(verifySigV4(received(request), secretOf("another-secret"), SIGNED_AT)).toMatchObject({ ok: false, status: 403, code: "SignatureDoesNotMatch" });
    expect(verifySigV4(received(request, `${TEXT} `), secretOf(CREDENTIALS.secretAccessKey), SIGNED_AT)).toMatchObject({ ok: false, code: "XAmzContentSHA256Mismatch" });
    const altered = received(request);
    altered.headers["x-amz-meta-endseq"] = "26";
    expect(verifySigV4(altered, secretOf(CREDENTIALS.secretAccessKey), SIGNED_AT)).toMatchObject({ ok: false, code: "SignatureDoesNotMatch" });
    expect(verifySigV4({ ...received(request), rawPath: `${received(request).rawPath}x` }, secretOf(CREDENTIALS.secretAccessKey), SIGNED_AT)).toMatchObject({ ok: false, code: "SignatureDoesNotMatch" });
    expect(verifySigV4(received(request), secretOf(CREDENTIALS.secretAccessKey), SIGNED_AT + 16 * 60_000)).toMatchObject({ ok: false, code: "RequestTimeTooSkewed" });
  });

  it("(the independent verifier reproduces AWS's documented example: GET /test.txt from examplebucket)", () => {
    const example: SigV4Request = {
      method: "GET",
      rawPath: "/test.txt",
      rawQuery: "",
      headers: {
        host: "examplebucket.s3.amazonaws.com",
        range: "bytes=0-9",
        "x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "x-amz-date": "20130524T000000Z",
        authorization:
          "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
      },
      body: Buffer.alloc(0),
    };
    const secret = (id: string) => (id === "AKIAIOSFODNN7EXAMPLE" ? "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" : undefined);
    const at = Date.UTC(2013, 4, 24);
    expect(verifySigV4(example, secret, at)).toMatchObject({ ok: true, region: "us-east-1" });
    const wrong = verifySigV4({ ...example, headers: { ...example.headers, range: "bytes=0-10" } }, secret, at);
    expect(wrong).toMatchObject({ ok: false, code: "SignatureDoesNotMatch" });
    // The documented string to sign of the untampered request, whose canonical request hashes to 7344ae5b….
    const tampered = verifySigV4({ ...example, headers: { ...example.headers, authorization: example.headers.authorization!.replace(/Signature=.*/, `Signature=${"0".repeat(64)}`) } }, secret, at);
    expect(!tampered.ok && tampered.stringToSign).toBe("AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    expect(verifySigV4({ ...example, headers: { ...example.headers, authorization: undefined } }, secret, at)).toMatchObject({ ok: false, code: "AccessDenied" });
  });

  it("go to R2 with the same content type and metadata, checked against their SHA-256", async () => {
    const calls: unknown[][] = [];
    const bucket = { put: async (...args: unknown[]) => void calls.push(args) } as unknown as R2Bucket;
    await r2ObjectStore(bucket).put(KEY, TEXT, METADATA);
    expect(calls).toEqual([
      [KEY, TEXT, { httpMetadata: { contentType: OBJECT_CONTENT_TYPE }, customMetadata: { tenant: "acme", startSeq: "0", endSeq: "25", keyId: "k1" }, sha256: createHash("sha256").update(TEXT, "utf8").digest("hex") }],
    ]);
  });

  it("(a config with any of webhook, r2, s3 has delivery sinks)", () => {
    expect(hasDeliverySinks(undefined)).toBe(false);
    expect(hasDeliverySinks({ enabled: true, hashChain: true, failureMode: "closed" })).toBe(false);
    expect(hasDeliverySinks({ enabled: true, hashChain: true, failureMode: "closed", s3: { endpoint: "https://x.example", bucket: "abc", region: "auto", prefix: "audit/", pathStyle: true } })).toBe(true);
    expect(hasDeliverySinks({ enabled: true, hashChain: true, failureMode: "closed", r2: { prefix: "audit/" } })).toBe(true);
  });
});

describe("config: audit.webhook, audit.r2 and audit.s3", () => {
  const parse = (audit: string) => parseGatewayConfig(`audit:\n${audit}`);

  it.each(["https://siem.example.com/hooks/audit?src=gw", "http://localhost:8080/hook", "http://127.0.0.1:9/x", "http://[::1]:8080/"])("accepts %s", (url) => {
    const result = parse(`  webhook:\n    url: "${url}"\n`);
    expect(result.ok && result.config.audit?.webhook).toEqual({ url, batchSize: 100 });
  });

  it.each(["http://siem.example.com/hook", "http://10.0.0.1/hook", "ftp://example.com/x", "not a url", "http://localhost.example.com/"])("refuses %s", (url) => {
    const result = parse(`  webhook:\n    url: "${url}"\n`);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.errors.join("\n")).toMatch(/^audit\.webhook\.url: must be an https:\/\/ URL/);
  });

  it("bounds batchSize to 1..1000 and refuses unknown keys", () => {
    expect(parse(`  webhook: { url: "https://x.example", batchSize: 1000 }\n`).ok).toBe(true);
    expect(parse(`  webhook: { url: "https://x.example", batchSize: 1 }\n`).ok).toBe(true);
    for (const bad of ["0", "1001", "2.5"]) expect(parse(`  webhook: { url: "https://x.example", batchSize: ${bad} }\n`).ok).toBe(false);
    expect(parse(`  webhook: { url: "https://x.example", secret: "s" }\n`).ok).toBe(false);
  });

  it("defaults the R2 prefix to audit/ and refuses a leading slash or control characters", () => {
    const result = parse(`  r2: {}\n`);
    expect(result.ok && result.config.audit?.r2).toEqual({ prefix: "audit/" });
    const custom = parse(`  r2: { prefix: "gw/prod/" }\n`);
    expect(custom.ok && custom.config.audit?.r2).toEqual({ prefix: "gw/prod/" });
    expect(parse(`  r2: { prefix: "/abs/" }\n`).ok).toBe(false);
    expect(parse(`  r2: { prefix: "a\\nb" }\n`).ok).toBe(false);
  });
});

describe("config: audit.s3", () => {
  const parse = (s3: string) => parseGatewayConfig(`audit:\n  s3: ${s3}\n`);

  it("defaults region to auto, prefix to audit/ and pathStyle to true", () => {
    const result = parse(`{ endpoint: "https://acct.r2.cloudflarestorage.com", bucket: "audit-logs" }`);
    expect(result.ok && result.config.audit?.s3).toEqual({ endpoint: "https://acct.r2.cloudflarestorage.com", bucket: "audit-logs", region: "auto", prefix: "audit/", pathStyle: true });
    const custom = parse(`{ endpoint: "http://127.0.0.1:9000", bucket: "a.b_c-1", region: "eu-west-3", prefix: "gw/prod/", pathStyle: false }`);
    expect(custom.ok && custom.config.audit?.s3).toEqual({ endpoint: "http://127.0.0.1:9000", bucket: "a.b_c-1", region: "eu-west-3", prefix: "gw/prod/", pathStyle: false });
  });

  it.each([
    ["a plain http endpoint off loopback", `{ endpoint: "http://s3.example.com", bucket: "abc" }`, /audit\.s3\.endpoint: must be an https:\/\/ URL/],
    ["an endpoint with a query", `{ endpoint: "https://s3.example.com/?x=1", bucket: "abc" }`, /audit\.s3\.endpoint: must have no query/],
    ["an endpoint with credentials", `{ endpoint: "https://id:secret@s3.example.com", bucket: "abc" }`, /audit\.s3\.endpoint/],
    ["no bucket", `{ endpoint: "https://s3.example.com" }`, /audit\.s3\.bucket/],
    ["an upper-case bucket", `{ endpoint: "https://s3.example.com", bucket: "Audit" }`, /audit\.s3\.bucket/],
    ["a 2-character bucket", `{ endpoint: "https://s3.example.com", bucket: "ab" }`, /audit\.s3\.bucket/],
    ["a bucket with a slash", `{ endpoint: "https://s3.example.com", bucket: "a/b" }`, /audit\.s3\.bucket/],
    ["a region with a space", `{ endpoint: "https://s3.example.com", bucket: "abc", region: "us east" }`, /audit\.s3\.region/],
    ["a prefix starting with /", `{ endpoint: "https://s3.example.com", bucket: "abc", prefix: "/a/" }`, /audit\.s3\.prefix: must not start with \//],
    ["a prefix with a .. segment", `{ endpoint: "https://s3.example.com", bucket: "abc", prefix: "a/../" }`, /audit\.s3\.prefix: must not have a \. or \.\. path segment/],
    ["a prefix with a . segment", `{ endpoint: "https://s3.example.com", bucket: "abc", prefix: "./" }`, /audit\.s3\.prefix/],
    ["a prefix with a control character", `{ endpoint: "https://s3.example.com", bucket: "abc", prefix: "a\\tb/" }`, /audit\.s3\.prefix/],
    ["credentials in the config", `{ endpoint: "https://s3.example.com", bucket: "abc", accessKeyId: "AKID" }`, /accessKeyId/],
  ])("refuses %s", (_name, s3, error) => {
    const result = parse(s3);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.errors.join("\n")).toMatch(error);
  });
});

describe("object prefixes cannot collide across tenants", () => {
  it("refuses a prefix that does not end with / (\"audit/ac\" + \"me\" would be tenant acme's keys)", async () => {
    const { gatewayConfigSchema } = await import("../../src/config/schema.ts");
    const refused = gatewayConfigSchema.safeParse({ tenant: "me", audit: { r2: { prefix: "audit/ac" } } });
    expect(refused.success).toBe(false);
    expect(JSON.stringify(refused.error?.issues)).toContain("must be empty or end with /");
    expect(gatewayConfigSchema.safeParse({ tenant: "me", audit: { r2: { prefix: "audit/" } } }).success).toBe(true);
    expect(gatewayConfigSchema.safeParse({ tenant: "me", audit: { r2: { prefix: "" } } }).success).toBe(true);
  });
});
