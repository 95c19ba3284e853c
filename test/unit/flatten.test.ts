import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { flatten, keyProblem, keysUnder, normalizeKey, unflatten } from "../../src/config/flatten.ts";

describe("flatten / unflatten", () => {
  it("flattens nested module JSON into the KV layout and back", () => {
    const tree = { raptiformica_api_version: "0.1", server: { headless: { p: { bootstrap: "x", retries: 3, on: true } } } };
    const flat = flatten(tree);
    assert.deepEqual(flat, {
      "raptiformica/raptiformica_api_version": "0.1",
      "raptiformica/server/headless/p/bootstrap": "x",
      "raptiformica/server/headless/p/retries": "3",
      "raptiformica/server/headless/p/on": "true",
    });
    const back = unflatten(flat);
    assert.ok(back.ok);
    assert.deepEqual(back.value, { raptiformica_api_version: "0.1", server: { headless: { p: { bootstrap: "x", retries: "3", on: "true" } } } });
  });

  it("reports a key that is both a value and a folder", () => {
    const r = unflatten({ "raptiformica/a": "1", "raptiformica/a/b": "2" });
    assert.ok(!r.ok);
    assert.match(r.error, /raptiformica\/a holds a value and also has keys below it/);
  });

  it("normalizes and checks keys", () => {
    assert.equal(normalizeKey("server/headless"), "raptiformica/server/headless");
    assert.equal(normalizeKey("/raptiformica/x/"), "raptiformica/x");
    assert.equal(keyProblem("raptiformica/a//b"), "it has an empty path segment (//)");
    assert.equal(keyProblem("raptiformica/a b"), "it contains white space");
    assert.equal(keyProblem("raptiformica/ok/key"), undefined);
  });

  it("selects keys under a prefix without matching siblings that share a name prefix", () => {
    const m = { "raptiformica/a": "1", "raptiformica/a/b": "2", "raptiformica/ab": "3" };
    assert.deepEqual(keysUnder(m, "raptiformica/a"), ["raptiformica/a", "raptiformica/a/b"]);
  });
});
