import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Lab } from "../lab/index.ts";

/** Starts a real sshd in lab node `i` with its own host key and authorized_keys (nothing global). */
export async function startSshd(
  lab: Lab,
  i: number,
  authorizedKeys: string,
  opts: { regenerateHostKey?: boolean; env?: Record<string, string> } = {},
): Promise<{ dir: string; hostKey: string }> {
  const dir = join(lab.nodes[i]!.dir, "sshd");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const hostKey = join(dir, "ssh_host_ed25519_key");
  if (opts.regenerateHostKey) spawnSync("rm", ["-f", hostKey, `${hostKey}.pub`]);
  spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey], { input: "n\n" });
  writeFileSync(join(dir, "authorized_keys"), authorizedKeys, { mode: 0o600 });
  writeFileSync(
    join(dir, "sshd_config"),
    [
      "Port 22",
      "ListenAddress 0.0.0.0",
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "PermitRootLogin prohibit-password",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "UsePAM no",
      "StrictModes no",
      `PidFile ${join(dir, "sshd.pid")}`,
      "AllowTcpForwarding yes",
      // Sessions see this lab node's raptiformica state, as a real member's root would.
      // HOME: the lab node's, so the machine's own root dotfiles (.bashrc) stay out of the test.
      // RAPTIFORMICA_PACKAGES=keep: /usr and /etc are this machine's, so a bootstrap run over
      // this sshd installs only what is missing and never upgrades the machine's packages.
      // One SetEnv line: OpenSSH 9 takes only the first SetEnv line of sshd_config.
      `SetEnv ${Object.entries({ HOME: lab.nodes[i]!.home, RAPTIFORMICA_PACKAGES: "keep", ...opts.env }).map(([k, v]) => `${k}=${v}`).join(" ")}`,
      "",
    ].join("\n"),
  );
  lab.spawn(i, ["/usr/sbin/sshd", "-D", "-e", "-f", join(dir, "sshd_config")], { label: "sshd" });
  for (let k = 0; k < 50; k++) {
    const r = await lab.exec(i, ["ss", "-Htln", "sport = :22"]);
    if (r.stdout.trim()) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  return { dir, hostKey };
}
