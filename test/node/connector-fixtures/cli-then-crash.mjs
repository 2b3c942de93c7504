// Runs the real CLI (main) in this process, then — on SIGUSR2 from the test — crashes the process the way a bug in
// the connector would: an uncaught exception (argv[2] = "throw") or an unhandled rejection ("reject"). The CLI's
// handlers must log connector_crashed, kill every child's process group and exit 1.
import { main } from "../../../connector/main.ts";

const mode = process.argv[2];
process.on("SIGUSR2", () => {
  // The token in the message: the crash log must mask it.
  if (mode === "throw") throw new Error(`injected crash holding ${process.env.MCP_GATEWAY_CONNECTOR_TOKEN}`);
  void Promise.reject(new Error("injected rejection"));
});
process.exit(await main(process.argv.slice(3)));
