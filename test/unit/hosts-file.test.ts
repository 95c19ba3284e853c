import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { HOSTS_BEGIN, HOSTS_END, HostsFile, memberHostEntries, withMemberBlock } from "../../src/node/hosts-file.ts";
import type { Neighbour } from "../../src/mesh/neighbours.ts";

const n = (name: string | undefined, addr: string, extra: Partial<Neighbour> = {}): Neighbour => ({
  publicKey: addr.replace(/:/g, "").padEnd(64, "0"),
  meshAddress: addr,
  sshPort: 22,
  yggdrasilPort: 4863,
  ...(name === undefined ? {} : { name }),
  ...extra,
});
const quiet = { info() {}, warn() {}, debug() {}, error() {}, verbose: false } as never;

describe("member names in /etc/hosts", () => {
  const dir = mkdtempSync(join(tmpdir(), "rf-hosts-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("the block maps each member's name to its mesh address, sorted; nothing outside it changes", () => {
    const host = "127.0.0.1 localhost\n# mine\n10.0.0.1 db\n";
    const { entries } = memberHostEntries([n("web-2", "200::2"), n("web-1", "200::1")]);
    const out = withMemberBlock(host, entries);
    assert.equal(out, `${host}${HOSTS_BEGIN}\n200::1\tweb-1\n200::2\tweb-2\n${HOSTS_END}\n`);
    // Replaced in place, lines after it kept; removed when empty; idempotent.
    const later = `${out}10.0.0.9 added-later\n`;
    const again = withMemberBlock(later, memberHostEntries([n("web-1", "200::1")]).entries);
    assert.equal(again, `${host}${HOSTS_BEGIN}\n200::1\tweb-1\n${HOSTS_END}\n10.0.0.9 added-later\n`);
    assert.equal(withMemberBlock(again, []), `${host}10.0.0.9 added-later\n`);
    assert.equal(withMemberBlock(out, entries), out);
    assert.equal(withMemberBlock("", []), "");
  });

  it("leaves out members that left, names that are no host names (nothing from the KV breaks the file), and names two members share", () => {
    const { entries, skipped } = memberHostEntries([
      n("ok", "200::1"),
      n("gone", "200::2", { left: true }),
      n("evil\n1.2.3.4 bank", "200::3"),
      n("a b", "200::4"),
      n("twin", "200::5"),
      n("TWIN", "200::6"),
      n(undefined, "200::7"),
    ]);
    assert.deepEqual(entries, [{ address: "200::1", name: "ok" }]);
    assert.equal(skipped.length, 3);
    assert.match(skipped.join("\n"), /not a host name/);
    assert.match(skipped.join("\n"), /twin: the name of 2 members/);
  });

  it("HostsFile writes only when the block changes, keeps the file's mode, and removes its block", () => {
    const path = join(dir, "hosts");
    writeFileSync(path, "127.0.0.1 localhost\n");
    chmodSync(path, 0o640);
    const f = new HostsFile(path, quiet);
    f.sync([n("a", "200::1")]);
    assert.match(readFileSync(path, "utf8"), /200::1\ta\n/);
    assert.equal(statSync(path).mode & 0o777, 0o640);
    const mtime = statSync(path).mtimeMs;
    f.sync([n("a", "200::1")]);
    assert.equal(statSync(path).mtimeMs, mtime, "unchanged: not written");
    f.remove();
    assert.equal(readFileSync(path, "utf8"), "127.0.0.1 localhost\n");
  });

  it("a hosts file it cannot write is warned about once, and never throws", () => {
    const warnings: string[] = [];
    const log = { info() {}, debug() {}, error() {}, verbose: false, warn: (m: string) => warnings.push(m) } as never;
    const f = new HostsFile(join(dir, "no-such-dir", "hosts"), log);
    f.sync([n("a", "200::1")]);
    f.sync([n("a", "200::1")]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? "", /cannot keep member names in .*no-such-dir/);
  });
});
