import { strict as assert } from "node:assert";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ROOT } from "../helpers/cli.ts";
import { labMemberPath, labPathDirs } from "../helpers/cluster.ts";

describe("RAPTIFORMICA_LAB_PATH (which yggdrasil / etcd the lab's members run)", () => {
  it("puts its directories after raptiformica's bin/ and before the caller's PATH, in order", () => {
    const env = { RAPTIFORMICA_LAB_PATH: "/opt/y05/sbin:/opt/e35/bin", PATH: "/usr/sbin:/usr/bin" };
    assert.equal(labMemberPath(env), `${join(ROOT, "bin")}:/opt/y05/sbin:/opt/e35/bin:/usr/sbin:/usr/bin`);
  });

  it("adds nothing when unset or empty, and drops empty entries", () => {
    assert.deepEqual(labPathDirs({}), []);
    assert.deepEqual(labPathDirs({ RAPTIFORMICA_LAB_PATH: "" }), []);
    assert.deepEqual(labPathDirs({ RAPTIFORMICA_LAB_PATH: ":/a::/b:" }), ["/a", "/b"]);
    assert.equal(labMemberPath({ PATH: "/usr/bin" }), `${join(ROOT, "bin")}:/usr/bin`);
  });
});
