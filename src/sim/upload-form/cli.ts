/** `ferry sim upload-form`: a simulated log-upload site until Ctrl-C. */
import { UploadFormSim } from "./index.ts";

export interface SimUploadFormOptions {
  port: number;
  path: string;
  fileField: string;
  /** Repeatable --require NAME. */
  require: string[];
  username?: string;
  password?: string;
  maxSize?: number;
  /** false with --no-content */
  content: boolean;
  dir?: string;
}

export async function simUploadFormCommand(options: SimUploadFormOptions): Promise<void> {
  const password = options.password ?? process.env.UPLOAD_FORM_PASSWORD;
  if ((options.username === undefined) !== (password === undefined)) {
    throw new Error("--username and --password (or $UPLOAD_FORM_PASSWORD) go together");
  }
  const sim = await UploadFormSim.start({
    port: options.port,
    path: options.path,
    fileField: options.fileField,
    requiredFields: options.require,
    storeContent: options.content,
    ...(options.username === undefined || password === undefined
      ? {}
      : { username: options.username, password }),
    ...(options.maxSize === undefined ? {} : { maxSize: options.maxSize }),
    ...(options.dir === undefined ? {} : { dir: options.dir }),
  });
  process.stdout.write(`upload form on ${sim.uploadUrl} (file field "${options.fileField}")\n`);
  process.stdout.write(`uploads: ${sim.url}/_sim/received; control API under /_sim/; Ctrl-C stops\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await sim.close();
}
