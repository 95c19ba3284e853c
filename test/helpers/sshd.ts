import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Lab } from "../lab/index.ts";

/** A lab node's login PATH: slave's install dir first, then the usual ones. */
export const LAB_PATH = "/usr/etc/raptiformica/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
      // And IPv6: the node's mesh address (ssh between members over the mesh).
      "ListenAddress ::",
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
      // PATH: like a netns instance, a lab node shares /usr with this machine, so its login
      // environment has the install on PATH (slave then puts no launcher in /usr/local/bin).
      // One SetEnv line: OpenSSH 9 takes only the first SetEnv line of sshd_config.
      // RAPTIFORMICA_HOSTS_FILE: the node's member names in a file of its own, not this machine's /etc/hosts.
      `SetEnv ${Object.entries({ HOME: lab.nodes[i]!.home, PATH: LAB_PATH, RAPTIFORMICA_PACKAGES: "keep", RAPTIFORMICA_HOSTS_FILE: join(lab.nodes[i]!.dir, "hosts"), ...opts.env }).map(([k, v]) => `${k}=${v}`).join(" ")}`,
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
