import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { addressEvent } from "../../src/node/address-watch.ts";

describe("addressEvent: what `ip -o monitor address` says changed", () => {
  it("additions and deletions of IPv4 and IPv6 addresses, as iproute2 prints them", () => {
    assert.deepEqual(addressEvent("3: v0    inet 10.9.9.9/24 scope global v0\\       valid_lft forever preferred_lft forever"), { kind: "added", address: "10.9.9.9" });
    assert.deepEqual(addressEvent("Deleted 3: v0    inet 10.9.9.9/24 scope global v0\\       valid_lft forever preferred_lft forever"), { kind: "deleted", address: "10.9.9.9" });
    assert.deepEqual(addressEvent("Deleted 3: v0    inet6 fd00::9/64 scope global nodad \\       valid_lft forever preferred_lft forever"), { kind: "deleted", address: "fd00::9" });
  });

  it("ignores link-local and Yggdrasil addresses (no peering is bound to them) and other lines", () => {
    assert.equal(addressEvent("3: v0    inet6 fe80::246c:cbff:feda:be96/64 scope link \\       valid_lft forever preferred_lft forever"), undefined);
    assert.equal(addressEvent("Deleted 7: tun0    inet6 200:816c:7bb8:c310:eaf2:baba:be43:f2c7/7 scope global \\       valid_lft forever preferred_lft forever"), undefined);
    assert.equal(addressEvent(""), undefined);
    assert.equal(addressEvent("[NEIGH]Deleted 10.0.0.1 dev eth0"), undefined);
  });
});
