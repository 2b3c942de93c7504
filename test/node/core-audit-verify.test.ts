import { describe, expect, it } from "vitest";
import { appendEntry, computeEntryHash, headOf } from "../../src/audit/chain.ts";
import type { AuditCheckpoint } from "../../src/audit/checkpoint.ts";
import type { AuditEntry } from "../../src/audit/entry.ts";
import { ChainVerifier, type ChainVerifyResult, verifyChain } from "../../src/audit/verify.ts";
import { buildChain, checkpointOf, clone, fields, OTHER_PRIVATE_KEY, OTHER_PUBLIC_KEY, PUBLIC_KEY, TENANT } from "./core-audit-fixtures.ts";

const CHAIN = buildChain(12);
const at = (seq: number) => CHAIN[seq - 1] as AuditEntry;
const HEAD = headOf(at(12));
/** Checkpoints at 4, 8 and 12. */
const CHECKPOINTS = [4, 8, 12].map((seq) => checkpointOf(at(seq)));

function verify(entries: AuditEntry[], options: Parameters<typeof verifyChain>[1] = {}): Promise<ChainVerifyResult> {
  return verifyChain(entries, { publicKeys: PUBLIC_KEY, ...options });
}

function failure(result: ChainVerifyResult) {
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result)}`);
  return { seq: result.failure.seq, reason: result.failure.reason };
}

/** Entries with the entry at `seq` replaced by `edit(copy)`. */
function tampered(seq: number, edit: (entry: AuditEntry) => void): AuditEntry[] {
  return CHAIN.map((entry) => {
    if (entry.seq !== seq) return entry;
    const copy = clone(entry);
    edit(copy);
    expect(JSON.stringify(copy), "the edit must change the entry").not.toBe(JSON.stringify(entry));
    return copy;
  });
}

/** Rewrites from `seq` on (edit applied at `seq`), recomputing every hash as an attacker with database access would. */
function rewritten(seq: number, edit: (entry: AuditEntry) => void): AuditEntry[] {
  const out: AuditEntry[] = CHAIN.slice(0, seq - 1);
  let prev = out.length > 0 ? (out[out.length - 1] as AuditEntry).hash : "0".repeat(64);
  for (const entry of CHAIN.slice(seq - 1)) {
    const copy = clone(entry);
    if (copy.seq === seq) {
      edit(copy);
      expect(JSON.stringify(copy), "the edit must change the entry").not.toBe(JSON.stringify(entry));
    }
    copy.prevHash = prev;
    copy.hash = computeEntryHash(copy);
    prev = copy.hash;
    out.push(copy);
  }
  return out;
}

describe("verifyChain on an intact chain", () => {
  it("verifies with counts, head and the last checkpoint", async () => {
    const result = await verify(CHAIN, { checkpoints: CHECKPOINTS, expectedHead: HEAD });
    expect(result).toEqual({ ok: true, tenant: TENANT, entries: 12, checkpoints: 3, firstSeq: 1, head: HEAD, lastCheckpoint: { seq: 12, hash: HEAD.hash }, uncheckpointed: 0 });
  });

  it("verifies an empty chain, and reports what no checkpoint covers", async () => {
    expect(await verify([])).toMatchObject({ ok: true, entries: 0, head: { seq: 0, hash: "0".repeat(64) }, firstSeq: null });
    expect(await verify(CHAIN, { checkpoints: [checkpointOf(at(8))] })).toMatchObject({ ok: true, checkpoints: 1, uncheckpointed: 4 });
    expect(await verify(CHAIN)).toMatchObject({ ok: true, checkpoints: 0, uncheckpointed: 12, lastCheckpoint: null });
  });

  it("streams from an async iterable, and reports progress", async () => {
    async function* source() {
      for (const entry of CHAIN) yield entry;
    }
    const progress: number[] = [];
    const result = await verifyChain(source(), { publicKeys: PUBLIC_KEY, checkpoints: CHECKPOINTS, onProgress: (n) => progress.push(n), progressEvery: 5 });
    expect(result.ok).toBe(true);
    expect(progress).toEqual([5, 10]);
  });

  it("verifies a chain generated on the fly without holding it (20,000 entries)", async () => {
    let produced = 0;
    function* lazy() {
      let head: AuditEntry | null = null;
      for (let i = 1; i <= 20_000; i++) {
        head = appendEntry(head, fields(i));
        produced++;
        yield head;
      }
    }
    const result = await verifyChain(lazy(), { publicKeys: PUBLIC_KEY });
    expect(result).toMatchObject({ ok: true, entries: 20_000 });
    expect(produced).toBe(20_000);
  });
});

describe("tampering corpus: every single-field edit is located", () => {
  const edits: [string, (e: AuditEntry) => void][] = [
    ["arguments (nested value)", (e) => ((e.arguments as { customer: { id: string } }).customer.id = "c-999")],
    ["arguments (key added)", (e) => ((e.arguments as Record<string, unknown>).extra = true)],
    ["arguments (number 5 → 5.0 is the same JSON, 5 → 6 is not)", (e) => ((e.arguments as { limit: number }).limit += 1)],
    ["result", (e) => (e.result = { content: [{ type: "text", text: "something else" }], isError: false })],
    ["result → null, or null → a result", (e) => (e.result = e.result === null ? { content: [] } : null)],
    ["resultDigest", (e) => (e.resultDigest = "cd".repeat(32))],
    ["latencyMs", (e) => (e.latencyMs += 1)],
    ["status", (e) => (e.status = e.status === "ok" ? "error" : "ok")],
    ["errorCode", (e) => (e.errorCode = 0)],
    ["errorMessage", (e) => (e.errorMessage = "nothing happened")],
    ["timestamp", (e) => (e.timestamp -= 1)],
    ["consumer", (e) => (e.consumer = "someone-else")],
    ["keyId", (e) => (e.keyId = "key-x")],
    ["clientIp", (e) => (e.clientIp = "198.51.100.1")],
    ["requestId", (e) => (e.requestId = "req-x")],
    ["sessionId", (e) => (e.sessionId = "sess-x")],
    ["server", (e) => (e.server = "billing")],
    ["method", (e) => (e.method = "resources/read")],
    ["tool", (e) => (e.tool = "delete_customer")],
    ["ruleId", (e) => (e.ruleId = "admin.rules[0]")],
    ["prevHash", (e) => (e.prevHash = "e".repeat(64))],
    ["hash", (e) => (e.hash = "e".repeat(64))],
  ];
  for (const [name, edit] of edits) {
    it(`${name} → hash mismatch at that seq`, async () => {
      for (const seq of [1, 6, 12]) {
        expect(failure(await verify(tampered(seq, edit), { checkpoints: CHECKPOINTS, expectedHead: HEAD }))).toEqual({ seq, reason: "hash-mismatch" });
      }
    });
  }

  it("tenant → tenant mismatch at that seq", async () => {
    expect(failure(await verify(tampered(6, (e) => (e.tenant = "other"))))).toEqual({ seq: 6, reason: "tenant-mismatch" });
  });

  it("a whole entry of another tenant's chain spliced in → tenant mismatch", async () => {
    const foreign = buildChain(6, null, (i) => fields(i, { tenant: "globex" }))[5] as AuditEntry;
    expect(failure(await verify(CHAIN.map((e) => (e.seq === 6 ? foreign : e)), { tenant: TENANT }))).toEqual({ seq: 6, reason: "tenant-mismatch" });
  });

  it("a lone surrogate smuggled into a field → malformed at that seq, not a crash", async () => {
    expect(failure(await verify(tampered(3, (e) => (e.errorMessage = "\ud800"))))).toEqual({ seq: 3, reason: "malformed" });
  });

  it("an edit with its own hash recomputed → broken link at the next seq", async () => {
    const entries = tampered(5, (e) => {
      e.latencyMs = 12_345;
      e.hash = computeEntryHash(e);
    });
    expect(failure(await verify(entries))).toEqual({ seq: 6, reason: "broken-link" });
  });
});

describe("deletions, insertions and reordering", () => {
  it("a deleted middle entry → gap at its seq", async () => {
    const result = await verify(CHAIN.filter((e) => e.seq !== 5));
    expect(failure(result)).toEqual({ seq: 5, reason: "gap" });
    expect(!result.ok && result.failure.message).toMatch(/seq 5 is missing/);
  });

  it("several deleted entries → gap at the first", async () => {
    expect(failure(await verify(CHAIN.filter((e) => e.seq < 3 || e.seq > 7)))).toEqual({ seq: 3, reason: "gap" });
  });

  it("the first entry deleted → gap at seq 1", async () => {
    expect(failure(await verify(CHAIN.slice(1)))).toEqual({ seq: 1, reason: "gap" });
  });

  it("two entries swapped → reordering at the first displaced seq", async () => {
    const swapped = [...CHAIN];
    [swapped[3], swapped[4]] = [swapped[4] as AuditEntry, swapped[3] as AuditEntry]; // seqs 4 and 5
    expect(failure(await verify(swapped))).toEqual({ seq: 4, reason: "reordered" });
    const far = [...CHAIN];
    [far[1], far[9]] = [far[9] as AuditEntry, far[1] as AuditEntry]; // seqs 2 and 10
    expect(failure(await verify(far))).toEqual({ seq: 2, reason: "reordered" });
  });

  it("a missing seq found only beyond the lookahead stays a gap", async () => {
    const moved = [...CHAIN.filter((e) => e.seq !== 2), at(2)];
    expect(failure(await verify(moved, { lookahead: 3 }))).toEqual({ seq: 2, reason: "gap" });
    expect(failure(await verify(moved))).toEqual({ seq: 2, reason: "reordered" });
  });

  it("a duplicated entry → duplicate", async () => {
    expect(failure(await verify([...CHAIN.slice(0, 6), at(6), ...CHAIN.slice(6)]))).toEqual({ seq: 6, reason: "duplicate" });
  });

  it("an inserted entry (a new seq 6 before the real one) is caught", async () => {
    const forged = appendEntry(headOf(at(5)), fields(6, { status: "ok", tool: "innocent" }));
    const entries = [...CHAIN.slice(0, 5), forged, ...CHAIN.slice(5)];
    expect(failure(await verify(entries))).toEqual({ seq: 6, reason: "reordered" });
  });

  it("stops reading at the first settled failure", async () => {
    let read = 0;
    function* counting() {
      for (const entry of tampered(3, (e) => (e.latencyMs = 0))) {
        read++;
        yield entry;
      }
    }
    await verifyChain(counting(), { publicKeys: PUBLIC_KEY });
    expect(read).toBe(3);
  });
});

describe("tail truncation and rewriting", () => {
  it("a deleted tail → missing tail, against the expected head", async () => {
    const result = await verify(CHAIN.slice(0, 9), { expectedHead: HEAD });
    expect(failure(result)).toEqual({ seq: 10, reason: "missing-tail" });
    expect(!result.ok && result.failure.message).toMatch(/10-12/);
  });

  it("a deleted tail → missing tail, against a later checkpoint", async () => {
    expect(failure(await verify(CHAIN.slice(0, 9), { checkpoints: CHECKPOINTS }))).toEqual({ seq: 10, reason: "missing-tail" });
    expect(failure(await verify([], { checkpoints: CHECKPOINTS }))).toEqual({ seq: 1, reason: "missing-tail" });
  });

  it("without a head or a checkpoint past it, a deleted tail is invisible — and reported as uncheckpointed", async () => {
    expect(await verify(CHAIN.slice(0, 10), { checkpoints: CHECKPOINTS.slice(0, 2) })).toMatchObject({ ok: true, uncheckpointed: 2 });
  });

  it("the tail rewritten with recomputed hashes → checkpoint mismatch at the first checkpoint after the edit", async () => {
    const entries = rewritten(6, (e) => (e.status = "denied"));
    expect(failure(await verify(entries, { checkpoints: CHECKPOINTS }))).toEqual({ seq: 8, reason: "checkpoint-mismatch" });
    const late = rewritten(10, (e) => (e.errorMessage = "rewritten"));
    expect(failure(await verify(late, { checkpoints: CHECKPOINTS }))).toEqual({ seq: 12, reason: "checkpoint-mismatch" });
  });

  it("the tail rewritten past the last checkpoint → head mismatch against the expected head", async () => {
    const entries = rewritten(11, (e) => (e.latencyMs = 1));
    expect(failure(await verify(entries, { checkpoints: CHECKPOINTS.slice(0, 2), expectedHead: HEAD }))).toEqual({ seq: 12, reason: "head-mismatch" });
    const verifier = new ChainVerifier({ publicKeys: PUBLIC_KEY }); // the head given only at the end
    for (const e of entries) verifier.entry(e);
    expect(failure(verifier.finish(HEAD))).toEqual({ seq: 12, reason: "head-mismatch" });
  });

  it("entries past the expected head → beyond head", async () => {
    expect(failure(await verify(CHAIN, { expectedHead: headOf(at(10)) }))).toEqual({ seq: 11, reason: "beyond-head" });
    const verifier = new ChainVerifier({ publicKeys: PUBLIC_KEY });
    for (const e of CHAIN) verifier.entry(e);
    expect(failure(verifier.finish(headOf(at(10))))).toEqual({ seq: 11, reason: "beyond-head" });
  });

  it("the rewriter's re-signed checkpoint → bad signature; an edited checkpoint hash → bad signature", async () => {
    const entries = rewritten(6, (e) => (e.status = "denied"));
    const resigned = [checkpointOf(at(4)), checkpointOf(entries[7] as AuditEntry, OTHER_PRIVATE_KEY), checkpointOf(entries[11] as AuditEntry, OTHER_PRIVATE_KEY)];
    expect(failure(await verify(entries, { checkpoints: resigned }))).toEqual({ seq: 8, reason: "bad-signature" });
    const edited = CHECKPOINTS.map((c) => (c.seq === 8 ? { ...c, hash: (entries[7] as AuditEntry).hash } : c));
    expect(failure(await verify(entries, { checkpoints: edited }))).toEqual({ seq: 8, reason: "bad-signature" });
  });
});

describe("checkpoint checks", () => {
  const forge = (c: AuditCheckpoint): AuditCheckpoint => ({ ...c, signature: `${c.signature.slice(0, 10)}${c.signature[10] === "A" ? "B" : "A"}${c.signature.slice(11)}` });

  it("a forged signature → bad signature at its seq", async () => {
    const result = await verify(CHAIN, { checkpoints: CHECKPOINTS.map((c) => (c.seq === 8 ? forge(c) : c)) });
    expect(failure(result)).toEqual({ seq: 8, reason: "bad-signature" });
    expect(!result.ok && result.failure.message).toMatch(/invalid signature/);
  });

  it("the wrong public key → bad signature naming both keys", async () => {
    const result = await verifyChain(CHAIN, { publicKeys: OTHER_PUBLIC_KEY, checkpoints: CHECKPOINTS });
    expect(failure(result)).toEqual({ seq: 4, reason: "bad-signature" });
    expect(!result.ok && result.failure.message).toMatch(/not signed by the given public key/);
  });

  it("no public key at all → bad signature (never trusted silently)", async () => {
    expect(failure(await verifyChain(CHAIN, { checkpoints: CHECKPOINTS }))).toEqual({ seq: 4, reason: "bad-signature" });
  });

  it("any of several keys (rotation) verifies", async () => {
    const mixed = [checkpointOf(at(4)), checkpointOf(at(8), OTHER_PRIVATE_KEY)];
    expect(await verifyChain(CHAIN, { publicKeys: [OTHER_PUBLIC_KEY, PUBLIC_KEY], checkpoints: mixed })).toMatchObject({ ok: true, checkpoints: 2 });
  });

  it("a forged checkpoint beyond the end → bad signature, not a missing tail", async () => {
    const fake = forge(checkpointOf({ seq: 20, hash: "1".repeat(64) }));
    expect(failure(await verify(CHAIN, { checkpoints: [fake] }))).toEqual({ seq: 20, reason: "bad-signature" });
  });

  it("another tenant's checkpoint (same key) → tenant mismatch", async () => {
    const foreign = checkpointOf(at(8), undefined, "globex");
    expect(failure(await verify(CHAIN, { tenant: TENANT, checkpoints: [foreign] }))).toEqual({ seq: 8, reason: "tenant-mismatch" });
  });

  it("reports the FIRST bad seq whatever order problems are found in", async () => {
    const checkpoints = CHECKPOINTS.map((c) => (c.seq === 8 ? forge(c) : c));
    expect(failure(await verify(tampered(3, (e) => (e.latencyMs = 0)), { checkpoints }))).toEqual({ seq: 3, reason: "hash-mismatch" });
    expect(failure(await verify(tampered(10, (e) => (e.latencyMs = 0)), { checkpoints }))).toEqual({ seq: 8, reason: "bad-signature" });
  });

  it("accepts checkpoints in stream order: before their entry, or soon after", async () => {
    const verifier = new ChainVerifier({ publicKeys: PUBLIC_KEY });
    verifier.checkpoint(CHECKPOINTS[1] as AuditCheckpoint); // seq 8, before its entry
    for (const entry of CHAIN) {
      verifier.entry(entry);
      if (entry.seq === 6) verifier.checkpoint(CHECKPOINTS[0] as AuditCheckpoint); // seq 4, two entries late
    }
    verifier.checkpoint(CHECKPOINTS[2] as AuditCheckpoint); // seq 12, right after
    expect(verifier.finish()).toMatchObject({ ok: true, checkpoints: 3 });
  });

  it("a checkpoint too late to check → checkpoint-late", async () => {
    const verifier = new ChainVerifier({ publicKeys: PUBLIC_KEY, window: 2 });
    for (const entry of CHAIN) verifier.entry(entry);
    verifier.checkpoint(CHECKPOINTS[0] as AuditCheckpoint);
    expect(failure(verifier.finish())).toEqual({ seq: 4, reason: "checkpoint-late" });
  });
});

describe("a pruned chain starts from a checkpoint", () => {
  const start = headOf(at(4));

  it("verifies from the anchor checkpoint", async () => {
    const result = await verify(CHAIN.slice(4), { start, checkpoints: CHECKPOINTS });
    expect(result).toMatchObject({ ok: true, entries: 8, firstSeq: 5, checkpoints: 3, uncheckpointed: 0 });
  });

  it("without a valid checkpoint at the start → unanchored", async () => {
    expect(failure(await verify(CHAIN.slice(4), { start, checkpoints: CHECKPOINTS.slice(1) }))).toEqual({ seq: 4, reason: "unanchored" });
    expect(failure(await verify([], { start }))).toEqual({ seq: 4, reason: "unanchored" });
  });

  it("a start whose hash the anchor does not sign → checkpoint mismatch", async () => {
    expect(failure(await verify(CHAIN.slice(4), { start: { seq: 4, hash: "2".repeat(64) }, checkpoints: CHECKPOINTS }))).toEqual({ seq: 4, reason: "checkpoint-mismatch" });
  });

  it("the first retained entry deleted → gap", async () => {
    expect(failure(await verify(CHAIN.slice(5), { start, checkpoints: CHECKPOINTS }))).toEqual({ seq: 5, reason: "gap" });
  });

  it("refuses a genesis start with another hash", () => {
    expect(() => new ChainVerifier({ start: { seq: 0, hash: "1".repeat(64) } })).toThrow(/genesis/);
  });
});
