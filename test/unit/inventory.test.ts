import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { parseInventory } from "../../src/ops/inventory.ts";

describe("deploy inventories", () => {
  it("resolve via chains into ProxyJump hops, outermost first", () => {
    const r = parseInventory(
      JSON.stringify([{ dst: "1.2.3.4", port: "2222" }, { dst: "10.0.0.2", via: "1.2.3.4" }, { dst: "10.0.1.3", port: 22, via: "10.0.0.2" }]),
      "hosts.json",
    );
    assert.ok(r.ok, r.ok ? "" : r.error);
    assert.deepEqual(r.value[0]?.target, { host: "1.2.3.4", port: 2222 });
    assert.deepEqual(r.value[2]?.target, { host: "10.0.1.3", port: 22, via: [{ host: "1.2.3.4", port: 2222 }, { host: "10.0.0.2", port: 22 }] });
  });

  it("name the file and the offending entry", () => {
    const cases: [unknown, RegExp][] = [
      ["not json", /hosts\.json is not valid JSON/],
      [[], /must be a non-empty JSON array/],
      [[{ port: 22 }], /entry 1 needs "dst"/],
      [[{ dst: "a", port: "ssh" }], /entry 1 \(dst "a"\) has port "ssh", not a TCP port/],
      [[{ dst: "a", via: "b" }], /entry 1 \(dst a\) has "via": b, which is no entry's dst/],
      [[{ dst: "a", via: "a" }], /entry 1 \(dst a\) is its own "via"/],
      [[{ dst: "a", via: "b" }, { dst: "b", via: "c" }, { dst: "c", via: "a" }], /"via" cycle: a → b → c → a/],
      [[{ dst: "a" }, { dst: "a" }], /entry 2 repeats dst a/],
      [[{ dst: "a", host: "x" }], /unknown key\(s\) host/],
    ];
    for (const [doc, re] of cases) {
      const r = parseInventory(typeof doc === "string" ? doc : JSON.stringify(doc), "hosts.json");
      assert.ok(!r.ok, JSON.stringify(doc));
      assert.match(r.error, re);
      assert.match(r.error, /hosts\.json/);
    }
  });

  it("number entries by their position in the file, also after an entry that failed its own checks", () => {
    // Shape of the inventory-entry-numbers case (test/fixtures/cases): an entry without "dst" first.
    const dup = parseInventory(JSON.stringify([{ host: "127.0.0.4" }, { dst: "127.0.0.5" }, { dst: "127.0.0.5" }]), "inventory-dup.json");
    assert.ok(!dup.ok);
    assert.match(dup.error, /entry 3 repeats dst 127\.0\.0\.5 \(also entry 2\)/);
    const via = parseInventory(JSON.stringify([{ host: "127.0.0.4" }, { dst: "127.0.0.5", via: "127.0.0.9" }]), "inventory-via.json");
    assert.ok(!via.ok);
    assert.match(via.error, /entry 2 \(dst 127\.0\.0\.5\) has "via": 127\.0\.0\.9, which is no entry's dst/);
    const self = parseInventory(JSON.stringify([{ dst: "a b" }, { dst: "x", via: "x" }]), "f.json");
    assert.ok(!self.ok);
    assert.match(self.error, /entry 2 \(dst x\) is its own "via"/);
  });

  it("refuse a dst or via yggdrasil cannot dial, naming the entry, the host and where the port goes", () => {
    const cases: [unknown[], RegExp][] = [
      [[{ dst: "a_b" }], /entry 1: "dst" "a_b" is not a hostname or IP address: it contains "_"/],
      [[{ dst: "h:22" }], /entry 1: "dst" "h:22" .*has a port \(22\) in it; give the host alone \(h\) and the port in "port"/],
      [[{ dst: "[::1]:22" }], /entry 1: "dst" "\[::1\]:22" .*has a port/],
      [[{ dst: "a" }, { dst: "$(x)" }], /entry 2: "dst" "\$\(x\)" .*contains/],
      [[{ dst: "a" }, { dst: "b", via: "a;b" }], /entry 2 \(dst b\): "via" "a;b" .*contains ";"/],
      [[{ dst: "" }], /entry 1: "dst" "" is not a hostname or IP address: it is empty/],
    ];
    for (const [doc, re] of cases) {
      const r = parseInventory(JSON.stringify(doc), "hosts.json");
      assert.ok(!r.ok, JSON.stringify(doc));
      assert.match(r.error, re);
    }
  });

  it("accept IPv6 dst bare or in brackets as one host, for via too", () => {
    const r = parseInventory(JSON.stringify([{ dst: "[2001:DB8::1]", port: 2222 }, { dst: "2001:db8::2", via: "2001:db8::1" }]), "v6.json");
    assert.ok(r.ok, r.ok ? "" : r.error);
    assert.equal(r.value[0]?.dst, "2001:db8::1");
    assert.deepEqual(r.value[1]?.target, { host: "2001:db8::2", port: 22, via: [{ host: "2001:db8::1", port: 2222 }] });
    const dup = parseInventory(JSON.stringify([{ dst: "[::1]" }, { dst: "::1" }]), "v6.json");
    assert.ok(!dup.ok);
    assert.match(dup.error, /entry 2 repeats dst ::1 \(also entry 1\)/);
  });
});
