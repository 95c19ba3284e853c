import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { remoteCommandLine, shellQuote } from "../../src/remote/quote.ts";

describe("remote command lines", () => {
  it("leave plain words alone and single-quote everything else", () => {
    assert.equal(shellQuote("/usr/etc/raptiformica"), "/usr/etc/raptiformica");
    assert.equal(shellQuote(""), "''");
    assert.equal(shellQuote("it's"), `'it'"'"'s'`);
  });

  it("round-trip through a real shell, whatever the bytes", () => {
    const words = ["a b", "it's", "$(id)", "`id`", "*", "\\n", "semi;colon", "new\nline", "ünïcode", "--flag=x y"];
    const out = execFileSync("sh", ["-c", `printf '%s\\0' ${remoteCommandLine(words)}`]);
    assert.deepEqual(out.toString("utf8").split("\0").slice(0, -1), words);
  });
});
