import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "modules/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "off",
      // In the esbuild bundle, a dynamic import() of a CommonJS package (etcd3, …) yields only
      // `default`: its named exports are undefined there while the sources under tsx work.
      // Import the package statically in a module of ours and import that module dynamically.
      "no-restricted-syntax": [
        "error",
        {
          selector: "ImportExpression > Literal[value=/^[^./]/]",
          message: "No dynamic import() of a package: in the bundle a CommonJS package exposes only `default` this way. Import it statically in one of our modules and import that module.",
        },
      ],
    },
  },
  {
    files: ["scripts/**/*.mjs", "eslint.config.js"],
    languageOptions: { globals: { process: "readonly", console: "readonly", URL: "readonly" } },
  },
);
