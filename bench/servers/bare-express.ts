/**
 * The intake benchmark's baseline: the least a webhook receiver on express can do —
 * parse the JSON body and answer 202. No auth, no validation, no journal.
 *
 *   node --import tsx bench/servers/bare-express.ts PORT
 */
import express from "express";

const port = Number(process.argv[2]);
const app = express();
app.disable("x-powered-by");
app.set("etag", false);
app.get("/healthz", (_req, res) => {
  res.json({ status: "ok" });
});
app.post("/api/v1/alerts", express.json({ limit: 1_048_576 }), (_req, res) => {
  res.status(202).json({ accepted: 1 });
});
const server = app.listen(port, "127.0.0.1");
const stop = (): void => {
  server.close();
  server.closeAllConnections();
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
