// Vitest global set-up of the node and e2e projects: builds the connector's bundle from the current source, so the
// suites that start the installed command (connector/bin/mcp-gateway-connector.mjs) test what this tree would ship.
import { buildConnector } from "../scripts/build-connector.ts";

export default async function setup(): Promise<void> {
  await buildConnector();
}
