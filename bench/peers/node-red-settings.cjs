// Node-RED settings for the bench peer: the flow only, no editor or admin API (a production
// deployment of a finished flow), logs at warn so logging costs what hookd's info level costs.
// Port and user folder come from the command line (--port, --userDir).
module.exports = {
  flowFile: "flows.json",
  credentialSecret: false,
  httpAdminRoot: false,
  httpNodeRoot: "/",
  uiHost: "127.0.0.1",
  logging: { console: { level: "warn", metrics: false, audit: false } },
  functionExternalModules: false,
  externalModules: { autoInstall: false, palette: { allowInstall: false } },
  diagnostics: { enabled: false, ui: false },
  telemetry: { enabled: false },
  runtimeState: { enabled: false, ui: false },
};
