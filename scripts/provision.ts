/**
 * `npm run provision -- [--remote | --state DIR] [--connector ID] [--config FILE]`: make a gateway.yaml's tenant, consumers and
 * API keys true in D1 (the deployed database with --remote, else the local one) and register a connector with a
 * freshly generated token, which is printed once and stored only as its SHA-256 digest.
 *
 * Bootstraps a tenant before anyone holds an admin key (afterwards: `mcp-gateway config apply` and the admin API):
 * it applies the file with the admin API's own statements (src/config/apply.ts), through wrangler.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { CONNECTOR_TOKEN_PREFIX, generateSecret, sha256Hex } from "../src/auth/secrets.ts";
import { parseGatewayConfig } from "../src/config/schema.ts";
import { SERVER_ID_PATTERN } from "../src/link/protocol.ts";
import { applyMigrations, seedDatabase } from "./local-gateway.ts";

const { values } = parseArgs({
  options: {
    remote: { type: "boolean", default: false },
    /** Local state directory (as `wrangler --persist-to`); default wrangler's .wrangler/state. */
    state: { type: "string" },
    connector: { type: "string", default: "default" },
    config: { type: "string", default: process.env.MCP_GATEWAY_CONFIG ?? "gateway.yaml" },
  },
});

const connectorId = values.connector as string;
if (!SERVER_ID_PATTERN.test(connectorId)) {
  process.stderr.write(`--connector: "${connectorId}" must be 1-64 characters of A-Z a-z 0-9 _ . -\n`);
  process.exit(2);
}
const parsed = parseGatewayConfig(readFileSync(resolve(values.config as string), "utf8"));
if (!parsed.ok) {
  process.stderr.write(`${values.config} is not valid:\n${parsed.errors.map((e) => `  - ${e}`).join("\n")}\n`);
  process.exit(2);
}

const target = values.remote ? ({ remote: true } as const) : { persistTo: values.state ? resolve(values.state) : undefined };
const token = generateSecret(CONNECTOR_TOKEN_PREFIX);
await applyMigrations(target);
await seedDatabase(parsed.config, { id: connectorId, name: connectorId, tokenHash: await sha256Hex(token) }, target);

const where = values.remote ? "the deployed D1 database" : "the local D1 database";
process.stdout.write(
  `Tenant "${parsed.config.tenant}" with ${parsed.config.auth.keys.length} API key(s) and connector "${connectorId}" are in ${where}.\n` +
    "The connector's token (shown once; only its SHA-256 digest is stored — run this again to replace it):\n" +
    `${token}\n`,
);
