/**
 * The HTTP ceiling: a bare fastify route that parses the JSON body, does the handler's work
 * (the same no-op check every handler in the bench does) and answers 202 with an id, as hookd
 * does. No validation, no storage, no isolation: what any Node HTTP service costs at least.
 * Prints `{"port": N}` once it listens.
 */
import Fastify from "fastify";

const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
let next = 0;

app.post("/events/:name", async (request, reply) => {
  const event = request.body as { did?: number } | null;
  if (event && typeof event.did === "number" && event.did < 0) throw new Error("negative did");
  reply.code(202);
  return { id: String(++next) };
});

await app.listen({ host: "127.0.0.1", port: Number(process.env.PORT ?? 0) });
const address = app.server.address();
process.stdout.write(`${JSON.stringify({ port: typeof address === "object" && address ? address.port : 0 })}\n`);
process.on("SIGTERM", () => void app.close().finally(() => process.exit(0)));
process.on("disconnect", () => process.exit(0));
