/**
 * Ferry's own OPC UA server (docs/opcua.md, docs/adr/0022): every farm printer under the
 * Machinery `Machines` folder (OPC 40001-1), with its `Identification` add-in and the same
 * variables the mirror writes (values.ts); `Ferry/Jobs` (one object per live job) and `Ferry/Queue`.
 * Operators call `Pause`, `Resume`, `Cancel` and `MarkBedClear` on a printer; sessions sign in with
 * Ferry's accounts (src/auth), and only operators and admins may call. Anonymous sessions are
 * refused unless `anonymous: true`, and may then only read. (One file past 400 lines: the tree
 * it keeps and the methods that act on it share the node maps.)
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { OPCUACertificateManager } from "node-opcua-certificate-manager";
import {
  DataType,
  LocalizedText,
  MessageSecurityMode,
  NodeId,
  SecurityPolicy,
  StatusCodes,
  Variant,
  VariantArrayType,
} from "node-opcua-client";
import {
  makeRoles,
  type Namespace,
  type ISessionContext,
  type UAMethod,
  type UAObject,
  type UAVariable,
} from "node-opcua-address-space";
import { OPCUAServer } from "node-opcua-server";
import { UserNameIdentityToken } from "node-opcua-types";
import { nodesets } from "node-opcua-nodesets";
import type { Accounts } from "../auth/accounts.ts";
import { roleAllows, type Role } from "../auth/roles.ts";
import { DEFAULT_OPCUA_NAMESPACE, type OpcuaServerConfig } from "../config/opcua.ts";
import { FerryError, toFerryError } from "../core/errors.ts";
import type { Logger } from "../core/logger.ts";
import type { FarmPicture } from "./bridge.ts";
import {
  PRINTER_FOLDERS,
  PRINTER_VARIABLES,
  sameValue,
  type JobLike,
  type PrinterValues,
  type Value,
  type ValueType,
} from "./values.ts";

/** What the server asks of the farm (src/farm/farm.ts satisfies it); `actor` is the OPC UA user. */
export interface FarmControl {
  pause(id: string, actor: string): Promise<unknown>;
  resume(id: string, actor: string): Promise<unknown>;
  cancel(id: string, actor: string, reason?: string): Promise<unknown>;
  markBedClear(printer: string, actor: string): Promise<void>;
}

export interface EmbeddedServerOptions {
  config: OpcuaServerConfig;
  /** data_dir/opcua: the server's certificate lives under server-pki/. */
  dir: string;
  farm: FarmControl;
  accounts: Pick<Accounts, "passwordIdentity" | "getUser">;
  logger: Logger;
  /** This node's name, in the server's application URI. */
  node: string;
}

const DATA_TYPES: Record<ValueType, DataType> = {
  String: DataType.String,
  Double: DataType.Double,
  DateTime: DataType.DateTime,
  Boolean: DataType.Boolean,
};

/** Ferry's roles as OPC UA's well-known roles (OPC 10000-3 4.9.2). */
const ROLE_IDS: Record<Role, string> = {
  viewer: "Observer",
  user: "AuthenticatedUser",
  operator: "Operator",
  admin: "ConfigureAdmin",
};

const JOB_VARIABLES = [
  ["state", "String"],
  ["file", "String"],
  ["owner", "String"],
  ["printer", "String"],
  ["priority", "Double"],
  ["progress", "Double"],
  ["created", "DateTime"],
] as const satisfies readonly (readonly [string, ValueType])[];

type Operation = "Pause" | "Resume" | "Cancel" | "MarkBedClear";
const OPERATIONS: Operation[] = ["Pause", "Resume", "Cancel", "MarkBedClear"];

interface PrinterNodes {
  object: UAObject;
  variables: Map<string, UAVariable>;
  values: Map<string, Value>;
}

interface JobNodes {
  object: UAObject;
  variables: Map<string, UAVariable>;
  values: Map<string, Value>;
}

export class EmbeddedServer {
  readonly #o: EmbeddedServerOptions;
  readonly #log: Logger;
  /** Signed-in user → role, as checked at session activation. */
  readonly #roles = new Map<string, Role>();
  readonly #printers = new Map<string, PrinterNodes>();
  readonly #jobs = new Map<string, JobNodes>();
  #server: OPCUAServer | undefined;
  #certificates: OPCUACertificateManager | undefined;
  #ns: Namespace | undefined;
  #machines: UAObject | undefined;
  #printersFolder: UAObject | undefined;
  #jobsFolder: UAObject | undefined;
  #queue: Map<string, UAVariable> = new Map();
  #picture: FarmPicture | undefined;

  constructor(options: EmbeddedServerOptions) {
    this.#o = options;
    this.#log = options.logger.child({ part: "opcua-server" });
  }

  /** opc.tcp://host:port of the running server. */
  get endpoint(): string {
    const server = this.#server;
    if (!server) throw new Error("the OPC UA server is not running");
    return `opc.tcp://${this.#o.config.host}:${server.endpoints[0]?.port ?? this.#o.config.port}`;
  }

  async start(): Promise<void> {
    const { config, dir, node } = this.#o;
    const pki = join(dir, "server-pki");
    await mkdir(pki, { recursive: true });
    const certificates = new OPCUACertificateManager({
      rootFolder: pki,
      automaticallyAcceptUnknownCertificate: true,
    });
    await certificates.initialize();
    this.#certificates = certificates;
    const modes = config.securityModes.map((mode) => MessageSecurityMode[mode]);
    const policies = [
      ...(config.securityModes.includes("None") ? [SecurityPolicy.None] : []),
      ...config.securityPolicies.map((policy) => SecurityPolicy[policy]),
    ];
    const server = new OPCUAServer({
      port: config.port,
      host: config.host,
      ...(config.host === "0.0.0.0" || config.host === "::" ? {} : { hostname: config.host }),
      serverCertificateManager: certificates,
      nodeset_filename: [nodesets.standard, nodesets.di, nodesets.ia, nodesets.machinery],
      securityModes: modes,
      securityPolicies: policies,
      allowAnonymous: config.anonymous,
      serverInfo: {
        applicationUri: `urn:ferry:${node}`,
        productUri: "urn:ferry",
        applicationName: { text: "Ferry", locale: "en" },
      },
      buildInfo: { productName: "Ferry", manufacturerName: "Ferry", softwareVersion: "0.1.0" },
      userManager: {
        isValidUserAsync: (userName: string, password: string, callback) => {
          void this.#signIn(userName, password).then((ok) => callback(null, ok));
        },
        getUserRoles: (userName: string) => {
          const role = this.#roles.get(userName);
          return role ? makeRoles(ROLE_IDS[role]) : [];
        },
      },
    });
    await server.initialize();
    this.#build(server);
    try {
      await server.start();
    } catch (error) {
      await server.shutdown(0).catch(() => undefined);
      await certificates.dispose();
      const code = (error as NodeJS.ErrnoException).code;
      const message = error instanceof Error ? error.message : String(error);
      throw new FerryError(
        "UNAVAILABLE",
        `the OPC UA server cannot listen on ${config.host}:${config.port}${code === "EADDRINUSE" || /EADDRINUSE/.test(message) ? ": the port is in use" : `: ${message}`} (opcua.server.port)`,
        { cause: error, subject: "opcua.server.port", retryable: false },
      );
    }
    this.#server = server;
    this.#log.info({ endpoint: this.endpoint }, "opcua server: listening");
  }

  /** Checks a session's user against Ferry's accounts, and notes their role for the methods. */
  async #signIn(userName: string, password: string): Promise<boolean> {
    const user = await this.#o.accounts.passwordIdentity(userName, password).catch(() => undefined);
    if (!user) {
      this.#log.warn({ user: userName }, "opcua server: a sign-in was refused");
      this.#roles.delete(userName);
      return false;
    }
    this.#roles.set(user.name, user.role);
    return true;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    // Clients are told at once; nothing is worth waiting for here.
    await server?.shutdown(0);
    await this.#certificates?.dispose();
  }

  #build(server: OPCUAServer): void {
    const addressSpace = server.engine.addressSpace;
    if (!addressSpace) throw new Error("the OPC UA server has no address space");
    const ns = addressSpace.registerNamespace(DEFAULT_OPCUA_NAMESPACE);
    this.#ns = ns;
    const machineryIndex = addressSpace.getNamespaceIndex("http://opcfoundation.org/UA/Machinery/");
    const machines = addressSpace.findNode(new NodeId(NodeId.NodeIdType.NUMERIC, 1001, machineryIndex));
    if (!machines) throw new Error("the Machinery nodeset has no Machines folder");
    this.#machines = machines as UAObject;
    const ferry = ns.addFolder(addressSpace.rootFolder.objects, { browseName: "Ferry", nodeId: "s=Ferry" });
    this.#printersFolder = ns.addFolder(ferry, { browseName: "Printers", nodeId: "s=Ferry/Printers" });
    this.#jobsFolder = ns.addFolder(ferry, { browseName: "Jobs", nodeId: "s=Ferry/Jobs" });
    const queue = ns.addObject({ organizedBy: ferry, browseName: "Queue", nodeId: "s=Ferry/Queue" });
    const count = (name: string, description: string) =>
      ns.addVariable({
        componentOf: queue,
        browseName: name,
        nodeId: `s=Ferry/Queue/${name}`,
        description,
        dataType: "UInt32",
        value: { dataType: DataType.UInt32, value: 0 },
      });
    this.#queue.set("queued", count("queued", "Jobs queued, waiting for a printer"));
    this.#queue.set("pending_approval", count("pending_approval", "Jobs waiting for approval"));
    this.#queue.set(
      "jobs",
      ns.addVariable({
        componentOf: queue,
        browseName: "jobs",
        nodeId: "s=Ferry/Queue/jobs",
        description: "The queued jobs' ids, in the order the scheduler takes them",
        dataType: "String",
        valueRank: 1,
        arrayDimensions: [0],
        value: { dataType: DataType.String, arrayType: VariantArrayType.Array, value: [] },
      }),
    );
  }

  /** The farm as it is now: the tree follows. */
  update(picture: FarmPicture): void {
    if (!this.#ns) return;
    this.#picture = picture;
    for (const [name, { values }] of picture.printers) this.#printer(name, values, picture);
    for (const [name, nodes] of this.#printers)
      if (!picture.printers.has(name)) {
        this.#ns.addressSpace.deleteNode(nodes.object);
        this.#printers.delete(name);
      }
    const live = new Set<string>();
    for (const job of picture.jobs) {
      live.add(job.id);
      this.#job(job);
    }
    for (const [id, nodes] of this.#jobs)
      if (!live.has(id)) {
        this.#ns.addressSpace.deleteNode(nodes.object);
        this.#jobs.delete(id);
      }
    const queued = picture.jobs
      .filter((j) => j.state === "queued")
      .sort((a, b) => b.priority - a.priority || a.createdAt - b.createdAt || a.id.localeCompare(b.id));
    setValue(this.#queue.get("queued"), new Variant({ dataType: DataType.UInt32, value: queued.length }));
    setValue(
      this.#queue.get("pending_approval"),
      new Variant({
        dataType: DataType.UInt32,
        value: picture.jobs.filter((j) => j.state === "pending_approval").length,
      }),
    );
    setValue(
      this.#queue.get("jobs"),
      new Variant({
        dataType: DataType.String,
        arrayType: VariantArrayType.Array,
        value: queued.map((j) => j.id),
      }),
    );
  }

  #printer(name: string, values: PrinterValues, picture: FarmPicture): void {
    const ns = this.#ns;
    if (!ns) return;
    let nodes = this.#printers.get(name);
    if (!nodes) {
      nodes = this.#addPrinter(ns, name, picture);
      this.#printers.set(name, nodes);
    }
    for (const [path, type] of PRINTER_VARIABLES) {
      const value = values[path];
      if (sameValue(nodes.values.get(path), value)) continue;
      nodes.values.set(path, value);
      setValue(nodes.variables.get(path), new Variant({ dataType: DATA_TYPES[type], value }));
    }
  }

  #addPrinter(ns: Namespace, name: string, picture: FarmPicture): PrinterNodes {
    const id = `s=${name}`;
    const machines = this.#machines;
    if (!machines) throw new Error("the OPC UA server is not built");
    const object = ns.addObject({
      organizedBy: machines,
      browseName: name,
      nodeId: id,
      description: `Farm printer ${name}`,
    });
    this.#printersFolder?.addReference({ referenceType: "Organizes", nodeId: object.nodeId });
    this.#identification(ns, object, name, picture);
    const folders = new Map<string, UAObject>();
    for (const sub of PRINTER_FOLDERS)
      folders.set(sub, ns.addObject({ componentOf: object, browseName: sub, nodeId: `s=${name}/${sub}` }));
    const variables = new Map<string, UAVariable>();
    for (const [path, type] of PRINTER_VARIABLES) {
      const cut = path.lastIndexOf("/");
      const parent = cut < 0 ? object : (folders.get(path.slice(0, cut)) ?? object);
      variables.set(
        path,
        ns.addVariable({
          componentOf: parent,
          browseName: cut < 0 ? path : path.slice(cut + 1),
          nodeId: `s=${name}/${path}`,
          dataType: type,
        }),
      );
    }
    for (const operation of OPERATIONS) this.#method(ns, object, name, operation);
    return { object, variables, values: new Map() };
  }

  /** The Machinery identification add-in (OPC 40001-1 MachineIdentificationType), as far as Ferry knows it. */
  #identification(ns: Namespace, object: UAObject, name: string, picture: FarmPicture): void {
    const addressSpace = ns.addressSpace;
    const machinery = addressSpace.getNamespaceIndex("http://opcfoundation.org/UA/Machinery/");
    const di = addressSpace.getNamespaceIndex("http://opcfoundation.org/UA/DI/");
    const type = addressSpace.findObjectType("MachineIdentificationType", machinery);
    if (!type) return;
    const printer = picture.printers.get(name)?.printer;
    const identification = type.instantiate({
      browseName: { name: "Identification", namespaceIndex: di },
      namespace: ns,
      nodeId: `s=${name}/Identification`,
      optionals: ["Model", "ProductCode"],
    });
    object.addReference({ referenceType: "HasAddIn", nodeId: identification.nodeId });
    const set = (prop: string, variant: Variant) => {
      const child = identification.getChildByName(prop, di) as UAVariable | null;
      child?.setValueFromSource(variant);
    };
    set(
      "Manufacturer",
      new Variant({ dataType: DataType.LocalizedText, value: new LocalizedText({ text: "" }) }),
    );
    set("SerialNumber", new Variant({ dataType: DataType.String, value: name }));
    set("ProductInstanceUri", new Variant({ dataType: DataType.String, value: `urn:ferry:printer:${name}` }));
    set(
      "Model",
      new Variant({
        dataType: DataType.LocalizedText,
        value: new LocalizedText({ text: printer?.model ?? "" }),
      }),
    );
  }

  #method(ns: Namespace, object: UAObject, printer: string, operation: Operation): void {
    const method: UAMethod = ns.addMethod(object, {
      browseName: operation,
      nodeId: `s=${printer}/${operation}`,
      description:
        operation === "MarkBedClear"
          ? "The part is off the bed: a printed job completes, an empty printer may print again"
          : `${operation} the printer's job`,
      inputArguments: [],
      outputArguments: [],
    });
    method.bindMethod(async (_input: Variant[], context: ISessionContext) => {
      const user = await this.#operator(context);
      if (!user) return { statusCode: StatusCodes.BadUserAccessDenied };
      try {
        await this.#call(operation, printer, user);
        this.#log.info({ printer, user, operation }, "opcua server: an operator acted");
        return { statusCode: StatusCodes.Good };
      } catch (error) {
        const failure = toFerryError(error);
        this.#log.warn({ printer, user, operation, err: failure.message }, "opcua server: a call failed");
        return { statusCode: statusOf(failure) };
      }
    });
  }

  /**
   * The signed-in operator or admin calling, or undefined. The account is read again at each
   * call, so a user disabled or demoted since signing in may no longer act (as with the API).
   */
  async #operator(context: ISessionContext): Promise<string | undefined> {
    const token = context.session?.userIdentityToken;
    if (!(token instanceof UserNameIdentityToken) || !token.userName) return undefined;
    const user = await this.#o.accounts.getUser(token.userName).catch(() => undefined);
    if (!user || user.disabled) return undefined;
    this.#roles.set(user.name, user.role);
    return roleAllows(user.role, "operator") ? user.name : undefined;
  }

  async #call(operation: Operation, printer: string, user: string): Promise<void> {
    const { farm } = this.#o;
    const actor = `${user} (OPC UA)`;
    if (operation === "MarkBedClear") return farm.markBedClear(printer, actor);
    const job = this.#picture?.printers.get(printer)?.printer.job;
    if (!job)
      throw new FerryError("CONFLICT", `${printer} has no job to ${operation.toLowerCase()}`, {
        subject: printer,
        retryable: false,
      });
    if (operation === "Pause") await farm.pause(job.id, actor);
    else if (operation === "Resume") await farm.resume(job.id, actor);
    else await farm.cancel(job.id, actor, `cancelled by ${user} over OPC UA`);
  }

  #job(job: JobLike): void {
    const ns = this.#ns;
    const folder = this.#jobsFolder;
    if (!ns || !folder) return;
    let nodes = this.#jobs.get(job.id);
    if (!nodes) {
      const object = ns.addObject({
        organizedBy: folder,
        browseName: job.id,
        nodeId: `s=Ferry/Jobs/${job.id}`,
      });
      const variables = new Map<string, UAVariable>();
      for (const [name, type] of JOB_VARIABLES)
        variables.set(
          name,
          ns.addVariable({
            componentOf: object,
            browseName: name,
            nodeId: `s=Ferry/Jobs/${job.id}/${name}`,
            dataType: type,
          }),
        );
      nodes = { object, variables, values: new Map() };
      this.#jobs.set(job.id, nodes);
    }
    const values: Record<(typeof JOB_VARIABLES)[number][0], Value> = {
      state: job.state,
      file: job.file.name,
      owner: job.owner ?? "",
      printer: job.printer ?? "",
      priority: job.priority,
      progress: Math.round((job.progress ?? 0) * 1000) / 10,
      created: new Date(job.createdAt),
    };
    for (const [name, type] of JOB_VARIABLES) {
      if (sameValue(nodes.values.get(name), values[name])) continue;
      nodes.values.set(name, values[name]);
      setValue(nodes.variables.get(name), new Variant({ dataType: DATA_TYPES[type], value: values[name] }));
    }
  }
}

function setValue(variable: UAVariable | undefined, variant: Variant): void {
  variable?.setValueFromSource(variant, StatusCodes.Good);
}

function statusOf(error: FerryError) {
  switch (error.code) {
    case "CONFLICT":
      return StatusCodes.BadInvalidState;
    case "NOT_FOUND":
      return StatusCodes.BadNotFound;
    case "UNSUPPORTED":
      return StatusCodes.BadNotSupported;
    case "PERMISSION":
    case "AUTH":
      return StatusCodes.BadUserAccessDenied;
    default:
      return StatusCodes.BadInternalError;
  }
}
