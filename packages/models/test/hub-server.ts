// A local stand-in for the Hugging Face hub on 127.0.0.1 (random port), for hub tests.
//
//   HEAD|GET /{repo}/resolve/{main|<commit>}/{file}
//     plain files: 200, ETag "<git blob sha1>", X-Repo-Commit, Content-Length
//     *.safetensors (LFS): 302 → {cdn}/cdn/<sha256>, X-Linked-Etag "<sha256>", X-Linked-Size, X-Repo-Commit
//     404 X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound; 401 when `token` is set and not sent
//   GET /cdn/<sha256>: the bytes, honouring `Range: bytes=N-` (206) unless `ignoreRange`
// Faults for the CDN route: `drop` sends `bytes` bytes then destroys the socket (or, with `stall`,
// goes silent) for the next `times` GETs. Every request is logged in `requests`.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

export interface HubServerOptions {
  /** Bearer token every /resolve/ request must carry (401 otherwise). */
  token?: string;
  /** Fault for the next `times` CDN GETs: `bytes` bytes, then a destroyed socket (or silence with `stall`). */
  drop?: { bytes: number; times: number; stall?: boolean };
  /** Answer ranged requests with 200 and the whole file. */
  ignoreRange?: boolean;
  /** Serve the CDN route from a second server on another port (another origin). */
  cdnElsewhere?: boolean;
}
export interface LoggedRequest {
  method: string;
  path: string;
  origin: "hub" | "cdn";
  range?: string;
  authorization?: string;
}
export interface HubServer {
  url: string;
  options: HubServerOptions;
  requests: LoggedRequest[];
  commit(repo: string): string;
  close(): Promise<void>;
}

interface RepoFile {
  bytes: Buffer;
  sha256: string;
  gitSha1: string;
}

const sha = (algo: string, ...parts: (string | Buffer)[]): string => {
  const h = createHash(algo);
  for (const p of parts) h.update(p);
  return h.digest("hex");
};

/** `repos`: repo id → a folder whose files the repo holds at its single commit. */
export async function startHubServer(repos: Record<string, string>, options: HubServerOptions = {}): Promise<HubServer> {
  const files = new Map<string, Map<string, RepoFile>>();
  const blobs = new Map<string, Buffer>();
  for (const [repo, dir] of Object.entries(repos)) {
    const m = new Map<string, RepoFile>();
    for (const name of readdirSync(dir)) {
      const bytes = readFileSync(join(dir, name));
      const f = { bytes, sha256: sha("sha256", bytes), gitSha1: sha("sha1", `blob ${bytes.length}\0`, bytes) };
      m.set(name, f);
      blobs.set(f.sha256, bytes);
    }
    files.set(repo, m);
  }
  const commit = (repo: string): string => sha("sha1", `commit of ${repo}`);
  const requests: LoggedRequest[] = [];
  let cdnUrl = "";

  const handle = (origin: "hub" | "cdn") => (req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const log: LoggedRequest = { method: req.method ?? "", path, origin };
    if (req.headers.range) log.range = req.headers.range;
    if (req.headers.authorization) log.authorization = req.headers.authorization;
    requests.push(log);
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(path);
    if (cdn) {
      const bytes = blobs.get(cdn[1] ?? "");
      if (!bytes) return end(res, 404, {});
      return serveBytes(req, res, bytes, { etag: `"${cdn[1]}"` }, options);
    }
    const m = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (!m) return end(res, 404, {});
    const [, repo = "", revision = "", file = ""] = m;
    const repoFiles = files.get(repo);
    if (!repoFiles) return end(res, 404, { "x-error-code": "RepoNotFound", "x-error-message": "Repository not found" });
    if (options.token !== undefined && req.headers.authorization !== `Bearer ${options.token}`)
      return end(res, 401, { "x-error-message": req.headers.authorization ? "Invalid credentials in Authorization header" : "Access to this model is restricted" });
    const c = commit(repo);
    if (revision !== "main" && revision !== c) return end(res, 404, { "x-error-code": "RevisionNotFound", "x-error-message": "Invalid rev id" });
    const f = repoFiles.get(file);
    if (!f) return end(res, 404, { "x-error-code": "EntryNotFound", "x-error-message": "Entry not found", "x-repo-commit": c });
    if (file.endsWith(".safetensors"))
      return end(res, 302, {
        location: `${cdnUrl}/cdn/${f.sha256}`,
        "x-repo-commit": c,
        "x-linked-etag": `"${f.sha256}"`,
        "x-linked-size": String(f.bytes.length),
        etag: `"${sha("sha1", "lfs pointer", f.sha256)}"`,
      });
    return serveBytes(req, res, f.bytes, { etag: `"${f.gitSha1}"`, "x-repo-commit": c }, {});
  };

  const hub = createServer(handle("hub"));
  const url = await listen(hub);
  const cdnServer = options.cdnElsewhere ? createServer(handle("cdn")) : undefined;
  cdnUrl = cdnServer ? await listen(cdnServer) : url;
  return {
    url,
    options,
    requests,
    commit,
    close: async () => {
      for (const s of [hub, cdnServer]) {
        if (!s) continue;
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    },
  };
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
}

function end(res: ServerResponse, status: number, headers: Record<string, string>): void {
  res.writeHead(status, { "content-length": "0", ...headers });
  res.end();
}

function serveBytes(req: IncomingMessage, res: ServerResponse, bytes: Buffer, headers: Record<string, string>, options: HubServerOptions): void {
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
  let from = 0;
  if (range && !options.ignoreRange) {
    from = Number(range[1]);
    if (from >= bytes.length) return end(res, 416, { "content-range": `bytes */${bytes.length}` });
  }
  const body = bytes.subarray(from);
  const status = from > 0 ? 206 : 200;
  res.writeHead(status, {
    ...headers,
    "content-length": String(body.length),
    "accept-ranges": "bytes",
    ...(status === 206 ? { "content-range": `bytes ${from}-${bytes.length - 1}/${bytes.length}` } : {}),
  });
  if (req.method === "HEAD") return void res.end();
  const drop = options.drop;
  if (drop && drop.times > 0) {
    drop.times--;
    res.write(body.subarray(0, drop.bytes), () => {
      if (!drop.stall) res.destroy();
    });
    return;
  }
  res.end(body);
}
