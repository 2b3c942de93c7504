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
