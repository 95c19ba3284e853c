import js from "@eslint/js";
import tseslint from "typescript-eslint";

// In the esbuild bundle, a dynamic import() of a CommonJS package (etcd3, …) yields only
// `default`: its named exports are undefined there while the sources under tsx work.
// Import the package statically in a module of ours and import that module dynamically.
const NO_DYNAMIC_PACKAGE_IMPORT = {
  selector: "ImportExpression > Literal[value=/^[^./]/]",
  message: "No dynamic import() of a package: in the bundle a CommonJS package exposes only `default` this way. Import it statically in one of our modules and import that module.",
};

// The layers of src/, top to bottom (DESIGN.md): a folder imports only folders below it or
// beside it in its row, never one above. Each entry lists the folders a layer may not import.
const LAYERS = [["cli"], ["ops"], ["node", "remote", "compute", "hooks"], ["consensus", "mesh"], ["config"], ["util"]];

function layerRules() {
  return LAYERS.flatMap((row, i) => {
    const above = LAYERS.slice(0, i).flat();
    if (above.length === 0) return [];
    return row.map((folder) => {
      const upward = `^(\\.\\./)+(${above.join("|")})(/|$)`;
      const message = `src/${folder} is below ${above.map((f) => `src/${f}`).join(", ")}: it may not import from there (cli → ops → node/remote/compute/hooks → consensus/mesh → config → util). Move the shared type or function down to the layer that owns it.`;
      return {
        files: [`src/${folder}/**/*.ts`],
        rules: {
          // Static imports and re-exports, `import type` included.
          "no-restricted-imports": ["error", { patterns: [{ regex: upward, message }] }],
          // import() is not covered by no-restricted-imports; this list replaces the global one.
          "no-restricted-syntax": ["error", NO_DYNAMIC_PACKAGE_IMPORT, { selector: `ImportExpression > Literal[value=/${upward.replaceAll("/", "\\x2F")}/]`, message }],
        },
      };
    });
  });
}

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "modules/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "off",
      "no-restricted-syntax": ["error", NO_DYNAMIC_PACKAGE_IMPORT],
    },
  },
  ...layerRules(),
  // The map page (src/web) runs in a browser: from the rest of src it may take types only
  // (the graph's shape), never code, which would drag server modules into the page's bundle.
  {
    files: ["src/web/**/*.ts"],
    rules: {
      "no-restricted-imports": "off",
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^(\\.\\./)+(cli|ops|node|remote|compute|hooks|consensus|mesh|config|util|main)(/|\\.|$)",
              allowTypeImports: true,
              message: "src/web is browser code: from the rest of src it may import types only (`import type`).",
            },
            { regex: "^node:", message: "src/web is browser code: no Node.js modules." },
          ],
        },
      ],
    },
  },
  {
    files: ["scripts/**/*.mjs", "eslint.config.js"],
    languageOptions: { globals: { process: "readonly", console: "readonly", URL: "readonly" } },
  },
);
