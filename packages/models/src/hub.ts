// Model ids ("distilgpt2", "openai/clip-vit-base-patch16") or plain directories → a local folder
// holding the files a loader needs, through the Hugging Face hub cache (hub-cache.ts: layout shared
// with Python's huggingface_hub) and downloads from $HF_ENDPOINT (hub-download.ts).
//
//   resolveModel("openai/clip-vit-base-patch16", ["config.json", "model.safetensors"])
//     → ~/.cache/huggingface/hub/models--openai--clip-vit-base-patch16/snapshots/<commit>
//
// A cache hit (refs/<revision> → a snapshot holding every file) makes no network request.
// Environment, as huggingface_hub: HF_HUB_CACHE / HF_HOME, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE,
// HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT (seconds, default 10).
import { statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { checkRepoFile, HubError, hubCacheDir, isRepoId, offlineFromEnv, RepoCache, tokenFromEnv } from "./hub-cache.js";
import { downloadBlob, headFile, type HttpContext } from "./hub-download.js";

export { HubError, hubCacheDir } from "./hub-cache.js";
export type { HubErrorKind } from "./hub-cache.js";

export interface ResolveOptions {
  /** Branch, tag or commit hash (default "main"). */
  revision?: string;
  /** Default $HF_ENDPOINT, else https://huggingface.co. */
  endpoint?: string;
  /** Default $HF_TOKEN, else the token `huggingface-cli login` saved. Sent only to the endpoint's origin. */
  token?: string;
  /** No network at all (default: HF_HUB_OFFLINE=1). */
  offline?: boolean;
  /** Default hubCacheDir(). */
  cacheDir?: string;
  /** Progress bar on stderr: default when stderr is a TTY; true forces it, false silences it. */
  progress?: boolean;
  /** Files that may be missing upstream (404) without error, e.g. tokenizer.json; fetched as well as `files`. */
  optional?: string[];
  /** Extra attempts after a dropped or stalled connection, each resuming where the last stopped (default 5). */
  retries?: number;
}

const DEFAULT_ENDPOINT = "https://huggingface.co";

const seconds = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v * 1000 : fallback * 1000;
};

/** A plain directory (absolute, ./ ../ ~, or an existing relative path), or null for a hub id. */
function localDir(idOrDir: string): string | null {
  const looksLikePath = isAbsolute(idOrDir) || /^(\.{1,2}|~)([/\\]|$)/.test(idOrDir);
  const path = idOrDir === "~" || idOrDir.startsWith("~/") ? join(homedir(), idOrDir.slice(1)) : resolve(idOrDir);
  let isDir: boolean | undefined;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    isDir = undefined;
  }
  if (isDir === undefined && !looksLikePath) {
    if (isRepoId(idOrDir)) return null;
    throw new HubError(`hub: expected an existing directory or a hub repo id (like "gpt2" or "openai/clip-vit-base-patch16"), got "${idOrDir}"`, "invalid");
  }
  if (isDir === undefined) throw new HubError(`hub: model directory ${path} does not exist; pass an existing directory or a hub repo id such as "distilgpt2"`, "invalid");
  if (!isDir) throw new HubError(`hub: expected a model directory, got the file ${path}; pass the folder that holds it`, "invalid");
  return path;
}

/**
 * A model id or a plain directory path → a local directory holding `files` (the snapshot folder for
 * hub ids), downloading what is missing. Files in `opts.optional` may be absent upstream (or, offline,
 * from the cache); the caller checks for them in the returned folder.
 */
export async function resolveModel(idOrDir: string, files: string[], opts: ResolveOptions = {}): Promise<string> {
  const optional = new Set(opts.optional ?? []);
  const wanted = [...new Set([...files, ...optional])];
  const required = new Set(files.filter((f) => !optional.has(f)));

  const local = localDir(idOrDir);
  if (local !== null) {
    const missing = [...required].filter((f) => !isFile(join(local, f)));
    if (missing.length > 0)
      throw new HubError(`hub: model directory ${local} is missing ${missing.join(", ")}; pass a directory that holds them, or a hub repo id such as "distilgpt2"`, "missing");
    return local;
  }

  const repo = idOrDir;
  for (const f of wanted) checkRepoFile(f, repo);
  const revision = opts.revision ?? "main";
  const cache = new RepoCache(opts.cacheDir ?? hubCacheDir(), repo);
  const offline = opts.offline ?? offlineFromEnv();
  // Files the cache cannot answer at a commit: unknown ones, and required ones marked absent.
  const unknownAt = (commit: string): string[] =>
    wanted.filter((f) => {
      const s = cache.state(commit, f);
      return s === "unknown" || (s === "absent" && required.has(f));
    });

  const commit0 = cache.commitFor(revision);
  const todo0 = commit0 ? unknownAt(commit0) : wanted;
  if (commit0 && todo0.length === 0) return cache.snapshotDir(commit0);

  const fixOffline = `unset HF_HUB_OFFLINE (or run \`pnpm eye download ${repo}\` while online)`;
  if (offline) {
    if (!commit0)
      throw new HubError(`hub: ${repo} (revision ${revision}) is not in the cache ${cache.cacheDir} and offline mode is on (HF_HUB_OFFLINE=1); ${fixOffline}`, "offline");
    const missing = todo0.filter((f) => required.has(f));
    if (missing.length > 0)
      throw new HubError(`hub: ${missing.join(", ")} of ${repo} (revision ${revision}) not in the cache ${cache.snapshotDir(commit0)} and offline mode is on (HF_HUB_OFFLINE=1); ${fixOffline}`, "offline");
    return cache.snapshotDir(commit0); // optional files the cache knows nothing about are skipped offline
  }

  const ctx: HttpContext = {
    repo,
    endpoint: (opts.endpoint ?? (process.env.HF_ENDPOINT || DEFAULT_ENDPOINT)).replace(/\/+$/, ""),
    cacheDir: cache.cacheDir,
    progress: opts.progress ?? process.stderr.isTTY === true,
    retries: opts.retries ?? 5,
    headTimeoutMs: seconds("HF_HUB_ETAG_TIMEOUT", 10),
    readTimeoutMs: seconds("HF_HUB_DOWNLOAD_TIMEOUT", 10),
  };
  const token = opts.token ?? tokenFromEnv();
  if (token) ctx.token = token;
  await mkdir(join(cache.dir, "blobs"), { recursive: true });

  let commit: string | undefined; // fixed by the first answer: every later file is asked for at that commit
  for (const file of [...todo0, ...wanted.filter((f) => !todo0.includes(f))]) {
    if (commit !== undefined && !unknownAt(commit).includes(file)) continue;
    let head;
    try {
      head = await headFile(ctx, commit ?? revision, file);
    } catch (e) {
      // Offline by accident, with every required file cached: go on with the cache, as huggingface_hub does.
      if (e instanceof HubError && e.kind === "network" && commit === undefined && commit0 && todo0.every((f) => !required.has(f))) {
        process.stderr.write(`${e.message}\nhub: using the cached ${cache.snapshotDir(commit0)} without ${todo0.join(", ")}\n`);
        return cache.snapshotDir(commit0);
      }
      throw e;
    }
    if (commit === undefined && head.commit !== undefined) {
      commit = head.commit;
      await cache.writeRef(revision, commit);
    }
    if (head.kind === "absent") {
      if (required.has(file)) throw head.error;
      if (head.commit !== undefined) await cache.markAbsent(head.commit, file);
      continue;
    }
    if (!cache.hasBlob(head.etag)) await downloadBlob(ctx, commit ?? revision, file, head.url, head.size, cache.blobPath(head.etag));
    await cache.link(commit ?? head.commit, file, head.etag);
  }
  if (commit === undefined)
    throw new HubError(`hub: none of ${wanted.join(", ")} exists in ${repo} at ${ctx.endpoint} (revision ${revision})`, "not-found");
  return cache.snapshotDir(commit);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
