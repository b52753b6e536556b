/** Ferry's configuration: ferry.yaml (or .yml / .json) loaded and validated once, into typed objects. */
export type { DeviceConfig, DeviceKind, Endpoint, FerryConfig, LoadOptions, SyncConfig } from "./types.ts";
export type { FarmConfig, PrinterSettings } from "./types.ts";
export type { SyncCompare, SyncMode, SyncWhen } from "./types.ts";
export { ConfigError, type ConfigProblem } from "./errors.ts";
export { CONFIG_FILE_NAMES, findConfigFile, loadConfig, parseConfig } from "./load.ts";
export { describeConfig, type ConfigSummary } from "./redact.ts";
export { parseDuration, parsePrinterEntry } from "./schema.ts";
export { namesOrNone, nothingToDo } from "./nothing-to-do.ts";
export {
  DEFAULT_LISTEN,
  isLoopbackHttp,
  parseListen,
  type ListenAddress,
  type OidcConfig,
  type ServerConfig,
} from "./server.ts";
export {
  NOTIFY_EVENTS,
  type EmailChannel,
  type MqttChannel,
  type NotifyChannel,
  type NotifyConfig,
  type NotifyEvent,
  type NotifyRule,
  type Recipient,
  type WebhookChannel,
} from "./notify.ts";
export type {
  MirrorIdentity,
  OpcuaConfig,
  OpcuaMirrorConfig,
  OpcuaServerConfig,
  SecurityMode,
  SecurityPolicy,
} from "./opcua.ts";
