// Runs one sshRun from inside a lab namespace (the "operator machine") and prints the outcome
// as JSON: { ok, stdout, stderr, exitCode } or { ok: false, error }.
import { ensureIdentity, sshRun, type SshSettings, type SshTarget } from "../../src/remote/ssh.ts";

const req = JSON.parse(process.argv[2] ?? "{}") as { settings: SshSettings; target: SshTarget; argv: string[]; ensureKeyDir?: string };
try {
  if (req.ensureKeyDir) {
    const ids = await ensureIdentity(req.ensureKeyDir, { info: (m) => process.stderr.write(`${m}\n`) });
    process.stdout.write(JSON.stringify({ ok: true, identities: ids }));
  } else {
    const out = await sshRun(req.settings, req.target, req.argv, { timeoutMs: 30_000 });
    process.stdout.write(JSON.stringify({ ok: true, ...out }));
  }
} catch (e) {
  process.stdout.write(JSON.stringify({ ok: false, error: (e as Error).message }));
}
process.exit(0);
