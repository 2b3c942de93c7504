/**
 * @module What a CLI run is given (its streams, files and network, passed in so tests run it in-process) and its
 * exit codes: 0 done; 1 the gateway refused, failed or could not be reached (or an audit chain does not verify);
 * 2 a usage error or a local file that is invalid, unreadable or unwritable.
 */

export const EXIT_OK = 0;
export const EXIT_GATEWAY = 1;
export const EXIT_USAGE = 2;

export type CliIo = {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Relative FILE arguments are resolved against it; process.cwd() by default. */
  cwd?: string;
  /** Per request; 30 s by default. For streamed answers: how long the headers may take, and the longest silence. */
  timeoutMs?: number;
  fetch?: typeof fetch;
  now?: () => number;
  /** stderr is a terminal: long commands (audit verify, export) draw a progress bar on it. Default: no progress. */
  interactive?: boolean;
  /**
   * Raw bytes for stdout (`audit export` without --out), resolved once written, so a slow reader slows the download
   * instead of filling memory. Default: decoded as UTF-8 and passed to {@link stdout}.
   */
  stdoutBytes?(chunk: Uint8Array): Promise<void> | void;
};

/** What a failed file operation means, in words. */
export function fileErrorReason(error: unknown): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case "ENOENT":
      return "no such file or directory";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "it is a directory";
    case "EPIPE":
      return "its reader closed it before the end";
    case "ENOSPC":
      return "no space left on the device";
    default:
      return (error as Error).message;
  }
}
