/**
 * @module Audit chain benchmark. Two targets:
 * - append throughput, on realistic entries of ~715 bytes of canonical JSON (redacted arguments, a truncated result,
 *   ids). The target is ≥ 5,000 entries/s, the rate one tenant's AuditLog Durable Object must sustain.
 * - streaming verification of a 1,000,000-entry JSONL export with a signed checkpoint every 10,000 entries. The
 *   target is ≤ 20 s. Lines are generated on the fly from seq (by a template, checked against exportEntryLine) and
 *   never held. The figure covers building each line, parsing and validating it, hashing its canonical text, the
 *   links, and the checkpoints' Ed25519 verifications.
 * The chain's hashes are computed once beforehand, untimed; 32 MB of raw digests is all that is kept. Verification
 * of the same million entries as objects is measured too: that is the D1 path, which re-serialises each entry with
 * RFC 8785.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, hexToBytes } from "@noble/hashes/utils.js";
import { appendEntry, computeEntryHash, sha256Hex } from "../src/audit/chain.ts";
import { type AuditCheckpoint, encodeBase64Url, publicKeyFromPrivate, signCheckpoint } from "../src/audit/checkpoint.ts";
import type { AuditEntry, AuditFields, ChainHead, NormalizedFields } from "../src/audit/entry.ts";
import { exportCheckpointLine, exportEntryLine, exportHeaderLine, verifyExport } from "../src/audit/export-format.ts";
import { verifyChain } from "../src/audit/verify.ts";
import type { Benchmark, Figure } from "./run.ts";

const APPEND_TARGET = 5_000;
const VERIFY_ENTRIES = 1_000_000;
const VERIFY_TARGET_S = 20;
const OBJECT_ENTRIES = 1_000_000;
const CHECKPOINT_EVERY = 10_000;
const TENANT = "acme-health";
const PRIVATE_KEY = encodeBase64Url(Uint8Array.from({ length: 32 }, (_, i) => i + 7));
const PUBLIC_KEY = publicKeyFromPrivate(PRIVATE_KEY);

const TOOLS = ["get_patient", "search_orders", "create_ticket", "list_invoices", "update_customer"];
const STATUSES = ["ok", "ok", "ok", "ok", "ok", "ok", "error", "denied", "limited", "ok"] as const;

/** Result digests to draw from (computing one per entry would time the generator, not the verifier). */
const DIGESTS = Array.from({ length: 997 }, (_, i) => bytesToHex(sha256(new TextEncoder().encode(String(i)))));

/** The i-th call's fields: a realistic, varied entry of about 600 bytes as JSON. */
function fieldsFor(i: number): NormalizedFields {
  const status = STATUSES[i % STATUSES.length] ?? "ok";
  const tool = TOOLS[i % TOOLS.length] as string;
  return {
    timestamp: 1_767_225_600_000 + i * 37,
    tenant: TENANT,
    consumer: `agent-${i % 17}`,
    keyId: `key_01J${(i % 97).toString(36).padStart(6, "0")}`,
    clientIp: `203.0.113.${i % 251}`,
    requestId: `5f0c2b1e-${(i % 65_536).toString(16).padStart(4, "0")}-4a7d-9c3e-${i.toString(16).padStart(12, "0")}`,
    sessionId: `sess-${(i >> 6).toString(36)}`,
    server: i % 3 === 0 ? "ehr-prod" : "crm",
    method: "tools/call",
    tool,
    arguments: { patient: { id: `p-${i}`, ssn: "[REDACTED:ssn]" }, fields: ["name", "allergies", "visits"], since: "2025-01-01", limit: 25 },
    result:
      status === "ok"
        ? { content: [{ type: "text", text: `Patient p-${i}: 3 visits since 2025-01-01, allergies: penicillin; next appointment 2026-02-${(i % 28) + 1}.` }], isError: false }
        : null,
    resultDigest: status === "ok" ? (DIGESTS[i % DIGESTS.length] as string) : null,
    status,
    errorCode: status === "error" ? -32603 : status === "denied" ? -32003 : status === "limited" ? -32029 : null,
    errorMessage: status === "error" ? "upstream timed out after 30000 ms" : status === "denied" ? "denied by rule ehr.rules[2]" : status === "limited" ? "rate limit: 100/min" : null,
    latencyMs: 20 + ((i * 7919) % 900),
    ruleId: status === "denied" ? "ehr.rules[2]" : "ehr.rules[0]",
    requestBytes: 180 + (i % 64),
    responseBytes: status === "ok" ? 150 + (i % 32) : 90,
  };
}

/** The chain's hashes as 32 raw bytes each in one buffer: a million hex strings would keep the garbage collector busy. */
class HashStore {
  readonly #bytes: Uint8Array;
  constructor(count: number) {
    this.#bytes = new Uint8Array((count + 1) * 32); // seq 0 = genesis, all zeros
  }
  get(seq: number): string {
    return bytesToHex(this.#bytes.subarray(seq * 32, seq * 32 + 32));
  }
  set(seq: number, hash: string): void {
    this.#bytes.set(hexToBytes(hash), seq * 32);
  }
}

/** The entry at `seq` of the benchmark chain, given the precomputed hashes (no hashing here). */
function entryAt(seq: number, hashes: HashStore): AuditEntry {
  return { seq, ...fieldsFor(seq), prevHash: hashes.get(seq - 1), hash: hashes.get(seq) };
}

const q = (value: string | null) => (value === null ? "null" : `"${value}"`);

/**
 * entryCanonicalJson(entryAt(seq)) by template, as cheap as reading a line from a file (the benchmark checks it
 * against the real thing): the generator must not cost what the verifier is measured on.
 */
function canonicalTextFor(seq: number): string {
  const f = fieldsFor(seq);
  const a = f.arguments as { patient: { id: string; ssn: string }; since: string; limit: number };
  const r = f.result as { content: { type: string; text: string }[]; isError: boolean } | null;
  return (
    `{"arguments":{"fields":["name","allergies","visits"],"limit":${a.limit},"patient":{"id":"${a.patient.id}","ssn":"${a.patient.ssn}"},"since":"${a.since}"},` +
    `"clientIp":${q(f.clientIp)},"consumer":${q(f.consumer)},"errorCode":${f.errorCode},"errorMessage":${q(f.errorMessage)},"keyId":${q(f.keyId)},` +
    `"latencyMs":${f.latencyMs},"method":"${f.method}","requestBytes":${f.requestBytes},"requestId":"${f.requestId}","responseBytes":${f.responseBytes},` +
    `"result":${r === null ? "null" : `{"content":[{"text":"${r.content[0]?.text}","type":"text"}],"isError":${r.isError}}`},` +
    `"resultDigest":${q(f.resultDigest)},"ruleId":${q(f.ruleId)},"seq":${seq},"server":${q(f.server)},"sessionId":${q(f.sessionId)},` +
    `"status":"${f.status}","tenant":"${f.tenant}","timestamp":${f.timestamp},"tool":${q(f.tool)}}`
  );
}

function lineFor(seq: number, hashes: HashStore): string {
  return `{"type":"entry","hash":"${hashes.get(seq)}","prevHash":"${hashes.get(seq - 1)}",${canonicalTextFor(seq).slice(1)}`;
}

const benchmark: Benchmark = {
  name: "audit-chain",
  async run(ctx) {
    // Append: appendEntry (validation, normalisation, canonical JSON, SHA-256), as the Durable Object calls it.
    const appendCount = 20_000;
    let head: ChainHead | null = null;
    for (let i = 1; i <= 2_000; i++) head = appendEntry(head, fieldsFor(i)); // warm-up
    const inputs = Array.from({ length: appendCount }, (_, i) => fieldsFor(i + 1));
    head = null;
    let bytes = 0;
    const appendStart = performance.now();
    for (const input of inputs) head = appendEntry(head, input);
    const appendSeconds = (performance.now() - appendStart) / 1000;
    for (let i = 1; i <= 1_000; i++) bytes += new TextEncoder().encode(canonicalTextFor(i)).length;
    const entryBytes = bytes / 1_000;
    const perAppend = ctx.time((i) => appendEntry(head, inputs[i % appendCount] as AuditFields), { samples: 400, batch: 25, warmup: 2_000 });

    // The chain's hashes, once (untimed), and a checkpoint every CHECKPOINT_EVERY entries.
    const hashes = new HashStore(VERIFY_ENTRIES);
    const setupStart = performance.now();
    let prev = hashes.get(0);
    for (let seq = 1; seq <= VERIFY_ENTRIES; seq++) {
      prev = sha256Hex(`${prev}${canonicalTextFor(seq)}`);
      hashes.set(seq, prev);
    }
    for (let seq = 1; seq <= 2_000; seq++) {
      const entry = entryAt(seq, hashes);
      if (computeEntryHash(entry) !== entry.hash || lineFor(seq, hashes) !== exportEntryLine(entry)) throw new Error(`the benchmark's line template is wrong at seq ${seq}`);
    }
    const checkpoints = new Map<number, AuditCheckpoint>();
    for (let seq = CHECKPOINT_EVERY; seq <= VERIFY_ENTRIES; seq += CHECKPOINT_EVERY) {
      checkpoints.set(seq, signCheckpoint({ tenant: TENANT, seq, hash: hashes.get(seq), time: 1_767_300_000_000 + seq }, PRIVATE_KEY));
    }
    ctx.log(`chain of ${VERIFY_ENTRIES.toLocaleString("en")} hashes prepared in ${((performance.now() - setupStart) / 1000).toFixed(1)} s (untimed)`);

    function* lines(): Generator<string> {
      yield exportHeaderLine({ tenant: TENANT, keyId: null, start: { seq: 0, hash: hashes.get(0) }, head: { seq: VERIFY_ENTRIES, hash: hashes.get(VERIFY_ENTRIES) }, exportedAt: 0 });
      for (let seq = 1; seq <= VERIFY_ENTRIES; seq++) {
        yield lineFor(seq, hashes);
        const checkpoint = checkpoints.get(seq);
        if (checkpoint) yield exportCheckpointLine(checkpoint);
      }
    }
    const verifyStart = performance.now();
    const result = await verifyExport(lines(), PUBLIC_KEY);
    const verifySeconds = (performance.now() - verifyStart) / 1000;
    if (!result.ok || result.entries !== VERIFY_ENTRIES || result.checkpoints !== checkpoints.size) {
      throw new Error(`the benchmark chain did not verify: ${JSON.stringify(result)}`);
    }

    function* objects(): Generator<AuditEntry> {
      for (let seq = 1; seq <= OBJECT_ENTRIES; seq++) yield entryAt(seq, hashes);
    }
    const objectStart = performance.now();
    const objectResult = await verifyChain(objects(), { publicKeys: PUBLIC_KEY, checkpoints: [...checkpoints.values()].filter((c) => c.seq <= OBJECT_ENTRIES) });
    const objectSeconds = (performance.now() - objectStart) / 1000;
    if (!objectResult.ok) throw new Error(`the object chain did not verify: ${JSON.stringify(objectResult)}`);

    const figures: Figure[] = [
      { name: "append throughput", unit: "entries/s", value: appendCount / appendSeconds, target: APPEND_TARGET, higherIsBetter: true, note: `appendEntry() of ${appendCount.toLocaleString("en")} realistic entries in a row (validate, normalise, JCS, SHA-256)` },
      { name: "append (median)", unit: "µs", value: perAppend.median, note: "one appendEntry(), median of 25-call samples" },
      { name: "append (p99)", unit: "µs", value: perAppend.p99, note: "99th percentile, garbage collection included" },
      { name: "entry size", unit: "bytes", value: entryBytes, note: "mean canonical JSON of the benchmark entries (what is hashed, with the 64-byte prevHash); an export line adds ~150" },
      { name: "verify 1M-entry export", unit: "s", value: verifySeconds, target: VERIFY_TARGET_S, note: `verifyExport() of ${VERIFY_ENTRIES.toLocaleString("en")} JSONL lines generated on the fly, ${checkpoints.size} signed checkpoints` },
      { name: "verify export throughput", unit: "entries/s", value: VERIFY_ENTRIES / verifySeconds, note: "the same, per second (line building and parsing included)" },
      { name: "verify objects throughput", unit: "entries/s", value: OBJECT_ENTRIES / objectSeconds, note: `verifyChain() of ${OBJECT_ENTRIES.toLocaleString("en")} entry objects (no JSON parsing: the D1 path)` },
    ];
    return figures;
  },
};

export default benchmark;
