// `eye download` against the local hub stand-in, with HF_ENDPOINT and HF_HUB_CACHE pointing at it
// and at a temporary cache.
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "citty";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import download from "../src/commands/download.js";
import { HF_PARITY } from "../../../packages/models/test/fixtures.js";
import { startHubServer, type HubServer } from "../../../packages/models/test/hub-server.js";

const ENV_KEYS = ["HF_ENDPOINT", "HF_HUB_CACHE", "HF_HOME", "HF_TOKEN", "HF_HUB_OFFLINE", "INIT_CWD"];
let server: HubServer;
let cache: string;
const saved: Record<string, string | undefined> = {};
let out: string[];
let err: string[];

const eye = (...rawArgs: string[]) => runCommand(download, { rawArgs });
const snapshot = (repo: string) => join(cache, `models--${repo.replace("/", "--")}`, "snapshots", server.commit(repo));

beforeAll(async () => {
  server = await startHubServer({ "test-org/tiny-gpt2": join(HF_PARITY, "gpt2"), "test-org/tiny-clip": join(HF_PARITY, "clip") });
});
afterAll(async () => server.close());
beforeEach(async () => {
  for (const k of ENV_KEYS) (saved[k] = process.env[k]), delete process.env[k];
  cache = await mkdtemp(join(tmpdir(), "eye-download-"));
  Object.assign(process.env, { HF_ENDPOINT: server.url, HF_HUB_CACHE: cache, HF_HOME: join(cache, "home") });
  server.requests.length = 0;
  out = [];
  err = [];
  vi.spyOn(console, "log").mockImplementation((...a: unknown[]) => void out.push(a.join(" ")));
  vi.spyOn(console, "error").mockImplementation((...a: unknown[]) => void err.push(a.join(" ")));
});
afterEach(async () => {
  vi.restoreAllMocks();
  for (const k of ENV_KEYS) (saved[k] === undefined ? delete process.env[k] : (process.env[k] = saved[k]));
  await rm(cache, { recursive: true, force: true });
});

describe("eye download", () => {
  it("fetches weights, config and the tokenizer/preprocessor files each repo has, and prints where they landed", async () => {
    await eye("test-org/tiny-gpt2", "test-org/tiny-clip", "--quiet");
    expect(out).toEqual([`test-org/tiny-gpt2 → ${snapshot("test-org/tiny-gpt2")}`, `test-org/tiny-clip → ${snapshot("test-org/tiny-clip")}`]);
    expect(readdirSync(snapshot("test-org/tiny-gpt2")).sort()).toEqual(
      ["config.json", "generation_config.json", "merges.txt", "model.safetensors", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"],
    );
    expect(readdirSync(snapshot("test-org/tiny-clip")).sort()).toEqual(["config.json", "model.safetensors", "preprocessor_config.json"]);

    server.requests.length = 0; // a second run, online or offline, is served from the cache
    await eye("test-org/tiny-gpt2");
    process.env.HF_HUB_OFFLINE = "1";
    await eye("test-org/tiny-clip");
    expect(server.requests).toEqual([]);
    expect(out.slice(2)).toEqual(out.slice(0, 2));
  });

  it("reports each failure, still fetches the others, and fails overall", async () => {
    await expect(eye("test-org/missing", "test-org/tiny-clip", "--quiet")).rejects.toThrow(/download: 1 of 2 models failed: test-org\/missing/);
    expect(err.join("\n")).toMatch(/repository test-org\/missing not found at http:\/\/127\.0\.0\.1:\d+ \(HTTP 404 RepoNotFound\)/);
    expect(out).toEqual([`test-org/tiny-clip → ${snapshot("test-org/tiny-clip")}`]);
    expect(existsSync(join(cache, "models--test-org--missing", "snapshots"))).toBe(false);
  });

  it("checks a local folder instead of downloading it", async () => {
    process.env.INIT_CWD = HF_PARITY;
    await eye("gpt2");
    expect(out).toEqual([`gpt2 → ${join(HF_PARITY, "gpt2")}`]);
    expect(server.requests).toEqual([]);
  });
});
