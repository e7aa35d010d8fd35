// Shared with the other packages: ../../vitest.package.ts.
export { default } from "../../vitest.package.js";
