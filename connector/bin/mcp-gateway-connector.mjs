#!/usr/bin/env node
// The installed command. It runs the connector's one-file build (scripts/build-connector.ts says why), which
// `npm install` makes; `npm run build:connector` makes it again after an edit to connector/ or a pull.
import { existsSync, readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

const bundle = new URL("../dist/mcp-gateway-connector.mjs", import.meta.url);
if (!existsSync(bundle)) {
  console.error("mcp-gateway-connector: connector/dist/ is missing; run `npm run build:connector` (npm install builds it) and start again");
  process.exit(1);
}
warnIfStale();
const { main } = await import(bundle.href);
process.exit(await main());

/** Says so on stderr when a source the bundle was built from changed after it: the code running is not the code on disk. */
function warnIfStale() {
  try {
    const built = statSync(bundle).mtimeMs;
    const root = fileURLToPath(new URL("../../", import.meta.url));
    const inputs = JSON.parse(readFileSync(new URL("../dist/inputs.json", import.meta.url), "utf8"));
    const newer = inputs.filter((path) => !existsSync(root + path) || statSync(root + path).mtimeMs > built);
    if (newer.length > 0) {
      console.error(`mcp-gateway-connector: warning: connector/dist/ is older than its sources (${newer.slice(0, 3).join(", ")}${newer.length > 3 ? ", …" : ""}); run \`npm run build:connector\` to run the current code`);
    }
  } catch {
    // No inputs list (an older build): nothing to compare.
  }
}
