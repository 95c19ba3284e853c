import { join } from "node:path";
import { ClusterUnavailable, errorMessage } from "../../util/errors.ts";
import { memberSettings, readLastGoodSettings } from "../../node/last-good-settings.ts";
import type { AgentCompanion, AgentProcess } from "../../node/run-agent.ts";
import { SharedConfig } from "../../node/shared-config.ts";
import { readStatus } from "../../node/status.ts";
import { GraphFeed, type FeedOptions } from "./feed.ts";
import { MapListeners, mapRequestHandler } from "./server.ts";
import { KvGraphSource } from "./source.ts";

/** Where the built page lives in an install (scripts/build.mjs writes it). */
export function mapStaticDir(installDir: string): string {
  return join(installDir, "dist", "map");
}

/**
 * The mesh map served by a member, beside its agent (an AgentCompanion): on 127.0.0.1 and,
 * once the agent reports it, the member's mesh address, at `meshnet/map/port` (default 4865)
 * as the agent runs with it (its last good settings: a bad value in the KV falls back as every
 * cluster setting does, resolveSettings). Every `tickMs` it
 * follows the port and the mesh address, and takes an address it could not take before.
 * The graph is read with a KV client of its own (the member's certificates over mutual TLS,
 * this member's etcd endpoint first: SharedConfig.open), opened only while someone looks.
 * Throws nothing, now or later: every failure is logged (once per reason) and retried.
 */
export function startMapService(p: AgentProcess, o: { tickMs?: number; feed?: FeedOptions } = {}): AgentCompanion {
  const { log, node } = p;
  const status = () => readStatus(node.status);
  const source = new KvGraphSource({
    connect: async () => {
      const shared = await SharedConfig.open(p.local, node, log, { quiet: true });
      if (!shared.client) throw new ClusterUnavailable("no member's etcd answers on 127.0.0.1 or over the mesh");
      return shared.client;
    },
    tls: node,
    self: () => status()?.publicKey,
  });
  const feed = new GraphFeed(source, log, o.feed);
  const listeners = new MapListeners(
    mapRequestHandler({
      feed,
      staticDir: mapStaticDir(p.installDir),
      meshAddress: () => status()?.meshAddress,
      log,
    }),
    log,
  );
  let lastProblem = "";
  let stopped = false;
  let running: Promise<void> | undefined;
  const tick = async () => {
    if (stopped || running) return;
    running = (async () => {
      try {
        // What the agent runs with (it resolves the settings every tick and records them; a
        // small file, where the config would be parsed whole every few seconds), else the config.
        const port = (readLastGoodSettings(node.lastGoodSettings) ?? memberSettings(p.local.snapshot().mapping, node)).mapPort;
        const s = status();
        // The mesh address once the agent has brought the mesh up (the tun address exists then).
        const mesh = s?.meshAddress && s.phase !== "starting" ? [s.meshAddress] : [];
        await listeners.ensure(["127.0.0.1", ...mesh], port);
        lastProblem = "";
      } catch (e) {
        const msg = `the mesh map could not check its port (${errorMessage(e)}); trying again`;
        if (msg !== lastProblem) log.warn(msg);
        lastProblem = msg;
      }
    })();
    await running;
    running = undefined;
  };
  void tick();
  const timer = setInterval(() => void tick(), o.tickMs ?? 5000);
  timer.unref?.();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
      listeners.stop();
      feed.close();
    },
  };
}
