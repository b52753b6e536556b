/**
 * The two network setups the README shows, end to end on real servers: a watched folder mirrored
 * to SFTP (OpenSSH) and S3 (Ceph RGW) at once, and flight logs moved off a removable volume to
 * FTPS (vsftpd) and a log-upload web form, cleared from the volume only once both have them.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { UploadFormSim } from "../src/sim/upload-form/index.ts";
import { LABEL, StagedVolume } from "../src/storage/removable/test-support.ts";
import { startCephRgw, type CephRgw } from "./servers/ceph-rgw.ts";
import { testOptions, Unavailable } from "./servers/common.ts";
import { startSshd, type Sshd } from "./servers/sshd.ts";
import { startVsftpd, type Vsftpd } from "./servers/vsftpd.ts";
import { waitFor } from "./support/wait.ts";

const cli = new URL("../bin/ferry.js", import.meta.url).pathname;
const digest = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

const readOrUndefined = (path: string) => readFile(path).catch(() => undefined);

describe("ferry serve onto network storage (the README's setups)", { timeout: 5 * 60_000 }, () => {
  let reason: string | undefined;
  let sshd: Sshd | undefined;
  let rgw: CephRgw | undefined;
  let ftp: Vsftpd | undefined;
  let form: UploadFormSim | undefined;
  let volume: StagedVolume | undefined;
  let s3: S3Client | undefined;
  let serve: ChildProcess | undefined;
  let output = "";
  let dir = "";

  const object = async (key: string) => {
    try {
      const answer = await s3?.send(new GetObjectCommand({ Bucket: "ferry", Key: key }));
      return Buffer.from((await answer?.Body?.transformToByteArray()) ?? []);
    } catch {
      return undefined;
    }
  };
  const onBoth = async (path: string): Promise<[Buffer, Buffer] | undefined> => {
    const onSftp = await readOrUndefined(join(sshd?.uploadRoot ?? "", path));
    const inBucket = await object(path);
    return onSftp && inBucket ? [onSftp, inBucket] : undefined;
  };

  before(async () => {
    try {
      [sshd, rgw, ftp] = await Promise.all([startSshd(), startCephRgw(), startVsftpd()]);
    } catch (error) {
      if (!(error instanceof Unavailable)) throw error;
      reason = error.message;
      return;
    }
    await rgw.createBucket("ferry");
    s3 = new S3Client({
      endpoint: rgw.endpoint,
      region: rgw.region,
      forcePathStyle: true,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    });
    form = await UploadFormSim.start({ requiredFields: ["email"] });
    volume = await StagedVolume.create();
    dir = join(volume.base, "ferry");
    await mkdir(join(dir, "projects", "sub"), { recursive: true });
    await writeFile(join(dir, "projects", "plan.txt"), "the plan\n");
    await writeFile(join(dir, "projects", "sub", "model.bin"), randomBytes(3 * 1024 * 1024));
    await writeFile(
      join(dir, ".env"),
      [
        `SFTP_PASSWORD=${sshd.user.password}`,
        `FTP_PASSWORD=${ftp.login.password}`,
        `S3_KEY=${rgw.accessKeyId}`,
        `S3_SECRET=${rgw.secretAccessKey}`,
        "",
      ].join("\n"),
    );
    await writeFile(join(dir, "ca.pem"), await readFile(ftp.tls.cert));
    // The README's ferry.yaml, with this run's ports, folders and the staged volume's lookup folders.
    await writeFile(
      join(dir, "ferry.yaml"),
      [
        "data_dir: ./ferry-data",
        "devices:",
        `  nas: { type: sftp, host: 127.0.0.1, port: ${sshd.port}, username: ${sshd.user.name}, password: "\${SFTP_PASSWORD}", host_key: "${sshd.hostKeyFingerprint}", root: ${sshd.uploadRoot} }`,
        `  bucket: { type: s3, endpoint: "${rgw.endpoint}", region: ${rgw.region}, bucket: ferry, access_key_id: "\${S3_KEY}", secret_access_key: "\${S3_SECRET}", force_path_style: true }`,
        `  box: { type: ftp, host: 127.0.0.1, port: ${ftp.port}, username: ${ftp.login.username}, password: "\${FTP_PASSWORD}", secure: true, ca_file: ./ca.pem, root: / }`,
        `  logs: { type: http-post, url: "${form.uploadUrl}", file_field: filearg, fields: { email: ops@example.com } }`,
        `  drone: { type: removable, label: "${LABEL}", by_uuid_dir: "${volume.byUuid}", by_label_dir: "${volume.byLabel}", mountinfo: "${volume.mountinfo}" }`,
        "syncs:",
        "  backup: { source: ./projects, targets: [nas, bucket], mode: mirror, watch: true }",
        '  flights: { source: drone, targets: [box, logs], mode: move, staging: true, settle: 0s, include: ["**/*.ulg"] }',
        "",
      ].join("\n"),
    );
    serve = spawn(process.execPath, [cli, "serve", "-c", join(dir, "ferry.yaml")], {
      cwd: dir,
      env: { ...process.env, FERRY_LOG_LEVEL: "error" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    serve.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    serve.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    await waitFor("ferry serve to start", () => Promise.resolve(output.includes("serving") || undefined));
  });

  after(async () => {
    if (serve && serve.exitCode === null) serve.kill("SIGKILL");
    s3?.destroy();
    await Promise.all([sshd?.close(), rgw?.close(), ftp?.close(), form?.close(), volume?.cleanup()]);
  });

  const runs = () => testOptions(reason);

  test("what the folder holds reaches SFTP and S3", runs(), async (t) => {
    if (reason !== undefined) return t.skip(reason);
    const model = await readFile(join(dir, "projects", "sub", "model.bin"));
    const [a, b] = await waitFor("sub/model.bin on both", () => onBoth("sub/model.bin"));
    assert.equal(digest(a), digest(model), "on the SFTP server");
    assert.equal(digest(b), digest(model), "in the bucket");
    assert.ok(await onBoth("plan.txt"), `plan.txt on both\n${output}`);
  });

  test("a new file follows within seconds; a deleted one leaves both", runs(), async (t) => {
    if (reason !== undefined) return t.skip(reason);
    await writeFile(join(dir, "projects", "sub", "notes.md"), "# notes\n");
    const [a, b] = await waitFor("notes.md on both", () => onBoth("sub/notes.md"), { timeoutMs: 15_000 });
    assert.equal(a.toString(), "# notes\n");
    assert.equal(b.toString(), "# notes\n");
    await rm(join(dir, "projects", "plan.txt"));
    await waitFor(
      "plan.txt gone from both",
      async () => {
        const gone =
          (await readOrUndefined(join(sshd?.uploadRoot ?? "", "plan.txt"))) === undefined &&
          (await object("plan.txt")) === undefined;
        return gone || undefined;
      },
      { timeoutMs: 15_000 },
    );
  });

  test("flight logs on the volume go to FTPS and the web form, then leave the volume", runs(), async (t) => {
    if (reason !== undefined || !volume || !ftp || !form) return t.skip(reason ?? "not started");
    const [stick, box, site]: [StagedVolume, Vsftpd, UploadFormSim] = [volume, ftp, form];
    const logs = new Map([
      ["flights/2026-12-01/0001.ulg", randomBytes(2 * 1024 * 1024)],
      ["flights/2026-12-01/0002.ulg", randomBytes(70_000)],
    ]);
    for (const [path, data] of logs) {
      await mkdir(join(stick.mountPoint, path, ".."), { recursive: true });
      await writeFile(join(stick.mountPoint, path), data);
    }
    await writeFile(join(stick.mountPoint, "flights", "readme.txt"), "not a log");
    await stick.attach();
    for (const [path, data] of logs) {
      await waitFor(`${path} to leave the volume`, async () =>
        (await stat(join(stick.mountPoint, path)).catch(() => undefined)) ? undefined : true,
      );
      const onFtp = await readFile(join(box.uploadRoot, path));
      assert.equal(digest(onFtp), digest(data), `${path} on the FTP server`);
      const posted = site.received().filter((u) => u.filename.endsWith(path.split("/").pop() ?? ""));
      assert.equal(posted.length, 1, `${path} posted once to the form`);
      const upload = posted[0];
      assert.ok(upload);
      assert.equal(upload.fields.email, "ops@example.com");
      assert.equal(digest(await site.content(upload.id)), digest(data), `${path} as the form got it`);
    }
    assert.equal(
      await readFile(join(stick.mountPoint, "flights", "readme.txt"), "utf8"),
      "not a log",
      "what the sync does not select stays",
    );
  });
});
