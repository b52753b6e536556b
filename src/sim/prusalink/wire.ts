/**
 * The JSON the simulator answers with, shaped after the PrusaLink OpenAPI schemas (Version, Info,
 * Storage, Status*, Job, Transfer, FileInfo, PrintFileInfo, FolderInfo).
 */
import {
  nodeNames,
  walkFiles,
  type SimFile,
  type SimFolder,
  type SimJob,
  type SimNode,
  type SimStorage,
  type SimTransfer,
  type VirtualPrinter,
} from "../printer/index.ts";
import { isPrintFile } from "./fat-names.ts";
import { jobState, modelOf, prusaState, storageType } from "./prusa-printer.ts";

const encodePath = (names: readonly string[]) => names.map(encodeURIComponent).join("/");

export function versionJson(printer: VirtualPrinter, name: string): Record<string, unknown> {
  const mk4 = modelOf(printer) === "MK4";
  return {
    api: "2.0.0",
    server: "2.1.2",
    version: "2.1.2",
    printer: "1.0.0",
    text: "PrusaLink",
    firmware: mk4 ? "6.1.3+7898" : "3.14.1-8237",
    sdk: "0.8.0",
    hostname: name,
    capabilities: { "upload-by-put": true },
  };
}

export function infoJson(printer: VirtualPrinter, name: string, port: number): Record<string, unknown> {
  return {
    name,
    location: "Ferry simulator",
    farm_mode: false,
    nozzle_diameter: 0.4,
    min_extrusion_temp: 170,
    serial: `SIM${modelOf(printer)}${String(port).padStart(5, "0")}`,
    sd_ready: true,
    active_camera: false,
    hostname: name,
    port: modelOf(printer) === "MK4" ? "usb" : "/dev/ttyAMA0",
    network_error_chime: false,
    mmu: false,
  };
}

function printFilesBytes(storage: SimStorage): number {
  let total = 0;
  for (const file of walkFiles(storage.root)) if (isPrintFile(file.name)) total += file.size;
  return total;
}

export function storageJson(storage: SimStorage): Record<string, unknown> {
  return {
    name: storage.displayName,
    type: storageType(storage.name),
    path: `/${storage.name}`,
    print_files: printFilesBytes(storage),
    system_files: 0,
    free_space: storage.free,
    total_space: storage.capacity,
    available: true,
    read_only: storage.readOnly,
  };
}

const percent = (done: number, total: number) =>
  total <= 0 ? 100 : Math.round((done / total) * 10000) / 100;

function jobTimes(printer: VirtualPrinter, job: SimJob) {
  const times = printer.times(job);
  return {
    progress: Math.round(times.progress * 10000) / 100,
    time_printing: Math.floor(times.elapsedMs / 1000),
    time_remaining: Math.ceil(times.remainingMs / 1000),
  };
}

function transferTimes(printer: VirtualPrinter, transfer: SimTransfer) {
  const seconds = Math.max(0, (printer.clock() - transfer.startedAt) / 1000);
  const speed = seconds > 0 ? transfer.transferred / seconds : 0;
  return {
    time_transferring: Math.floor(seconds),
    progress: percent(transfer.transferred, transfer.size),
    time_remaining: speed > 0 ? Math.ceil((transfer.size - transfer.transferred) / speed) : 0,
  };
}

export function statusJson(printer: VirtualPrinter): Record<string, unknown> {
  const state = prusaState(printer);
  const heat = printer.temperatures();
  const nozzle = heat.find((t) => t.name === "tool0");
  const bed = heat.find((t) => t.name === "bed");
  const body: Record<string, unknown> = {
    printer: {
      state,
      temp_nozzle: nozzle?.actual,
      target_nozzle: nozzle?.target,
      temp_bed: bed?.actual,
      target_bed: bed?.target,
      axis_z: state === "PRINTING" ? 1.2 : 10.0,
      flow: 100,
      speed: 100,
      fan_hotend: state === "PRINTING" ? 5200 : 0,
      fan_print: state === "PRINTING" ? 4800 : 0,
      status_printer: {
        ok: state !== "ERROR" && state !== "ATTENTION",
        message: printer.message ?? (state === "ERROR" ? "Error" : "OK"),
      },
    },
  };
  const job = printer.job;
  if (job) body.job = { id: job.id, ...jobTimes(printer, job) };
  const transfer = printer.transfer;
  if (transfer) {
    const { time_transferring, progress } = transferTimes(printer, transfer);
    body.transfer = { id: transfer.id, time_transferring, progress, data_transferred: transfer.transferred };
  }
  const primary = printer.primary;
  body.storage = {
    name: primary.name,
    path: `/${primary.name}`,
    read_only: primary.readOnly,
    free_space: primary.free,
  };
  return body;
}

/** A folder as the job's `path` ("/usb/SUBDIR~1", "/local/examples") or `display_path` ("/PrusaLink gcodes/examples"). */
function folderPath(storage: SimStorage, folder: SimFolder, display: boolean): string {
  const root = display ? storage.displayName : storage.name;
  return "/" + [root, ...nodeNames(folder, !display && storage.aliases)].join("/");
}

function refs(storage: SimStorage, file: SimFile): Record<string, string> {
  const path = `${storage.name}/${encodePath(nodeNames(file, storage.aliases))}`;
  const download = { download: `/api/files/${path}/raw` };
  if (!isPrintFile(file.name)) return download;
  return {
    ...download,
    icon: `/api/thumbnails/${path}.small.png`,
    thumbnail: `/api/thumbnails/${path}.orig.png`,
  };
}

export function jobJson(printer: VirtualPrinter, job: SimJob): Record<string, unknown> {
  const { storage, file } = job;
  return {
    id: job.id,
    state: jobState(job),
    ...jobTimes(printer, job),
    inaccurate_estimates: false,
    file: {
      name: storage.aliases ? file.shortName : file.name,
      display_name: file.name,
      path: folderPath(storage, file.parent, false),
      display_path: folderPath(storage, file.parent, true),
      size: file.size,
      m_timestamp: file.mTimestamp,
      meta: {},
      refs: refs(storage, file),
    },
  };
}

export function transferJson(printer: VirtualPrinter, transfer: SimTransfer): Record<string, unknown> {
  const slash = transfer.path.lastIndexOf("/");
  return {
    type: "FROM_CLIENT",
    display_name: transfer.path.slice(slash + 1),
    path: "/" + [transfer.storage.name, ...(slash < 0 ? [] : [transfer.path.slice(0, slash)])].join("/"),
    // The spec types `size` as a string of digits.
    size: String(transfer.size),
    transferred: transfer.transferred,
    to_print: transfer.toPrint,
    ...transferTimes(printer, transfer),
  };
}

function entryJson(storage: SimStorage, node: SimNode): Record<string, unknown> {
  const readOnly = storage.readOnly;
  const common = {
    name: storage.aliases ? node.shortName : node.name,
    display_name: node.name,
    ro: readOnly,
    read_only: readOnly,
    m_timestamp: node.mTimestamp,
  };
  if (node.kind === "folder") return { ...common, type: "FOLDER" };
  return { ...common, type: isPrintFile(node.name) ? "PRINT_FILE" : "FILE", refs: refs(storage, node) };
}

/** GET of a file (with its size) or of a folder (with its children, which carry no sizes). */
export function fileInfoJson(storage: SimStorage, node: SimNode): Record<string, unknown> {
  if (node.kind === "file") {
    return { ...entryJson(storage, node), size: node.size, ...(isPrintFile(node.name) ? { meta: {} } : {}) };
  }
  const self =
    node.parent === undefined
      ? {
          name: storage.name,
          display_name: storage.displayName,
          ro: storage.readOnly,
          read_only: storage.readOnly,
          m_timestamp: node.mTimestamp,
          type: "FOLDER",
        }
      : entryJson(storage, node);
  return { ...self, children: [...node.children.values()].map((child) => entryJson(storage, child)) };
}
