import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { jsonText, printable, printableText } from "../../src/util/printable.ts";

describe("printable", () => {
  it("leaves ordinary names and values alone, spaces, quotes, backslashes and non-ASCII letters included", () => {
    for (const v of ["", "node-1", "a b", 'say "hi"', "C:\\path", "zürich 東京", "sh -c 'echo $X' &"]) assert.equal(printable(v), v);
  });

  it("quotes and escapes a value holding terminal controls, so it round-trips through JSON.parse", () => {
    const cases: [string, string][] = [
      ["a\u001b[31mb", '"a\\u001b[31mb"'],
      ["two\nlines", '"two\\nlines"'],
      ["cr\rhides", '"cr\\rhides"'],
      ["tab\there", '"tab\\there"'],
      ["bell\u0007", '"bell\\u0007"'],
      ["del\u007f", '"del\\u007f"'],
      ["csi\u009b2J", '"csi\\u009b2J"'],
      ["rtl\u202egnp.exe", '"rtl\\u202egnp.exe"'],
      ["iso\u2066x\u2069", '"iso\\u2066x\\u2069"'],
      ["ls\u2028", '"ls\\u2028"'],
    ];
    for (const [raw, shown] of cases) {
      assert.equal(printable(raw), shown, JSON.stringify(raw));
      assert.equal(JSON.parse(printable(raw)), raw);
      // eslint-disable-next-line no-control-regex
      assert.doesNotMatch(printable(raw), /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028]/);
    }
  });
});

describe("printableText", () => {
  it("keeps newlines of a message and escapes every other control, without quotes", () => {
    assert.equal(printableText("line one\nline \u001b[2Jtwo\r\u009b"), "line one\nline \\u001b[2Jtwo\\u000d\\u009b");
    assert.equal(printableText("plain text"), "plain text");
  });
});

describe("jsonText", () => {
  it("is the same JSON value, with no raw control characters left", () => {
    const value = { "a\u001bkey": "v\u009b\u202e\u007f", list: ["x\u2028"], n: 1 };
    const text = jsonText(value);
    assert.deepEqual(JSON.parse(text), value);
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2028]/);
    assert.equal(jsonText({ a: 1 }), JSON.stringify({ a: 1 }, null, 2));
  });
});
