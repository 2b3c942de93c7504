/**
 * `npm start`: the whole local stack on one machine.
 *
 *   1. gateway.yaml: used when present, else created from gateway.example.yaml with a fresh demo API key and admin
 *      key, which are printed once and stored only as their SHA-256 digests.
 *   2. Local D1: migrations applied, the file applied to its tenant (keys, policies), and a fresh connector token registered
 *      (hashed) for this run; the token itself goes to the connector through its environment only.
 *   3. `wrangler dev` (workerd, local D1 and Durable Objects) on 127.0.0.1:$PORT (default 8787).
 *   4. The connector, running the file's servers and dialling out to the gateway.
 *
 * Environment: PORT (default 8787), MCP_GATEWAY_CONFIG (default ./gateway.yaml), MCP_GATEWAY_STATE (where local D1
 * and Durable Objects persist; default wrangler's .wrangler/state).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { API_KEY_PREFIX, CONNECTOR_TOKEN_PREFIX, generateSecret, sha256Hex } from "../src/auth/secrets.ts";
import { parseGatewayConfig } from "../src/config/schema.ts";
import { generateCheckpointKeys, publicKeyFromPrivate, publicKeyId } from "../src/audit/checkpoint.ts";
import { applyMigrations, PROJECT_ROOT, seedDatabase, withLocalWorkerEnv } from "./local-gateway.ts";
import { buildConnector } from "./build-connector.ts";

const port = Number(process.env.PORT ?? 8787);
const configPath = resolve(process.env.MCP_GATEWAY_CONFIG ?? join(PROJECT_ROOT, "gateway.yaml"));
const statePath = process.env.MCP_GATEWAY_STATE ? resolve(process.env.MCP_GATEWAY_STATE) : undefined;
const gatewayUrl = `http://127.0.0.1:${port}`;
const children: ChildProcess[] = [];

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Creates gateway.yaml with a fresh demo key and admin key (their digests only); returns the keys, once. */
async function ensureConfig(): Promise<{ demo: string; admin: string } | undefined> {
  if (existsSync(configPath)) return undefined;
  const demo = generateSecret(API_KEY_PREFIX);
  const admin = generateSecret(API_KEY_PREFIX);
  const example = readFileSync(join(PROJECT_ROOT, "gateway.example.yaml"), "utf8");
  const text = example.replace("__DEMO_KEY_HASH__", await sha256Hex(demo)).replace("__ADMIN_KEY_HASH__", await sha256Hex(admin));
  writeFileSync(configPath, text, { mode: 0o600 });
  return { demo, admin };
}

/**
 * The local gateway's secrets, made once and kept in .mcp-gateway/dev-secrets.env (mode 600, gitignored) so audit
 * checkpoints stay verifiable across restarts. Returns the env file and the checkpoint public key.
 */
function ensureDevSecrets(): { file: string; publicKey: string; keyId: string } {
  const dir = join(PROJECT_ROOT, ".mcp-gateway");
  const file = join(dir, "dev-secrets.env");
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(file, `# Made by npm start for the local gateway only. Never use these in production.\nAUDIT_SIGNING_KEY=${generateCheckpointKeys().privateKey}\n`, { mode: 0o600 });
  }
  const privateKey = /^AUDIT_SIGNING_KEY=(.+)$/m.exec(readFileSync(file, "utf8"))?.[1]?.trim() ?? "";
  const publicKey = publicKeyFromPrivate(privateKey);
  return { file, publicKey, keyId: publicKeyId(publicKey) };
}

async function waitForGateway(wrangler: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (wrangler.exitCode !== null) throw new Error(`wrangler dev exited with code ${wrangler.exitCode}`);
    try {
      if ((await fetch(`${gatewayUrl}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the gateway did not answer on ${gatewayUrl} within 60 s`);
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(command, args, { cwd: PROJECT_ROOT, env, stdio: ["ignore", "inherit", "inherit"] });
  children.push(child);
  return child;
}

function stopAll(signal: NodeJS.Signals): void {
  for (const child of children) if (child.exitCode === null) child.kill(signal);
}

async function main(): Promise<void> {
  const newKeys = await ensureConfig();
  const configText = readFileSync(configPath, "utf8");
  const parsed = parseGatewayConfig(configText);
  if (!parsed.ok) {
    process.stderr.write(`gateway.yaml is not valid:\n${parsed.errors.map((e) => `  - ${e}`).join("\n")}\n`);
    process.exit(2);
  }
  const config = parsed.config;

  say("mcp-gateway: applying D1 migrations and seeding the local database…");
  await applyMigrations({ persistTo: statePath });
  const connectorToken = generateSecret(CONNECTOR_TOKEN_PREFIX);
  const connector = { id: "local", name: "local connector", tokenHash: await sha256Hex(connectorToken) };
  await seedDatabase(config, connector, { persistTo: statePath }, await sha256Hex(configText));

  const secrets = ensureDevSecrets();
  const devVars = join(PROJECT_ROOT, ".dev.vars");
  const wrangler = run(
    process.execPath,
    [join(PROJECT_ROOT, "node_modules/wrangler/bin/wrangler.js"), "dev", "--ip", "127.0.0.1", "--port", String(port),
      "--var", "ALLOWED_HOSTS:localhost,127.0.0.1", "--show-interactive-dev-session=false",
      // Secrets through files, never the command line; the operator's own .dev.vars, if any, wins.
      "--env-file", secrets.file, ...(existsSync(devVars) ? ["--env-file", devVars] : []),
      ...(statePath ? ["--persist-to", statePath] : [])],
    withLocalWorkerEnv({ ...process.env, WRANGLER_SEND_METRICS: "false" }),
  );
  await waitForGateway(wrangler);

  await buildConnector();
  const connectorProcess = run(process.execPath, [join(PROJECT_ROOT, "connector/bin/mcp-gateway-connector.mjs"), "--config", configPath, "--url", gatewayUrl], {
    ...process.env,
    MCP_GATEWAY_CONNECTOR_TOKEN: connectorToken,
  });

  say("");
  say(`mcp-gateway is running. MCP endpoint: ${gatewayUrl}/mcp  (tenant "${config.tenant}", ${config.servers.length} server(s))`);
  if (newKeys) {
    say("Your demo API key (shown once; gateway.yaml keeps only its SHA-256 digest):");
    say(newKeys.demo);
    say("Your admin key, for the mcp-gateway CLI and /admin/v1 (shown once too):");
    say(newKeys.admin);
  } else {
    say("Using the existing gateway.yaml; its API keys were shown when they were created (delete gateway.yaml for new demo keys).");
  }
  say(`Audit checkpoints are signed with key ${secrets.keyId}; verify an export offline with: npx mcp-gateway audit verify --file FILE --public-key=${secrets.publicKey}`);
  say(`Try: npx @modelcontextprotocol/inspector --cli ${gatewayUrl}/mcp --header "Authorization: Bearer <key>" --method tools/list`);
  say(`     MCP_GATEWAY_URL=${gatewayUrl} MCP_GATEWAY_ADMIN_KEY=<admin key> npx mcp-gateway servers list`);
  say("Ctrl-C stops everything.");
  say("");

  for (const child of [wrangler, connectorProcess]) {
    child.on("exit", (code) => {
      if (shuttingDown) return;
      process.stderr.write(`mcp-gateway: a process exited (code ${code}); stopping the stack\n`);
      shutdown("SIGTERM");
    });
  }
}

let shuttingDown = false;
function shutdown(signal: NodeJS.Signals): void {
  if (shuttingDown) return;
  shuttingDown = true;
  stopAll(signal === "SIGINT" ? "SIGTERM" : signal);
  // The connector drains in-flight calls (up to its grace period) before it exits.
  setTimeout(() => process.exit(0), 12_000).unref();
  Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.on("exit", r)) : undefined))).then(() => process.exit(0));
}
process.on("SIGINT", () => shutdown("SIGINT"));
process.on("SIGTERM", () => shutdown("SIGTERM"));

main().catch((error: unknown) => {
  process.stderr.write(`mcp-gateway: ${error instanceof Error ? error.message : String(error)}\n`);
  stopAll("SIGTERM");
  process.exit(1);
});
