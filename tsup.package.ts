// The tsup build of every library package (each package's tsup.config.ts calls it): one ESM
// entry with type declarations; `external` lists the dependencies left as imports.
import { defineConfig } from "tsup";

export const packageBuild = (external: string[]) =>
  defineConfig({ entry: ["src/index.ts"], format: ["esm"], dts: true, sourcemap: true, clean: true, target: "node20", external });
