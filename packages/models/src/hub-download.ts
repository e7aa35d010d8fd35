// HTTP side of the hub cache, following huggingface_hub's hf_hub_download:
//   1. HEAD {endpoint}/{repo}/resolve/{revision}/{file} (relative redirects followed, absolute ones
//      kept: the hub redirects LFS files to a CDN) → X-Repo-Commit, X-Linked-Etag or ETag (quotes
//      and W/ stripped), X-Linked-Size or Content-Length, and the URL to GET.
//   2. GET into blobs/<etag>.incomplete, appending with `Range: bytes=N-` when part of it is there
//      (a 200 answer means the server ignored the range: start over); a dropped connection or a
//      stalled one (HF_HUB_DOWNLOAD_TIMEOUT seconds without data) is resumed up to `retries` times.
//   3. rename to blobs/<etag> once the size matches: a half file never has a final name.
// Authorization goes only to the endpoint's own origin, never to a CDN on another host.
import { open, rename, rm, stat } from "node:fs/promises";
import cliProgress from "cli-progress";
import { HubError } from "./hub-cache.js";

export interface HttpContext {
  repo: string;
  endpoint: string; // no trailing slash
  token?: string;
  cacheDir: string;
  progress: boolean;
  retries: number; // extra attempts after a dropped connection
  headTimeoutMs: number;
  readTimeoutMs: number;
}

export type HeadResult =
  | { kind: "file"; commit: string; etag: string; size?: number; url: string }
  | { kind: "absent"; commit?: string; error: HubError }; // 404 EntryNotFound

const USER_AGENT = `llms-eye/0.1; node/${process.versions.node}`;

export const fileUrl = (ctx: HttpContext, revision: string, file: string): string =>
  `${ctx.endpoint}/${ctx.repo}/resolve/${encodeURIComponent(revision)}/${file.split("/").map(encodeURIComponent).join("/")}`;

function headers(ctx: HttpContext, url: string, extra: Record<string, string> = {}): Record<string, string> {
  const h: Record<string, string> = { "user-agent": USER_AGENT, "accept-encoding": "identity", ...extra };
  if (ctx.token && new URL(url).origin === new URL(ctx.endpoint).origin) h.authorization = `Bearer ${ctx.token}`;
  return h;
}

/** fetch with a timeout; network failures become a HubError of kind "network". */
async function send(ctx: HttpContext, file: string, url: string, init: RequestInit, signal: AbortSignal): Promise<Response> {
  try {
    return await fetch(url, { ...init, redirect: "manual", signal });
  } catch (e) {
    throw networkError(ctx, file, url, e);
  }
}

/** A failed connection (or, with `midFile`, one lost during the body) as a HubError of kind "network". */
export function networkError(ctx: HttpContext, file: string, url: string, e: unknown, midFile = false): HubError {
  const err = e as { name?: string; message?: string; code?: string; cause?: { code?: string; message?: string } };
  const why =
    err.name === "AbortError" || err.name === "TimeoutError"
      ? `no answer within the timeout (HF_HUB_ETAG_TIMEOUT / HF_HUB_DOWNLOAD_TIMEOUT)`
      : (err.cause?.code ?? err.code ?? err.cause?.message ?? err.message ?? String(e));
  const host = new URL(url).origin;
  if (midFile)
    return new HubError(`hub: connection to ${host} lost (${why}) while downloading ${ctx.repo}/${file}; run again to resume the download`, "network");
  return new HubError(
    `hub: cannot reach ${host} (${why}) while fetching ${ctx.repo}/${file}; check the network or HF_ENDPOINT ` +
      `(now ${ctx.endpoint}), or set HF_HUB_OFFLINE=1 to use only the files cached in ${ctx.cacheDir}`,
    "network",
  );
}

/** A clear HubError for a non-2xx answer, using the hub's X-Error-Code / X-Error-Message headers. */
export function httpError(ctx: HttpContext, res: Response, revision: string, file: string, url: string): HubError {
  const code = res.headers.get("x-error-code") ?? "";
  const said = res.headers.get("x-error-message");
  const tag = `HTTP ${res.status}${code ? ` ${code}` : ""}`;
  const tail = said ? ` (server: ${said})` : "";
  const { repo, endpoint } = ctx;
  if (res.status === 401)
    return new HubError(
      `hub: ${repo} needs authentication at ${endpoint} (${tag}): it is private or gated, or the id is wrong; ` +
        (ctx.token ? `the token sent (from HF_TOKEN) was refused: check it has read access` : `set HF_TOKEN to a token with read access (huggingface.co/settings/tokens)`) +
        tail,
      "auth",
    );
  if (res.status === 403)
    return new HubError(
      code === "GatedRepo"
        ? `hub: access to ${repo} is restricted (${tag}): accept its conditions at ${endpoint}/${repo} with the account whose token is in HF_TOKEN${tail}`
        : `hub: access to ${repo}/${file} refused (${tag}): set HF_TOKEN to a token with read access to this private or gated repository${tail}`,
      "auth",
    );
  if (res.status === 404 && code === "RepoNotFound")
    return new HubError(
      `hub: repository ${repo} not found at ${endpoint} (${tag}); check the id (e.g. "distilgpt2", "openai/clip-vit-base-patch16"), or set HF_TOKEN if it is private${tail}`,
      "not-found",
    );
  if (res.status === 404 && code === "RevisionNotFound")
    return new HubError(`hub: revision "${revision}" not found in ${repo} at ${endpoint} (${tag}); check the revision (a branch, tag or commit hash)${tail}`, "not-found");
  if (res.status === 404)
    return new HubError(`hub: file ${file} not found in ${repo} at revision ${revision} (${tag} from ${url}); check the file name and revision${tail}`, "not-found");
  return new HubError(`hub: ${tag} ${res.statusText} from ${url} while fetching ${repo}/${file}${tail}`, "http");
}

const normEtag = (etag: string | null): string | undefined => {
  const e = etag?.replace(/^W\//, "").replaceAll('"', "").trim();
  return e ? e : undefined;
};

/** Step 1: what the file is (commit, etag, size) and where to GET it; "absent" for a 404 EntryNotFound. */
export async function headFile(ctx: HttpContext, revision: string, file: string): Promise<HeadResult> {
  let url = fileUrl(ctx, revision, file);
  for (let hop = 0; ; hop++) {
    const res = await send(ctx, file, url, { method: "HEAD", headers: headers(ctx, url) }, AbortSignal.timeout(ctx.headTimeoutMs));
    const location = res.headers.get("location");
    const relative = location !== null && !/^[a-z][a-z0-9+.-]*:\/\//i.test(location);
    if (res.status >= 300 && res.status < 400 && relative && hop < 10) {
      url = new URL(location, url).href; // e.g. a renamed repository
      continue;
    }
    const commit = res.headers.get("x-repo-commit") ?? undefined;
    if (res.status === 404 && (res.headers.get("x-error-code") ?? "EntryNotFound") === "EntryNotFound")
      return { kind: "absent", ...(commit ? { commit } : {}), error: httpError(ctx, res, revision, file, url) };
    if (res.status >= 400) throw httpError(ctx, res, revision, file, url);
    const etag = normEtag(res.headers.get("x-linked-etag") ?? res.headers.get("etag"));
    if (!commit || !etag)
      throw new HubError(
        `hub: expected X-Repo-Commit and ETag headers from ${url}, got ${commit ? "" : "no X-Repo-Commit "}${etag ? "" : "no ETag"}; is HF_ENDPOINT (${ctx.endpoint}) a Hugging Face hub?`,
        "http",
      );
    const sizeText = res.headers.get("x-linked-size") ?? res.headers.get("content-length");
    const size = sizeText !== null && /^\d+$/.test(sizeText) ? Number(sizeText) : undefined;
    const get = location !== null && res.status >= 300 && res.status < 400 ? new URL(location, url).href : url;
    return { kind: "file", commit, etag, ...(size !== undefined ? { size } : {}), url: get };
  }
}

const fileSize = async (path: string): Promise<number> => {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
};

/** Steps 2 and 3: the file's bytes into `blobPath`, resuming `blobPath.incomplete` if present. */
export async function downloadBlob(ctx: HttpContext, revision: string, file: string, url: string, size: number | undefined, blobPath: string): Promise<void> {
  const part = `${blobPath}.incomplete`;
  for (let attempt = 0; ; attempt++) {
    let have = await fileSize(part);
    if (size !== undefined && have > size) {
      await rm(part, { force: true }); // longer than the file: not ours to resume
      have = 0;
    }
    if (size === undefined || have < size) {
      try {
        await getInto(ctx, revision, file, url, part, have, size);
      } catch (e) {
        if (!(e instanceof HubError) || e.kind !== "network" || attempt >= ctx.retries) throw e;
        if (ctx.progress) process.stderr.write(`${e.message}\nhub: resuming ${file} (attempt ${attempt + 2} of ${ctx.retries + 1})\n`);
        await new Promise((r) => setTimeout(r, Math.min(4000, 250 * 2 ** attempt)));
        continue;
      }
    }
    const got = await fileSize(part);
    if (size === undefined || got === size) break;
    if (attempt >= ctx.retries)
      throw new HubError(`hub: ${ctx.repo}/${file} ended after ${got} of ${size} bytes from ${url}; run again to resume the download`, "network");
  }
  await rename(part, blobPath);
}

/** One GET from byte `from` on, appended to `part`; throws a HubError (kind "network" if resumable). */
async function getInto(ctx: HttpContext, revision: string, file: string, start: string, part: string, from: number, size: number | undefined): Promise<void> {
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(), ctx.readTimeoutMs);
  const alive = () => {
    clearTimeout(timer);
    timer = setTimeout(() => abort.abort(), ctx.readTimeoutMs);
  };
  let url = start;
  try {
    let res: Response;
    for (let hop = 0; ; hop++) {
      const range: Record<string, string> = from > 0 ? { range: `bytes=${from}-` } : {};
      res = await send(ctx, file, url, { method: "GET", headers: headers(ctx, url, range) }, abort.signal);
      const location = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && location !== null && hop < 10) {
        await res.body?.cancel();
        url = new URL(location, url).href;
        continue;
      }
      if (res.status === 416 && from > 0) {
        await res.body?.cancel();
        await rm(part, { force: true }); // the partial file does not fit what the server has: start over
        from = 0;
        continue;
      }
      break;
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw httpError(ctx, res, revision, file, url);
    }
    const contentRange = res.headers.get("content-range");
    if (from > 0 && (res.status !== 206 || !contentRange?.startsWith(`bytes ${from}-`))) from = 0; // range ignored
    const bar = progressBar(ctx.progress, file, size, from);
    const fh = await open(part, from > 0 ? "a" : "w");
    try {
      if (res.body === null) throw new HubError(`hub: empty body from ${url} for ${ctx.repo}/${file}`, "network");
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        alive();
        await fh.write(chunk);
        bar.advance(chunk.byteLength);
      }
    } catch (e) {
      throw e instanceof HubError ? e : networkError(ctx, file, url, e, true);
    } finally {
      await fh.close();
      bar.stop();
    }
  } finally {
    clearTimeout(timer);
  }
}

const human = (n: number): string => {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) (n /= 1000), i++;
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
};

/** A cli-progress bar on stderr (bytes, rate, ETA), or nothing. */
function progressBar(show: boolean, file: string, size: number | undefined, from: number): { advance(n: number): void; stop(): void } {
  if (!show) return { advance() {}, stop() {} };
  const bar = new cliProgress.SingleBar({
    format: `${file} |{bar}| {percentage}% {done}/{size} {rate} ETA {eta_formatted}`,
    stream: process.stderr,
    noTTYOutput: true,
    notTTYSchedule: 2000,
    hideCursor: true,
    barsize: 30,
  });
  const t0 = Date.now();
  let done = from;
  const payload = () => ({ done: human(done), size: size === undefined ? "?" : human(size), rate: `${human(((done - from) * 1000) / Math.max(1, Date.now() - t0))}/s` });
  bar.start(size ?? 0, from, payload());
  return {
    advance(n) {
      done += n;
      bar.update(done, payload());
    },
    stop() {
      bar.stop();
    },
  };
}
