// Bundles the CLI into ESM that runs on Node 18+ (what gets pushed to members): the entry
// dist/raptiformica.mjs plus chunks beside it. Split so that the long-lived agent loads only
// its own code and the etcd client, not the CLI's (commander, listr2, tables, SSH, deploy):
// every member runs it, and its resident memory is a goal.
import { build } from "esbuild";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";

// Chunks of an earlier build would otherwise pile up (and be pushed to every member).
for (const f of existsSync("dist") ? readdirSync("dist", { withFileTypes: true }) : []) {
  if (f.isFile() && f.name.startsWith("chunk-")) rmSync(`dist/${f.name}`);
}

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

// etcd3 loads its .proto files at run time from next to its own module; ship them in dist/
// and point the bundled loader there.
cpSync("node_modules/etcd3/proto", "dist/etcd3-proto", { recursive: true });
const etcd3Protos = {
  name: "etcd3-protos",
  setup(b) {
    b.onLoad({ filter: /etcd3[\\/]lib[\\/]connection-pool\.js$/ }, (args) => {
      const src = readFileSync(args.path, "utf8");
      const patched = src.replace("${__dirname}/../proto/rpc.proto", "${__dirname}/etcd3-proto/rpc.proto");
      if (patched === src) throw new Error("etcd3 proto path not found in connection-pool.js: update scripts/build.mjs");
      return { contents: patched, loader: "js" };
    });
  },
};

await build({
  plugins: [etcd3Protos],
  entryPoints: ["src/main.ts"],
  outdir: "dist",
  splitting: true,
  entryNames: "raptiformica",
  // Beside the entry, not in a subdirectory: the etcd3 chunk finds its protos from __dirname.
  chunkNames: "chunk-[hash]",
  outExtension: { ".js": ".mjs" },
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node18",
  sourcemap: "linked",
  define: { RAPTIFORMICA_VERSION: JSON.stringify(pkg.version) },
  // Bundled CommonJS dependencies call require(); give them one.
  banner: {
    js: [
      "import { createRequire as __rfCreateRequire } from 'node:module';",
      "import { fileURLToPath as __rfFileURLToPath } from 'node:url';",
      "const require = __rfCreateRequire(import.meta.url);",
      "const __filename = __rfFileURLToPath(import.meta.url);",
      "const __dirname = __rfFileURLToPath(new URL('.', import.meta.url));",
    ].join(" "),
  },
  logLevel: "warning",
});

// The mesh map's page (src/web/map), served by every member from dist/map/: one script with
// cytoscape bundled in (nothing is fetched from elsewhere at run time), its HTML and CSS.
mkdirSync("dist/map", { recursive: true });
await build({
  entryPoints: ["src/web/map/main.ts"],
  outfile: "dist/map/map.js",
  bundle: true,
  platform: "browser",
  format: "iife",
  target: ["chrome100", "firefox100", "safari15"],
  minify: true,
  legalComments: "linked",
  logLevel: "warning",
});
for (const f of ["index.html", "map.css"]) cpSync(`src/web/map/${f}`, `dist/map/${f}`);
