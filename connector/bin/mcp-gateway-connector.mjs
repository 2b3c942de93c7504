#!/usr/bin/env node
// The installed command. It runs the connector's one-file build (scripts/build-connector.ts says why), which
// `npm install` makes; `npm run build:connector` makes it again after an edit to connector/.
import { existsSync } from "node:fs";

const bundle = new URL("../dist/mcp-gateway-connector.mjs", import.meta.url);
if (!existsSync(bundle)) {
  console.error("mcp-gateway-connector: connector/dist/ is missing; run `npm run build:connector` (npm install builds it) and start again");
  process.exit(1);
}
const { main } = await import(bundle.href);
process.exit(await main());
