#!/usr/bin/env node
/** The `ferry` command line. */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { isFerryError } from "../core/errors.ts";
import { parseSize } from "../core/units.ts";
import type * as accounts from "./account-command.ts";
import { exitQuietlyWhenOutputCloses } from "./epipe.ts";
import { EXIT, UsageError } from "./exit.ts";
import type { simPrusaLinkCommand } from "./sim-command.ts";
import type { serveCommand } from "./serve-command.ts";
import type { statusCommand, tasksCommand } from "./status-command.ts";
import type { syncCommand } from "./sync-command.ts";

const collect = (value: string, previous: string[] = []) => [...previous, value];
/** `-c FILE`, the same on every command that reads ferry.yaml. */
const configOption = () =>
  new Option("-c, --config <file>", "config file (default: ferry.yaml, ferry.yml or ferry.json here)");
const size = (what: string) => (value: string) => {
  try {
    return parseSize(value, what);
  } catch (error) {
    throw new InvalidArgumentError(isFerryError(error) ? error.message : String(error));
  }
};
const integer = (what: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError(`${what} must be a whole number, got "${value}"`);
  return n;
};
/** A share between 0 and 1, such as a simulator's --loss. */
const fraction = (what: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1)
    throw new InvalidArgumentError(`${what} must be a share between 0 and 1, got "${value}"`);
  return n;
};
/** A positive factor such as a simulator's --speed (100, 0.5). */
const factor = (what: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`${what} must be a positive number, got "${value}"`);
  return n;
};

function program(): Command {
  const ferry = new Command("ferry")
    .description("Moves files to and from fleets of hard-to-reach devices and runs 3D-printer farms.")
    .version("0.1.0")
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)");

  ferry
    .command("sync")
    .description(
      "bring targets in line with their source once, then exit (0 all done, 1 something failed, 2 bad config)",
    )
    .argument("[sync...]", "syncs to run (default: all in the config)")
    .addOption(configOption())
    .option("--dry-run", "print the plan and change nothing")
    .option("--include-busy", "also sync printers that are not idle (the printed file is never touched)")
    .option(
      "--allow-empty-source",
      "let a mirror from an empty source delete every selected file on its targets",
    )
    .option("-p, --printer <device>", "only this device (repeatable)", collect)
    .option("-x, --exclude <device>", "never this device (repeatable)", collect)
    .option("--json", "print one machine-readable summary instead of progress")
    .action(async (names: string[], options: Parameters<typeof syncCommand>[1]) => {
      process.exitCode = await (await import("./sync-command.ts")).syncCommand(names, options);
    });

  ferry
    .command("serve")
    .description("run every sync continuously (watch, poll, schedule) until Ctrl-C or SIGTERM")
    .addOption(configOption())
    .option("--json", "log events as JSON lines")
    .option(
      "--listen <host:port>",
      "start the HTTP API there (over server.listen of ferry.yaml), e.g. 127.0.0.1:8080",
    )
    .action(async (options: Parameters<typeof serveCommand>[0]) => {
      process.exitCode = await (await import("./serve-command.ts")).serveCommand(options);
    });

  ferry
    .command("status")
    .description("devices (online, offline, busy), queue counts, transfers in flight, recent failures")
    .addOption(configOption())
    .option("--json", "print one machine-readable status")
    .action(async (options: Parameters<typeof statusCommand>[0]) => {
      process.exitCode = await (await import("./status-command.ts")).statusCommand(options);
    });

  ferry
    .command("tasks")
    .description("list dead tasks; `ferry tasks retry ID...` or `--all` queues them again")
    .argument("[action]", "list (default) or retry")
    .argument("[ids...]", "task ids for retry")
    .addOption(configOption())
    .option("--all", "with retry: every dead task")
    .option("--json", "machine-readable list")
    .action(
      async (action: string | undefined, ids: string[], options: Parameters<typeof tasksCommand>[2]) => {
        process.exitCode = await (await import("./status-command.ts")).tasksCommand(action, ids, options);
      },
    );

  const user = ferry
    .command("user")
    .description("users of the server (HTTP API): add, list, remove, set a password");
  const roleOption = (description: string) =>
    new Option("--role <role>", description).choices(["viewer", "user", "operator", "admin"]);
  user
    .command("add")
    .description("add a user; without --password-stdin they sign in with API tokens only")
    .argument("<name>", "user name")
    .addOption(roleOption("admin, operator, user or viewer").makeOptionMandatory())
    .option("--password-stdin", "read the password from stdin")
    .addOption(configOption())
    .option("--json", "print the user as JSON")
    .action(async (name: string, options: Parameters<typeof accounts.userAddCommand>[1]) => {
      process.exitCode = await (await import("./account-command.ts")).userAddCommand(name, options);
    });
  user
    .command("list")
    .description("every user with their role")
    .addOption(configOption())
    .option("--json", "machine-readable list")
    .action(async (options: accounts.AccountOptions) => {
      process.exitCode = await (await import("./account-command.ts")).userListCommand(options);
    });
  user
    .command("remove")
    .description("remove a user with their sessions and tokens (never the last admin)")
    .argument("<name>", "user name")
    .addOption(configOption())
    .action(async (name: string, options: accounts.AccountOptions) => {
      process.exitCode = await (await import("./account-command.ts")).userRemoveCommand(name, options);
    });
  user
    .command("password")
    .description("set a user's password from stdin (ends their browser sessions)")
    .argument("<name>", "user name")
    .addOption(configOption())
    .action(async (name: string, options: accounts.AccountOptions) => {
      process.exitCode = await (await import("./account-command.ts")).userPasswordCommand(name, options);
    });

  const token = ferry
    .command("token")
    .description("API tokens of the server: create (shown once), list, revoke");
  token
    .command("create")
    .description("create an API token and print it, once")
    .argument("<name>", "a name for the token, e.g. the script that uses it")
    .addOption(roleOption("the token's role (default: its user's; never above it)"))
    .option("--user <name>", 'the token\'s owner (default: "admin")')
    .option("--expires <duration>", "how long it works: 30d, 12h, ... or never", "90d")
    .addOption(configOption())
    .option("--json", "print the token and its details as JSON")
    .action(async (name: string, options: Parameters<typeof accounts.tokenCreateCommand>[1]) => {
      process.exitCode = await (await import("./account-command.ts")).tokenCreateCommand(name, options);
    });
  token
    .command("list")
    .description("tokens (never their secrets): id, name, user, role, expiry")
    .option("--user <name>", "only this user's")
    .addOption(configOption())
    .option("--json", "machine-readable list")
    .action(async (options: Parameters<typeof accounts.tokenListCommand>[0]) => {
      process.exitCode = await (await import("./account-command.ts")).tokenListCommand(options);
    });
  token
    .command("revoke")
    .description("revoke tokens by id (from ferry token list)")
    .argument("<ids...>", "token ids")
    .addOption(configOption())
    .action(async (ids: string[], options: accounts.AccountOptions) => {
      process.exitCode = await (await import("./account-command.ts")).tokenRevokeCommand(ids, options);
    });

  const sim = ferry
    .command("sim")
    .description("run faithful device simulators (for tests, demos and benchmarks)");
  sim
    .command("prusalink")
    .description("simulated PrusaLink printers on consecutive ports of 127.0.0.1")
    .option("--port <port>", "first port", integer("--port"), 18100)
    .option("--count <n>", "number of printers", integer("--count"), 1)
    .option("--username <name>", "digest user", "maker")
    .option("--password <password>", 'digest password (default: $PRUSA_PASSWORD or "maker")')
    .option("--api-key <key>", "X-Api-Key to accept (default: the password, as the firmware does)")
    .option("--rate <bytes/s>", "upload ingest limit per printer, e.g. 1MB", size("--rate"))
    .option("--capacity <bytes>", "storage size per printer, e.g. 8GB", size("--capacity"))
    .option(
      "--speed <factor>",
      "printer time runs this many times faster (a 10-minute print takes 6 s at 100)",
      factor("--speed"),
      1,
    )
    .addOption(new Option("--model <model>", "printer model").choices(["MK4", "MK3"]).default("MK4"))
    .option("--no-content", "keep only names and sizes of uploads, not their bytes (for large benchmarks)")
    .action(async (options: Parameters<typeof simPrusaLinkCommand>[0]) => {
      await (await import("./sim-command.ts")).simPrusaLinkCommand(options);
    });
  sim
    .command("octoprint")
    .description("simulated OctoPrint servers, each with a printer, on consecutive ports of 127.0.0.1")
    .option("--port <port>", "first port", integer("--port"), 18200)
    .option("--count <n>", "number of printers", integer("--count"), 1)
    .option("--api-key <key>", 'the API key it accepts (default: $OCTO_KEY or "octoprint")')
    .option("--rate <bytes/s>", "upload ingest limit per server, e.g. 1MB", size("--rate"))
    .option("--capacity <bytes>", "disk of the uploads folder per server, e.g. 16GB", size("--capacity"))
    .option(
      "--speed <factor>",
      "printer time runs this many times faster (a 10-minute print takes 6 s at 100)",
      factor("--speed"),
      1,
    )
    .option("--bgcode", "take .bgcode files too, as with the OctoPrint-BGCode plugin")
    .option(
      "--no-content",
      "keep only names, sizes and hashes of uploads, not their bytes (for large benchmarks)",
    )
    .action(async (options: import("../sim/octoprint/cli.ts").SimOctoPrintOptions) => {
      await (await import("../sim/octoprint/cli.ts")).simOctoPrintCommand(options);
    });
  sim
    .command("moonraker")
    .description(
      "simulated Moonraker servers, each with a Klipper printer, on consecutive ports of 127.0.0.1",
    )
    .option("--port <port>", "first port", integer("--port"), 18300)
    .option("--count <n>", "number of printers", integer("--count"), 1)
    .option(
      "--api-key <key>",
      "require this X-Api-Key (default: $MOONRAKER_KEY; none: every client is trusted)",
    )
    .option("--rate <bytes/s>", "upload ingest limit per server, e.g. 1MB", size("--rate"))
    .option("--capacity <bytes>", "disk of the gcodes folder per server, e.g. 16GB", size("--capacity"))
    .option(
      "--speed <factor>",
      "printer time runs this many times faster (a 10-minute print takes 6 s at 100)",
      factor("--speed"),
      1,
    )
    .option("--no-content", "keep only names and sizes of uploads, not their bytes (for large benchmarks)")
    .action(async (options: import("../sim/moonraker/cli.ts").SimMoonrakerOptions) => {
      await (await import("../sim/moonraker/cli.ts")).simMoonrakerCommand(options);
    });
  sim
    .command("mavlink")
    .description(
      "a simulated flight controller (MAVLink FTP over UDP on 127.0.0.1, or a serial pty) serving a folder of logs",
    )
    .option("--udp <host:port>", "UDP address to listen on", "127.0.0.1:14550")
    .requiredOption("--logs <folder>", "folder served as the vehicle's log folder (removals happen there)")
    .addOption(
      new Option("--layout <layout>", "where the logs appear on the vehicle")
        .choices(["px4", "ardupilot"])
        .default("px4"),
    )
    .option("--loss <share>", "packets lost in each direction, e.g. 0.05", fraction("--loss"), 0)
    .option("--reorder <share>", "packets sent after the next one, e.g. 0.01", fraction("--reorder"), 0)
    .option("--baud <rate>", "link rate limit in baud (0: none), e.g. 921600 or 57600", integer("--baud"), 0)
    .option("--pty", "a serial pseudo-terminal pair (socat) instead of UDP; prints its path", false)
    .option(
      "--control-port <port>",
      "port of the control API (0: any free port)",
      integer("--control-port"),
      0,
    )
    .option("--generate <n>", "make n logs in the folder first", integer("--generate"), 0)
    .option("--log-size <bytes>", "size of each generated log, e.g. 20MB", size("--log-size"), 1024 * 1024)
    .option("--system-id <id>", "the vehicle's MAVLink system id", integer("--system-id"), 1)
    .action(async (options: import("../sim/mavlink/cli.ts").SimMavlinkOptions) => {
      await (await import("../sim/mavlink/cli.ts")).simMavlinkCommand(options);
    });
  sim
    .command("upload-form")
    .description("a simulated log-upload web form (multipart POST, like PX4 Flight Review) on 127.0.0.1")
    .option("--port <port>", "port", integer("--port"), 8090)
    .option("--path <path>", "path the form posts to", "/upload")
    .option("--file-field <name>", "name of the file field", "filearg")
    .option("--require <field>", "a text field uploads must carry (repeatable)", collect, [])
    .option("--username <name>", "require Basic auth (password: --password or $UPLOAD_FORM_PASSWORD)")
    .option("--password <password>", "Basic auth password")
    .option("--max-size <bytes>", "refuse bodies over this size with 413, e.g. 64MB", size("--max-size"))
    .option("--dir <folder>", "keep the received files here (default: a temp folder, removed at exit)")
    .option("--no-content", "keep only names, sizes and hashes of uploads, not their bytes")
    .action(async (options: import("../sim/upload-form/cli.ts").SimUploadFormOptions) => {
      await (await import("../sim/upload-form/cli.ts")).simUploadFormCommand(options);
    });

  const store = ferry
    .command("store")
    .description("check the store (data_dir/ferry.db or DATABASE_URL); set a damaged one aside");
  store
    .command("check")
    .description("integrity check of the store: exit 0 whole (or none yet), 1 damaged or unreachable")
    .addOption(configOption())
    .option("--quick", "quick_check: faster, skips comparing indexes with their tables")
    .option("--json", "print the result as JSON")
    .action(async (options: import("./store-command.ts").StoreCheckOptions) => {
      process.exitCode = await (await import("./store-command.ts")).storeCheckCommand(options);
    });
  store
    .command("reset")
    .description("move a damaged ferry.db aside (kept as ferry.db.corrupt-<time>); a fresh one follows")
    .addOption(configOption())
    .option("--yes", "do not ask (needed where stdin is not a terminal)")
    .action(async (options: import("./store-command.ts").StoreResetOptions) => {
      process.exitCode = await (await import("./store-command.ts")).storeResetCommand(options);
    });

  ferry
    .command("demo")
    .description("simulated printers, a sample folder, `ferry sync` step by step, then `ferry serve`")
    .option("--dir <folder>", "where the demo keeps its files", "ferry-demo")
    .option(
      "--seconds <n>",
      "stop serving after this many seconds (default: at Ctrl-C)",
      integer("--seconds"),
    )
    .action(async (options: { dir: string; seconds?: number }) => {
      process.exitCode = await (await import("./demo.ts")).demoCommand(options);
    });

  return ferry;
}

exitQuietlyWhenOutputCloses([process.stdout, process.stderr]);
try {
  await program().parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else if (error instanceof UsageError) {
    process.stderr.write(`ferry: ${error.message}\n`);
    process.exitCode = EXIT.usage;
  } else if (isFerryError(error)) {
    process.stderr.write(`ferry: ${error.code}: ${error.message}\n`);
    process.exitCode = EXIT.failed;
  } else {
    throw error;
  }
}
