/**
 * The nodes the mirror needs on the lab's server, pure: each printer's folder, subfolders and
 * variables as paths of browse names under Objects (`folder/…/printer/bed/actual`), the browse
 * path that finds one, and the AddNodes request that makes missing ones (folders by
 * `Organizes`, variables by `HasComponent`, string NodeIds of their paths, read-write).
 */
import { BrowsePath, NodeId, makeExpandedNodeId, resolveNodeId } from "node-opcua-client";
import {
  AddNodesItem,
  AddNodesRequest,
  NodeClass,
  ObjectAttributes,
  VariableAttributes,
} from "node-opcua-types";
import type { OpcuaMirrorConfig } from "../config/index.ts";
import { PRINTER_FOLDERS, PRINTER_VARIABLES, type ValueType } from "./values.ts";

const OBJECTS = resolveNodeId("ObjectsFolder");
const ORGANIZES = resolveNodeId("Organizes");
const HAS_COMPONENT = resolveNodeId("HasComponent");
const HIERARCHICAL = resolveNodeId("HierarchicalReferences");
const FOLDER_TYPE = resolveNodeId("FolderType");
const DATA_VARIABLE_TYPE = resolveNodeId("BaseDataVariableType");
/** NodeAttributesMask bits (OPC 10000-4 7.19): what an AddNodes item sets. */
const MASK = {
  accessLevel: 1,
  dataType: 16,
  displayName: 64,
  userAccessLevel: 65536,
  valueRank: 524288,
};
const READ_WRITE = 3; // CurrentRead | CurrentWrite

/** A node the mirror needs: a folder or a variable, by its path of browse names under Objects. */
export interface NodeSpec {
  key: string;
  parent: string | null;
  name: string;
  variable?: ValueType;
}

/** The path of a printer's folder under Objects ("Lab/Printers/Printer1"). */
export function printerKey(config: Pick<OpcuaMirrorConfig, "folder" | "names">, printer: string): string {
  return [...config.folder, config.names[printer] ?? printer].join("/");
}

/** The nodes of a printer's folder, parents first. */
export function nodeSpecs(config: Pick<OpcuaMirrorConfig, "folder" | "names">, printer: string): NodeSpec[] {
  const specs: NodeSpec[] = [];
  let parent: string | null = null;
  for (const name of [...config.folder, config.names[printer] ?? printer]) {
    const key: string = parent === null ? name : `${parent}/${name}`;
    specs.push({ key, parent, name });
    parent = key;
  }
  const root = parent ?? "";
  for (const sub of PRINTER_FOLDERS) specs.push({ key: `${root}/${sub}`, parent: root, name: sub });
  for (const [path, type] of PRINTER_VARIABLES) {
    const cut = path.lastIndexOf("/");
    specs.push({
      key: `${root}/${path}`,
      parent: cut < 0 ? root : `${root}/${path.slice(0, cut)}`,
      name: cut < 0 ? path : path.slice(cut + 1),
      variable: type,
    });
  }
  return specs;
}

/** Finds a node by its path under Objects, following any hierarchical reference. */
export function browsePath(key: string, namespaceIndex: number): BrowsePath {
  return new BrowsePath({
    startingNode: OBJECTS,
    relativePath: {
      elements: key.split("/").map((name) => ({
        referenceTypeId: HIERARCHICAL,
        isInverse: false,
        includeSubtypes: true,
        targetName: { namespaceIndex, name },
      })),
    },
  });
}

/** Makes `specs` (whose parents are in `ids`, or Objects). */
export function addNodesRequest(
  specs: readonly NodeSpec[],
  ids: ReadonlyMap<string, NodeId>,
  ns: number,
): AddNodesRequest {
  return new AddNodesRequest({
    nodesToAdd: specs.map((spec) => {
      const common = {
        parentNodeId: makeExpandedNodeId(spec.parent === null ? OBJECTS : ids.get(spec.parent)),
        requestedNewNodeId: makeExpandedNodeId(new NodeId(NodeId.NodeIdType.STRING, spec.key, ns)),
        browseName: { namespaceIndex: ns, name: spec.name },
      };
      if (spec.variable === undefined)
        return new AddNodesItem({
          ...common,
          referenceTypeId: ORGANIZES,
          nodeClass: NodeClass.Object,
          typeDefinition: makeExpandedNodeId(FOLDER_TYPE),
          nodeAttributes: new ObjectAttributes({
            specifiedAttributes: MASK.displayName,
            displayName: { text: spec.name },
          }),
        });
      return new AddNodesItem({
        ...common,
        referenceTypeId: HAS_COMPONENT,
        nodeClass: NodeClass.Variable,
        typeDefinition: makeExpandedNodeId(DATA_VARIABLE_TYPE),
        nodeAttributes: new VariableAttributes({
          specifiedAttributes:
            MASK.displayName | MASK.dataType | MASK.valueRank | MASK.accessLevel | MASK.userAccessLevel,
          displayName: { text: spec.name },
          dataType: resolveNodeId(spec.variable),
          valueRank: -1,
          accessLevel: READ_WRITE,
          userAccessLevel: READ_WRITE,
        }),
      });
    }),
  });
}
