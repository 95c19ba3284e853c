import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import type { FlatMapping } from "../../src/config/flatten.ts";
import { neighbourMapping, neighbourPrefix, parseNeighbours, withNeighbour, withRegisteredNeighbour } from "../../src/mesh/neighbours.ts";
import { addressForKey } from "../../src/mesh/yggdrasil/address.ts";
import { requireClusterMajor, selfEntry, selfRecord, type SelfFacts } from "../../src/node/self.ts";

const key = (i: number) => i.toString(16).padStart(64, "0");
const self: SelfFacts = {
  identity: { privateKey: "", publicKey: key(1), address: addressForKey(key(1)) },
  info: { binary: "yggdrasil", major: "0.5", version: "0.5.12" },
  yggdrasilPort: 4863,
  name: "n1",
};
const p = neighbourPrefix(key(1));

describe("a node's own neighbour entry (selfEntry)", () => {
  it("a new node: identity, port, major and name from itself, host and SSH port from advertise", () => {
    const { entry, changed } = selfEntry({}, self, { host: "198.18.0.1", port: 2222 });
    assert.equal(changed, true);
    assert.deepEqual(neighbourMapping(entry), {
      [`${p}public_key`]: key(1),
      [`${p}mesh_address`]: self.identity.address,
      [`${p}ssh_port`]: "2222",
      [`${p}yggdrasil_port`]: "4863",
      [`${p}host`]: "198.18.0.1",
      [`${p}yggdrasil_major`]: "0.5",
      [`${p}name`]: "n1",
    });
  });

  it("keeps the host it was registered under when nothing was advertised, and its instance id; never left", () => {
    const registered = withRegisteredNeighbour({}, { publicKey: key(1), host: "203.0.113.9", sshPort: 22, yggdrasilPort: 4863 });
    registered[`${p}uuid`] = "i-1";
    registered[`${p}left`] = "true";
    const { entry, changed } = selfEntry(registered, self, undefined);
    assert.equal(changed, true);
    assert.equal(entry.host, "203.0.113.9");
    assert.equal(entry.sshPort, 22);
    assert.equal(entry.uuid, "i-1");
    assert.equal(entry.left, undefined);
  });

  it("is unchanged once written, so the agent does not write it again every tick", () => {
    const advertised = { host: "198.18.0.1", port: 22 };
    const written = withNeighbour({}, selfEntry({}, self, advertised).entry);
    assert.equal(selfEntry(written, self, advertised).changed, false);
    assert.equal(selfEntry(written, { ...self, yggdrasilPort: 4864 }, advertised).changed, true);
    assert.equal(selfEntry(written, self, { host: "198.18.0.2", port: 22 }).changed, true);
  });
});

describe("a node's live record (selfRecord)", () => {
  it("names the node as its neighbour entry does; the host only when one was advertised", () => {
    const facts = { role: "voter" as const, startedAt: 1_700_000_000_000, hostname: "box", version: "0.1.0" };
    assert.deepEqual(selfRecord(self, { host: "198.18.0.1", port: 22 }, facts), {
      publicKey: key(1),
      name: "n1",
      meshAddress: self.identity.address,
      host: "198.18.0.1",
      role: "voter",
      startedAt: 1_700_000_000_000,
      hostname: "box",
      version: "0.1.0",
      yggdrasilMajor: "0.5",
    });
    assert.equal("host" in selfRecord(self, undefined, facts), false);
  });
});

describe("the Yggdrasil major of a cluster (requireClusterMajor)", () => {
  it("refuses a node whose major differs from the other neighbours', naming them; ignores its own entry and those who left", () => {
    const other = (i: number, major: "0.4" | "0.5", left = false): FlatMapping =>
      neighbourMapping({ publicKey: key(i), meshAddress: addressForKey(key(i)), host: `198.18.0.${i}`, sshPort: 22, yggdrasilPort: 4863, yggdrasilMajor: major, name: `n${i}`, ...(left ? { left } : {}) });
    assert.doesNotThrow(() => requireClusterMajor({ ...other(1, "0.4"), ...other(2, "0.5"), ...other(3, "0.4", true) }, self));
    assert.throws(() => requireClusterMajor({ ...other(2, "0.5"), ...other(3, "0.4") }, self), /n3 \(198\.18\.0\.3\)/);
  });
});

describe("registering another machine (withRegisteredNeighbour)", () => {
  it("records the key, derived mesh address, host and ports, keeping the name, major and instance id it had", () => {
    const before = withNeighbour({}, { publicKey: key(2), meshAddress: addressForKey(key(2)), host: "198.18.0.2", sshPort: 22, yggdrasilPort: 4863, yggdrasilMajor: "0.5", name: "n2", uuid: "i-2" });
    const after = withRegisteredNeighbour(before, { publicKey: key(2), host: "198.18.0.22", sshPort: 2222, yggdrasilPort: 4864 });
    assert.deepEqual(parseNeighbours(after), [
      { publicKey: key(2), meshAddress: addressForKey(key(2)), host: "198.18.0.22", sshPort: 2222, yggdrasilPort: 4864, yggdrasilMajor: "0.5", name: "n2", uuid: "i-2" },
    ]);
  });

  it("a machine that left (clean) and is registered again is no longer marked left", () => {
    const before = withNeighbour({}, { publicKey: key(2), meshAddress: addressForKey(key(2)), host: "198.18.0.2", sshPort: 22, yggdrasilPort: 4863, name: "n2", left: true });
    const after = withRegisteredNeighbour(before, { publicKey: key(2), host: "198.18.0.2", sshPort: 22, yggdrasilPort: 4863 });
    assert.deepEqual(parseNeighbours(after), [{ publicKey: key(2), meshAddress: addressForKey(key(2)), host: "198.18.0.2", sshPort: 22, yggdrasilPort: 4863, name: "n2" }]);
    assert.equal(after[`${neighbourPrefix(key(2))}left`], undefined);
  });

  it("replaces another machine registered under the same host (the original's rule) and leaves the rest", () => {
    let m: FlatMapping = {};
    m = withRegisteredNeighbour(m, { publicKey: key(2), host: "198.18.0.2", sshPort: 22, yggdrasilPort: 4863 });
    m = withRegisteredNeighbour(m, { publicKey: key(3), host: "198.18.0.3", sshPort: 22, yggdrasilPort: 4863 });
    m = withRegisteredNeighbour(m, { publicKey: key(4), host: "198.18.0.2", sshPort: 22, yggdrasilPort: 4863 });
    assert.deepEqual(parseNeighbours(m).map((n) => [n.publicKey, n.host]), [
      [key(3), "198.18.0.3"],
      [key(4), "198.18.0.2"],
    ]);
    assert.equal(Object.keys(m).some((k) => k.startsWith(neighbourPrefix(key(2)))), false);
  });
});
