/**
 * @module Builds the connector daemon into one ES module, `connector/dist/mcp-gateway-connector.mjs`, which the
 * installed command (`connector/bin/mcp-gateway-connector.mjs`) runs.
 *
 * Why a bundle when Node runs our TypeScript directly: memory. The connector lives next to customers' MCP servers
 * and must idle under 80 MB (issue 8). Running the sources costs Node's type stripper (≈ 14 MiB) and a module
 * record per file; one pre-built file does not. Measured idle RSS, one server, this machine: sources ≈ 104 MiB,
 * bundle ≈ 73 MiB. It is not minified, so a stack trace in an operator's log still names our functions.
 *
 * `npm install` builds it (the `prepare` script); so do `npm start`, `npm run connector` and the test set-up, so
 * what runs and what is tested is always the current source. esbuild is therefore a dependency, not a
 * devDependency: an ops host's `npm install --omit=dev` builds the bundle too. `mcp-gateway` (the admin CLI) is not bundled: it is a
 * short-lived command, not a daemon.
 */
import { build } from "esbuild";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { PROJECT_ROOT } from "./local-gateway.ts";

export const CONNECTOR_BUNDLE = join(PROJECT_ROOT, "connector/dist/mcp-gateway-connector.mjs");
/** The project files the bundle was built from: the command warns when one is newer than the bundle. */
export const CONNECTOR_BUNDLE_INPUTS = join(PROJECT_ROOT, "connector/dist/inputs.json");

export async function buildConnector(): Promise<string> {
  const result = await build({
    entryPoints: [join(PROJECT_ROOT, "connector/main.ts")],
    outfile: CONNECTOR_BUNDLE,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    // Dependencies that still use require() (yaml's CommonJS build) need one in an ES module.
    banner: { js: 'import { createRequire as __connectorRequire } from "node:module";\nconst require = __connectorRequire(import.meta.url);' },
    logLevel: "warning",
    legalComments: "inline",
    metafile: true,
    // Written below, each file whole (a temporary name, then a rename): a connector starting during a rebuild
    // reads the old bundle or the new one, never half of one.
    write: false,
    absWorkingDir: PROJECT_ROOT,
  });
  const inputs = Object.keys(result.metafile.inputs).filter((path) => !path.startsWith("node_modules/"));
  mkdirSync(dirname(CONNECTOR_BUNDLE), { recursive: true });
  const files: [string, string | Uint8Array][] = [
    ...result.outputFiles.map((file): [string, Uint8Array] => [file.path, file.contents]),
    [CONNECTOR_BUNDLE_INPUTS, `${JSON.stringify(inputs, null, 1)}\n`],
  ];
  for (const [path, contents] of files) {
    const temporary = `${path}.${process.pid}.tmp`;
    writeFileSync(temporary, contents);
    renameSync(temporary, path);
  }
  return CONNECTOR_BUNDLE;
}

if (import.meta.main) {
  await buildConnector();
  console.log(`built ${CONNECTOR_BUNDLE}`);
}
