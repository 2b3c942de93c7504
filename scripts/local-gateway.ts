/**
 * @module Local D1 set-up shared by `npm start` and the end-to-end tests: apply the migrations and seed a tenant
 * from a gateway.yaml, through wrangler's own CLI so the data lands exactly where `wrangler dev` reads it.
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

function persistArgs(persistTo: string | undefined): string[] {
  return persistTo ? ["--persist-to", persistTo] : [];
}

export async function applyMigrations(persistTo?: string): Promise<void> {
  await wrangler(["d1", "migrations", "apply", "DB", "--local", ...persistArgs(persistTo)]);
}

export async function seedDatabase(config: GatewayConfig, connector: SeedConnector, persistTo?: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "mcp-gateway-seed-"));
  try {
    const file = join(dir, "seed.sql");
    writeFileSync(file, await seedStatements(config, connector), { mode: 0o600 });
    await wrangler(["d1", "execute", "DB", "--local", "--file", file, ...persistArgs(persistTo)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
