import { REMOTE_CACHE_DIR } from "../../remote/settings.ts";
import { describeTarget, sshRun, type SshSettings, type SshTarget } from "../../remote/ssh.ts";
import { pushFile } from "../../remote/transfer.ts";
import type { Outcome } from "../../util/exec.ts";

/**
 * How the operator reaches one machine's raptiformica: run its CLI, write a file into its cache
 * dir. `slave` uses SSH ({@link SshNodeChannel}); the lab's cluster helpers use `ip netns exec`
 * with the same assimilate code (ops/assimilate.ts), so both take one path into the cluster.
 */
export interface NodeChannel {
  /** The machine as errors name it, e.g. `root@192.0.2.7:22` or a lab node's name. */
  readonly who: string;
  /**
   * Runs `raptiformica ARGV` there (argv, never a shell string) and resolves with its outcome
   * whatever the exit code; a command that has not ended after `timeoutMs` is killed
   * (`timedOut`). Rejects only when the machine cannot be reached at all (a UserError naming it).
   */
  run(argv: readonly string[], timeoutMs: number): Promise<Outcome>;
  /**
   * Writes `content` to `name` (a path relative to raptiformica's cache dir there, e.g.
   * `mutable_config.json`) atomically (temp file + rename), mode 0600. With `onlyIfAbsent` an
   * existing file is kept. Resolves true when it wrote, false when it kept one; throws a
   * UserError naming the machine and file when it cannot write.
   */
  writeCacheFile(name: string, content: string, opts?: { onlyIfAbsent?: boolean }): Promise<boolean>;
}

/** A member (or a machine being slaved) over root SSH: `launcher` is raptiformica's remote command. */
export class SshNodeChannel implements NodeChannel {
  constructor(
    private readonly settings: SshSettings,
    readonly target: SshTarget,
    private readonly launcher: string,
  ) {}

  get who(): string {
    return describeTarget(this.target);
  }

  run(argv: readonly string[], timeoutMs: number): Promise<Outcome> {
    return sshRun(this.settings, this.target, [this.launcher, ...argv], { timeoutMs });
  }

  writeCacheFile(name: string, content: string, opts: { onlyIfAbsent?: boolean } = {}): Promise<boolean> {
    return pushFile(this.settings, this.target, `${REMOTE_CACHE_DIR}/${name}`, content, opts);
  }
}
