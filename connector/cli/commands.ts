/**
 * @module `runCli`: one `mcp-gateway` command line run to its exit code, with the process's streams, files and
 * network passed in or defaulted, so tests run it in-process. Exit codes: 0 done; 1 the gateway refused, failed or
 * could not be reached; 2 a usage error or an invalid local file.
 */
import { readFile, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import packageJson from "../../package.json" with { type: "json" };
import { API_KEY_PREFIX, generateSecret, sha256Hex } from "../../src/auth/secrets.ts";
import { parseGatewayConfig, type GatewayConfig } from "../../src/config/schema.ts";
import { sendAdminRequest } from "./admin-client.ts";
import { parseCli, type Command, type Connection, type Invocation } from "./args.ts";
import { auditExport, auditLog, auditVerifyFile, auditVerifyRemote } from "./audit.ts";
import { usageChargeback, usageStripe } from "./usage.ts";
import { STARTER_KEYS, starterConfig } from "./init-template.ts";
import { EXIT_GATEWAY, EXIT_OK, EXIT_USAGE, fileErrorReason, type CliIo } from "./io.ts";
import {
  appliedText,
  auditStatsText,
  connectorCreatedText,
  connectorsTable,
  failureLines,
  jsonOutput,
  keyCreatedText,
  keyRotatedText,
  keysTable,
  revokedText,
  serversTable,
  usageTable,
  validText,
  whoamiText,
  type ConfigSummary,
} from "./output.ts";
import { requestFor, type RemoteCommand } from "./requests.ts";
import { edgeDocument } from "../../src/config/publish.ts";

export const CLI_VERSION: string = packageJson.version;

/** The admin API's body limit; a larger file is refused here rather than uploaded to be refused. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

export { EXIT_GATEWAY, EXIT_OK, EXIT_USAGE, type CliIo } from "./io.ts";

type Env = Readonly<Record<string, string | undefined>>;

/** Runs one command line; resolves with the exit code. Expected failures are printed, never thrown. */
export async function runCli(argv: readonly string[], env: Env, io: CliIo): Promise<number> {
  const parsed = parseCli(argv, env, (io.now ?? Date.now)());
  switch (parsed.kind) {
    case "help":
      io.stdout(`${parsed.text}\n`);
      return EXIT_OK;
    case "version":
      io.stdout(`${CLI_VERSION}\n`);
      return EXIT_OK;
    case "usage":
      for (const error of parsed.errors) io.stderr(`mcp-gateway: ${error}\n`);
      io.stderr(`\n${parsed.usage}\n`);
      return EXIT_USAGE;
    case "run":
      break;
  }
  const { invocation } = parsed;
  const out = masked(io, invocation.connection?.adminKey);
  for (const warning of invocation.warnings) out.stderr(`mcp-gateway: warning: ${warning}\n`);
  return execute(invocation, out);
}

/**
 * Every line the CLI prints passes here: the admin key never reaches a terminal or a log, whatever echoes it.
 * (`audit export` data is the one exception: it is written byte for byte, since any change would break its hashes.)
 */
function masked(io: CliIo, adminKey: string | undefined): CliIo {
  if (adminKey === undefined || adminKey.length < 8) return io;
  const mask = (text: string) => text.split(adminKey).join("[admin key]");
  return { ...io, stdout: (text) => io.stdout(mask(text)), stderr: (text) => io.stderr(mask(text)) };
}

async function execute(invocation: Invocation, io: CliIo): Promise<number> {
  const { command, json } = invocation;
  const fail = (lines: readonly string[], code: number) => {
    for (const line of lines) io.stderr(`mcp-gateway: ${line}\n`);
    return code;
  };
  const print = (text: string) => io.stdout(`${text}\n`);

  switch (command.kind) {
    case "init":
      return init(command, json, io, fail, print);
    case "config validate": {
      const config = await readConfig(command.file, io);
      if (!config.ok) return fail(config.errors, EXIT_USAGE);
      const summary = summarise(config.config);
      print(json ? jsonOutput({ ok: true, tenant: summary.tenant, summary: { keys: summary.keys, policies: summary.policies, servers: summary.servers } }) : validText(command.file, summary));
      return EXIT_OK;
    }
    case "audit verify":
      if (command.offline) return auditVerifyFile(command.offline, { io, json, fail, print });
      break;
    default:
      break;
  }

  const connection = invocation.connection as Connection;
  switch (command.kind) {
    case "audit log":
      return auditLog(command, connection, { io, json, fail, print });
    case "audit verify":
      return auditVerifyRemote(command, connection, { io, json, fail, print });
    case "audit export":
      return auditExport(command, connection, { io, json, fail, print });
    case "usage chargeback":
      return usageChargeback(command, connection, { io, json, fail, print });
    case "usage stripe":
      return usageStripe(command, connection, { io, json, fail, print });
    default:
      break;
  }
  let edgeText: string | undefined;
  if (command.kind === "config apply") {
    const config = await readConfig(command.file, io);
    if (!config.ok) return fail(config.errors, EXIT_USAGE);
    if (connection.tenant !== undefined && connection.tenant !== config.config.tenant) {
      return fail(
        [`${command.file} describes tenant ${config.config.tenant}, not ${connection.tenant} (from --tenant or MCP_GATEWAY_TENANT): the file's tenant: is the one applied`],
        EXIT_USAGE,
      );
    }
    // Only what the edge needs travels: no server command, args, env or cwd, and keys as digests.
    edgeText = JSON.stringify(await edgeDocument(config.config));
  }

  const result = await sendAdminRequest(connection, requestFor(command, edgeText), {
    ...(io.timeoutMs !== undefined ? { timeoutMs: io.timeoutMs } : {}),
    ...(io.fetch ? { fetch: io.fetch } : {}),
  });
  if (!result.ok) return fail(failureLines(result.failure, command.kind === "config apply" ? command.file : undefined), EXIT_GATEWAY);
  if (json) {
    print(jsonOutput(result.body));
    return EXIT_OK;
  }
  print(humanResult(command, result.body, connection, (io.now ?? Date.now)()));
  return EXIT_OK;
}

function humanResult(command: RemoteCommand, body: unknown, connection: Connection, now: number): string {
  switch (command.kind) {
    case "config apply":
      return appliedText(command.file, body);
    case "whoami":
      return whoamiText(body);
    case "keys list":
      return keysTable(body, now);
    case "keys create":
      return keyCreatedText(body);
    case "keys revoke":
      return revokedText("key", body);
    case "keys rotate":
      return keyRotatedText(body);
    case "servers list":
      return serversTable(body);
    case "connectors list":
      return connectorsTable(body);
    case "connectors create":
      return connectorCreatedText(body, connection.url);
    case "connectors revoke":
      return revokedText("connector", body);
    case "audit stats":
      return auditStatsText(body);
    case "usage":
      return usageTable(body);
    case "audit verify":
    case "audit export":
    case "usage chargeback":
    case "usage stripe":
      // Handled by audit.ts and usage.ts before any plain request is sent.
      return jsonOutput(body);
  }
}

function summarise(config: GatewayConfig): ConfigSummary {
  return { tenant: config.tenant, keys: config.auth.keys.length, policies: config.policies.length, servers: config.servers.length };
}

type ReadConfig = { ok: true; text: string; config: GatewayConfig } | { ok: false; errors: string[] };

/** Reads and validates a gateway.yaml; every error is named after the file (and the path of the bad key). */
async function readConfig(file: string, io: CliIo): Promise<ReadConfig> {
  let text: string;
  try {
    text = await readFile(resolve(io.cwd ?? process.cwd(), file), "utf8");
  } catch (error) {
    return { ok: false, errors: [`cannot read ${file}: ${fileErrorReason(error)}`] };
  }
  if (Buffer.byteLength(text, "utf8") > MAX_CONFIG_BYTES) {
    return { ok: false, errors: [`${file}: larger than the gateway accepts (1 MiB)`] };
  }
  const parsed = parseGatewayConfig(text);
  if (!parsed.ok) return { ok: false, errors: parsed.errors.map((e) => `${file}: ${e}`) };
  return { ok: true, text, config: parsed.config };
}

async function init(
  command: Extract<Command, { kind: "init" }>,
  json: boolean,
  io: CliIo,
  fail: (lines: readonly string[], code: number) => number,
  print: (text: string) => void,
): Promise<number> {
  const agentKey = generateSecret(API_KEY_PREFIX);
  const adminKey = generateSecret(API_KEY_PREFIX);
  const text = starterConfig(command.tenant, { agent: await sha256Hex(agentKey), admin: await sha256Hex(adminKey) });
  // The template is ours, so only what was typed into it (the tenant) can make it invalid.
  const parsed = parseGatewayConfig(text);
  if (!parsed.ok) return fail(parsed.errors.map((e) => `cannot write ${command.file}: ${e}`), EXIT_USAGE);
  try {
    // "wx" refuses an existing file in the same system call that creates it: no window to lose a file in.
    await writeFile(resolve(io.cwd ?? process.cwd(), command.file), text, { flag: command.force ? "w" : "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      return fail([`${command.file} exists; pass --force to replace it (its keys stop working once a new file is applied)`], EXIT_USAGE);
    }
    return fail([`cannot write ${command.file}: ${fileErrorReason(error)}`], EXIT_USAGE);
  }

  const keys = [
    { ...STARTER_KEYS.agent, key: agentKey },
    { ...STARTER_KEYS.admin, key: adminKey },
  ];
  if (json) {
    print(jsonOutput({ file: command.file, tenant: command.tenant, keys }));
    return EXIT_OK;
  }
  const describe = (k: (typeof keys)[number], what: string) =>
    `${what} (id ${k.id}, consumer ${k.consumerId}, roles ${k.roles.join(", ")}):\n\n    ${k.key}\n`;
  print(`wrote ${command.file} for tenant ${command.tenant}

${describe(keys[0]!, "agent API key")}
${describe(keys[1]!, "admin key")}
Store both now: they are shown only once and cannot be shown again; ${command.file} holds only their SHA-256 digests.

Next:
  1. edit ${command.file} (servers, policies), then: mcp-gateway config validate ${command.file}
  2. the first apply creates the tenant, with the platform admin token:
       MCP_GATEWAY_ADMIN_KEY=<platform admin token> mcp-gateway config apply ${command.file}
     from then on the admin key above administers it: export MCP_GATEWAY_ADMIN_KEY=<admin key>
  3. mcp-gateway connectors create edge-1, and run the connector as it says`);
  return EXIT_OK;
}
