import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { clusterYggdrasilMajor, neighbourMapping, type Neighbour } from "../../src/mesh/neighbours.ts";

const key = (c: string) => c.repeat(64);
const neighbour = (c: string, extra: Partial<Neighbour> = {}): Neighbour => ({
  publicKey: key(c),
  meshAddress: `200::${c}`,
  sshPort: 22,
  yggdrasilPort: 4863,
  ...extra,
});
const mapping = (...ns: Neighbour[]) => Object.assign({}, ...ns.map(neighbourMapping)) as Record<string, string>;

describe("clusterYggdrasilMajor (what slave tells the bootstrap)", () => {
  it("the major every member records", () => {
    assert.equal(clusterYggdrasilMajor(mapping(neighbour("a", { yggdrasilMajor: "0.4" }), neighbour("b", { yggdrasilMajor: "0.4" }))), "0.4");
    assert.equal(clusterYggdrasilMajor(mapping(neighbour("a", { yggdrasilMajor: "0.5" }))), "0.5");
  });

  it("none for a new cluster, entries that record no major, or a cluster that is already mixed", () => {
    assert.equal(clusterYggdrasilMajor({}), undefined);
    assert.equal(clusterYggdrasilMajor(mapping(neighbour("a"))), undefined);
    assert.equal(clusterYggdrasilMajor(mapping(neighbour("a", { yggdrasilMajor: "0.4" }), neighbour("b", { yggdrasilMajor: "0.5" }))), undefined);
  });

  it("members that left do not count", () => {
    const m = mapping(neighbour("a", { yggdrasilMajor: "0.4", left: true }), neighbour("b", { yggdrasilMajor: "0.5" }));
    assert.equal(clusterYggdrasilMajor(m), "0.5");
  });
});
