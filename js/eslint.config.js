// One lint configuration for both packages: typescript-eslint's recommended rules with type
// information for the sources, the plain recommended rules for the tests and examples.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "**/*.d.ts", "**/.work/**"] },
  js.configs.recommended,
  {
    files: ["**/*.ts", "**/*.tsx"],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
  },
  {
    files: ["**/*.mjs", "**/*.js"],
    languageOptions: {
      globals: {
        console: "readonly", process: "readonly", URL: "readonly", fetch: "readonly",
        setTimeout: "readonly", clearTimeout: "readonly", setInterval: "readonly",
        clearInterval: "readonly", AbortController: "readonly", TextDecoder: "readonly",
        TextEncoder: "readonly", Response: "readonly", Request: "readonly", Headers: "readonly",
        URLSearchParams: "readonly", Buffer: "readonly", crypto: "readonly", structuredClone: "readonly",
        window: "readonly", document: "readonly", sessionStorage: "readonly", localStorage: "readonly",
      },
    },
  },
);
