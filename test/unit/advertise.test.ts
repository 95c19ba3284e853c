import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { readAdvertised } from "../../src/node/advertised.ts";

describe("last_advertised", () => {
  const dir = mkdtempSync(join(tmpdir(), "rf-advertised-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const read = (content: unknown) => {
    const path = join(dir, "last_advertised");
    writeFileSync(path, JSON.stringify(content));
    return readAdvertised(path);
  };

  it("is read with the host check advertise applies, in its stored form", () => {
    assert.deepEqual(read({ host: "[2001:DB8::1]", port: 22 }), { ok: true, value: { host: "2001:db8::1", port: 22 } });
    assert.deepEqual(read({ host: "node1.example.org", port: "2222" }), { ok: true, value: { host: "node1.example.org", port: 2222 } });
  });

  it("with a host the members could not dial, is an error naming the file and how to rewrite it", () => {
    // Written by an older version, or by hand: it would go into the KV as this node's host.
    for (const host of ["a_b", "h:22", "$(x)"]) {
      const r = read({ host, port: 22 });
      assert.ok(!r.ok, host);
      assert.match(r.error, /last_advertised is not valid: .* is not a hostname or IP address.*raptiformica advertise HOST --port PORT/);
    }
    const r = read({ host: "h", port: 70000 });
    assert.ok(!r.ok);
  });
});
