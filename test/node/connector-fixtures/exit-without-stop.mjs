// Starts a connector as a library with the fake server, has the server spawn a grandchild, prints
// {"leader":…, "grandchild":…} on stdout and calls process.exit(0) without stop(): startConnector's exit hook must
// kill both (they are in their own process group, detached from this process).
import { fileURLToPath } from "node:url";
import { startConnector } from "../../../connector/main.ts";

const FAKE = fileURLToPath(new URL("./fake-mcp-server.mjs", import.meta.url));
const handle = startConnector({
  servers: [{ id: "fake", command: process.execPath, args: [FAKE], env: {}, enabled: true, timeout: 10_000 }],
  url: "http://127.0.0.1:9", // nothing listens: the link keeps redialling, the servers run regardless
  token: "unused",
  hostEnv: { PATH: process.env.PATH },
  log: () => {},
  reconnect: { initialMs: 60_000, maxMs: 60_000, jitter: 0 },
});
while (handle.supervisor.report("fake")?.health !== "healthy") await new Promise((r) => setTimeout(r, 20));
const outcome = await handle.supervisor.relay("fake", "gc", { method: "tools/call", params: { name: "spawn-grandchild" } }, () => {});
const grandchild = Number(outcome.result.content[0].text);
process.stdout.write(`${JSON.stringify({ leader: handle.supervisor.pid("fake"), grandchild })}\n`, () => process.exit(0));
