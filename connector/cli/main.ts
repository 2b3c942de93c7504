/**
 * @module `mcp-gateway`, the admin CLI: the process shell around {@link runCli} (argv, env, stdout/stderr, exit).
 */
import { pathToFileURL } from "node:url";
import { runCli } from "./commands.ts";

export { runCli, type CliIo } from "./commands.ts";

export function main(argv: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  // A reader that goes away (`mcp-gateway audit export | head`) fails the write (EPIPE) rather than the process.
  process.stdout.on("error", () => {});
  return runCli(argv, env, {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stdoutBytes: (chunk) => new Promise<void>((resolve, reject) => process.stdout.write(chunk, (error) => (error ? reject(error) : resolve()))),
    interactive: process.stderr.isTTY === true,
  });
}

// `node connector/cli/main.ts` (npm run cli).
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
