// The engine's README example runs as written against the built package.
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const here = fileURLToPath(new URL(".", import.meta.url));

it("packages/tensor/README.md example runs and prints the documented shape", () => {
  const readme = readFileSync(`${here}../packages/tensor/README.md`, "utf8");
  const code = /```js\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(code, "a ```js example in the README").toBeTruthy();
  const file = `${here}.readme-example.mjs`;
  writeFileSync(file, code!);
  try {
    const out = execFileSync(process.execPath, [file], { encoding: "utf8", cwd: here, timeout: 60_000 });
    const lines = out.trim().split("\n");
    expect(lines[0]).toBe("[ 4, 16 ] 1.0000");
    expect(lines[1]).toBe("0");
  } finally {
    rmSync(file, { force: true });
  }
});
