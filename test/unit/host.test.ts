import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { describeHostProblem, hostPort, parseHost, requireHost } from "../../src/mesh/host.ts";

function accepted(input: string): string {
  const r = parseHost(input);
  assert.ok(r.ok, `${input}: ${r.ok ? "" : describeHostProblem(input, r.error)}`);
  return r.value.value;
}

function refused(input: string): string {
  const r = parseHost(input);
  assert.ok(!r.ok, `${JSON.stringify(input)} was accepted as ${r.ok ? r.value.value : ""}`);
  return describeHostProblem(input, r.error, "with --port");
}

describe("host validation (one rule for every entry point and for peer URIs)", () => {
  it("accepts plain host names and FQDNs, lower-cased", () => {
    assert.equal(accepted("node1"), "node1");
    assert.equal(accepted("Node-1.Example.org"), "node-1.example.org");
    assert.equal(accepted("example.org."), "example.org.");
    assert.equal(accepted("a".repeat(63)), "a".repeat(63));
    assert.equal(accepted(`${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`).length, 253);
  });

  it("accepts IPv4 addresses", () => {
    assert.equal(accepted("192.0.2.7"), "192.0.2.7");
    assert.equal(accepted("127.0.0.1"), "127.0.0.1");
  });

  it("accepts IPv6 bare or in brackets and stores one canonical bare form", () => {
    assert.equal(accepted("2001:DB8:0:0::7"), "2001:db8::7");
    assert.equal(accepted("[2001:db8::7]"), "2001:db8::7");
    assert.equal(accepted("::1"), "::1");
    assert.equal(accepted("[::1]"), "::1");
    assert.equal(accepted("fe80::1%eth0"), "fe80::1%eth0");
    assert.equal(accepted("[fe80::1%eth0]"), "fe80::1%eth0");
  });

  it("shows IPv6 hosts with a port as [v6]:port", () => {
    assert.equal(hostPort(accepted("[2001:db8::7]"), 22), "[2001:db8::7]:22");
    assert.equal(hostPort(accepted("2001:db8::7"), 2222), "[2001:db8::7]:2222");
    assert.equal(hostPort("192.0.2.7", 22), "192.0.2.7:22");
  });

  it("refuses a name with _ and names the character", () => {
    assert.match(refused("a_b"), /"a_b" is not a hostname or IP address: it contains "_"/);
  });

  it("refuses host:port and [v6]:port, saying where the port goes", () => {
    assert.match(refused("h:22"), /"h:22" .* has a port \(22\) in it; give the host alone \(h\) and the port with --port/);
    assert.match(refused("[::1]:22"), /has a port \(22\) in it; give the host alone \(\[::1\]\)/);
    assert.match(refused("10.0.0.1:2222"), /give the host alone \(10\.0\.0\.1\)/);
  });

  it("refuses shell characters, white space and other URI syntax", () => {
    for (const bad of ["a;b", "$(x)", "`x`", "a b", " a", "a\n", "a/b", "a?key=x", "root@h", "a|b", "a&b", "h'", "bü.de", "-oProxyCommand=x"]) {
      assert.match(refused(bad), /contains/, bad);
    }
  });

  it("refuses empty hosts, empty labels and labels that look like options", () => {
    assert.match(refused(""), /"" is not a hostname or IP address: it is empty/);
    assert.match(refused("a..b"), /empty label/);
    assert.match(refused(".a"), /empty label/);
    assert.match(refused("-a"), /begins or ends with "-"/);
    assert.match(refused("a-.b"), /begins or ends with "-"/);
  });

  it("refuses overlong labels and names", () => {
    assert.match(refused(`${"a".repeat(64)}.org`), /is 64 characters long \(at most 63\)/);
    assert.match(refused(`${"a".repeat(60)}.`.repeat(5)), /at most 253/);
    assert.match(refused("a".repeat(300)), /300 characters long/);
  });

  it("refuses broken IP addresses", () => {
    assert.match(refused("10.0.0.256"), /looks like an IPv4 address but is not one/);
    assert.match(refused("1234"), /looks like an IPv4 address/);
    assert.match(refused("[a.b]"), /is not an IPv6 address/);
    assert.match(refused("[]"), /is not an IPv6 address/);
    assert.match(refused("2001:db8::1::2"), /is not an IPv6 address/);
    assert.match(refused("fe80::1%eth0;x"), /zone/);
  });

  it("requireHost throws one sentence naming the entry point", () => {
    assert.equal(requireHost("[2001:db8::7]", "--advertise-host"), "2001:db8::7");
    assert.throws(() => requireHost("a_b", "--advertise-host"), (e: Error) => e.name === "UserError" && /^--advertise-host: "a_b" is not a hostname/.test(e.message));
  });
});
