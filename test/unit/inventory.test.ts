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
});
