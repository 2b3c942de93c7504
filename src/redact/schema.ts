/**
 * @module gateway.yaml's `redaction:` section: which personal data and secrets are rewritten, in which direction,
 * for which servers and tools, and how. Pure zod; the config loader formats paths as `redaction.rules[0].action`.
 *
 * ```yaml
 * redaction:
 *   rules:
 *     - id: patients                      # optional; default "redaction.rules[<index>]"
 *       servers: ["ehr-*"]                # globs on server ids; absent = every server of the tenant
 *       tools: ["get_patient*"]           # globs on the upstream tool or prompt name, or the resource URI; absent = all
 *       directions: [request, response]   # request | response | audit; default all three
 *       detectors: [ssn, card, email]     # scan every string with these (ssn card email phone iban ip secret)
 *       action: mask                      # for detector findings: mask | partial | hash | drop (default mask)
 *       actions: { card: partial }        # per detector
 *       fields:                           # by JSON path, whatever the value looks like
 *         - { path: patient.ssn, action: mask }
 *         - { path: "**.password", action: drop }
 *         - { path: "items[*].card", action: partial }
 *       binary: pass                      # images, audio and blobs: pass (default) or drop
 * ```
 */
import { z } from "zod";
import { idSchema } from "../ids.ts";
import { globError } from "../policy/glob.ts";
import { DETECTOR_NAMES } from "./detectors.ts";
import { parseFieldPath } from "./paths.ts";

export const REDACTION_ACTIONS = ["mask", "partial", "hash", "drop"] as const;
export type RedactionAction = (typeof REDACTION_ACTIONS)[number];
export const DIRECTIONS = ["request", "response", "audit"] as const;
export type Direction = (typeof DIRECTIONS)[number];

const glob = z.string().superRefine((pattern, ctx) => {
  const problem = globError(pattern);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

const fieldRuleSchema = z.strictObject({
  path: z.string().superRefine((path, ctx) => {
    const parsed = parseFieldPath(path);
    if (!parsed.ok) ctx.addIssue({ code: "custom", message: parsed.error });
  }),
  action: z.enum(REDACTION_ACTIONS),
});

export const redactionRuleSchema = z.strictObject({
  id: idSchema.optional(),
  servers: z.array(glob).min(1).optional(),
  tools: z.array(glob).min(1).optional(),
  directions: z.array(z.enum(DIRECTIONS)).min(1).default([...DIRECTIONS]),
  detectors: z.array(z.enum(DETECTOR_NAMES)).default([]),
  action: z.enum(REDACTION_ACTIONS).default("mask"),
  actions: z.partialRecord(z.enum(DETECTOR_NAMES), z.enum(REDACTION_ACTIONS)).default({}),
  fields: z.array(fieldRuleSchema).default([]),
  binary: z.enum(["pass", "drop"]).default("pass"),
});
export type RedactionRule = z.infer<typeof redactionRuleSchema>;

export const redactionSchema = z.strictObject({
  rules: z.array(redactionRuleSchema).default([]),
});
export type RedactionConfig = z.infer<typeof redactionSchema>;

export function defaultRedactionRuleId(index: number): string {
  return `redaction.rules[${index}]`;
}
