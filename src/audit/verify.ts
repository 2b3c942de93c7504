/**
 * @module Streaming verification of a tenant's chain (docs/audit-chain.md). {@link ChainVerifier} takes entries one
 * at a time in seq order, checkpoints before or shortly after the entry they cover, and keeps only a small window of
 * recent hashes, so a million entries never sit in memory. It stops at the FIRST bad seq and says why; after a
 * missing seq it looks a bounded way ahead to tell a gap (the seq never comes) from a reordering (it comes late).
 * {@link verifyChain} drives it over an iterable (sync or async) of entries.
 *
 * What each check catches:
 *  - hash-mismatch: any hashed field of the entry was edited (its hash no longer matches its content);
 *  - broken-link: the entry's prevHash is not the previous entry's hash — one of the two was rewritten and its hash
 *    recomputed, or an entry of another chain was spliced in;
 *  - gap / reordered / duplicate: a seq is missing, comes late, or comes twice;
 *  - missing-tail: a signed checkpoint, or the expected head, lies beyond the last entry (tail deleted);
 *  - head-mismatch / beyond-head: the chain ends at the expected head's seq with another hash, or goes past it;
 *  - checkpoint-mismatch: a validly signed checkpoint's hash differs from the entry's at its seq (rewritten with
 *    recomputed hashes);
 *  - bad-signature: a checkpoint not signed by any of the given public keys (forged, or the wrong key);
 *  - key-mismatch: (exports) the header names a signing key other than the given one(s);
 *  - tenant-mismatch: an entry or checkpoint of another tenant;
 *  - unanchored: verification starts after seq 0 (a pruned chain or export) without a valid checkpoint at the start;
 *  - checkpoint-late: a checkpoint that arrived too long after its entry to be checked;
 *  - malformed: an entry or line that is not an entry (reported by the driver), or not canonicalisable.
 */
import { computeEntryHash, GENESIS_HEAD } from "./chain.ts";
import { type AuditCheckpoint, decodePublicKey, publicKeyId, verifyCheckpoint } from "./checkpoint.ts";
import { type AuditEntry, type ChainHead, GENESIS_HASH } from "./entry.ts";

export type ChainFailureReason =
  | "malformed"
  | "hash-mismatch"
  | "broken-link"
  | "gap"
  | "reordered"
  | "duplicate"
  | "missing-tail"
  | "head-mismatch"
  | "beyond-head"
  | "checkpoint-mismatch"
  | "checkpoint-late"
  | "bad-signature"
  | "key-mismatch"
  | "tenant-mismatch"
  | "unanchored";

export interface ChainFailure {
  /** The first bad seq; null when the failure is not about one (a malformed export header, the wrong key). */
  seq: number | null;
  reason: ChainFailureReason;
  /** One sentence for a human: what is wrong and what it means. */
  message: string;
  /** 1-based line of an export, when verifying one. */
  line?: number;
}

export interface ChainVerifyOk {
  ok: true;
  tenant: string | null;
  /** Entries verified. */
  entries: number;
  /** Checkpoints whose signature and hash were verified. */
  checkpoints: number;
  /** The seq of the first entry verified (null for none). */
  firstSeq: number | null;
  /** Where the verified chain ends ({@link ChainVerifierOptions.start} when there were no entries). */
  head: ChainHead;
  /** The latest verified checkpoint: everything up to it is protected against truncation and rewriting. */
  lastCheckpoint: ChainHead | null;
  /** Entries after the last checkpoint: intact as far as the hashes show, but their deletion would not show offline. */
  uncheckpointed: number;
}

export interface ChainVerifyFailed {
  ok: false;
  failure: ChainFailure;
  /** Entries verified before the failure. */
  entries: number;
  checkpoints: number;
}

export type ChainVerifyResult = ChainVerifyOk | ChainVerifyFailed;

export interface ChainVerifierOptions {
  /** The chain's tenant; absent = the first entry's or checkpoint's. */
  tenant?: string;
  /** The keys checkpoints may be signed with (base64url or raw 32 bytes). Any checkpoint fails without one. */
  publicKeys?: string | Uint8Array | readonly (string | Uint8Array)[];
  /**
   * Where the entries start: the first entry must be start.seq + 1 with prevHash start.hash. Default: genesis
   * (seq 0, 64 zeros). A later start (a pruned chain) must be covered by a valid checkpoint at start.seq.
   */
  start?: ChainHead;
  /** The head the chain must end at exactly (e.g. the AuditLog Durable Object's); may also be given to finish(). */
  expectedHead?: ChainHead;
  /** How many entries to read past a missing seq looking for it (gap or reordering); default 10,000. */
  lookahead?: number;
  /** How many recent hashes to keep for checkpoints that arrive after their entry; default 4,096. */
  window?: number;
}

interface KeyRef {
  bytes: Uint8Array;
  id: string;
}

interface PendingCheckpoint {
  checkpoint: AuditCheckpoint;
  /** Why it is bad regardless of the entries (signature, tenant), found on arrival and reported at its seq. */
  problem: ChainFailure | null;
  line: number | undefined;
}

const DEFAULT_LOOKAHEAD = 10_000;
const NO_LINE: { line?: number } = Object.freeze({});
/** `{line}` for a failure's spread, allocated only when a failure is recorded. */
const lineRef = (line: number | undefined): { line?: number } => (line === undefined ? NO_LINE : { line });
const DEFAULT_WINDOW = 4_096;

/** Incremental verifier: feed {@link entry} and {@link checkpoint} in stream order, then {@link finish}. */
export class ChainVerifier {
  #tenant: string | null;
  readonly #keys: KeyRef[];
  readonly #start: ChainHead;
  #expectedHead: ChainHead | null;
  readonly #lookahead: number;
  readonly #windowSize: number;
  /** Ring of recent hashes, indexed by seq % size; slot valid when #windowSeqs agrees. */
  readonly #windowHashes: string[];
  readonly #windowSeqs: Float64Array;
  #lastSeq: number;
  #lastHash: string;
  #entries = 0;
  #checkpoints = 0;
  #firstSeq: number | null = null;
  #lastCheckpoint: ChainHead | null = null;
  #anchored: boolean;
  readonly #pending = new Map<number, PendingCheckpoint[]>();
  #failure: ChainFailure | null = null;
  #settled = false;
  /** While looking ahead for a missing seq: which one, and how many more entries to read. */
  #searching: { seq: number; remaining: number; seen: number } | null = null;

  constructor(options: ChainVerifierOptions = {}) {
    this.#tenant = options.tenant ?? null;
    const keys = options.publicKeys === undefined ? [] : Array.isArray(options.publicKeys) ? options.publicKeys : [options.publicKeys as string | Uint8Array];
    this.#keys = keys.map((key) => {
      const bytes = decodePublicKey(key);
      return { bytes, id: publicKeyId(bytes) };
    });
    this.#start = options.start ?? GENESIS_HEAD;
    if (!Number.isSafeInteger(this.#start.seq) || this.#start.seq < 0) throw new TypeError("start.seq must be an integer ≥ 0");
    if (this.#start.seq === 0 && this.#start.hash !== GENESIS_HASH) throw new TypeError("a start at seq 0 is the genesis, whose hash is 64 zeros");
    this.#expectedHead = options.expectedHead ?? null;
    this.#lookahead = options.lookahead ?? DEFAULT_LOOKAHEAD;
    this.#windowSize = Math.max(1, options.window ?? DEFAULT_WINDOW);
    this.#windowHashes = new Array<string>(this.#windowSize);
    this.#windowSeqs = new Float64Array(this.#windowSize).fill(-1);
    this.#lastSeq = this.#start.seq;
    this.#lastHash = this.#start.hash;
    this.#remember(this.#lastSeq, this.#lastHash);
    this.#anchored = this.#start.seq === 0;
  }

  /** True once the outcome is known: feeding more changes nothing, and a driver may stop reading. */
  get settled(): boolean {
    return this.#settled;
  }

  /** The first failure found so far (its reason may still be refined while not {@link settled}). */
  get failure(): ChainFailure | null {
    return this.#failure;
  }

  /** Entries verified so far (for a progress bar). */
  get entries(): number {
    return this.#entries;
  }

  /** The last verified entry's seq and hash. */
  get head(): ChainHead {
    return { seq: this.#lastSeq, hash: this.#lastHash };
  }

  /** Records a failure the driver found (a line that does not parse); `seq` when it could be read. */
  malformed(message: string, line?: number, seq?: number | null): void {
    if (this.#failure) {
      this.#settled ||= this.#searching === null;
      return;
    }
    this.#fail({ seq: seq ?? null, reason: "malformed", message, ...(line === undefined ? {} : { line }) });
  }

  /**
   * Checks the next entry. Entries must come in stream order; returns false once a failure is known.
   * `contentHash`, when given, is the hash the caller computed over the exact canonical text the entry's fields were
   * read from (an export line's own text, see entryLineHash); it replaces recomputing the hash from the fields.
   * Give it only for text the fields were parsed from: it is trusted as the entry's content hash.
   */
  entry(entry: AuditEntry, line?: number, contentHash?: string): boolean {
    if (this.#settled) return false;
    if (this.#searching) {
      const search = this.#searching;
      search.seen++;
      if (entry.seq === search.seq) {
        (this.#failure as ChainFailure).reason = "reordered";
        (this.#failure as ChainFailure).message =
          `seq ${search.seq} is out of order: it comes ${search.seen} entr${search.seen === 1 ? "y" : "ies"} late, after a later seq`;
        this.#settled = true;
      } else if (--search.remaining <= 0) this.#settled = true;
      return false;
    }
    if (this.#failure) return false;
    const expected = this.#lastSeq + 1;
    const seq = entry.seq;
    if (seq !== expected) {
      if (typeof seq === "number" && seq > expected) {
        const missing = seq - 1 === expected ? `seq ${expected} is missing` : `seqs ${expected}-${seq - 1} are missing`;
        if (this.#lookahead > 0) this.#searching = { seq: expected, remaining: this.#lookahead, seen: 0 };
        this.#fail({ seq: expected, reason: "gap", message: `${missing}: seq ${seq} follows seq ${this.#lastSeq} (entries deleted)`, ...lineRef(line) });
      } else if (typeof seq === "number" && seq <= this.#lastSeq && this.#recall(seq) === entry.hash) {
        this.#fail({ seq, reason: "duplicate", message: `seq ${seq} appears twice (again after seq ${this.#lastSeq})`, ...lineRef(line) });
      } else {
        this.#fail({ seq: typeof seq === "number" ? seq : null, reason: "reordered", message: `seq ${seq} comes after seq ${this.#lastSeq}: entries are out of order, or a different entry reuses an earlier seq`, ...lineRef(line) });
      }
      return false;
    }
    if (!this.#anchored) return this.#failUnanchored(lineRef(line));
    if (this.#expectedHead && seq > this.#expectedHead.seq) {
      this.#fail({ seq, reason: "beyond-head", message: `the chain goes on past the expected head (seq ${this.#expectedHead.seq}): seq ${seq} should not exist`, ...lineRef(line) });
      return false;
    }
    if (this.#tenant === null) this.#tenant = entry.tenant;
    else if (entry.tenant !== this.#tenant) {
      this.#fail({ seq, reason: "tenant-mismatch", message: `seq ${seq} belongs to tenant ${JSON.stringify(entry.tenant)}, not ${JSON.stringify(this.#tenant)}`, ...lineRef(line) });
      return false;
    }
    let hash: string;
    try {
      hash = contentHash ?? computeEntryHash(entry);
    } catch (error) {
      this.#fail({ seq, reason: "malformed", message: `seq ${seq} cannot be canonicalised: ${(error as Error).message}`, ...lineRef(line) });
      return false;
    }
    if (hash !== entry.hash) {
      this.#fail({ seq, reason: "hash-mismatch", message: `seq ${seq} does not match its hash: a hashed field was edited after it was written`, ...lineRef(line) });
      return false;
    }
    if (entry.prevHash !== this.#lastHash) {
      this.#fail({
        seq,
        reason: "broken-link",
        message: `seq ${seq}'s prevHash is not the hash of seq ${this.#lastSeq}: one of them was rewritten with a recomputed hash, or the entry comes from another chain`,
        ...lineRef(line),
      });
      return false;
    }
    if (this.#expectedHead && seq === this.#expectedHead.seq && hash !== this.#expectedHead.hash) {
      this.#fail({ seq, reason: "head-mismatch", message: `seq ${seq} is the expected head but its hash differs: the tail was rewritten`, ...lineRef(line) });
      return false;
    }
    const pending = this.#pending.get(seq);
    if (pending) {
      this.#pending.delete(seq);
      for (const item of pending) if (!this.#settleCheckpoint(item, hash)) return false;
    }
    this.#firstSeq ??= seq;
    this.#entries++;
    this.#lastSeq = seq;
    this.#lastHash = hash;
    this.#remember(seq, hash);
    return true;
  }

  /**
   * Checks a checkpoint: its signature now, its hash against the entry at its seq — now if that entry is the last
   * one or within the window of recent hashes, otherwise when the entry arrives. Returns false once a failure is
   * known.
   */
  checkpoint(checkpoint: AuditCheckpoint, line?: number): boolean {
    if (this.#failure) {
      this.#settled ||= this.#searching === null;
      return false;
    }
    const at = line === undefined ? {} : { line };
    const seq = checkpoint.seq;
    const item: PendingCheckpoint = { checkpoint, problem: this.#checkpointProblem(checkpoint, at), line };
    if (seq > this.#lastSeq) {
      const list = this.#pending.get(seq);
      if (list) list.push(item);
      else this.#pending.set(seq, [item]);
      return true;
    }
    if (seq < this.#start.seq) {
      // Before the verified range: its signature still has to hold, its hash cannot be checked.
      if (item.problem) this.#fail(item.problem);
      return !item.problem;
    }
    const hash = this.#recall(seq);
    if (hash === undefined) {
      this.#fail({ seq, reason: "checkpoint-late", message: `the checkpoint for seq ${seq} comes after seq ${this.#lastSeq}, too late to check: checkpoints must come before, or soon after, the entry they cover`, ...at });
      return false;
    }
    return this.#settleCheckpoint(item, hash);
  }

  /** The outcome. `expectedHead` overrides the option of the same name. */
  finish(expectedHead?: ChainHead): ChainVerifyResult {
    if (expectedHead) this.#expectedHead = expectedHead;
    if (!this.#failure && !this.#anchored) this.#failUnanchored({});
    if (!this.#failure && this.#pending.size > 0) {
      const seqs = [...this.#pending.keys()].sort((a, b) => a - b);
      const signed = seqs.find((seq) => this.#pending.get(seq)?.some((item) => item.problem === null));
      const forged = seqs.flatMap((seq) => this.#pending.get(seq) ?? []).find((item) => item.problem !== null);
      if (signed !== undefined) {
        const item = this.#pending.get(signed)?.find((p) => p.problem === null) as PendingCheckpoint;
        this.#fail({
          seq: this.#lastSeq + 1,
          reason: "missing-tail",
          message: `a signed checkpoint covers seq ${signed} but the entries end at seq ${this.#lastSeq}: entries ${this.#lastSeq + 1}-${signed} were deleted`,
          ...(item.line === undefined ? {} : { line: item.line }),
        });
      } else if (forged) this.#fail(forged.problem as ChainFailure);
    }
    const head = this.#expectedHead;
    if (!this.#failure && head) {
      if (head.seq > this.#lastSeq) {
        this.#fail({ seq: this.#lastSeq + 1, reason: "missing-tail", message: `the head is seq ${head.seq} but the entries end at seq ${this.#lastSeq}: entries ${this.#lastSeq + 1}-${head.seq} are missing` });
      } else if (head.seq === this.#lastSeq && head.hash !== this.#lastHash) {
        this.#fail({ seq: head.seq, reason: "head-mismatch", message: `seq ${head.seq} is the expected head but its hash differs: the tail was rewritten` });
      } else if (head.seq < this.#lastSeq) {
        this.#fail({ seq: head.seq + 1, reason: "beyond-head", message: `the chain goes on past the expected head (seq ${head.seq}) to seq ${this.#lastSeq}` });
      }
    }
    this.#settled = true;
    if (this.#failure) return { ok: false, failure: this.#failure, entries: this.#entries, checkpoints: this.#checkpoints };
    const lastCheckpoint = this.#lastCheckpoint;
    return {
      ok: true,
      tenant: this.#tenant,
      entries: this.#entries,
      checkpoints: this.#checkpoints,
      firstSeq: this.#firstSeq,
      head: { seq: this.#lastSeq, hash: this.#lastHash },
      lastCheckpoint,
      uncheckpointed: this.#lastSeq - Math.max(lastCheckpoint?.seq ?? this.#start.seq, this.#start.seq),
    };
  }

  #fail(failure: ChainFailure): void {
    this.#failure ??= failure;
    if (this.#searching === null) this.#settled = true;
  }

  #failUnanchored(at: { line?: number }): false {
    this.#fail({
      seq: this.#start.seq,
      reason: "unanchored",
      message: `verification starts after seq ${this.#start.seq}, but no valid checkpoint at seq ${this.#start.seq} vouches for that start`,
      ...at,
    });
    return false;
  }

  #remember(seq: number, hash: string): void {
    const slot = seq % this.#windowSize;
    this.#windowSeqs[slot] = seq;
    this.#windowHashes[slot] = hash;
  }

  #recall(seq: number): string | undefined {
    const slot = seq % this.#windowSize;
    return this.#windowSeqs[slot] === seq ? this.#windowHashes[slot] : undefined;
  }

  #checkpointProblem(checkpoint: AuditCheckpoint, at: { line?: number }): ChainFailure | null {
    const seq = checkpoint.seq;
    if (this.#tenant === null) this.#tenant = checkpoint.tenant;
    else if (checkpoint.tenant !== this.#tenant) {
      return { seq, reason: "tenant-mismatch", message: `the checkpoint at seq ${seq} is tenant ${JSON.stringify(checkpoint.tenant)}'s, not ${JSON.stringify(this.#tenant)}'s`, ...at };
    }
    if (this.#keys.length === 0) {
      return { seq, reason: "bad-signature", message: `the checkpoint at seq ${seq} cannot be verified: no public key was given`, ...at };
    }
    // Try the key the checkpoint names first, then the others: the unsigned hint only orders the attempts.
    const ordered = [...this.#keys].sort((a, b) => Number(b.id === checkpoint.keyId) - Number(a.id === checkpoint.keyId));
    if (ordered.some((key) => verifyCheckpoint(checkpoint, key.bytes))) return null;
    const given = this.#keys.map((key) => key.id).join(", ");
    const named = this.#keys.some((key) => key.id === checkpoint.keyId);
    return {
      seq,
      reason: "bad-signature",
      message: named
        ? `the checkpoint at seq ${seq} has an invalid signature: it was forged or altered`
        : `the checkpoint at seq ${seq} is not signed by the given public key (${given}); it names key ${checkpoint.keyId}: wrong key, or forged`,
      ...at,
    };
  }

  /** Checks a checkpoint against the hash at its seq; false (and the failure recorded) when it does not hold. */
  #settleCheckpoint(item: PendingCheckpoint, hash: string): boolean {
    if (item.problem) {
      this.#fail(item.problem);
      return false;
    }
    const { checkpoint } = item;
    const at = item.line === undefined ? {} : { line: item.line };
    if (checkpoint.hash !== hash) {
      this.#fail({
        seq: checkpoint.seq,
        reason: "checkpoint-mismatch",
        message: `the signed checkpoint at seq ${checkpoint.seq} does not match the entry's hash: the chain up to seq ${checkpoint.seq} was rewritten (hashes recomputed)`,
        ...at,
      });
      return false;
    }
    if (checkpoint.seq === this.#start.seq) this.#anchored = true;
    this.#checkpoints++;
    if (!this.#lastCheckpoint || checkpoint.seq >= this.#lastCheckpoint.seq) this.#lastCheckpoint = { seq: checkpoint.seq, hash: checkpoint.hash };
    return true;
  }
}

export interface VerifyChainOptions extends ChainVerifierOptions {
  /** Checkpoints known up front (they are few: one per N entries); more may be fed in stream order through a ChainVerifier. */
  checkpoints?: Iterable<AuditCheckpoint>;
  /** Called every `progressEvery` entries (default 10,000) with the count so far. */
  onProgress?: (entries: number) => void;
  progressEvery?: number;
}

/**
 * Verifies a stream of entries in seq order against the given checkpoints and (optionally) the expected head.
 * Reads only as far as needed: it stops once the first failure is settled.
 */
export async function verifyChain(entries: Iterable<AuditEntry> | AsyncIterable<AuditEntry>, options: VerifyChainOptions = {}): Promise<ChainVerifyResult> {
  const verifier = new ChainVerifier(options);
  for (const checkpoint of options.checkpoints ?? []) if (!verifier.checkpoint(checkpoint)) break;
  const every = options.progressEvery ?? 10_000;
  let count = 0;
  const feed = (entry: AuditEntry): boolean => {
    verifier.entry(entry);
    if (options.onProgress && ++count % every === 0) options.onProgress(count);
    return verifier.settled;
  };
  if (!verifier.settled) {
    if (Symbol.iterator in entries) {
      for (const entry of entries) if (feed(entry)) break;
    } else {
      for await (const entry of entries) if (feed(entry)) break;
    }
  }
  return verifier.finish();
}
