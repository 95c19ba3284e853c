// Bundles the CLI into one ESM file that runs on Node 18+ (what gets pushed to members).
import { build } from "esbuild";
import { readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));

await build({
  entryPoints: ["src/main.ts"],
  outfile: "dist/raptiformica.mjs",
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
