/** The simulated site's state: its configuration, what it received, and the faults to inject. */

export type RedirectStatus = 301 | 302 | 303 | 307 | 308;
export type FaultStatus = 429 | 500 | 502 | 503 | 504;

export interface SiteConfig {
  /** Path the form posts to ("/upload"). */
  path: string;
  /** Name of the file field ("filearg" on PX4 Flight Review). */
  fileField: string;
  /** Text fields an upload must carry, non-empty (e.g. ["email"]). */
  requiredFields: readonly string[];
  /** Basic credentials; undefined: no authentication. */
  credentials: { username: string; password: string } | undefined;
  /** Request bodies over this many bytes get 413; undefined: no limit. */
  maxSize: number | undefined;
  storeContent: boolean;
  /** "redirect" to the log's page (browsers), or "json" `{"url": …}` with 200 (Flight Review for QGroundControl). */
  answer: "redirect" | "json";
  redirectStatus: RedirectStatus;
  /** Folder the received files are kept in. */
  dir: string;
  clock: () => number;
}

export interface SimFault {
  /** Answer the next `count` uploads with this status, before reading them. */
  status?: FaultStatus;
  /** Answer the next `count` uploads with 200 and an error page carrying this text (nothing stored). */
  errorText?: string;
  /** How many uploads `status` or `errorText` applies to (default 1). */
  count?: number;
  /** Drop the next upload's connection once this many body bytes arrived (nothing stored). */
  resetAfterBytes?: number;
}

export interface ReceivedUpload {
  /** The id in the log's page address, `/plot_app?log=<id>`. */
  id: string;
  /** The file's name as the site decoded it. */
  filename: string;
  /** The form field the file came in. */
  field: string;
  contentType: string;
  /** Every text field of the form. */
  fields: Record<string, string>;
  size: number;
  sha256: string;
  /** ms since the epoch, on the simulator's clock. */
  receivedAt: number;
  /** The request's Content-Length header, undefined when it was chunked. */
  contentLength: number | undefined;
  /** Body bytes that actually arrived. */
  bodyBytes: number;
  /** Path of the stored bytes; undefined when content is not kept. */
  file: string | undefined;
}

interface Counted<T> {
  value: T;
  remaining: number;
}

function take<T>(fault: Counted<T> | undefined): [T | undefined, Counted<T> | undefined] {
  if (!fault) return [undefined, undefined];
  return [fault.value, fault.remaining > 1 ? { ...fault, remaining: fault.remaining - 1 } : undefined];
}

export class FormSite {
  readonly config: SiteConfig;
  readonly #received: ReceivedUpload[] = [];
  #status: Counted<FaultStatus> | undefined;
  #errorText: Counted<string> | undefined;
  #resetAfterBytes: number | undefined;

  constructor(config: SiteConfig) {
    this.config = config;
  }

  injectFault(fault: SimFault): void {
    const remaining = fault.count ?? 1;
    if (fault.status !== undefined) this.#status = { value: fault.status, remaining };
    if (fault.errorText !== undefined) this.#errorText = { value: fault.errorText, remaining };
    if (fault.resetAfterBytes !== undefined) this.#resetAfterBytes = fault.resetAfterBytes;
  }

  clearFaults(): void {
    this.#status = undefined;
    this.#errorText = undefined;
    this.#resetAfterBytes = undefined;
  }

  /** The faults still armed, for the control API. */
  faults(): {
    status: number | null;
    error_text: string | null;
    count: number;
    reset_after_bytes: number | null;
  } {
    return {
      status: this.#status?.value ?? null,
      error_text: this.#errorText?.value ?? null,
      count: Math.max(this.#status?.remaining ?? 0, this.#errorText?.remaining ?? 0),
      reset_after_bytes: this.#resetAfterBytes ?? null,
    };
  }

  takeStatus(): FaultStatus | undefined {
    const [value, rest] = take(this.#status);
    this.#status = rest;
    return value;
  }

  takeErrorText(): string | undefined {
    const [value, rest] = take(this.#errorText);
    this.#errorText = rest;
    return value;
  }

  takeResetAfterBytes(): number | undefined {
    const value = this.#resetAfterBytes;
    this.#resetAfterBytes = undefined;
    return value;
  }

  add(upload: ReceivedUpload): void {
    this.#received.push(upload);
  }

  received(): ReceivedUpload[] {
    return this.#received.map((upload) => ({ ...upload, fields: { ...upload.fields } }));
  }

  find(id: string): ReceivedUpload | undefined {
    return this.#received.find((upload) => upload.id === id);
  }
}
