import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { waitFor } from "../lab/wait.ts";

describe("the lab's waitFor", () => {
  it("on timeout names what it waited for, the last reason, and the last finished attempt's reason when the last one still runs", async () => {
    let n = 0;
    const check = async () => {
      n++;
      if (n <= 2) throw new Error(`not yet: ${n} voters`);
      await new Promise((r) => setTimeout(r, 1500)); // runs past the deadline
      return true;
    };
    await assert.rejects(waitFor("3 healthy voters", check, { timeoutMs: 300, intervalMs: 20 }), (e: Error) => {
      assert.match(e.message, /waiting for 3 healthy voters; last: attempt still running after \d+ ms; the last attempt that finished: not yet: 2 voters$/);
      return true;
    });
  });

  it("gives the last reason alone when the last attempt finished", async () => {
    await assert.rejects(waitFor("x", () => false, { timeoutMs: 100, intervalMs: 10 }), /waiting for x; last: returned false$/);
  });
});
