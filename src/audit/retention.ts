/**
 * @module Retention of the D1 copy of a chain (pure): how far entries may be pruned so that what remains still
 * verifies. A pruned chain starts right after a checkpoint, which anchors its first entry's prevHash
 * (ChainVerifier's `start`, docs/audit-chain.md).
 */
import type { AuditCheckpoint } from "./checkpoint.ts";

/**
 * The checkpoint up to which (inclusive) entries may be deleted: the newest one signed before `cutoff` (so every
 * entry it covers is older than the cutoff) and already in D1 (`shippedSeq`), or undefined when there is none.
 * `checkpoints` may come in any order.
 */
export function pruneAnchor(checkpoints: readonly AuditCheckpoint[], shippedSeq: number, cutoff: number): AuditCheckpoint | undefined {
  let anchor: AuditCheckpoint | undefined;
  for (const checkpoint of checkpoints) {
    if (checkpoint.time >= cutoff || checkpoint.seq > shippedSeq || checkpoint.seq === 0) continue;
    if (!anchor || checkpoint.seq > anchor.seq) anchor = checkpoint;
  }
  return anchor;
}
