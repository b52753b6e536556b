import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { z } from "zod";
import { secretString } from "../core/secret.ts";
import type { Secret } from "../core/secret.ts";
import { expand, maskSubstitutions, parseDotenv } from "./env.ts";
import { loadConfig } from "./load.ts";
import { describeConfig } from "./redact.ts";
import {
  brief,
  configError,
  configErrorAsync,
  EXAMPLE,
  KINDS,
  parse,
  PASSWORD,
  printerKind,
} from "./test-fixtures.ts";
import type { FerryConfig } from "./types.ts";

const lookup = (vars: Record<string, string>) => (name: string) => vars[name];
const passwordOf = (config: FerryConfig, device: string) =>
  (config.devices.get(device)?.options as { password: Secret }).password.reveal();

describe("expand", () => {
  it("replaces ${NAME} anywhere in a string", () => {
    const result = expand("http://${HOST}:${PORT}/x", lookup({ HOST: "printer", PORT: "8080" }));
    assert.equal(result.value, "http://printer:8080/x");
    assert.deepEqual(result.errors, []);
    assert.deepEqual(result.used, [
      { variable: "HOST", value: "printer" },
      { variable: "PORT", value: "8080" },
    ]);
  });

  it("keeps $${ as a literal ${ and a lone $ as it is", () => {
    assert.equal(expand("cost $5, $${HOME} and $$", lookup({ HOME: "/h" })).value, "cost $5, ${HOME} and $$");
    assert.equal(expand("$${A} ${A}", lookup({ A: "x" })).value, "${A} x");
  });

  it("does not expand what a variable contains", () => {
    assert.equal(expand("${A}", lookup({ A: "${B}", B: "no" })).value, "${B}");
  });

  it("reports unset, malformed and unterminated references", () => {
    assert.deepEqual(expand("${NOPE}", lookup({})).errors, [
      "environment variable NOPE is not set (nor in .env next to the config)",
    ]);
    assert.match(expand("${}", lookup({})).errors[0] ?? "", /"\$\{\}" is not a variable reference/);
    assert.match(expand("${A:-x}", lookup({ A: "a" })).errors[0] ?? "", /is not a variable reference/);
    assert.match(expand("abc ${A", lookup({ A: "a" })).errors[0] ?? "", /without a closing "}"/);
  });

  it("treats a variable set to the empty string as set", () => {
    assert.deepEqual(expand("<${E}>", lookup({ E: "" })), {
      value: "<>",
      used: [{ variable: "E", value: "" }],
      errors: [],
    });
  });
});

describe(".env", () => {
  it("reads KEY=value lines, comments and quotes", () => {
    assert.deepEqual(parseDotenv('# c\nA=1\nB="two words"\nexport C=3\n\nD=\n'), {
      A: "1",
      B: "two words",
      C: "3",
      D: "",
    });
  });

  it("fills in variables the environment lacks; the environment wins", () => {
    const text = `devices:\n  a: { type: prusalink, url: "\${URL_A}", password: "\${PW}" }\n`;
    const config = parse(text, {
      env: { PW: "from-env" },
      dotenv: { PW: "from-dotenv", URL_A: "http://dotenv" },
    });
    assert.equal(passwordOf(config, "a"), "from-env");
    assert.equal((config.devices.get("a")?.options as { url: string }).url, "http://dotenv");
  });

  it("is read from the config's folder by loadConfig", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-env-"));
    try {
      await writeFile(join(dir, "ferry.yaml"), EXAMPLE);
      await writeFile(join(dir, ".env"), "PRUSA_PASSWORD=from-file\n");
      const fromFile = await loadConfig(join(dir, "ferry.yaml"), { deviceKinds: KINDS, env: {} });
      assert.equal(passwordOf(fromFile, "mk4-a"), "from-file");
      const fromEnv = await loadConfig(join(dir, "ferry.yaml"), {
        deviceKinds: KINDS,
        env: { PRUSA_PASSWORD: "from-env" },
      });
      assert.equal(passwordOf(fromEnv, "mk4-a"), "from-env");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("uses process.env when no env is given", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-env-"));
    const name = "FERRY_CONFIG_TEST_PASSWORD";
    try {
      await writeFile(join(dir, "ferry.yaml"), EXAMPLE.replaceAll("PRUSA_PASSWORD", name));
      process.env[name] = "from-process";
      const config = await loadConfig(join(dir, "ferry.yaml"), { deviceKinds: KINDS });
      assert.equal(passwordOf(config, "mk4-b"), "from-process");
    } finally {
      Reflect.deleteProperty(process.env, name);
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("names the variable, the field and the line when it is set nowhere", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ferry-env-"));
    try {
      await writeFile(join(dir, "ferry.yaml"), EXAMPLE);
      const error = await configErrorAsync(() =>
        loadConfig(join(dir, "ferry.yaml"), { deviceKinds: KINDS, env: {} }),
      );
      assert.deepEqual(brief(error.problems), [
        "2:87 devices.mk4-a.password: environment variable PRUSA_PASSWORD is not set (nor in .env next to the config)",
        "3:87 devices.mk4-b.password: environment variable PRUSA_PASSWORD is not set (nor in .env next to the config)",
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("substitutes in values only, not in keys or comments", () => {
    const config = parse('data_dir: "${D}" # ${NOT_USED}\n', { env: { D: "/data" } });
    assert.equal(config.dataDir, "/data");
    const error = configError(() => parse("${KEY}: 1\n", { env: { KEY: "devices" } }));
    assert.match(error.message, /unknown key "\$\{KEY\}"/);
  });

  it("gives text even where a number is expected", () => {
    const config = parse(
      "syncs:\n  s: { source: ./a, targets: [./b], mode: copy, mtime_tolerance: '${TOL}' }\n",
      {
        env: { TOL: "2" },
      },
    );
    assert.equal(config.syncs.get("s")?.modTimeToleranceS, 2);
  });
});

describe("secrets never leak", () => {
  // A kind whose author wrote a message that quotes the input: the loader must still not show it.
  const chattyKind = {
    kind: "chatty",
    optionsSchema: z.object({
      url: z.url(),
      password: z
        .string()
        .refine((value) => value.length > 40, { error: (issue) => `too short: ${String(issue.input)}` })
        .transform((value) => value),
      token: secretString(),
    }),
  };

  const leaks = (text: string) => text.includes(PASSWORD);

  it("keeps the password out of ConfigError messages and problems", () => {
    const text = `devices:
  a: { type: prusalink, url: "bad url", password: "\${PRUSA_PASSWORD}", extra: "\${PRUSA_PASSWORD}" }
  c: { type: chatty, url: "http://c", password: "\${PRUSA_PASSWORD}", token: "\${PRUSA_PASSWORD}" }
syncs:
  s: { source: "\${PRUSA_PASSWORD}", targets: ["./x", "\${PRUSA_PASSWORD}:dir"], mode: "\${PRUSA_PASSWORD}" }
`;
    const error = configError(() => parse(text, { deviceKinds: [printerKind, chattyKind] }));
    assert.ok(error.problems.length >= 5, error.message);
    assert.equal(leaks(error.message), false, error.message);
    assert.equal(leaks(JSON.stringify(error.problems)), false);
    assert.equal(leaks(inspect(error, { depth: 10 })), false);
    assert.match(error.message, /too short: \$\{PRUSA_PASSWORD\}/);
    assert.match(error.message, /unknown device or group "\$\{PRUSA_PASSWORD\}"/);
  });

  it("keeps a password written in the file out of YAML syntax errors", () => {
    const error = configError(() => parse(`devices:\n  a: { type: prusalink, password: "${PASSWORD}\n`));
    assert.equal(leaks(error.message), false, error.message);
  });

  it("keeps the password out of describeConfig, JSON.stringify and inspect of the config", () => {
    const config = parse(EXAMPLE);
    assert.equal(passwordOf(config, "mk4-a"), PASSWORD);
    const summary = JSON.stringify(describeConfig(config));
    assert.equal(leaks(summary), false);
    assert.match(summary, /"password":"\[redacted\]"/);
    assert.equal(leaks(JSON.stringify(config)), false);
    assert.equal(leaks(JSON.stringify({ ...config, devices: Object.fromEntries(config.devices) })), false);
    assert.equal(leaks(inspect(config, { depth: 20 })), false);
    assert.equal(
      leaks(String((config.devices.get("mk4-a")?.options as { password: Secret }).password)),
      false,
    );
  });
});

describe("maskSubstitutions", () => {
  it("masks longer values first and leaves very short ones alone", () => {
    const used = [
      { variable: "SHORT", value: "abc" },
      { variable: "PW", value: "hunter2" },
      { variable: "LONG", value: "hunter22" },
    ];
    assert.equal(maskSubstitutions("abc hunter22 hunter2", used), "abc ${LONG} ${PW}");
  });
});
