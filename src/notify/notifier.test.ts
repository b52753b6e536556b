/**
 * The notifier on a real store (SQLite and PostgreSQL), its bus fed by hand: which events become which tasks, for
 * whom (owners, roles, users, addresses; switched-off and disabled users left out), offline notices
 * that wait their `after` and are dropped when the printer is back, nothing notified about
 * notifications. Delivery itself is tested in test/notify.test.ts against real servers.
 */
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, test } from "node:test";
import { testPostgres } from "../../test/servers/postgres.ts";
import { Accounts } from "../auth/accounts.ts";
import { parseConfig } from "../config/index.ts";
import { FakeClock } from "../core/clock.ts";
import { EventBus } from "../core/events.ts";
import { silentLogger } from "../core/logger.ts";
import { deviceKinds } from "../devices/devices.ts";
import { NotificationSettingsStore } from "../store/notification-settings.ts";
import type { Store } from "../store/store.ts";
import { dialects } from "../store/test-support.ts";
import type { TaskEvents } from "../tasks/events.ts";
import { TaskRunner } from "../tasks/runner.ts";
import { StoreTaskQueue } from "../tasks/store-queue.ts";
import type { EmailPayload } from "./email.ts";
import type { NotifyBusEvents } from "./events.ts";
import { Notifier } from "./notifier.ts";
import type { WebhookPayload } from "./webhook.ts";

const CONFIG = `notify:
  dashboard_url: https://ferry.example.com
  channels:
    hook: { type: webhook, url: "https://hooks.example.com/ferry" }
    mail: { type: email, host: smtp.example.com, from: "Ferry <ferry@example.com>" }
  rules:
    - { on: job.finished, to: owner, via: [hook, mail] }
    - { on: job.finished, to: owner, via: hook, subject: "Done: {{file}}" }
    - { on: job.failed, to: [role:operator, desk@example.com], via: mail, subject: "{{file}} failed: {{message}}" }
    - { on: printer.offline, after: 5m, via: hook }
    - { on: transfer.dead, via: hook }
`;

const pg = await testPostgres();
after(() => pg.close());

for (const dialect of dialects(pg))
  describe(`the notifier on ${dialect.label}`, () => {
    let store: Store;
    let queue: StoreTaskQueue;
    let clock: FakeClock;
    let bus: EventBus<NotifyBusEvents & TaskEvents>;
    let notifier: Notifier;
    let settings: NotificationSettingsStore;

    before(async () => {
      if (dialect.testOptions.skip !== undefined) return;
      store = await dialect.open();
      const accounts = new Accounts(store);
      await accounts.addUser({ name: "maker", role: "user" });
      await accounts.addUser({ name: "olga", role: "operator" });
      await accounts.addUser({ name: "oscar", role: "operator" });
      await accounts.addUser({ name: "otto", role: "operator" });
      await accounts.updateUser("otto", { disabled: true });
      settings = new NotificationSettingsStore(store);
      await settings.set("maker", { email: "maker@example.com" });
      await settings.set("olga", { email: "olga@example.com" });
      await settings.set("oscar", { email: "oscar@example.com", enabled: false });
      await settings.set("otto", { email: "otto@example.com" });
    });
    after(() => dialect.cleanup());

    beforeEach(async () => {
      if (dialect.testOptions.skip !== undefined) return;
      await store.db.deleteFrom("tasks").execute();
      await settings.set("maker", { enabled: true });
      clock = new FakeClock();
      queue = new StoreTaskQueue(store, { clock: () => clock.now() });
      bus = new EventBus<NotifyBusEvents & TaskEvents>({ node: "test", clock: () => clock.now() });
      const config = parseConfig(CONFIG, "/farm/ferry.yaml", { deviceKinds, env: {} }).notify;
      assert.ok(config);
      const runner = new TaskRunner({ queue, bus, logger: silentLogger, node: "test", clock });
      notifier = new Notifier({
        config,
        dashboardUrl: config.dashboardUrl ?? "",
        bus,
        queue,
        runner,
        store,
        settings,
        logger: silentLogger,
        clock,
      });
      notifier.start();
    });

    const tasks = async () => {
      await notifier.idle();
      return (await queue.list({ limit: 100 })).map((t) => ({
        kind: t.kind,
        queue: t.queue,
        payload: t.payload,
      }));
    };
    const finished = (owner: string | null) =>
      bus.emit("job.state", {
        id: "job-1",
        orderId: "order-1",
        file: "hook.gcode",
        owner,
        printer: "mk4-a",
        from: "printing",
        to: "printed",
        reason: null,
      });

    test(
      "a finished job: one webhook and one e-mail to its owner, however many rules reach them",
      dialect.testOptions,
      async () => {
        finished("maker");
        const queued = await tasks();
        assert.deepEqual(
          queued.map((t) => [t.kind, t.queue]),
          [
            ["notify.webhook", "notify:hook"],
            ["notify.email", "notify:mail"],
          ],
        );
        const mail = queued[1]?.payload as EmailPayload;
        assert.equal(mail.to, "maker@example.com");
        assert.equal(mail.subject, "Printed: hook.gcode on mk4-a");
        assert.match(
          mail.text,
          /^hook\.gcode is printed\n\nJob: hook\.gcode\nPrinter: mk4-a\nTime: 2023-11-14 22:13:20 UTC\nhttps:\/\/ferry\.example\.com\/jobs\/job-1\n$/,
        );
        const hook = JSON.parse((queued[0]?.payload as WebhookPayload).body) as Record<string, unknown>;
        assert.equal(hook.event, "job.finished");
        assert.deepEqual(hook.recipients, ["maker"]);
        assert.equal(hook.link, "https://ferry.example.com/jobs/job-1");
        await notifier.stop();
      },
    );

    test(
      "an owner who switched notifications off, and a job without an owner, notify nobody",
      dialect.testOptions,
      async () => {
        await settings.set("maker", { enabled: false });
        finished("maker");
        finished(null);
        assert.deepEqual(await tasks(), []);
        await notifier.stop();
      },
    );

    test(
      "a role reaches its users who have an address and notifications on; addresses as written",
      dialect.testOptions,
      async () => {
        bus.emit("job.state", {
          id: "job-2",
          orderId: "order-2",
          file: "clip.gcode",
          owner: "maker",
          printer: "mk4-a",
          from: "printing",
          to: "failed",
          reason: "thermal runaway",
        });
        const queued = await tasks();
        assert.deepEqual(queued.map((t) => (t.payload as EmailPayload).to).sort(), [
          "desk@example.com",
          "olga@example.com",
        ]);
        assert.equal((queued[0]?.payload as EmailPayload).subject, "clip.gcode failed: thermal runaway");
        await notifier.stop();
      },
    );

    test(
      "printer.offline waits its `after`; a printer back in time notifies nobody",
      dialect.testOptions,
      async () => {
        const offline = () =>
          bus.emit("printer.error", { printer: "mk4-a", problem: "offline", message: "no answer" });
        offline();
        clock.advance(4 * 60_000);
        bus.emit("printer.state", {
          printer: "mk4-a",
          connection: "online",
          activity: "idle",
          rawState: "IDLE",
        });
        clock.advance(2 * 60_000);
        // A timer that fired would have queued its notice by now.
        await new Promise((resolve) => setImmediate(resolve));
        assert.deepEqual(await tasks(), []);

        offline();
        clock.advance(5 * 60_000);
        await new Promise((resolve) => setImmediate(resolve));
        const queued = await tasks();
        assert.equal(queued.length, 1);
        const body = JSON.parse((queued[0]?.payload as WebhookPayload).body) as {
          event: string;
          message: string;
          link: string;
        };
        assert.deepEqual(body, {
          ...body,
          event: "printer.offline",
          message: "no answer (for 300 s)",
          link: "https://ferry.example.com/printers/mk4-a",
        });
        await notifier.stop();
      },
    );

    test(
      "a dead transfer is notified with its device; a dead notification is not",
      dialect.testOptions,
      async () => {
        const dead = (kind: string, target: string) =>
          bus.emit("task.failed", {
            id: "t1",
            kind,
            what: "send a.gcode",
            target,
            code: "PROTOCOL",
            error: "refused",
            outcome: "dead",
          });
        dead("notify.webhook", "hook");
        dead("sync.file", "nas:backup");
        const queued = await tasks();
        assert.equal(queued.length, 1);
        const body = JSON.parse((queued[0]?.payload as WebhookPayload).body) as {
          device: string;
          subject: string;
        };
        assert.deepEqual([body.device, body.subject], ["nas", "A transfer to nas gave up"]);
        await notifier.stop();
      },
    );

    test("stopped, it follows nothing", dialect.testOptions, async () => {
      await notifier.stop();
      finished("maker");
      assert.deepEqual(await tasks(), []);
    });
  });
