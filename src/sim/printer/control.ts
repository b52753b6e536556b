/**
 * The `/_sim/` control routes every simulator face shares: faults, upload holds, runout, error,
 * disconnect and speed act on the virtual printer whatever vendor it plays. Each face keeps its own
 * routes (its state words, a print started at the printer) and its own HTTP error shape.
 */
import { z } from "zod";
import type { SimFault, VirtualPrinter } from "./printer.ts";

const faultBody = z
  .object({
    reset_after_bytes: z.number().int().nonnegative().optional(),
    status: z.union([z.literal(500), z.literal(503)]).optional(),
    count: z.number().int().positive().optional(),
  })
  .strict();
const errorBody = z.object({ message: z.string().min(1).optional() }).strict();
const speedBody = z.object({ speed: z.number().positive() }).strict();

/** Reads the request's JSON body against a schema, answering 400 the face's way when it does not fit. */
export type BodyParser = <T>(schema: z.ZodType<T>) => Promise<T>;

/** Carries out `route` ("POST faults") on the printer; false when it is not a shared route. */
export async function printerControl(
  route: string,
  printer: VirtualPrinter,
  body: BodyParser,
): Promise<boolean> {
  switch (route) {
    case "POST faults": {
      const wanted = await body(faultBody);
      const fault: SimFault = {};
      if (wanted.reset_after_bytes !== undefined) fault.resetAfterBytes = wanted.reset_after_bytes;
      if (wanted.status !== undefined) fault.status = wanted.status;
      if (wanted.count !== undefined) fault.count = wanted.count;
      printer.injectFault(fault);
      return true;
    }
    case "DELETE faults":
      printer.clearFaults();
      return true;
    case "POST hold":
      printer.holdUploads();
      return true;
    case "DELETE hold":
      printer.releaseUploads();
      return true;
    case "POST runout":
      printer.runout();
      return true;
    case "POST error":
      printer.fail((await body(errorBody)).message);
      return true;
    case "POST disconnect":
      printer.disconnect();
      return true;
    case "DELETE disconnect":
      printer.reconnect();
      return true;
    case "PUT speed":
      printer.setSpeed((await body(speedBody)).speed);
      return true;
    default:
      return false;
  }
}
