import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePrinterEntry } from "./schema.ts";
import { brief, configError, formKind, parse, printerKind } from "./test-fixtures.ts";

const FARM = `devices:
  mk4-a: { type: prusalink, url: "http://127.0.0.1:18100", password: x, farm: true, model: MK4, tags: [PLA, PETG] }
  octo-1: { type: prusalink, url: "http://127.0.0.1:18101", password: x, farm: true, auto_clear: true, camera_url: "http://127.0.0.1:8080/snapshot" }
  spare: { type: prusalink, url: "http://127.0.0.1:18102", password: x }
farm:
  auto_schedule: false
  approval: [user]
  max_heating: 2
  interval: 500ms
`;

describe("farm keys", () => {
  it("reads a printer's farm keys beside its options, and the farm section", () => {
    const config = parse(FARM);
    const mk4 = config.devices.get("mk4-a");
    assert.ok(mk4);
    assert.deepEqual(mk4.printer, { farm: true, model: "MK4", tags: ["PLA", "PETG"], autoClear: false });
    assert.equal(
      (mk4.options as Record<string, unknown>).farm,
      undefined,
      "the driver's options stay its own",
    );
    assert.deepEqual(config.devices.get("octo-1")?.printer, {
      farm: true,
      tags: [],
      autoClear: true,
      cameraUrl: "http://127.0.0.1:8080/snapshot",
    });
    assert.deepEqual(config.devices.get("spare")?.printer, { farm: false, tags: [], autoClear: false });
    assert.deepEqual(config.farm, { autoSchedule: false, approval: ["user"], maxHeating: 2, intervalS: 0.5 });
  });

  it("has defaults when there is no farm section", () => {
    const config = parse(`devices:\n  mk4-a: { type: prusalink, url: "http://127.0.0.1:1", password: x }\n`);
    assert.deepEqual(config.farm, { autoSchedule: true, approval: [], maxHeating: 4, intervalS: 2 });
  });

  it("names the field of every bad farm key", () => {
    const text = `devices:
  mk4-a: { type: prusalink, url: "http://127.0.0.1:1", password: x, farm: yes, tags: [PLA, ""], camera_url: "ftp://cam" }
  form: { type: form, url: "http://127.0.0.1:2", farm: true }
farm:
  approval: [user, admin]
  max_heating: 0
  interval: soon
  colour: red
`;
    const error = configError(() => parse(text));
    assert.deepEqual(brief(error.problems), [
      "2:75 devices.mk4-a.farm: Invalid input: expected boolean, received string",
      "2:92 devices.mk4-a.tags[1]: a tag must not be empty",
      "2:109 devices.mk4-a.camera_url: must be an http:// or https:// URL",
      '3:50 devices.form.farm: unknown key "farm"; known keys: type, url',
      "5:20 farm.approval[1]: admins' jobs never wait for approval; list the roles whose jobs do (e.g. user)",
      "6:16 farm.max_heating: at least 1 printer must be allowed to heat",
      '7:13 farm.interval: expected a duration such as 60, "60s", "2m" or "1m30s"',
      '8:3 farm.colour: unknown key "colour"; known keys: auto_schedule, approval, max_heating, interval',
    ]);
  });

  it("checks a printer added at run time the same way, naming the field", () => {
    const good = parsePrinterEntry(printerKind, {
      url: "http://127.0.0.1:1",
      password: "x",
      farm: true,
      tags: "PLA",
    });
    assert.ok(good.ok);
    assert.deepEqual(good.printer, { farm: true, tags: ["PLA"], autoClear: false });
    const bad = parsePrinterEntry(printerKind, { url: "nope", password: "x", auto_clear: "yes" });
    assert.ok(!bad.ok);
    assert.deepEqual(bad.problems, [
      "auto_clear: Invalid input: expected boolean, received string",
      "url: Invalid URL",
    ]);
    assert.equal(formKind.printer, undefined);
  });
});
