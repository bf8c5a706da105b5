// Node-RED settings for the collector throughput benchmark: headless, no editor, no
// projects, quiet logs. The flow itself is benchmarks/nodered/flow.template.json.
module.exports = {
    flowFile: "flows.json",
    flowFilePretty: false,
    credentialSecret: false,
    httpAdminRoot: false,
    httpNodeRoot: false,
    uiHost: "127.0.0.1",
    diagnostics: { enabled: false },
    telemetry: { enabled: false },
    runtimeState: { enabled: false },
    externalModules: { autoInstall: false },
    logging: { console: { level: "info", metrics: false, audit: false } },
    functionExternalModules: false,
};
