/**
 * The console's routes on the daemon's own port: the page (`GET /`), its two static files, and
 * the live stream (`GET /api/stream`, server-sent events). The page is plain HTML, CSS and an ES
 * module read from core/console/assets: nothing to build. Everything else it shows comes from
 * the JSON API (`/api/plugins`, `/api/events`, `/api/runs`, `/api/catalog`).
 */
import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { consoleCookieHeader, consoleCredential, CONSOLE_PATH, STREAM_PATH } from "./auth.ts";
import type { ConsoleHub } from "./hub.ts";

export interface ConsoleRoutesOptions {
  hub: ConsoleHub;
  /** The API token in force (a config reload may change it); undefined: no authentication. */
  token: () => string | undefined;
}

const ASSETS: Record<string, { file: string; type: string }> = {
  "console.js": { file: "console.js", type: "text/javascript; charset=utf-8" },
  "console.css": { file: "console.css", type: "text/css; charset=utf-8" },
  "detail.js": { file: "detail.js", type: "text/javascript; charset=utf-8" },
  "charts.js": { file: "charts.js", type: "text/javascript; charset=utf-8" },
  "webhooks.js": { file: "webhooks.js", type: "text/javascript; charset=utf-8" },
};

/** The console as a route group of the HTTP server (its auth hook and error handler apply). */
export function consoleRoutes(options: ConsoleRoutesOptions): (app: FastifyInstance) => Promise<void> {
  return async (app) => registerConsole(app, options);
}

function registerConsole(app: FastifyInstance, options: ConsoleRoutesOptions): void {
  const page = readAsset("index.html");
  const assets = new Map(Object.entries(ASSETS).map(([name, asset]) => [name, { body: readAsset(asset.file), type: asset.type }]));

  // Admitted by the API's auth hook without a bearer token (see auth.ts): it checks for itself.
  app.get(CONSOLE_PATH, async (request, reply) => {
    const token = options.token();
    if (token !== undefined) {
      const credential = consoleCredential(request, token);
      if (credential === "none") return reply.code(401).header("cache-control", "no-store").type("text/html; charset=utf-8").send(LOGIN_PAGE);
      if (credential === "query") {
        // The token leaves the address bar and the history; the cookie carries on.
        return reply.header("set-cookie", consoleCookieHeader(token, request.protocol === "https")).header("cache-control", "no-store").redirect("/", 303);
      }
    }
    return reply.header("cache-control", "no-store").type("text/html; charset=utf-8").send(page);
  });

  app.get<{ Params: { file: string } }>("/console/:file", async (request, reply) => {
    const asset = assets.get(request.params.file);
    if (!asset) return reply.callNotFound();
    return reply.header("cache-control", "no-cache").type(asset.type).send(asset.body);
  });

  app.get(STREAM_PATH, (_request, reply) => {
    reply.hijack();
    options.hub.attach(reply.raw);
  });

  // Open streams would keep the server from closing.
  app.addHook("preClose", async () => options.hub.close());
}

function readAsset(name: string): string {
  return readFileSync(new URL(`./assets/${name}`, import.meta.url), "utf8");
}

const LOGIN_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>hookd console — token required</title>
<style>body{font:15px/1.5 system-ui,sans-serif;background:#f5f6f8;color:#1d2330;display:grid;place-items:center;min-height:90vh}
form{background:#fff;padding:2rem;border-radius:10px;box-shadow:0 1px 4px #0002;min-width:22rem}
input{width:100%;box-sizing:border-box;padding:.5rem;margin:.5rem 0 1rem;font:inherit}button{font:inherit;padding:.4rem 1rem}</style></head>
<body><form method="get" action="/"><h1>hookd console</h1>
<p>This daemon requires its API token (<code>server.token</code> or <code>HOOKD_TOKEN</code>).</p>
<label>Token <input name="token" type="password" autocomplete="current-password" autofocus></label>
<button type="submit">Open the console</button></form></body></html>
`;
