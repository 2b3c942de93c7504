/**
 * The pure parts of audit delivery (src/audit/delivery.ts): the webhook signature (checked against node:crypto),
 * its verification (good, tampered, another tenant's key, expired, malformed), batch boundaries without gaps or
 * overlaps, the retry schedule's bounds, R2 object keys, R2 objects that verify on their own, and the config schema.
 */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  padSeq,
  planBatch,
  r2ObjectKey,
  r2ObjectText,
  RETRY_BASE_MS,
  RETRY_MAX_MS,
  retryDelayMs,
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

describe("config: audit.webhook and audit.r2", () => {
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
