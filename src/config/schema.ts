import { z } from "zod";
import type { Tree } from "./flatten.ts";

/**
 * The module JSON format of the original project (api version "0.1"): `server`, `compute` and
 * `platform` sections are checked strictly (a typo in a key is reported, not ignored); any other
 * top-level section is free-form and overrides config keys, as modules could in the original.
 */
export const API_VERSION = "0.1";

const NAME = /^[^/\s]+$/;
const name = (what: string) =>
  z.string().regex(NAME, { message: `${what} names must be non-empty and contain no "/" or white space` });

const command = (what: string) =>
  z.string({ invalid_type_error: `expected ${what} as a string`, required_error: `${what} is required` });

/**
 * Free-form sections (overrides of any key): nested objects whose leaves are strings, numbers or
 * booleans. Checked by walking, so a problem deep inside is reported at its exact key.
 */
export const tree = z.unknown().superRefine((value, ctx) => {
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (typeof node === "string" || typeof node === "number" || typeof node === "boolean") return;
    if (typeof node !== "object" || node === null || Array.isArray(node)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path,
        message: "expected a string, number, boolean or object (arrays and null cannot be stored in the config)",
      });
      return;
    }
    for (const [k, v] of Object.entries(node)) {
      if (!NAME.test(k)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [...path, k], message: 'key names must be non-empty and contain no "/" or white space' });
      } else {
        walk(v, [...path, k]);
      }
    }
  };
  walk(value, []);
}) as unknown as z.ZodType<Tree | string | number | boolean>;

const provisioner = z
  .object({
    source: command("source (a git URL)").optional(),
    bootstrap: command("bootstrap (a shell command)").optional(),
    available: command("available (a shell predicate)").optional(),
  })
  .strict();

const serverSection = z.record(name("server type"), z.record(name("provisioner"), provisioner));

export const COMPUTE_KEYS = [
  "available",
  "source",
  "start_instance",
  "get_hostname",
  "get_port",
  "get_host_key",
  "detect_stale_instance",
  "clean_up_instance_command",
  "package",
] as const;

const computeEntry = z
  .object(Object.fromEntries(COMPUTE_KEYS.map((k) => [k, command(`${k} (a shell command)`).optional()])) as Record<
    (typeof COMPUTE_KEYS)[number],
    z.ZodOptional<z.ZodString>
  >)
  .strict();

const computeSection = z.record(name("compute type"), z.record(name("server type"), computeEntry));

const handler = z
  .object({
    predicate: command("predicate (a shell command)").optional(),
    command: command("command (a shell command)").optional(),
  })
  .strict();

const platformType = z
  .object({
    available: command("available (a shell predicate)").optional(),
    hooks: z.record(name("hook"), z.record(name("handler"), handler)).optional(),
  })
  .strict();

const platformSection = z.record(name("platform type"), platformType);

export const moduleSchema = z
  .object({
    raptiformica_api_version: z.literal(API_VERSION, {
      errorMap: () => ({ message: `unsupported raptiformica_api_version; this raptiformica reads "${API_VERSION}"` }),
    }),
    server: serverSection.optional(),
    compute: computeSection.optional(),
    platform: platformSection.optional(),
  })
  .catchall(tree);

export type ModuleDocument = z.infer<typeof moduleSchema>;

export interface SchemaProblem {
  /** Dotted path of the offending key inside the file, e.g. `server.headless.puppet.bootstrap`. */
  key: string;
  message: string;
}

/**
 * What belongs at `path` in the fixed sections (the object holding an unknown key, or a value
 * of the wrong type), for messages. Undefined in free-form sections.
 */
function shapeHint(path: readonly (string | number)[]): string | undefined {
  const [section, ...rest] = path;
  const d = rest.length;
  if (section === "server") {
    return [
      "here belong server types: server.TYPE.PROVISIONER.bootstrap",
      "here belong the provisioners of a server type: server.TYPE.PROVISIONER.bootstrap",
      "here belongs a provisioner: an object with source, bootstrap and/or available",
    ][d];
  }
  if (section === "compute") {
    return [
      "here belong compute types: compute.TYPE.SERVER_TYPE.start_instance",
      "here belongs one entry per server type: compute.TYPE.SERVER_TYPE.start_instance",
      `here belongs a compute entry: an object with ${COMPUTE_KEYS.join(", ")}`,
    ][d];
  }
  if (section === "platform") {
    if (d === 0) return "here belong platform types: platform.TYPE.hooks.HOOK.HANDLER.command";
    if (d === 1) return "here belongs a platform type: an object with available and/or hooks (platform.TYPE.hooks.HOOK.HANDLER.command)";
    if (rest[1] === "hooks" && d === 2) return "here belong hooks: platform.TYPE.hooks.HOOK.HANDLER.command";
    if (rest[1] === "hooks" && d === 3) return "here belong the handlers of a hook: platform.TYPE.hooks.HOOK.HANDLER.command";
    if (rest[1] === "hooks" && d === 4) return "here belongs a handler: an object with predicate and/or command";
  }
  return undefined;
}

/**
 * Checks a parsed module document against the format. Returns every problem (not only the
 * first), each with the dotted key it is at and, where the key sits in a fixed section, what
 * belongs there.
 */
export function validateModule(doc: unknown): { ok: true; value: ModuleDocument } | { ok: false; problems: SchemaProblem[] } {
  const parsed = moduleSchema.safeParse(doc);
  if (parsed.success) return { ok: true, value: parsed.data };
  const problems = parsed.error.issues.map((issue) => {
    const hint = issue.code === "unrecognized_keys" || issue.code === "invalid_type" ? shapeHint(issue.path) : undefined;
    const withHint = (message: string) => (hint ? `${message}; ${hint}` : message);
    if (issue.code === "unrecognized_keys") {
      const base = issue.path.join(".");
      return {
        key: issue.keys.map((k) => (base ? `${base}.${k}` : k)).join(", "),
        message: withHint("unknown key (a typo?)"),
      };
    }
    return { key: issue.path.join(".") || "(top level)", message: withHint(issue.message) };
  });
  return { ok: false, problems };
}
