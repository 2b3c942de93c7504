/**
 * @module What the connector reads of gateway.yaml: the `tenant` and the `servers:` section, validated with the
 * very schema, checks and messages of the whole file (src/config/server-schema.ts, which src/config/schema.ts uses
 * too), and nothing else.
 *
 * The other sections (auth, policies, audit, …) are the edge's business: the connector neither validates nor loads
 * their schemas, whose libraries (policy globs, CIDR parsing, IBAN checks, the OAuth and JWT schemas) would cost
 * the connector about a tenth of its memory for nothing. A top-level key that no section of the whole schema
 * has is still an error, so a misspelt `servers:` cannot silently leave the connector with nothing to run.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { idSchema } from "../src/ids.ts";
import { describeIssue, hostServers, missingCommands, parseConfigYaml, serverChecks, serverConfigSchema, type ServerConfig } from "../src/config/server-schema.ts";

/**
 * The top-level keys of gateway.yaml that the connector accepts without reading them. Must be the keys of
 * src/config/schema.ts's gatewayConfigSchema other than `tenant` and `servers` (test/node/connector-config.test.ts
 * checks it).
 */
export const EDGE_SECTIONS = ["auth", "policies", "audit", "metering", "rateLimit", "ipFilter", "redaction"] as const;

const connectorConfigSchema = z.strictObject({
  tenant: idSchema.default("default"),
  servers: z.array(serverConfigSchema).default([]),
  ...Object.fromEntries(EDGE_SECTIONS.map((key) => [key, z.unknown().optional()])),
});

export type ConnectorConfig = { tenant: string; servers: ServerConfig[] };

/**
 * Parses gateway.yaml text for the connector: the tenant and the runnable servers, or every error, each naming the
 * path of the bad key exactly as the whole schema's parse does (`servers[1].timeout: ...`).
 */
export function parseConnectorConfig(text: string): { ok: true; config: ConnectorConfig } | { ok: false; errors: string[] } {
  const yaml = parseConfigYaml(text);
  if (!yaml.ok) return yaml;
  const parsed = connectorConfigSchema.safeParse(yaml.raw, { reportInput: true });
  if (!parsed.success) return { ok: false, errors: parsed.error.issues.map(describeIssue) };
  const { tenant, servers } = parsed.data;
  const errors = [...missingCommands(servers), ...serverChecks(servers)];
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, config: { tenant, servers: hostServers({ servers }) } };
}

/** Reads the servers: section of a gateway.yaml; errors name the file and the path of each bad key. */
export function readServerConfig(path: string): { ok: true; servers: ServerConfig[] } | { ok: false; errors: string[] } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    return { ok: false, errors: [`cannot read ${path}: ${(error as Error).message}`] };
  }
  const parsed = parseConnectorConfig(text);
  if (!parsed.ok) return { ok: false, errors: parsed.errors.map((e) => `${path}: ${e}`) };
  return { ok: true, servers: parsed.config.servers };
}
