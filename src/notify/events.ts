/**
 * The events notifications follow, as notify/ needs them (docs/events.md has the vocabulary). The
 * farm's shapes are restated here, not imported: notify/ and farm/ are one layer and do not import
 * each other (docs/adr/0014); the app's bus, which carries all of them, fits this one.
 */
import type { DeviceEvents } from "../devices/events.ts";
import type { TaskEvents } from "../tasks/events.ts";

export interface FarmNotifyEvents {
  "job.state": {
    id: string;
    orderId: string;
    file: string;
    owner: string | null;
    printer: string | null;
    from: string | null;
    to: string;
    reason: string | null;
  };
  "printer.state": {
    printer: string;
    connection: string;
    activity: string;
    rawState: string | null;
  };
  "printer.error": { printer: string; problem: string; message: string };
  "printer.waiting_bed_clear": { printer: string; job: string; file: string };
}

export type NotifyBusEvents = FarmNotifyEvents &
  Pick<TaskEvents, "task.failed"> &
  Pick<DeviceEvents, "device.state">;
