import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { BootstrapGate, type GateTurn } from "../../src/ops/deploy.ts";
import { renderDeployTable, wrapText } from "../../src/cli/deploy.ts";

const tick = () => new Promise((r) => setImmediate(r));

/** Simulates hosts entering the gate at once; `fails` are the indexes whose bootstrap fails. */
async function simulate(n: number, fails: Set<number>, openAtStart = false) {
  const gate = new BootstrapGate(openAtStart);
  const order: string[] = [];
  let alone = 0;
  let maxAlone = 0;
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const turn: GateTurn = await gate.enter(i);
      if (turn === "bootstrap") {
        alone++;
        maxAlone = Math.max(maxAlone, alone);
        await tick();
        order.push(`${i}:${fails.has(i) ? "failed" : "bootstrapped"}`);
        alone--;
        gate.leave(!fails.has(i));
      } else {
        order.push(`${i}:joined`);
      }
    }),
  );
  return { order, maxAlone };
}

describe("deploy: one host bootstraps, alone", () => {
  it("the first host bootstraps while all others wait, then they all join", async () => {
    const { order, maxAlone } = await simulate(5, new Set());
    assert.equal(maxAlone, 1);
    assert.deepEqual(order[0], "0:bootstrapped");
    assert.deepEqual(order.slice(1).sort(), ["1:joined", "2:joined", "3:joined", "4:joined"]);
  });

  it("a failed first host hands the turn to the next in inventory order", async () => {
    const { order } = await simulate(5, new Set([0, 1]));
    assert.deepEqual(order.slice(0, 3), ["0:failed", "1:failed", "2:bootstrapped"]);
    assert.deepEqual(order.slice(3).sort(), ["3:joined", "4:joined"]);
  });

  it("when every host fails, each one tried alone in turn", async () => {
    const { order, maxAlone } = await simulate(3, new Set([0, 1, 2]));
    assert.equal(maxAlone, 1);
    assert.deepEqual(order, ["0:failed", "1:failed", "2:failed"]);
  });

  it("a host arriving after the turn became free again takes it (fewer workers than hosts)", async () => {
    const gate = new BootstrapGate(false);
    assert.equal(await gate.enter(0), "bootstrap");
    gate.leave(false);
    assert.equal(await gate.enter(1), "bootstrap");
    const later = gate.enter(2);
    gate.leave(true);
    assert.equal(await later, "join");
    assert.equal(await gate.enter(3), "join");
    assert.ok(gate.isOpen);
  });

  it("with members already known, nobody waits", async () => {
    const { order } = await simulate(3, new Set(), true);
    assert.deepEqual(order.sort(), ["0:joined", "1:joined", "2:joined"]);
  });
});

describe("deploy: result table", () => {
  it("one row per host; long errors are wrapped, not cut", () => {
    const error =
      "Cannot reach root@198.18.250.250 over SSH (ssh: connect to host 198.18.250.250 port 22: No route to host). Check that the host is up, that sshd listens on port 22, and that this machine can reach it.";
    const out = renderDeployTable(
      [
        { dst: "198.18.250.2", port: 22, ok: true, role: "leader", meshAddress: "200:1111:2222:3333:4444:5555:6666:7777", seconds: 4.2, waitedSeconds: 0, bootstrapped: true },
        { dst: "198.18.250.250", port: 22, ok: false, error, seconds: 3.1, waitedSeconds: 0 },
        { dst: "10.1.2.3", port: 2222, via: "198.18.250.2", ok: true, role: "proxy", meshAddress: "201::1", seconds: 12, waitedSeconds: 4.2 },
      ],
      80,
    );
    const lines = out.trimEnd().split("\n");
    assert.ok(lines.every((l) => [...l].length <= 80), out);
    assert.match(out, /│ Host\s+│ Via\s+│ Result │ Role \/ error\s+│ Seconds │/);
    assert.match(out, /198\.18\.250\.2 .*│ ok .*leader/);
    assert.ok(!out.includes("…"), out);
    assert.match(out, /10\.1\.2\.3:2222 .*│ 198\.18\.250\.2 .*│ ok .*proxy 201::1 .*12\.0 │/);
    // Every word of the error is there, in order, across the wrapped lines.
    const errorCells = lines
      .filter((l) => l.startsWith("│"))
      .map((l) => l.split("│")[4]!.trim())
      .join(" ");
    assert.ok(errorCells.includes(error), errorCells);
    assert.ok(errorCells.replace(/ /g, "").includes("200:1111:2222:3333:4444:5555:6666:7777"), errorCells);
  });

  it("wraps on words and splits only words longer than a line", () => {
    assert.equal(wrapText("aaa bbb ccc", 7), "aaa bbb\nccc");
    assert.equal(wrapText("x 0123456789abcdef", 8), "x\n01234567\n89abcdef");
    assert.equal(wrapText("a\nb", 10), "a\nb");
    for (const line of wrapText("Cannot reach root@some.very.long.host.name.example.org:2222 (via root@jump) over SSH", 12).split("\n")) assert.ok(line.length <= 12, line);
  });
});
