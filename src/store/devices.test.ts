import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { testPostgres } from "../../test/servers/postgres.ts";
import { DeviceStates, type DeviceState } from "./devices.ts";
import { dialects } from "./test-support.ts";

const pg = await testPostgres();
after(() => pg.close());

for (const dialect of dialects(pg)) {
  describe(`device states on ${dialect.label}`, () => {
    after(() => dialect.cleanup());
    let now = 1_796_000_000_000;
    const clock = () => now;

    test(
      "since moves only when the state changes; the detail is the latest report's",
      dialect.testOptions,
      async () => {
        const store = await dialect.open();
        const states = new DeviceStates(store, { clock });
        assert.equal(await states.get("mk4-a"), undefined);
        await states.set("mk4-a", "online");
        const online = now;
        assert.deepEqual(await states.get("mk4-a"), { name: "mk4-a", state: "online", since: online });
        now += 60_000;
        await states.set("mk4-a", "online", "PrusaLink 2.1.2");
        assert.deepEqual(await states.get("mk4-a"), {
          name: "mk4-a",
          state: "online",
          since: online,
          detail: "PrusaLink 2.1.2",
        });
        now += 60_000;
        await states.set("mk4-a", "offline", "connect ECONNREFUSED 192.168.1.50:80");
        const offline = now;
        now += 60_000;
        await states.set("mk4-a", "offline");
        assert.deepEqual(await states.get("mk4-a"), { name: "mk4-a", state: "offline", since: offline });
        now += 60_000;
        await states.set("mk4-a", "online");
        assert.equal((await states.get("mk4-a"))?.since, now);
      },
    );

    test(
      "all() lists every device by name, and another instance sees the same",
      dialect.testOptions,
      async () => {
        const store = await dialect.open();
        const states = new DeviceStates(store, { clock });
        const given: [string, DeviceState][] = [
          ["usb-stick", "offline"],
          ["drone-7", "busy"],
          ["mk4-b", "attention"],
          ["mk4-a", "online"],
        ];
        for (const [name, state] of given) await states.set(name, state, `${name} is ${state}`);
        const all = await new DeviceStates(store).all();
        assert.deepEqual(
          all.map((d) => [d.name, d.state, d.since, d.detail]),
          [...given].sort(([a], [b]) => (a < b ? -1 : 1)).map(([n, s]) => [n, s, now, `${n} is ${s}`]),
        );
      },
    );

    test("an unknown state is refused", dialect.testOptions, async () => {
      const states = new DeviceStates(await dialect.open());
      // @ts-expect-error: not a DeviceState, as from an untyped caller
      await assert.rejects(states.set("p", "sleeping"), /unknown device state "sleeping"/);
    });
  });
}
