// The Hugging Face hub cache, laid out exactly as Python's huggingface_hub writes it, so that a
// cache filled by either side is used as is by the other:
//
//   $HF_HUB_CACHE/models--ORG--NAME/
//     refs/<revision>                 the commit hash the revision pointed to (no newline)
//     blobs/<etag>                    file contents; etag = sha256 for LFS files, git sha1 otherwise
//     blobs/<etag>.incomplete         a download in progress (resumed with a Range request)
//     snapshots/<commit>/<file>       RELATIVE symlink → ../../blobs/<etag>
//     .no_exist/<commit>/<file>       empty marker: the file does not exist upstream at that commit
import { existsSync, readFileSync, statSync } from "node:fs";
import { copyFile, mkdir, rename, rm, symlink, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, relative } from "node:path";

export type HubErrorKind = "invalid" | "missing" | "offline" | "not-found" | "auth" | "network" | "http";

export class HubError extends Error {
  /** What went wrong, for callers that branch on it: a bad id, a file missing from a local folder, … */
  readonly kind: HubErrorKind;
  constructor(message: string, kind: HubErrorKind = "http") {
    super(message);
    this.name = new.target.name;
    this.kind = kind;
  }
}

const env1 = (env: NodeJS.ProcessEnv, name: string): string | undefined => {
  const v = env[name];
  return v === undefined || v === "" ? undefined : v;
};
const expandHome = (p: string): string => (p === "~" || p.startsWith("~/") ? join(homedir(), p.slice(1)) : p);

/** $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface (as huggingface_hub). */
export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  const home = env1(env, "HF_HOME");
  if (home) return expandHome(home);
  return join(expandHome(env1(env, "XDG_CACHE_HOME") ?? join(homedir(), ".cache")), "huggingface");
}

/** $HF_HUB_CACHE (or the older $HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env1(env, "HF_HUB_CACHE") ?? env1(env, "HUGGINGFACE_HUB_CACHE");
  return dir ? expandHome(dir) : join(hfHome(env), "hub");
}

/** HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set to 1 / true / yes / on. */
export function offlineFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env1(env, "HF_HUB_OFFLINE") ?? env1(env, "TRANSFORMERS_OFFLINE") ?? "").toUpperCase();
  return ["1", "ON", "YES", "TRUE"].includes(v);
}

/** $HF_TOKEN, else the file `huggingface-cli login` writes ($HF_TOKEN_PATH, else $HF_HOME/token). */
export function tokenFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const token = env1(env, "HF_TOKEN") ?? env1(env, "HUGGING_FACE_HUB_TOKEN");
  if (token) return token.trim();
  const path = expandHome(env1(env, "HF_TOKEN_PATH") ?? join(hfHome(env), "token"));
  try {
    return readFileSync(path, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

const REPO_ID = /^(?:[\w.-]+\/)?[\w.-]{1,96}$/;
/** huggingface_hub's validate_repo_id: `name` or `org/name`, [A-Za-z0-9_.-], no "--" or "..", no ".git" end. */
export const isRepoId = (id: string): boolean =>
  REPO_ID.test(id) && !id.includes("--") && !id.includes("..") && !id.endsWith(".git") && !/^[.-]|[.-]$/.test(id.split("/").pop() ?? "");

const COMMIT = /^[0-9a-f]{40}$/;
export const isCommitHash = (rev: string): boolean => COMMIT.test(rev);

/** A file path inside a repository: relative, "/"-separated, no "." or ".." parts. */
export function checkRepoFile(file: string, repo: string): void {
  const parts = file.split("/");
  if (file === "" || file.startsWith("/") || file.includes("\\") || parts.some((p) => p === "" || p === "." || p === ".."))
    throw new HubError(`hub: expected a relative file path inside ${repo} (like "config.json" or "onnx/model.onnx"), got "${file}"`, "invalid");
}

/** One repository's folder in the cache and the paths inside it. */
export class RepoCache {
  readonly dir: string;
  constructor(readonly cacheDir: string, readonly repo: string) {
    this.dir = join(cacheDir, `models--${repo.replaceAll("/", "--")}`);
  }
  refPath = (revision: string): string => join(this.dir, "refs", revision);
  blobPath = (etag: string): string => join(this.dir, "blobs", etag);
  snapshotDir = (commit: string): string => join(this.dir, "snapshots", commit);
  snapshotPath = (commit: string, file: string): string => join(this.snapshotDir(commit), file);
  noExistPath = (commit: string, file: string): string => join(this.dir, ".no_exist", commit, file);

  /** The commit a revision points to: the revision itself when it is a hash, else refs/<revision>. */
  commitFor(revision: string): string | undefined {
    if (isCommitHash(revision)) return revision;
    try {
      const commit = readFileSync(this.refPath(revision), "utf8").trim();
      return isCommitHash(commit) ? commit : undefined;
    } catch {
      return undefined;
    }
  }

  /** "have": in the snapshot (its blob present); "absent": known not to exist upstream; else "unknown". */
  state(commit: string, file: string): "have" | "absent" | "unknown" {
    if (existsSync(this.snapshotPath(commit, file))) return "have"; // follows the symlink: a broken one is not "have"
    if (existsSync(this.noExistPath(commit, file))) return "absent";
    return "unknown";
  }

  hasBlob(etag: string): boolean {
    try {
      return statSync(this.blobPath(etag)).isFile();
    } catch {
      return false;
    }
  }

  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit || this.commitFor(revision) === commit) return;
    await atomicWrite(this.refPath(revision), commit); // no newline, as huggingface_hub writes it
  }

  async markAbsent(commit: string, file: string): Promise<void> {
    await atomicWrite(this.noExistPath(commit, file), "");
  }

  /** snapshots/<commit>/<file> → ../../blobs/<etag>, replaced atomically; a copy where symlinks are refused. */
  async link(commit: string, file: string, etag: string): Promise<void> {
    const target = this.snapshotPath(commit, file);
    const blob = this.blobPath(etag);
    await mkdir(dirname(target), { recursive: true });
    const tmp = `${target}.${process.pid}.link`;
    await rm(tmp, { force: true });
    try {
      await symlink(relative(dirname(target), blob), tmp);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "EPERM" && code !== "EACCES" && code !== "ENOTSUP") throw e;
      await copyFile(blob, tmp); // e.g. Windows without developer mode, as huggingface_hub falls back
    }
    await rename(tmp, target);
  }
}

/** Write a small file through a temporary name, so a reader never sees half of it. */
export async function atomicWrite(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}
