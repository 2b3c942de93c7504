/**
 * Delivery of the audit chain (src/audit/delivery.ts) inside workerd, driven the way the AuditLog object's alarm
 * drives it (`new AuditDelivery(env, state.storage.sql).deliver(…)` inside the object), against a REAL HTTP receiver
 * on 127.0.0.1 (test/worker/webhook-receiver.ts, started in Node by the worker project's globalSetup) and the local
 * R2 bucket Miniflare provides for wrangler.toml's AUDIT_BUCKET: batches in order, signed, without gaps or
 * duplicates; failures retried with backoff and delivered exactly once; a batch resent identically; restarts resuming
 * from the persisted cursor; late checkpoints; retention gaps; no secret; a hung receiver; concurrent runs; R2
 * objects that each verify offline; and the same objects PUT to the receiver's minimal S3-compatible endpoint, whose
 * AWS Signature V4 it checks on its own (node:crypto, from the spec): same keys and bytes as R2, a wrong secret refused
 * and retried, failures retried with each key written once, no credentials.
 *
 * The tenants here have no applied config, so the object's own alarm (whatever it delivers) never sends anything
 * for them: every delivery below is the test's own call.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, inject, it, vi } from "vitest";
import { AuditDelivery, type AuditDeliveryOptions, type DeliverySinkState, r2ObjectKey, RETRY_MAX_MS, verifyWebhookSignature, webhookSigningKey, type WebhookPayload } from "../../src/audit/delivery.ts";
import type { AuditLogDurableObject } from "../../src/audit/durable-object.ts";
import { verifyExport } from "../../src/audit/export-format.ts";
import { verifyChain } from "../../src/audit/verify.ts";
import type { PublishedConfig } from "../../src/config/publish.ts";
import type { Env } from "../../src/env.ts";
import { auditFields } from "./fixtures.ts";
import type { ReceivedDelivery, ReceivedPut, StoredObject } from "./webhook-receiver.ts";

type Audit = NonNullable<PublishedConfig["audit"]>;

const RECEIVER = inject("auditWebhookReceiver");
let counter = 0;

/** A fresh tenant and receiver channel per test. */
function fresh(name: string) {
  const id = `${name}-${++counter}-${crypto.randomUUID().slice(0, 8)}`;
  return { tenant: `dlv-${id}`, channel: id, url: `${RECEIVER}/hook/${id}` };
}

function webhookAudit(url: string, batchSize = 100): Audit {
  return { enabled: true, hashChain: true, failureMode: "closed", webhook: { url, batchSize } };
}

const fields = auditFields;

const auditLog = (tenant: string) => env.AUDIT_LOG.getByName(tenant);

/** Appends entries `from..to` and ships them all to D1 (flush also signs a checkpoint of the head). */
async function append(tenant: string, from: number, to: number, { flush = true } = {}): Promise<void> {
  const stub = auditLog(tenant);
  for (let i = from; i <= to; i++) await stub.append(fields(tenant, i));
  if (flush) await stub.flush();
  else await runDurableObjectAlarm(stub); // ships without signing (the checkpoint interval has not passed)
}

/** One call of deliver() inside the tenant's object, as its alarm makes it. */
async function deliverOnce(tenant: string, audit: Audit | undefined, now = Date.now(), options: { env?: Env; delivery?: AuditDeliveryOptions } = {}): Promise<number | null> {
  const stub = auditLog(tenant);
  const { shippedSeq } = await stub.state();
  return runInDurableObject(stub, (_instance: AuditLogDurableObject, state) =>
    new AuditDelivery(options.env ?? env, state.storage.sql, options.delivery).deliver(tenant, audit, shippedSeq, now),
  );
}

/** Calls deliver() until it is idle (or wants a retry later than `now`), returning its last answer. */
async function deliverAll(tenant: string, audit: Audit | undefined, now = Date.now(), options: Parameters<typeof deliverOnce>[3] = {}): Promise<number | null> {
  for (let i = 0; i < 50; i++) {
    const next = await deliverOnce(tenant, audit, now, options);
    if (next === null || next > now) return next;
  }
  throw new Error("delivery never settled");
}

async function sinks(tenant: string): Promise<DeliverySinkState[]> {
  return runInDurableObject(auditLog(tenant), (_instance: AuditLogDurableObject, state) => new AuditDelivery(env, state.storage.sql).sinks());
}

async function received(channel: string): Promise<ReceivedDelivery[]> {
  return (await fetch(`${RECEIVER}/control/${channel}/requests`)).json();
}

async function failNext(channel: string, count: number, options: { status?: number; hang?: boolean } = {}): Promise<void> {
  const response = await fetch(`${RECEIVER}/control/${channel}/fail`, { method: "POST", body: JSON.stringify({ count, ...options }) });
  expect(response.status).toBe(200);
}

const payload = (delivery: ReceivedDelivery) => JSON.parse(delivery.body) as WebhookPayload;
const accepted = (deliveries: ReceivedDelivery[]) => deliveries.filter((d) => d.answered === 204);

async function publicKey(tenant: string): Promise<string> {
  const key = await auditLog(tenant).publicKey();
  if (!key) throw new Error("the worker tests sign checkpoints (AUDIT_SIGNING_KEY)");
  return key.publicKey;
}

/** What a receiver does: every accepted batch's signature checks out, and the entries form one gap-free chain. */
async function expectWellFormedStream(tenant: string, deliveries: ReceivedDelivery[], lastSeq: number): Promise<void> {
  const key = webhookSigningKey(env.AUDIT_WEBHOOK_SECRET!, tenant);
  const otherKey = webhookSigningKey(env.AUDIT_WEBHOOK_SECRET!, `${tenant}-other`);
  const entries = [];
  const checkpoints = [];
  let expectedFrom = 1;
  for (const delivery of deliveries) {
    expect(delivery.method).toBe("POST");
    expect(delivery.contentType).toBe("application/json");
    expect(verifyWebhookSignature(key, delivery.signature, delivery.body, Date.now())).toBe(true);
    expect(verifyWebhookSignature(otherKey, delivery.signature, delivery.body, Date.now())).toBe(false);
    const body = payload(delivery);
    expect(body.tenant).toBe(tenant);
    expect(delivery.deliveryId).toBe(`${tenant}:${body.batch.fromSeq}-${body.batch.toSeq}`);
    expect(body.batch.fromSeq).toBe(expectedFrom);
    expect(body.entries.map((e) => e.seq)).toEqual(Array.from({ length: body.batch.toSeq - body.batch.fromSeq + 1 }, (_, i) => body.batch.fromSeq + i));
    for (const checkpoint of body.checkpoints) expect(checkpoint.seq).toBeLessThanOrEqual(body.batch.toSeq);
    expectedFrom = body.batch.toSeq + 1;
    entries.push(...body.entries);
    checkpoints.push(...body.checkpoints);
  }
  expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
  const verified = await verifyChain(entries, { checkpoints, tenant, publicKeys: [await publicKey(tenant)] });
  expect(verified).toMatchObject({ ok: true, entries: lastSeq, head: { seq: lastSeq } });
}

describe("webhook", () => {
  it("delivers the entries in order, in signed batches of batchSize, with their checkpoints, no gaps, no duplicates", async () => {
    const { tenant, channel, url } = fresh("order");
    await append(tenant, 1, 130);
    expect(await deliverAll(tenant, webhookAudit(url, 50))).toBeNull();
    const deliveries = await received(channel);
    expect(deliveries.map((d) => d.deliveryId)).toEqual([`${tenant}:1-50`, `${tenant}:51-100`, `${tenant}:101-130`]);
    expect(deliveries.map((d) => payload(d).checkpoints.map((c) => c.seq))).toEqual([[25, 50], [75, 100], [125, 130]]);
    await expectWellFormedStream(tenant, deliveries, 130);
    // Caught up: nothing more is sent.
    expect(await deliverAll(tenant, webhookAudit(url, 50))).toBeNull();
    expect(await received(channel)).toHaveLength(3);
    expect(await sinks(tenant)).toMatchObject([{ sink: "webhook", cursorSeq: 130, checkpointSeq: 130, pending: null, failures: 0, delivered: 3 }]);

    // More entries: only they are sent, continuing the chain.
    await append(tenant, 131, 140);
    await deliverAll(tenant, webhookAudit(url, 50));
    const all = await received(channel);
    expect(all.map((d) => d.deliveryId).at(-1)).toBe(`${tenant}:131-140`);
    await expectWellFormedStream(tenant, all, 140);
  });

  it("sends a checkpoint signed after its entries went out, in a batch of checkpoints only", async () => {
    const { tenant, channel, url } = fresh("late");
    await append(tenant, 1, 3);
    await append(tenant, 4, 6, { flush: false });
    await deliverAll(tenant, webhookAudit(url));
    // The head's checkpoint comes later (flush here; the alarm after AUDIT_CHECKPOINT_SECONDS in production).
    await auditLog(tenant).flush();
    await deliverAll(tenant, webhookAudit(url));
    const deliveries = await received(channel);
    expect(deliveries.map((d) => d.deliveryId)).toEqual([`${tenant}:1-6`, `${tenant}:7-6`]);
    expect(payload(deliveries[0]!).checkpoints.map((c) => c.seq)).toEqual([3]);
    expect(payload(deliveries[1]!)).toMatchObject({ batch: { fromSeq: 7, toSeq: 6 }, entries: [] });
    expect(payload(deliveries[1]!).checkpoints.map((c) => c.seq)).toEqual([6]);
    await expectWellFormedStream(tenant, deliveries, 6);
    await deliverAll(tenant, webhookAudit(url));
    expect(await received(channel)).toHaveLength(2);
  });

  it("retries a failing receiver with backoff, resending the same batch under the same id, and delivers it exactly once", async () => {
    const { tenant, channel, url } = fresh("retry");
    const audit = webhookAudit(url, 50);
    await append(tenant, 1, 30);
    await failNext(channel, 3);
    let now = Date.now();
    const retries: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const next = await deliverOnce(tenant, audit, now);
      expect(next).not.toBeNull();
      retries.push(next! - now);
      // Before the retry time nothing is sent, whoever calls.
      expect(await deliverOnce(tenant, audit, next! - 1)).toBe(next);
      expect(await received(channel)).toHaveLength(attempt);
      expect(await sinks(tenant)).toMatchObject([{ cursorSeq: 0, pending: { fromSeq: 1, toSeq: 30 }, failures: attempt }]);
      // More entries shipped meanwhile do not change the batch being retried.
      if (attempt === 1) await append(tenant, 31, 60);
      now = next!;
    }
    // 1 s, 2 s, 4 s, each jittered down by at most half (plus the time the attempt itself took).
    for (const [i, ceiling] of [1_000, 2_000, 4_000].entries()) {
      expect(retries[i]).toBeGreaterThanOrEqual(ceiling / 2);
      expect(retries[i]).toBeLessThanOrEqual(ceiling + 1_000);
    }
    expect(await deliverAll(tenant, audit, now)).toBeNull();

    const deliveries = await received(channel);
    expect(deliveries.map((d) => [d.deliveryId, d.answered])).toEqual([
      [`${tenant}:1-30`, 500],
      [`${tenant}:1-30`, 500],
      [`${tenant}:1-30`, 500],
      [`${tenant}:1-30`, 204],
      [`${tenant}:31-60`, 204],
    ]);
    // Byte for byte the same batch each time (only the signature's timestamp may differ).
    expect(new Set(deliveries.slice(0, 4).map((d) => d.body)).size).toBe(1);
    await expectWellFormedStream(tenant, accepted(deliveries), 60);
    expect(await sinks(tenant)).toMatchObject([{ cursorSeq: 60, pending: null, failures: 0, retryAt: 0, lastError: null }]);
  });

  it("treats a redirect, a 4xx and a refused connection as failures, never skipping the batch", async () => {
    const { tenant, channel, url } = fresh("statuses");
    await append(tenant, 1, 5);
    await failNext(channel, 2, { status: 302 });
    let now = Date.now();
    now = (await deliverOnce(tenant, webhookAudit(url), now))!;
    now = (await deliverOnce(tenant, webhookAudit(url), now))!;
    await failNext(channel, 1, { status: 404 });
    now = (await deliverOnce(tenant, webhookAudit(url), now))!;
    // Nothing listens on port 9 of 127.0.0.1 (discard): the connection is refused.
    const refused = await deliverOnce(tenant, webhookAudit("http://127.0.0.1:9/hook"), now);
    expect(refused).toBeGreaterThan(now);
    expect((await sinks(tenant))[0]).toMatchObject({ cursorSeq: 0, failures: 4, lastError: expect.stringContaining("fetch failed") });
    expect(await deliverAll(tenant, webhookAudit(url), refused!)).toBeNull();
    const deliveries = await received(channel);
    expect(deliveries.map((d) => d.answered)).toEqual([302, 302, 404, 204]);
    expect(new Set(deliveries.map((d) => d.deliveryId))).toEqual(new Set([`${tenant}:1-5`]));
  });

  it("gives up on a receiver that does not answer within the timeout, and retries", async () => {
    const { tenant, channel, url } = fresh("hang");
    await append(tenant, 1, 4);
    await failNext(channel, 1, { hang: true });
    const options = { delivery: { timeoutMs: 300 } };
    const next = await deliverOnce(tenant, webhookAudit(url), Date.now(), options);
    expect(next).not.toBeNull();
    expect((await sinks(tenant))[0]).toMatchObject({ cursorSeq: 0, failures: 1, lastError: "no answer within 300 ms" });
    expect(await deliverAll(tenant, webhookAudit(url), next!, options)).toBeNull();
    expect((await received(channel)).map((d) => [d.deliveryId, d.answered])).toEqual([
      [`${tenant}:1-4`, "hung"],
      [`${tenant}:1-4`, 204],
    ]);
  });

  it("resumes from the persisted cursor after the object restarts, without resending, and resends a pending batch as it was", async () => {
    const { tenant, channel, url } = fresh("restart");
    const audit = webhookAudit(url, 10);
    await append(tenant, 1, 20);
    await deliverAll(tenant, audit);
    expect(await received(channel)).toHaveLength(2);

    // A marker in memory shows that the instance really is a new one after the eviction.
    await runInDurableObject(auditLog(tenant), (instance: AuditLogDurableObject) => void ((instance as unknown as { marker: number }).marker = 1));
    await evictDurableObject(auditLog(tenant));
    expect(await runInDurableObject(auditLog(tenant), (instance: AuditLogDurableObject) => (instance as unknown as { marker?: number }).marker)).toBeUndefined();

    await append(tenant, 21, 35);
    await failNext(channel, 1);
    const next = await deliverOnce(tenant, audit);
    expect((await sinks(tenant))[0]).toMatchObject({ cursorSeq: 20, pending: { fromSeq: 21, toSeq: 30 } });
    // This time a crash (state.abort(): the instance is thrown away, its stub broken) rather than a graceful eviction.
    await expect(runInDurableObject(auditLog(tenant), (_instance: AuditLogDurableObject, state) => state.abort("crash"))).rejects.toThrow("crash");
    await append(tenant, 36, 40);
    expect(await deliverAll(tenant, audit, next!)).toBeNull();

    const deliveries = await received(channel);
    expect(deliveries.map((d) => [d.deliveryId, d.answered])).toEqual([
      [`${tenant}:1-10`, 204],
      [`${tenant}:11-20`, 204],
      [`${tenant}:21-30`, 500],
      [`${tenant}:21-30`, 204],
      [`${tenant}:31-40`, 204],
    ]);
    expect(deliveries[2]!.body).toBe(deliveries[3]!.body);
    await expectWellFormedStream(tenant, accepted(deliveries), 40);
  });

  it("does not resend a batch whose sender crashed mid-flight until that attempt has surely ended, then resends it as it was", async () => {
    const { tenant, channel, url } = fresh("crash");
    const audit = webhookAudit(url);
    await append(tenant, 1, 5);
    await failNext(channel, 1, { hang: true });
    const now = Date.now();
    const { shippedSeq } = await auditLog(tenant).state();
    const inflight = runInDurableObject(auditLog(tenant), (_instance: AuditLogDurableObject, state) =>
      new AuditDelivery(env, state.storage.sql).deliver(tenant, audit, shippedSeq, now),
    ).then(
      () => "settled",
      (error: Error) => error.message,
    );
    for (let i = 0; i < 100 && (await received(channel)).length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await received(channel)).toHaveLength(1);
    await expect(runInDurableObject(auditLog(tenant), (_instance: AuditLogDurableObject, state) => state.abort("crash"))).rejects.toThrow("crash");
    expect(await inflight).toBe("crash");
    // The new instance finds the crashed run's lease (its timeout plus a margin) and waits it out.
    const next = await deliverOnce(tenant, audit, now + 1);
    expect(next).toBeGreaterThanOrEqual(now + 10_000);
    expect(await received(channel)).toHaveLength(1);
    expect(await deliverAll(tenant, audit, next!)).toBeNull();
    const deliveries = await received(channel);
    expect(deliveries.map((d) => [d.deliveryId, d.answered])).toEqual([
      [`${tenant}:1-5`, "hung"],
      [`${tenant}:1-5`, 204],
    ]);
    expect(deliveries[0]!.body).toBe(deliveries[1]!.body);
  });

  it("sends each batch once when two runs overlap in the same object", async () => {
    const { tenant, channel, url } = fresh("overlap");
    await append(tenant, 1, 12);
    const { shippedSeq } = await auditLog(tenant).state();
    const results = await runInDurableObject(auditLog(tenant), (_instance: AuditLogDurableObject, state) => {
      const now = Date.now();
      const a = new AuditDelivery(env, state.storage.sql).deliver(tenant, webhookAudit(url, 5), shippedSeq, now);
      const b = new AuditDelivery(env, state.storage.sql).deliver(tenant, webhookAudit(url, 5), shippedSeq, now);
      return Promise.all([a, b]);
    });
    expect(results.filter((r) => r === null)).toHaveLength(1);
    await deliverAll(tenant, webhookAudit(url, 5));
    const deliveries = await received(channel);
    expect(deliveries.map((d) => d.deliveryId)).toEqual([`${tenant}:1-5`, `${tenant}:6-10`, `${tenant}:11-12`]);
    await expectWellFormedStream(tenant, deliveries, 12);
  });

  it("sends nothing without AUDIT_WEBHOOK_SECRET, keeping the cursor, and starts from the beginning once it is set", async () => {
    const { tenant, channel, url } = fresh("nosecret");
    await append(tenant, 1, 7);
    const now = Date.now();
    const withoutSecret = { ...env, AUDIT_WEBHOOK_SECRET: undefined } as Env;
    expect(await deliverOnce(tenant, webhookAudit(url), now, { env: withoutSecret })).toBe(now + RETRY_MAX_MS);
    expect(await received(channel)).toHaveLength(0);
    expect(await deliverAll(tenant, webhookAudit(url), now)).toBeNull();
    await expectWellFormedStream(tenant, await received(channel), 7);
  });

  it("starts a webhook added later at the oldest entry D1 holds, and skips what retention pruned while it was behind", async () => {
    const { tenant, channel, url } = fresh("pruned");
    await append(tenant, 1, 60);
    // Retention as the object applies it: entries up to a checkpoint (25), and the checkpoints before it.
    await env.DB.batch([
      env.DB.prepare("DELETE FROM audit_entries WHERE tenant_id = ? AND seq <= 25").bind(tenant),
      env.DB.prepare("DELETE FROM audit_checkpoints WHERE tenant_id = ? AND seq < 25").bind(tenant),
    ]);
    await deliverAll(tenant, webhookAudit(url, 20));
    let deliveries = await received(channel);
    expect(deliveries.map((d) => d.deliveryId)).toEqual([`${tenant}:26-45`, `${tenant}:46-60`]);
    // The anchor: the checkpoint retention kept, so the receiver can verify from there.
    expect(payload(deliveries[0]!).checkpoints.map((c) => c.seq)).toEqual([25, 50].filter((s) => s <= 45));
    const entries = deliveries.flatMap((d) => payload(d).entries);
    const checkpoints = deliveries.flatMap((d) => payload(d).checkpoints);
    const start = { seq: 25, hash: entries[0]!.prevHash };
    expect(await verifyChain(entries, { checkpoints, tenant, start, publicKeys: [await publicKey(tenant)] })).toMatchObject({ ok: true, firstSeq: 26, head: { seq: 60 } });

    // Behind again (its batch 61-80 failing), and retention prunes past its cursor, up to the checkpoint at 85
    // (checkpoints every 25 entries after the one at 60): it continues from what remains, anchored there.
    await append(tenant, 61, 110);
    await failNext(channel, 1);
    const next = await deliverOnce(tenant, webhookAudit(url, 20));
    await env.DB.batch([
      env.DB.prepare("DELETE FROM audit_entries WHERE tenant_id = ? AND seq <= 85").bind(tenant),
      env.DB.prepare("DELETE FROM audit_checkpoints WHERE tenant_id = ? AND seq < 85").bind(tenant),
    ]);
    await deliverAll(tenant, webhookAudit(url, 20), next!);
    deliveries = await received(channel);
    expect(deliveries.map((d) => [d.deliveryId, d.answered]).slice(2)).toEqual([
      [`${tenant}:61-80`, 500],
      [`${tenant}:86-105`, 204],
      [`${tenant}:106-110`, 204],
    ]);
    expect(deliveries.slice(3).map((d) => payload(d).checkpoints.map((c) => c.seq))).toEqual([[85], [110]]);
    const after = deliveries.slice(3).flatMap((d) => payload(d).entries);
    const anchor = { seq: 85, hash: after[0]!.prevHash };
    expect(await verifyChain(after, { checkpoints: deliveries.slice(3).flatMap((d) => payload(d).checkpoints), tenant, start: anchor, publicKeys: [await publicKey(tenant)] })).toMatchObject({ ok: true, firstSeq: 86, head: { seq: 110 } });
  });
});

describe("R2", () => {
  const r2Audit = (prefix?: string): Audit => ({ enabled: true, hashChain: true, failureMode: "closed", r2: { prefix: prefix ?? "audit/" } });

  async function objects(prefix: string): Promise<{ key: string; text: string; etag: string }[]> {
    const listed = await env.AUDIT_BUCKET!.list({ prefix });
    return Promise.all(
      listed.objects.map(async (o) => {
        const object = await env.AUDIT_BUCKET!.get(o.key);
        return { key: o.key, text: await object!.text(), etag: o.etag };
      }),
    );
  }

  it("writes one object per checkpoint interval, each verifying on its own with the public key", async () => {
    const { tenant } = fresh("r2");
    await append(tenant, 1, 60); // checkpoints at 25 and 50 (every 25), and 60 (flush)
    expect(await deliverAll(tenant, r2Audit())).toBeNull();
    const written = await objects(`audit/${tenant}/`);
    const pad = (n: number) => String(n).padStart(16, "0");
    expect(written.map((o) => o.key)).toEqual([
      `audit/${tenant}/${pad(0)}-${pad(25)}.jsonl`,
      `audit/${tenant}/${pad(25)}-${pad(50)}.jsonl`,
      `audit/${tenant}/${pad(50)}-${pad(60)}.jsonl`,
    ]);
    const key = await publicKey(tenant);
    const bounds = [[0, 25], [25, 50], [50, 60]] as const;
    for (const [i, object] of written.entries()) {
      const [start, end] = bounds[i]!;
      const result = await verifyExport(object.text.split("\n"), key);
      expect(result, object.key).toMatchObject({ ok: true, entries: end - start, firstSeq: start + 1, head: { seq: end }, header: { tenant, start: { seq: start } } });
    }
    const head = await env.AUDIT_BUCKET!.head(written[0]!.key);
    expect(head?.httpMetadata?.contentType).toMatch(/^application\/x-ndjson/);
    expect(head?.customMetadata).toMatchObject({ tenant, startSeq: "0", endSeq: "25" });

    // Entries after the last checkpoint wait for the next one.
    await append(tenant, 61, 70, { flush: false });
    await deliverAll(tenant, r2Audit());
    expect(await objects(`audit/${tenant}/`)).toHaveLength(3);
    await auditLog(tenant).flush();
    await deliverAll(tenant, r2Audit());
    const more = await objects(`audit/${tenant}/`);
    expect(more.map((o) => o.key).at(-1)).toBe(`audit/${tenant}/${pad(60)}-${pad(70)}.jsonl`);
    expect(await verifyExport(more.at(-1)!.text.split("\n"), key)).toMatchObject({ ok: true, entries: 10 });

    // Written again from the start: the same keys with the same bytes.
    await runInDurableObject(auditLog(tenant), (_i: AuditLogDurableObject, state) =>
      state.storage.sql.exec("UPDATE delivery_sinks SET cursor_seq = 0, cursor_hash = ? WHERE sink = 'r2'", "0".repeat(64)),
    );
    await deliverAll(tenant, r2Audit());
    const again = await objects(`audit/${tenant}/`);
    expect(again.map((o) => [o.key, o.text])).toEqual(more.map((o) => [o.key, o.text]));
  });

  it("uses the configured prefix, retries a failing bucket with backoff without skipping, and starts after pruning at the kept checkpoint", async () => {
    const { tenant } = fresh("r2retry");
    await append(tenant, 1, 55);
    await env.DB.batch([
      env.DB.prepare("DELETE FROM audit_entries WHERE tenant_id = ? AND seq <= 25").bind(tenant),
      env.DB.prepare("DELETE FROM audit_checkpoints WHERE tenant_id = ? AND seq < 25").bind(tenant),
    ]);
    let failures = 2;
    const puts: string[] = [];
    const bucket = env.AUDIT_BUCKET!;
    const flaky = {
      put: async (key: string, value: string, options: R2PutOptions) => {
        puts.push(key);
        if (failures-- > 0) throw new Error("R2 is having a bad day");
        return bucket.put(key, value, options);
      },
    } as unknown as R2Bucket;
    const flakyEnv = { ...env, AUDIT_BUCKET: flaky } as Env;
    let now = Date.now();
    for (let attempt = 1; attempt <= 2; attempt++) {
      const next = await deliverOnce(tenant, r2Audit("gw/prod/"), now, { env: flakyEnv });
      expect(next).toBeGreaterThan(now);
      expect((await sinks(tenant))[0]).toMatchObject({ sink: "r2", cursorSeq: 0, failures: attempt, lastError: expect.stringContaining("bad day") });
      now = next!;
    }
    expect(await deliverAll(tenant, r2Audit("gw/prod/"), now, { env: flakyEnv })).toBeNull();
    const pad = (n: number) => String(n).padStart(16, "0");
    const first = `gw/prod/${tenant}/${pad(25)}-${pad(50)}.jsonl`;
    expect(puts).toEqual([first, first, first, `gw/prod/${tenant}/${pad(50)}-${pad(55)}.jsonl`]);
    const key = await publicKey(tenant);
    for (const object of await objects(`gw/prod/${tenant}/`)) expect(await verifyExport(object.text.split("\n"), key)).toMatchObject({ ok: true });
    expect((await sinks(tenant))[0]).toMatchObject({ cursorSeq: 55, failures: 0, delivered: 2 });
  });

  it("writes nothing without the AUDIT_BUCKET binding, keeping the cursor", async () => {
    const { tenant } = fresh("r2none");
    await append(tenant, 1, 30);
    const now = Date.now();
    expect(await deliverOnce(tenant, r2Audit(), now, { env: { ...env, AUDIT_BUCKET: undefined } as Env })).toBe(now + RETRY_MAX_MS);
    expect(await sinks(tenant)).toMatchObject([{ sink: "r2", cursorSeq: 0, delivered: 0 }]);
  });

  it("delivers to the webhook and R2 side by side, each at its own pace", async () => {
    const { tenant, channel, url } = fresh("both");
    await append(tenant, 1, 30);
    await failNext(channel, 1);
    const audit = { ...webhookAudit(url), r2: { prefix: "both/" } };
    const next = await deliverOnce(tenant, audit);
    expect(next).not.toBeNull();
    expect((await objects(`both/${tenant}/`)).length).toBe(2);
    expect(await deliverAll(tenant, audit, next!)).toBeNull();
    expect((await sinks(tenant)).map((s) => [s.sink, s.cursorSeq])).toEqual([
      ["r2", 30],
      ["webhook", 30],
    ]);
  });
});

describe("S3", () => {
  const BUCKET = "audit-logs";
  /** The receiver's S3 endpoint for a channel: path style under <base>/s3/<channel>. */
  const s3Audit = (channel: string, options: { prefix?: string; region?: string; r2Prefix?: string } = {}): Audit => ({
    enabled: true,
    hashChain: true,
    failureMode: "closed",
    s3: { endpoint: `${RECEIVER}/s3/${channel}`, bucket: BUCKET, region: options.region ?? "auto", prefix: options.prefix ?? "audit/", pathStyle: true },
    ...(options.r2Prefix !== undefined ? { r2: { prefix: options.r2Prefix } } : {}),
  });

  async function s3(channel: string): Promise<{ puts: ReceivedPut[]; objects: StoredObject[] }> {
    return (await fetch(`${RECEIVER}/control/${channel}/s3`)).json();
  }

  async function r2Objects(prefix: string): Promise<{ key: string; text: string }[]> {
    const listed = await env.AUDIT_BUCKET!.list({ prefix });
    return Promise.all(listed.objects.map(async (o) => ({ key: o.key, text: await (await env.AUDIT_BUCKET!.get(o.key))!.text() })));
  }

  const pad = (n: number) => String(n).padStart(16, "0");

  it("are written by the object's own alarm for a tenant whose applied config names only S3", async () => {
    const { tenant, channel } = fresh("s3-alarm");
    await env.DB.prepare("INSERT INTO tenants (id, name, config, config_version) VALUES (?, ?, ?, 1)")
      .bind(tenant, tenant, JSON.stringify({ tenant, authType: "api-key", servers: [], policies: [], audit: s3Audit(channel) }))
      .run();
    const stub = auditLog(tenant);
    for (let i = 1; i <= 30; i++) await stub.append(fields(tenant, i)); // a checkpoint at 25 (every 25 in the tests)
    for (let i = 0; i < 10 && (await s3(channel)).objects.length === 0; i++) await runDurableObjectAlarm(stub);
    expect((await s3(channel)).objects.map((o) => [o.bucket, o.key])).toEqual([[BUCKET, `audit/${tenant}/${pad(0)}-${pad(25)}.jsonl`]]);
  });

  it("PUTs the R2 sink's objects, same keys and same bytes, signed (checked by the receiver), each verifying with the public key", async () => {
    const { tenant, channel } = fresh("s3");
    await append(tenant, 1, 60); // checkpoints at 25, 50 and 60
    // R2 and S3 side by side, under the same prefix: the two stores must end up with the same objects.
    expect(await deliverAll(tenant, s3Audit(channel, { r2Prefix: "same/", prefix: "same/" }))).toBeNull();
    const { puts, objects } = await s3(channel);
    const keys = [[0, 25], [25, 50], [50, 60]].map(([a, b]) => `same/${tenant}/${pad(a!)}-${pad(b!)}.jsonl`);
    expect(objects.map((o) => o.key)).toEqual(keys);
    const r2 = await r2Objects(`same/${tenant}/`);
    expect(objects.map((o) => [o.key, o.body])).toEqual(r2.map((o) => [o.key, o.text]));
    const key = await publicKey(tenant);
    for (const [i, object] of objects.entries()) {
      const [start, end] = [[0, 25], [25, 50], [50, 60]][i]!;
      expect(await verifyExport(object.body.split("\n"), key), object.key).toMatchObject({ ok: true, entries: end! - start!, firstSeq: start! + 1, head: { seq: end } });
      expect(object).toMatchObject({ bucket: BUCKET, writes: 1, contentType: "application/x-ndjson; charset=utf-8" });
      expect(object.metadata).toEqual({ tenant, startseq: String(start), endseq: String(end), keyid: expect.any(String) });
    }
    for (const put of puts) {
      expect(put).toMatchObject({ method: "PUT", answered: 200, rawPath: `/s3/${channel}/${BUCKET}/${put.key}` });
      expect(put.auth).toMatchObject({ ok: true, accessKeyId: env.AUDIT_S3_ACCESS_KEY_ID, region: "auto", service: "s3" });
      expect(put.auth.ok && put.auth.signedHeaders).toEqual(expect.arrayContaining(["host", "x-amz-date", "x-amz-content-sha256", "x-amz-meta-tenant", "x-amz-meta-keyid"]));
      // The payload is signed (its SHA-256), not UNSIGNED-PAYLOAD.
      expect(put.contentSha256).toMatch(/^[0-9a-f]{64}$/);
    }
    expect((await sinks(tenant)).map((s) => [s.sink, s.cursorSeq, s.delivered])).toEqual([
      ["r2", 60, 3],
      ["s3", 60, 3],
    ]);
    // Caught up: nothing more is sent.
    expect(await deliverAll(tenant, s3Audit(channel, { prefix: "same/" }))).toBeNull();
    expect((await s3(channel)).puts).toHaveLength(3);
  });

  it("is refused by the store under a wrong secret (403, SignatureDoesNotMatch) and retried, the cursor not moving until it is accepted", async () => {
    const { tenant, channel } = fresh("s3secret");
    await append(tenant, 1, 30); // checkpoints at 25 and 30
    const audit = s3Audit(channel, { region: "eu-test-1" });
    const wrong = { ...env, AUDIT_S3_SECRET_ACCESS_KEY: "not-the-secret" } as Env;
    let now = Date.now();
    for (let attempt = 1; attempt <= 2; attempt++) {
      const next = await deliverOnce(tenant, audit, now, { env: wrong });
      expect(next).toBeGreaterThan(now);
      expect(await sinks(tenant)).toMatchObject([{ sink: "s3", cursorSeq: 0, delivered: 0, failures: attempt, lastError: expect.stringContaining("answered 403 (SignatureDoesNotMatch)") }]);
      now = next!;
    }
    expect((await s3(channel)).objects).toEqual([]);
    expect(await deliverAll(tenant, audit, now)).toBeNull();
    const { puts, objects } = await s3(channel);
    const first = `audit/${tenant}/${pad(0)}-${pad(25)}.jsonl`;
    expect(puts.map((p) => [p.key, p.answered, p.auth.ok ? "signed" : p.auth.code])).toEqual([
      [first, 403, "SignatureDoesNotMatch"],
      [first, 403, "SignatureDoesNotMatch"],
      [first, 200, "signed"],
      [`audit/${tenant}/${pad(25)}-${pad(30)}.jsonl`, 200, "signed"],
    ]);
    expect(puts.at(-1)!.auth).toMatchObject({ region: "eu-test-1" });
    expect(objects.map((o) => o.writes)).toEqual([1, 1]);
    expect(await sinks(tenant)).toMatchObject([{ sink: "s3", cursorSeq: 30, failures: 0, lastError: null, delivered: 2 }]);
  });

  it("retries a failing store with backoff, resending the same bytes, and writes each key once; a key needing encoding arrives as R2 would name it", async () => {
    const { tenant, channel } = fresh("s3retry");
    const prefix = "gw prod+ü/(x)!~/";
    await append(tenant, 1, 55);
    await failNext(channel, 3, { status: 503 });
    let now = Date.now();
    for (let attempt = 1; attempt <= 3; attempt++) {
      const next = await deliverOnce(tenant, s3Audit(channel, { prefix }), now);
      expect(next).toBeGreaterThan(now);
      // Before the retry time nothing is sent.
      expect(await deliverOnce(tenant, s3Audit(channel, { prefix }), next! - 1)).toBe(next);
      expect(await sinks(tenant)).toMatchObject([{ sink: "s3", cursorSeq: 0, failures: attempt, lastError: expect.stringContaining("answered 503 (InternalError)") }]);
      now = next!;
    }
    expect(await deliverAll(tenant, s3Audit(channel, { prefix }), now)).toBeNull();
    const { puts, objects } = await s3(channel);
    const keys = [[0, 25], [25, 50], [50, 55]].map(([a, b]) => r2ObjectKey(prefix, tenant, a!, b!));
    expect(puts.map((p) => [p.key, p.answered])).toEqual([
      [keys[0], 503],
      [keys[0], 503],
      [keys[0], 503],
      [keys[0], 200],
      [keys[1], 200],
      [keys[2], 200],
    ]);
    expect(new Set(puts.slice(0, 4).map((p) => p.body)).size).toBe(1);
    expect(puts.every((p) => p.auth.ok)).toBe(true);
    expect(objects.map((o) => [o.key, o.writes])).toEqual(keys.map((k) => [k, 1]));
    const key = await publicKey(tenant);
    for (const object of objects) expect(await verifyExport(object.body.split("\n"), key)).toMatchObject({ ok: true });
    expect(await sinks(tenant)).toMatchObject([{ sink: "s3", cursorSeq: 55, failures: 0, delivered: 3 }]);
  });

  it("gives up on a store that does not answer within the timeout, and retries", async () => {
    const { tenant, channel } = fresh("s3hang");
    await append(tenant, 1, 5);
    await failNext(channel, 1, { hang: true });
    const options = { delivery: { timeoutMs: 300 } };
    const next = await deliverOnce(tenant, s3Audit(channel), Date.now(), options);
    expect(next).not.toBeNull();
    expect(await sinks(tenant)).toMatchObject([{ sink: "s3", cursorSeq: 0, failures: 1, lastError: expect.stringContaining("no answer within 300 ms") }]);
    expect(await deliverAll(tenant, s3Audit(channel), next!, options)).toBeNull();
    expect((await s3(channel)).puts.map((p) => p.answered)).toEqual(["hung", 200]);
  });

  it("sends nothing without the credentials, logging it and keeping the cursor, and starts from the beginning once they are set", async () => {
    const { tenant, channel } = fresh("s3none");
    await append(tenant, 1, 30);
    const now = Date.now();
    const errors = vi.spyOn(console, "error");
    try {
      for (const missing of [{ AUDIT_S3_ACCESS_KEY_ID: undefined }, { AUDIT_S3_SECRET_ACCESS_KEY: undefined }, { AUDIT_S3_ACCESS_KEY_ID: undefined, AUDIT_S3_SECRET_ACCESS_KEY: undefined }]) {
        errors.mockClear();
        expect(await deliverOnce(tenant, s3Audit(channel), now, { env: { ...env, ...missing } as Env })).toBe(now + RETRY_MAX_MS);
        const logged = errors.mock.calls.map(([line]) => JSON.parse(String(line)) as Record<string, unknown>);
        expect(logged).toEqual([expect.objectContaining({ level: "error", event: "audit.delivery_unconfigured", tenant, sink: "s3" })]);
        for (const name of Object.keys(missing)) expect(String(logged[0]!.detail)).toContain(name);
      }
    } finally {
      errors.mockRestore();
    }
    expect((await s3(channel)).puts).toHaveLength(0);
    expect(await sinks(tenant)).toMatchObject([{ sink: "s3", cursorSeq: 0, delivered: 0, failures: 0 }]);
    expect(await deliverAll(tenant, s3Audit(channel), now)).toBeNull();
    expect((await s3(channel)).objects.map((o) => o.key)).toEqual([`audit/${tenant}/${pad(0)}-${pad(25)}.jsonl`, `audit/${tenant}/${pad(25)}-${pad(30)}.jsonl`]);
  });
});

describe("the AuditLog object's own alarm", () => {
  it("delivers to the webhook of the tenant's applied config, without anyone calling deliver()", async () => {
    const { tenant, channel, url } = fresh("alarm");
    // An applied config naming the webhook (as an apply would store it).
    await env.DB.prepare("INSERT INTO tenants (id, name, config, config_version) VALUES (?, ?, ?, 1)")
      .bind(tenant, tenant, JSON.stringify({ tenant, authType: "api-key", servers: [], policies: [], audit: webhookAudit(url, 3) }))
      .run();
    const stub = auditLog(tenant);
    for (let i = 1; i <= 7; i++) await stub.append(fields(tenant, i));
    // Each alarm run ships to D1, then delivers one batch and asks to run again at once while more is pending.
    for (let i = 0; i < 10 && accepted(await received(channel)).flatMap((d) => payload(d).entries).length < 7; i++) await runDurableObjectAlarm(stub);
    await expectWellFormedStream(tenant, accepted(await received(channel)), 7);
  });
});
