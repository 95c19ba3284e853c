/**
 * One worker process of bench/sim-members.ts: simulates a share of the members (SimMember each)
 * and reports to the coordinator over the IPC channel `fork` gives it. One Node process cannot
 * hold 1 000 members (its event loop falls seconds behind and every dial deadline expires), so
 * the coordinator splits them over several of these.
 *
 * Times cross the process boundary as wall-clock milliseconds with sub-millisecond precision
 * (`performance.timeOrigin + performance.now()`), comparable between processes of one host.
 *
 * Coordinator → worker: WorkerCommand; worker → coordinator: WorkerReport (sim-protocol.ts).
 */
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { FlatMapping } from "../../src/config/flatten.ts";
import { brief, sleep } from "./common.ts";
import { SimMember } from "./sim-member.ts";
import { wallNow, type WorkerCommand, type WorkerReport, type WorkerSetup } from "./sim-protocol.ts";

function send(r: WorkerReport): void {
  process.send?.(r);
}

async function main(): Promise<void> {
  const setup = JSON.parse(process.argv[2]!) as WorkerSetup;
  const cache = JSON.parse(readFileSync(setup.cacheFile, "utf8")) as FlatMapping;
  const errorCounts = new Map<string, number>();
  /** Reported registered: the tick that wrote the record has also started the watch. */
  const reported = new Set<number>();
  let probe: { value: string; got: Set<number> } | undefined;
  const checkProbe = (m: SimMember) => {
    if (probe && !probe.got.has(m.o.index) && m.config.copyValue(setup.probeKey) === probe.value) {
      probe.got.add(m.o.index);
      send({ type: "probe", value: probe.value, index: m.o.index, at: wallNow() });
    }
  };
  const members = setup.members.map(
    (s) =>
      new SimMember({
        ...s,
        peerPort: setup.peerPort,
        tls: setup.tls,
        cache,
        noFiles: setup.noFiles,
        steadyMs: setup.steadyMs,
        onWatched: (m, key) => {
          if (key === setup.probeKey) checkProbe(m);
        },
        onTick: (m, error) => {
          if (error) {
            const e = brief(error).replace(/[0-9a-f]{64}/g, "<key>");
            errorCounts.set(e, (errorCounts.get(e) ?? 0) + 1);
          }
          if (m.registeredAt !== undefined && !reported.has(m.o.index)) {
            reported.add(m.o.index);
            send({ type: "registered", index: m.o.index, startedAt: performance.timeOrigin + m.startedAt, at: performance.timeOrigin + m.registeredAt });
          }
          checkProbe(m);
        },
      }),
  );
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const errorReport = setInterval(() => {
    send({ type: "errors", counts: [...errorCounts], membersWithErrors: members.filter((m) => m.errors > 0).length });
  }, 2000);
  let cpu0 = process.cpuUsage();

  process.on("message", (c: WorkerCommand) => {
    switch (c.type) {
      case "start":
        void (async () => {
          for (const m of members) {
            m.start();
            if (c.rampMs > 0) await sleep(c.rampMs / members.length);
          }
        })();
        break;
      case "probe":
        probe = { value: c.value, got: new Set() };
        for (const m of members) checkProbe(m);
        break;
      case "stats": {
        const mem = process.memoryUsage();
        const cpu = process.cpuUsage(cpu0);
        cpu0 = process.cpuUsage();
        send({ type: "stats", rss: mem.rss, heapUsed: mem.heapUsed, cpuMicros: cpu.user + cpu.system, loopP99Ms: loop.percentile(99) / 1e6, loopMaxMs: loop.max / 1e6 });
        loop.reset();
        break;
      }
      case "stop":
        clearInterval(errorReport);
        void Promise.race([Promise.all(members.map((m) => m.stop())), sleep(10_000)]).then(() => {
          send({ type: "stopped" });
          process.exit(0);
        });
        break;
    }
  });
  // The coordinator gone (killed, crashed): this worker must not live on holding connections.
  process.on("disconnect", () => process.exit(0));
  send({ type: "ready" });
}

main().catch((e) => {
  console.error(`sim-worker failed: ${e instanceof Error ? e.stack : String(e)}`);
  process.exit(1);
});
