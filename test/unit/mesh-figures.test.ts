import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { mbit, parseIperf3, parsePingRtts, pingLoss, ratio } from "../../bench/lib/mesh-figures.ts";

const iperfOk = JSON.stringify({
  start: { version: "iperf 3.12" },
  intervals: [],
  end: {
    sum_sent: { start: 0, end: 5.0, seconds: 5.0, bytes: 1, bits_per_second: 1_250_000_000, retransmits: 7, sender: true },
    sum_received: { start: 0, end: 5.04, seconds: 5.04, bytes: 1, bits_per_second: 1_200_000_000, sender: true },
  },
});

describe("bench/mesh-throughput.ts figures", () => {
  it("takes the receiver's throughput and the sender's retransmits from iperf3 -J", () => {
    assert.deepEqual(parseIperf3(iperfOk), { bitsPerSecond: 1_200_000_000, retransmits: 7, seconds: 5.04 });
  });

  it("throws iperf3's own message when the run failed, and on output that is not iperf3 JSON", () => {
    const failed = JSON.stringify({ start: { connected: [] }, intervals: [], end: {}, error: "unable to connect to server: Connection refused" });
    assert.throws(() => parseIperf3(failed), /unable to connect to server: Connection refused/);
    assert.throws(() => parseIperf3("iperf3: error - unable to connect"), /did not print JSON/);
    assert.throws(() => parseIperf3(JSON.stringify({ end: {} })), /no end\.sum_received/);
  });

  it("reads every reply's round trip from ping, IPv4 and IPv6, and counts the lost ones", () => {
    const out = [
      "PING 200:1::2(200:1::2) 56 data bytes",
      "64 bytes from 200:1::2: icmp_seq=1 ttl=64 time=0.412 ms",
      "64 bytes from 200:1::2: icmp_seq=3 ttl=64 time=1.05 ms",
      "64 bytes from 198.19.0.2: icmp_seq=4 ttl=64 time<1 ms",
      "",
      "--- 200:1::2 ping statistics ---",
      "4 packets transmitted, 3 received, 25% packet loss, time 603ms",
      "rtt min/avg/max/mdev = 0.412/0.731/1.050/0.319 ms",
    ].join("\n");
    assert.deepEqual(parsePingRtts(out), [0.412, 1.05, 1]);
    assert.equal(pingLoss(out), 1);
    assert.deepEqual(parsePingRtts("ping: connect: Network is unreachable"), []);
    assert.equal(pingLoss("ping: connect: Network is unreachable"), undefined);
  });

  it("gives mesh / direct with 2 decimals, nothing when a side is missing or zero", () => {
    assert.equal(ratio(300e6, 1200e6), 0.25);
    assert.equal(ratio(0.09, 0.03), 3);
    assert.equal(ratio(undefined, 1), undefined);
    assert.equal(ratio(1, undefined), undefined);
    assert.equal(ratio(1, 0), undefined);
    assert.equal(mbit(1_234_567_890), 1234.6);
  });
});
