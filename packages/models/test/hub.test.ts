// Hub cache and downloads against a local stand-in for the hub (hub-server.ts): the cache layout
// Python's huggingface_hub reads, resume after dropped/stalled connections, errors, offline mode.
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { HubError, hubCacheDir, resolveModel, type ResolveOptions } from "../src/hub.js";
import { HF_PARITY } from "./fixtures.js";
import { startHubServer, type HubServer } from "./hub-server.js";

const GPT2 = "test-org/tiny-gpt2";
const CLIP = "test-org/tiny-clip";
const GPT2_DIR = join(HF_PARITY, "gpt2");
const CLIP_DIR = join(HF_PARITY, "clip");
const GPT2_FILES = ["config.json", "model.safetensors", "vocab.json", "merges.txt"];
const ENV_KEYS = ["HF_HOME", "HF_HUB_CACHE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT", "HF_HUB_DOWNLOAD_TIMEOUT"];

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

let server: HubServer;
let REFUSED: string; // an endpoint where nothing listens
let tmp: string;
let cache: string;
const savedEnv: Record<string, string | undefined> = {};
const opts = (extra: ResolveOptions = {}): ResolveOptions => ({ endpoint: server.url, cacheDir: cache, progress: false, ...extra });
const repoDir = (repo: string) => join(cache, `models--${repo.replace("/", "--")}`);
const rejection = async (p: Promise<unknown>): Promise<HubError> => {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(HubError);
  return e as HubError;
};
/** Every file under snapshots/ is byte-identical to the fixture of the same name. */
const snapshotsComplete = (repo: string, src: string) => {
  const snaps = join(repoDir(repo), "snapshots");
  for (const c of existsSync(snaps) ? readdirSync(snaps) : [])
    for (const f of readdirSync(join(snaps, c))) expect(readFileSync(join(snaps, c, f)).equals(readFileSync(join(src, f))), f).toBe(true);
};

beforeAll(async () => {
  server = await startHubServer({ [GPT2]: GPT2_DIR, [CLIP]: CLIP_DIR });
  const closed = await startHubServer({});
  REFUSED = closed.url;
  await closed.close();
});
afterAll(async () => server.close());
beforeEach(async () => {
  for (const k of ENV_KEYS) (savedEnv[k] = process.env[k]), delete process.env[k];
  tmp = await mkdtemp(join(tmpdir(), "eye-hub-"));
  cache = join(tmp, "hub");
  process.env.HF_HOME = join(tmp, "home"); // no token file from the machine's own login
  for (const k of Object.keys(server.options) as (keyof typeof server.options)[]) delete server.options[k];
  server.requests.length = 0;
});
afterEach(async () => {
  for (const k of ENV_KEYS) (savedEnv[k] === undefined ? delete process.env[k] : (process.env[k] = savedEnv[k]));
  await rm(tmp, { recursive: true, force: true });
});

describe("resolveModel: download into the huggingface_hub layout", () => {
  it("downloads byte-identical files as relative symlinks to blobs, then uses the cache without network", async () => {
    const dir = await resolveModel(GPT2, GPT2_FILES, opts());
    const commit = server.commit(GPT2);
    expect(dir).toBe(join(repoDir(GPT2), "snapshots", commit));
    expect(readFileSync(join(repoDir(GPT2), "refs", "main"), "utf8")).toBe(commit); // no newline, as Python writes it
    for (const f of GPT2_FILES) {
      const link = join(dir, f);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      const etag = f.endsWith(".safetensors")
        ? sha256(join(GPT2_DIR, f)) // LFS: X-Linked-Etag = sha256
        : createHash("sha1").update(`blob ${statSync(join(GPT2_DIR, f)).size}\0`).update(readFileSync(join(GPT2_DIR, f))).digest("hex");
      expect(readlinkSync(link)).toBe(`../../blobs/${etag}`);
      expect(readFileSync(link).equals(readFileSync(join(GPT2_DIR, f)))).toBe(true);
    }
    expect(readdirSync(join(repoDir(GPT2), "blobs")).filter((b) => b.includes("."))).toEqual([]); // no .incomplete left
    expect(server.requests[0]).toMatchObject({ method: "HEAD", path: `/${GPT2}/resolve/main/config.json` });
    expect(server.requests.some((r) => r.path === `/${GPT2}/resolve/${commit}/model.safetensors`)).toBe(true); // pinned after the first
    expect(server.requests.some((r) => r.method === "GET" && r.path.startsWith("/cdn/"))).toBe(true); // followed the 302

    const n = server.requests.length;
    expect(await resolveModel(GPT2, GPT2_FILES, opts())).toBe(dir);
    expect(await resolveModel(GPT2, ["config.json"], opts({ revision: commit }))).toBe(dir);
    expect(server.requests.length).toBe(n);
  });

  it("records optional files missing upstream in .no_exist, and fails clearly on a missing required one", async () => {
    const dir = await resolveModel(CLIP, ["config.json"], opts({ optional: ["tokenizer.json", "preprocessor_config.json"] }));
    expect(existsSync(join(dir, "preprocessor_config.json"))).toBe(true);
    expect(existsSync(join(repoDir(CLIP), ".no_exist", server.commit(CLIP), "tokenizer.json"))).toBe(true);
    const n = server.requests.length;
    await resolveModel(CLIP, ["config.json"], opts({ optional: ["tokenizer.json"] }));
    expect(server.requests.length).toBe(n);

    const e = await rejection(resolveModel(CLIP, ["config.json", "model.bin"], opts()));
    expect(e.kind).toBe("not-found");
    expect(e.message).toMatch(/file model\.bin not found in test-org\/tiny-clip at revision .*EntryNotFound/);
  });

  it("404 repository and revision name the id and revision", async () => {
    const e = await rejection(resolveModel("test-org/nope", ["config.json"], opts()));
    expect(e.message).toMatch(/repository test-org\/nope not found at http:\/\/127\.0\.0\.1:\d+ \(HTTP 404 RepoNotFound\).*HF_TOKEN/);
    expect(existsSync(join(repoDir("test-org/nope"), "snapshots"))).toBe(false);
    const r = await rejection(resolveModel(GPT2, ["config.json"], opts({ revision: "v9" })));
    expect(r.message).toMatch(/revision "v9" not found in test-org\/tiny-gpt2/);
  });

  it("401 without a token says to set HF_TOKEN; HF_TOKEN is sent as a Bearer token", async () => {
    server.options.token = "hf_secret";
    const e = await rejection(resolveModel(GPT2, ["config.json"], opts()));
    expect([e.kind, e.message]).toEqual(["auth", expect.stringMatching(/needs authentication.*HTTP 401.*set HF_TOKEN/)]);
    const wrong = await rejection(resolveModel(GPT2, ["config.json"], opts({ token: "hf_wrong" })));
    expect(wrong.message).toMatch(/token sent \(from HF_TOKEN\) was refused/);
    process.env.HF_TOKEN = "hf_secret";
    await resolveModel(GPT2, ["config.json", "model.safetensors"], opts());
    expect(server.requests.filter((r) => r.origin === "hub").at(-1)?.authorization).toBe("Bearer hf_secret");
  });

  it("keeps the token from a CDN on another origin", async () => {
    const two = await startHubServer({ [CLIP]: CLIP_DIR }, { token: "hf_secret", cdnElsewhere: true });
    try {
      await resolveModel(CLIP, ["model.safetensors"], opts({ endpoint: two.url, token: "hf_secret" }));
      const cdn = two.requests.filter((r) => r.origin === "cdn");
      expect(cdn.length).toBe(1);
      expect(cdn[0]?.authorization).toBeUndefined();
    } finally {
      await two.close();
    }
  });
});

describe("resolveModel: interrupted downloads", () => {
  it("resumes a connection dropped mid-file with a Range request", async () => {
    server.options.drop = { bytes: 2_000_000, times: 1 };
    const dir = await resolveModel(GPT2, ["model.safetensors"], opts());
    const ranged = server.requests.filter((r) => r.origin === "hub" && r.path.startsWith("/cdn/") && r.range);
    expect(ranged.length).toBe(1);
    expect(Number(/^bytes=(\d+)-$/.exec(ranged[0]?.range ?? "")?.[1])).toBeGreaterThan(0);
    expect(readFileSync(join(dir, "model.safetensors")).equals(readFileSync(join(GPT2_DIR, "model.safetensors")))).toBe(true);
  });

  it("is byte-identical for any cut point, whether or not the server honours Range", async () => {
    const size = statSync(join(CLIP_DIR, "model.safetensors")).size;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: size - 1 }), fc.boolean(), async (bytes, ignoreRange) => {
        cache = join(tmp, `hub-${bytes}-${ignoreRange}`);
        Object.assign(server.options, { drop: { bytes, times: 1 }, ignoreRange });
        const dir = await resolveModel(CLIP, ["model.safetensors"], opts());
        expect(readFileSync(join(dir, "model.safetensors")).equals(readFileSync(join(CLIP_DIR, "model.safetensors")))).toBe(true);
      }),
      { numRuns: 6 },
    );
  });

  it("a failed download leaves nothing under snapshots/, and the next call resumes the .incomplete blob", async () => {
    server.options.drop = { bytes: 1_500_000, times: 3 };
    const e = await rejection(resolveModel(GPT2, ["config.json", "model.safetensors"], opts({ retries: 1 })));
    expect(e.kind).toBe("network");
    const blob = join(repoDir(GPT2), "blobs", sha256(join(GPT2_DIR, "model.safetensors")));
    expect(existsSync(join(repoDir(GPT2), "snapshots", server.commit(GPT2), "model.safetensors"))).toBe(false);
    expect(existsSync(blob)).toBe(false);
    const partial = statSync(`${blob}.incomplete`).size;
    expect(partial).toBeGreaterThan(0);
    snapshotsComplete(GPT2, GPT2_DIR); // config.json, done before, is whole

    server.requests.length = 0;
    const dir = await resolveModel(GPT2, ["config.json", "model.safetensors"], opts()); // third drop, then resumed
    expect(server.requests.find((r) => r.path.startsWith("/cdn/"))?.range).toBe(`bytes=${partial}-`);
    expect(readFileSync(join(dir, "model.safetensors")).equals(readFileSync(join(GPT2_DIR, "model.safetensors")))).toBe(true);
  });

  it("resumes a stalled connection after HF_HUB_DOWNLOAD_TIMEOUT", async () => {
    process.env.HF_HUB_DOWNLOAD_TIMEOUT = "0.3";
    server.options.drop = { bytes: 100_000, times: 1, stall: true };
    const dir = await resolveModel(CLIP, ["model.safetensors"], opts());
    expect(server.requests.some((r) => r.range === "bytes=100000-")).toBe(true);
    expect(readFileSync(join(dir, "model.safetensors")).equals(readFileSync(join(CLIP_DIR, "model.safetensors")))).toBe(true);
  });
});

describe("resolveModel: offline, network failures, local folders", () => {
  it("offline uses a cached copy without network, and names what is missing otherwise", async () => {
    const e = await rejection(resolveModel(GPT2, ["config.json"], opts({ offline: true })));
    expect([e.kind, e.message]).toEqual(["offline", expect.stringMatching(/not in the cache .*offline mode is on \(HF_HUB_OFFLINE=1\).*pnpm eye download test-org\/tiny-gpt2/)]);
    expect(server.requests.length).toBe(0);

    const dir = await resolveModel(GPT2, ["config.json"], opts());
    const n = server.requests.length;
    process.env.HF_HUB_OFFLINE = "1";
    expect(await resolveModel(GPT2, ["config.json"], opts({ optional: ["tokenizer.json"] }))).toBe(dir);
    const missing = await rejection(resolveModel(GPT2, ["config.json", "vocab.json"], opts()));
    expect(missing.message).toMatch(/vocab\.json of test-org\/tiny-gpt2 \(revision main\) not in the cache .*offline mode is on/);
    expect(server.requests.length).toBe(n);
  });

  it("a refused connection names the endpoint and suggests HF_HUB_OFFLINE=1", async () => {
    const e = await rejection(resolveModel(GPT2, ["config.json"], opts({ endpoint: REFUSED })));
    expect([e.kind, e.message]).toEqual(["network", expect.stringMatching(new RegExp(`cannot reach ${REFUSED} \\(ECONNREFUSED\\).*HF_HUB_OFFLINE=1`))]);
  });

  it("uses a cache made by Python's huggingface_hub as is", async () => {
    const commit = "0123456789abcdef0123456789abcdef01234567";
    const repo = join(cache, "models--openai--clip-vit-base-patch16");
    await mkdir(join(repo, "blobs"), { recursive: true });
    await mkdir(join(repo, "refs"));
    await mkdir(join(repo, "snapshots", commit), { recursive: true });
    await writeFile(join(repo, "refs", "main"), commit);
    await writeFile(join(repo, "blobs", "4d4c9c1f0b2c4e1f"), '{"model_type": "clip"}');
    await symlink("../../blobs/4d4c9c1f0b2c4e1f", join(repo, "snapshots", commit, "config.json"));
    const dir = await resolveModel("openai/clip-vit-base-patch16", ["config.json"], opts({ endpoint: REFUSED }));
    expect(dir).toBe(join(repo, "snapshots", commit));
    expect(JSON.parse(readFileSync(join(dir, "config.json"), "utf8"))).toEqual({ model_type: "clip" });
    process.env.HF_HUB_CACHE = cache; // and through the environment, with the pinned commit
    expect(await resolveModel("openai/clip-vit-base-patch16", ["config.json"], { revision: commit, endpoint: REFUSED })).toBe(dir);
  });

  it("a plain directory is used as is, with a clear error for missing files or bad names", async () => {
    expect(await resolveModel(GPT2_DIR, ["config.json", "model.safetensors"], { optional: ["tokenizer.json"] })).toBe(GPT2_DIR);
    const e = await rejection(resolveModel(GPT2_DIR, ["config.json", "tokenizer.json", "x.bin"]));
    expect([e.kind, e.message]).toEqual(["missing", `hub: model directory ${GPT2_DIR} is missing tokenizer.json, x.bin; pass a directory that holds them, or a hub repo id such as "distilgpt2"`]);
    expect((await rejection(resolveModel("./no-such-dir", ["config.json"]))).message).toMatch(/model directory .*no-such-dir does not exist/);
    expect((await rejection(resolveModel(join(GPT2_DIR, "config.json"), ["config.json"]))).message).toMatch(/expected a model directory, got the file/);
    expect((await rejection(resolveModel("not a repo", ["config.json"]))).message).toMatch(/expected an existing directory or a hub repo id .*got "not a repo"/);
    expect((await rejection(resolveModel(GPT2, ["../escape"], opts()))).kind).toBe("invalid");
  });

  it("hubCacheDir: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub", () => {
    expect(hubCacheDir({ HF_HUB_CACHE: "/c", HF_HOME: "/h" })).toBe("/c");
    expect(hubCacheDir({ HF_HOME: "/h" })).toBe("/h/hub");
    expect(hubCacheDir({ HOME: "/ignored" }).endsWith(join(".cache", "huggingface", "hub"))).toBe(true);
    expect(hubCacheDir({ XDG_CACHE_HOME: "/x" })).toBe("/x/huggingface/hub");
  });
});
