/**
 * @module MCP's stdio transport around one child process, written for the connector rather than taken from the
 * SDK's StdioClientTransport because the connector needs three things that one does not give:
 * - the child leads its own process group (`detached`), so stopping it also stops whatever it spawned (an `npx`
 *   wrapper's real server, a shell's children);
 * - every message goes, in arrival order and unvalidated, to one handler (the session), so a progress notification
 *   that arrives in the same read as the final response is never dropped or reordered;
 * - an oversized message fails one call (see stdio-framing.ts) instead of tearing the stream down.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { LineFramer } from "./stdio-framing.ts";

export type ChildExit = { code: number | null; signal: string | null };

export type ChildTransportOptions = {
  command: string;
  args: readonly string[];
  env: Record<string, string>;
  cwd?: string | undefined;
  maxMessageBytes: number;
  /** Every message the child writes (a JSON object on one line), in order. */
  onMessage: (message: Record<string, unknown>) => void;
  /** A line above maxMessageBytes was skipped. */
  onOversized: (bytes: number, id: string | number | undefined) => void;
  /** A stdout line that is not JSON-RPC (servers that print banners to stdout). */
  onStrayOutput: (bytes: number) => void;
  onStderr: (text: string) => void;
  /** The child is gone: called once, after its buffered output has been delivered. */
  onExit: (exit: ChildExit) => void;
};

/** Group signals cannot be sent on Windows, which has no process groups. */
const USE_PROCESS_GROUP = process.platform !== "win32";
/** After the leader exits, how long to wait for its stdout to drain before declaring it gone. */
const OUTPUT_DRAIN_MS = 100;

export class ChildProcessTransport {
  readonly #options: ChildTransportOptions;
  #child: ChildProcess | undefined;
  #exit: ChildExit | undefined;
  readonly #exited: Promise<ChildExit>;
  #resolveExited!: (exit: ChildExit) => void;

  constructor(options: ChildTransportOptions) {
    this.#options = options;
    this.#exited = new Promise((resolve) => (this.#resolveExited = resolve));
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Resolves once the child has exited (never rejects). */
  get exited(): Promise<ChildExit> {
    return this.#exited;
  }

  /** Spawns the child; rejects when it cannot be started (command not found, not executable, bad cwd). */
  start(): Promise<void> {
    if (this.#child) throw new Error("ChildProcessTransport already started");
    const { command, args, env, cwd, maxMessageBytes } = this.#options;
    const child = spawn(command, [...args], {
      env,
      cwd,
      stdio: ["pipe", "pipe", "pipe"],
      detached: USE_PROCESS_GROUP,
      windowsHide: true,
      // Never through a shell: arguments are passed as given, never re-parsed.
      shell: false,
    });
    this.#child = child;
    const framer = new LineFramer(maxMessageBytes);
    child.stdout.on("data", (chunk: Buffer) => {
      for (const line of framer.push(chunk)) {
        if (line.kind === "oversized") this.#options.onOversized(line.bytes, line.id);
        else this.#deliver(line.text);
      }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (text: string) => this.#options.onStderr(text));
    // Writing to a child that just died raises EPIPE here; its exit is reported through onExit.
    child.stdin.on("error", () => {});

    return new Promise((resolve, reject) => {
      child.once("spawn", () => {
        child.once("exit", (code, signal) => this.#handleExit(child, { code, signal }));
        resolve();
      });
      child.once("error", (error) => {
        // Only a failure to spawn rejects start(); a later one (a failed kill) changes nothing the exit does not report.
        if (child.pid === undefined) {
          this.#finish({ code: null, signal: null });
          reject(error);
        }
      });
    });
  }

  /** Writes one JSON-RPC message as a line (JSON.stringify never emits a raw newline). */
  send(message: Record<string, unknown>): Promise<void> {
    const stdin = this.#child?.stdin;
    if (!stdin || this.#exit || !stdin.writable) return Promise.reject(new Error("the server process is not running"));
    return new Promise((resolve, reject) => {
      stdin.write(`${JSON.stringify(message)}\n`, (error) => (error ? reject(error) : resolve()));
    });
  }

  /**
   * Stops the child and everything in its process group: stdin closed and SIGTERM to the group, SIGKILL to the
   * group after `graceMs` — and once the leader is gone, SIGKILL to the group regardless, so that no grandchild
   * outlives it.
   */
  async terminate(graceMs: number): Promise<void> {
    const child = this.#child;
    if (!child || child.pid === undefined) return;
    if (!this.#exit) {
      child.stdin?.end();
      this.#signal("SIGTERM");
      const timer = setTimeout(() => this.#signal("SIGKILL"), graceMs);
      await this.#exited;
      clearTimeout(timer);
    }
    this.#signal("SIGKILL");
  }

  /**
   * SIGKILLs the child's process group at once, synchronously, without waiting for anything: for a connector that is
   * exiting (an exit hook cannot await). Harmless when the group is already gone.
   */
  killSync(): void {
    this.#signal("SIGKILL");
  }

  #deliver(line: string): void {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.#options.onStrayOutput(Buffer.byteLength(line));
      return;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      this.#options.onStrayOutput(Buffer.byteLength(line));
      return;
    }
    this.#options.onMessage(value as Record<string, unknown>);
  }

  #handleExit(child: ChildProcess, exit: ChildExit): void {
    // 'exit' can come before the last stdout data: wait for the pipes to close, but not for long — a grandchild
    // holding the pipe open must not delay failing the pending calls.
    const timer = setTimeout(() => this.#finish(exit), OUTPUT_DRAIN_MS);
    child.once("close", () => {
      clearTimeout(timer);
      this.#finish(exit);
    });
  }

  #finish(exit: ChildExit): void {
    if (this.#exit) return;
    this.#exit = exit;
    // Orphans of a dead server are of no use to anyone.
    if (this.#child?.pid !== undefined) this.#signal("SIGTERM");
    this.#options.onExit(exit);
    this.#resolveExited(exit);
  }

  #signal(signal: NodeJS.Signals): void {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    try {
      if (USE_PROCESS_GROUP) process.kill(-pid, signal);
      else this.#child?.kill(signal);
    } catch {
      // ESRCH: the group is already gone.
    }
  }
}
