/**
 * A lab's OPC UA server for tests, in a process of its own: node-opcua's server (the one OPC UA
 * stack that installs here; none of Ferry's code), holding its nodes in memory as such servers
 * do, so a restart loses them. It has the namespace urn:ferry:printers and, with `--add-nodes`,
 * lets clients make nodes (AddNodes, which node-opcua's server refuses by itself, as many lab
 * servers do). `--provision a,b` lays out folders for those printers up front (numeric NodeIds,
 * as a hand-built server would), leaving out the variables named by `--omit x,y`. `--user
 * name:password` requires that user, `--x509` an X.509 user certificate (anonymous refused). Prints "ready" once listening; stops on
 * SIGTERM or when its stdin closes (the test process ended, however).
 *
 *   node test/support/opcua-lab-server.ts <port> <pki folder> [--add-nodes] [--user n:p] [--x509] [--provision a,b] [--omit x]
 */
import { parseArgs } from "node:util";
import { StatusCodes, coerceNodeId, type NodeId } from "node-opcua-client";
import type { BaseNode, Namespace, UAObject } from "node-opcua-address-space";
import { OPCUACertificateManager } from "node-opcua-certificate-manager";
import { OPCUAServer } from "node-opcua-server";
import {
  AddNodesResponse,
  AddNodesResult,
  NodeClass,
  ObjectAttributes,
  VariableAttributes,
  type AddNodesItem,
  type AddNodesRequest,
} from "node-opcua-types";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    "add-nodes": { type: "boolean", default: false },
    user: { type: "string" },
    provision: { type: "string" },
    omit: { type: "string" },
    x509: { type: "boolean", default: false },
  },
});
const [port, pki] = positionals;
if (!port || !pki) throw new Error("usage: opcua-lab-server.ts <port> <pki folder> [options]");
const NAMESPACE = "urn:ferry:printers";
const [userName, password] = values.user?.split(":") ?? [];

const certificates = new OPCUACertificateManager({
  rootFolder: pki,
  automaticallyAcceptUnknownCertificate: true,
});
await certificates.initialize();
const server = new OPCUAServer({
  port: Number(port),
  host: "127.0.0.1",
  hostname: "127.0.0.1",
  serverCertificateManager: certificates,
  allowAnonymous: userName === undefined && !values.x509,
  // X.509 users: any certificate that signs for itself is taken (the test makes a fresh one).
  ...(values.x509
    ? {
        userCertificateManager: new OPCUACertificateManager({
          rootFolder: `${pki}/users`,
          automaticallyAcceptUnknownCertificate: true,
        }),
      }
    : {}),
  ...(userName === undefined
    ? {}
    : {
        userManager: { isValidUser: (name: string, pass: string) => name === userName && pass === password },
      }),
});
await server.initialize();
const addressSpace = server.engine.addressSpace;
if (!addressSpace) throw new Error("no address space");
const ns: Namespace = addressSpace.registerNamespace(NAMESPACE);

const VARIABLES: [string, string][] = [
  ["state", "String"],
  ["bed/actual", "Double"],
  ["bed/target", "Double"],
  ["nozzle/actual", "Double"],
  ["nozzle/target", "Double"],
  ["job/file", "String"],
  ["job/progress", "Double"],
  ["job/time_used", "Double"],
  ["job/time_left", "Double"],
  ["url", "String"],
  ["camera_url", "String"],
  ["model", "String"],
  ["update_time", "DateTime"],
];
const omitted = new Set(values.omit?.split(",") ?? []);
for (const printer of values.provision?.split(",") ?? []) {
  const folder = ns.addFolder(addressSpace.rootFolder.objects, { browseName: printer });
  const subs = new Map<string, UAObject>();
  for (const sub of ["bed", "nozzle", "job"]) subs.set(sub, ns.addFolder(folder, { browseName: sub }));
  for (const [path, dataType] of VARIABLES) {
    if (omitted.has(path)) continue;
    const cut = path.lastIndexOf("/");
    ns.addVariable({
      componentOf: cut < 0 ? folder : (subs.get(path.slice(0, cut)) ?? folder),
      browseName: cut < 0 ? path : path.slice(cut + 1),
      dataType,
      accessLevel: "CurrentRead | CurrentWrite",
      userAccessLevel: "CurrentRead | CurrentWrite",
    });
  }
}

/** AddNodes for folders, objects and variables, as a server that allows clients to build does. */
function addNode(item: AddNodesItem): AddNodesResult {
  const parent = addressSpace?.findNode(coerceNodeId(item.parentNodeId.toString())) as BaseNode | null;
  if (!parent) return new AddNodesResult({ statusCode: StatusCodes.BadParentNodeIdInvalid });
  const requested = item.requestedNewNodeId;
  let nodeId: NodeId | undefined;
  if (!requested.isEmpty()) {
    if (requested.namespace !== ns.index)
      return new AddNodesResult({ statusCode: StatusCodes.BadNodeIdRejected });
    nodeId = coerceNodeId(requested.toString());
    if (addressSpace?.findNode(nodeId))
      return new AddNodesResult({ statusCode: StatusCodes.BadNodeIdExists });
  }
  const browseName = item.browseName.name ?? "";
  const attributes = item.nodeAttributes;
  const id = nodeId ? { nodeId } : {};
  if (item.nodeClass === NodeClass.Object && attributes instanceof ObjectAttributes) {
    const node = ns.addFolder(parent as UAObject, { browseName, ...id });
    return new AddNodesResult({ statusCode: StatusCodes.Good, addedNodeId: node.nodeId });
  }
  if (item.nodeClass === NodeClass.Variable && attributes instanceof VariableAttributes) {
    const node = ns.addVariable({
      componentOf: parent,
      browseName,
      ...id,
      dataType: attributes.dataType,
      accessLevel: "CurrentRead | CurrentWrite",
      userAccessLevel: "CurrentRead | CurrentWrite",
    });
    return new AddNodesResult({ statusCode: StatusCodes.Good, addedNodeId: node.nodeId });
  }
  return new AddNodesResult({ statusCode: StatusCodes.BadNodeClassInvalid });
}

interface Message {
  request: AddNodesRequest;
}
interface Internals {
  _apply_on_SessionObject(
    response: typeof AddNodesResponse,
    message: Message,
    channel: unknown,
    action: (session: unknown, send: (response: AddNodesResponse) => void) => void,
  ): void;
  _on_AddNodesRequest?: (message: Message, channel: unknown) => void;
}
if (values["add-nodes"]) {
  const internals = server as unknown as Internals;
  internals._on_AddNodesRequest = (message, channel) =>
    internals._apply_on_SessionObject(AddNodesResponse, message, channel, (_session, send) =>
      send(new AddNodesResponse({ results: (message.request.nodesToAdd ?? []).map(addNode) })),
    );
}

await server.start();
process.stdout.write("ready\n");
const stop = () => void server.shutdown(0).then(() => process.exit(0));
process.once("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.resume();
