/**
 * @module D1 set-up shared by `npm start`, `npm run provision` and the end-to-end tests: apply the migrations and
 * seed a tenant from a gateway.yaml, through wrangler's own CLI so the data lands exactly where `wrangler dev` (or
 * the deployed Worker, with `remote`) reads it.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { seedStatements, type SeedConnector } from "../src/config/seed.ts";
import type { GatewayConfig } from "../src/config/schema.ts";

export const PROJECT_ROOT = resolve(import.meta.dirname, "..");
const WRANGLER = join(PROJECT_ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

/**
 * Environment defaults for the local Worker (`wrangler dev`, `unstable_startWorker`); an operator's own value wins.
 *
 * `X_LOCAL_OBSERVABILITY`: wrangler dev attaches a tracing collector (a streaming tail worker writing to disk) to
 * every Worker and Durable Object invocation, for its local trace explorer. A gateway call is five or six such
 * invocations (the Worker, D1, RateLimiter, Connector, AuditLog), and the collector cost ≈ 4 ms of a call's p50 and
 * almost half its throughput (`npm run bench -- mcp-compare`: 14.4 → 10.3 ms, 133 → 239 calls/s). The gateway's own
 * JSON logs say what happened; set `X_LOCAL_OBSERVABILITY=true` to get wrangler's traces back.
 */
export const LOCAL_WORKER_ENV: Readonly<Record<string, string>> = { X_LOCAL_OBSERVABILITY: "false" };

/** `env` with {@link LOCAL_WORKER_ENV} under it: for a wrangler child process. */
export function withLocalWorkerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...LOCAL_WORKER_ENV, ...env };
}

/** Puts {@link LOCAL_WORKER_ENV}'s defaults into this process's environment, for wrangler run in-process. */
export function applyLocalWorkerEnv(): void {
  for (const [name, value] of Object.entries(LOCAL_WORKER_ENV)) process.env[name] ??= value;
}

/** Runs wrangler with this project's config on the current Node; rejects with its output when it fails. */
export function wrangler(args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [WRANGLER, ...args], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", fail);
    child.on("close", (code) => (code === 0 ? done(output) : fail(new Error(`wrangler ${args.join(" ")} exited ${code}:\n${output}`))));
  });
}

/** Which database: the local one (optionally in another state directory) or the deployed one. */
export type DatabaseTarget = { remote: true } | { remote?: false; persistTo?: string | undefined };

function targetArgs(target: DatabaseTarget | undefined): string[] {
  if (target?.remote) return ["--remote"];
  return ["--local", ...(target?.persistTo ? ["--persist-to", target.persistTo] : [])];
}

export async function applyMigrations(target?: DatabaseTarget): Promise<void> {
  await wrangler(["d1", "migrations", "apply", "DB", ...targetArgs(target)]);
}

/** Applies a gateway.yaml to its tenant and registers a connector; `digest` is the file text's SHA-256, if known. */
export async function seedDatabase(config: GatewayConfig, connector: SeedConnector, target?: DatabaseTarget, digest: string | null = null): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "mcp-gateway-seed-"));
  try {
    const file = join(dir, "seed.sql");
    writeFileSync(file, await seedStatements(config, connector, digest), { mode: 0o600 });
    await wrangler(["d1", "execute", "DB", "--file", file, "--yes", ...targetArgs(target)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
