/**
 * Notifications (docs/notifications.md): follows the event bus, turns the events the rules of
 * `notify:` name into notices, finds whom to tell (a job's owner, a role's users, a user, an
 * address; a user who switched notifications off is left out) and hands each notice to its
 * channels: webhooks and e-mail as durable tasks, MQTT to the broker's client. Domain code never
 * calls it; nothing it does can hold up the farm (the bus listener only queues work).
 */
import type { EmailChannel, NotifyConfig, NotifyRule, WebhookChannel } from "../config/index.ts";
import { DELAYED_EVENTS } from "../config/notify.ts";
import type { Clock } from "../core/clock.ts";
import { toFerryError } from "../core/errors.ts";
import type { Subscriber } from "../core/events.ts";
import type { Logger } from "../core/logger.ts";
import type { NotificationSettingsStore } from "../store/notification-settings.ts";
import type { Store } from "../store/store.ts";
import type { TaskQueue } from "../tasks/queue.ts";
import type { TaskRunner } from "../tasks/runner.ts";
import { EMAIL_TASK, Mailer, type EmailPayload } from "./email.ts";
import type { NotifyBusEvents } from "./events.ts";
import { MqttPublisher } from "./mqtt.ts";
import { compose, linkOf, noticeOf, type AnyEnvelope, type Notice } from "./notices.ts";
import { WEBHOOK_TASK, webhookHandler, type WebhookPayload } from "./webhook.ts";

export interface NotifierOptions {
  config: NotifyConfig;
  /** Where links in messages point (notify.dashboard_url, else server.public_url); none: no links. */
  dashboardUrl?: string;
  bus: Subscriber<NotifyBusEvents>;
  queue: TaskQueue;
  runner: TaskRunner;
  store: Store;
  settings: NotificationSettingsStore;
  logger: Logger;
  clock: Clock;
}

/** Whom a rule reaches for one notice. */
interface Reached {
  /** User names (who have notifications on) and addresses, as messages list them. */
  named: string[];
  /** Where e-mail goes: those users' addresses and the literal ones. */
  emails: string[];
}

/** The body of a webhook and of an MQTT message. */
export interface NoticeMessage {
  id: string;
  event: string;
  at: string;
  node: string;
  subject: string;
  text: string;
  message: string;
  link: string | null;
  job: Notice["job"] | null;
  printer: string | null;
  device: string | null;
  recipients: string[];
}

/** Task channels (webhook, e-mail) the runner needs workers for. */
export function notifyTaskChannels(config: NotifyConfig | undefined): number {
  return [...(config?.channels.values() ?? [])].filter((c) => c.type !== "mqtt").length;
}

export class Notifier {
  readonly #o: NotifierOptions;
  readonly #logger: Logger;
  readonly #mailer: Mailer;
  readonly #mqtt = new Map<string, MqttPublisher>();
  readonly #off: (() => void)[] = [];
  /** Offline notices waiting for their `after`, by "printer:<name>" / "device:<name>". */
  readonly #waiting = new Map<string, Set<AbortController>>();
  /** Notices in the order their events came, one at a time. */
  #chain: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: NotifierOptions) {
    this.#o = options;
    this.#logger = options.logger.child({ component: "notify" });
    const channels = [...options.config.channels.values()];
    const webhooks = new Map(
      channels.filter((c): c is WebhookChannel => c.type === "webhook").map((c) => [c.name, c]),
    );
    const emails = new Map(
      channels.filter((c): c is EmailChannel => c.type === "email").map((c) => [c.name, c]),
    );
    this.#mailer = new Mailer(emails);
    // Registered even without such channels today: tasks queued under an older config still settle.
    options.runner.register(WEBHOOK_TASK, webhookHandler(webhooks, options.clock));
    options.runner.register(EMAIL_TASK, this.#mailer.handler());
  }

  /** Connects the MQTT channels and follows the bus. */
  start(): void {
    for (const channel of this.#o.config.channels.values())
      if (channel.type === "mqtt") this.#mqtt.set(channel.name, new MqttPublisher(channel, this.#o.logger));
    const bus = this.#o.bus;
    const follow = (event: AnyEnvelope) => {
      try {
        this.#on(event);
      } catch (error) {
        this.#logger.warn(
          { err: toFerryError(error).message, event: event.type },
          "notify: an event was not handled",
        );
      }
    };
    this.#off.push(
      bus.on("job.state", follow),
      bus.on("printer.state", follow),
      bus.on("printer.error", follow),
      bus.on("printer.waiting_bed_clear", follow),
      bus.on("device.state", follow),
      bus.on("task.failed", follow),
    );
  }

  /** Stops following, drops waiting offline notices, lets queued ones be handed over, disconnects. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const off of this.#off.splice(0)) off();
    for (const waiting of this.#waiting.values()) for (const c of waiting) c.abort();
    this.#waiting.clear();
    await this.#chain;
    await Promise.all([...this.#mqtt.values()].map((m) => m.close()));
    this.#mqtt.clear();
    this.#mailer.close();
  }

  /** What the notifier does not wait for settles (tests, a stop). */
  idle(): Promise<void> {
    return this.#chain;
  }

  #on(event: AnyEnvelope): void {
    if (event.type === "printer.state") {
      this.#publishPrinterState(event);
      if (event.payload.connection !== "offline") this.#cancel(`printer:${event.payload.printer}`);
      return;
    }
    if (event.type === "device.state" && event.payload.state !== "offline")
      this.#cancel(`device:${event.payload.device}`);
    const notice = noticeOf(event);
    if (!notice) return;
    const rules = this.#o.config.rules.filter((rule) => rule.on.includes(notice.event));
    if (rules.length === 0) return;
    const delayed = DELAYED_EVENTS.includes(notice.event);
    const now = rules.filter((rule) => !delayed || rule.afterS === 0);
    if (now.length > 0) this.#queue(notice, now);
    if (!delayed) return;
    const key = notice.printer !== undefined ? `printer:${notice.printer}` : `device:${notice.device ?? ""}`;
    for (const rule of rules.filter((r) => r.afterS > 0)) this.#later(key, rule.afterS * 1000, notice, rule);
  }

  #queue(notice: Notice, rules: NotifyRule[]): void {
    this.#chain = this.#chain
      .then(() => this.#deliver(notice, rules))
      .catch((error: unknown) =>
        this.#logger.error(
          { err: toFerryError(error).message, event: notice.event, notice: notice.id },
          "notify: a notice could not be handed to its channels",
        ),
      );
  }

  /** The rule's notice once the device has stayed away `ms`; nothing if it is back by then. */
  #later(key: string, ms: number, notice: Notice, rule: NotifyRule): void {
    const controller = new AbortController();
    let set = this.#waiting.get(key);
    if (!set) this.#waiting.set(key, (set = new Set()));
    set.add(controller);
    this.#o.clock.sleep(ms, controller.signal).then(
      () => {
        set.delete(controller);
        if (!this.#stopped)
          this.#queue({ ...notice, message: `${notice.message} (for ${ms / 1000} s)` }, [rule]);
      },
      () => set.delete(controller),
    );
  }

  #cancel(key: string): void {
    const set = this.#waiting.get(key);
    if (!set) return;
    for (const controller of set) controller.abort();
    this.#waiting.delete(key);
  }

  async #deliver(notice: Notice, rules: NotifyRule[]): Promise<void> {
    if (notice.job && notice.job.owner === null && notice.event === "job.waiting_bed_clear") {
      const row = await this.#o.store.db
        .selectFrom("jobs")
        .select("owner")
        .where("id", "=", notice.job.id)
        .executeTakeFirst();
      notice = { ...notice, job: { ...notice.job, owner: row?.owner ?? null } };
    }
    const link = linkOf(notice, this.#o.dashboardUrl);
    // One message per channel and recipient, however many rules reach them.
    const sent = new Set<string>();
    let queued = false;
    for (const rule of rules) {
      const reached = await this.#reach(rule, notice);
      if (rule.to.length > 0 && reached.named.length === 0) {
        this.#logger.debug(
          { event: notice.event, rule: rule.index },
          "notify: nobody to tell (switched off)",
        );
        continue;
      }
      const { subject, text } = compose(notice, link, rule);
      const message: NoticeMessage = {
        id: notice.id,
        event: notice.event,
        at: new Date(notice.at).toISOString(),
        node: notice.node,
        subject,
        text,
        message: notice.message,
        link: link ?? null,
        job: notice.job ?? null,
        printer: notice.printer ?? null,
        device: notice.device ?? null,
        recipients: reached.named,
      };
      for (const name of rule.via) {
        const channel = this.#o.config.channels.get(name);
        if (!channel) continue;
        if (channel.type === "email") {
          for (const to of reached.emails) {
            if (sent.has(`${name}\n${to}`)) continue;
            sent.add(`${name}\n${to}`);
            const payload: EmailPayload = {
              channel: name,
              delivery: notice.id,
              event: notice.event,
              to,
              subject,
              text,
            };
            await this.#enqueue(EMAIL_TASK, [notice.id, name, to], name, payload, channel.attempts);
            queued = true;
          }
          continue;
        }
        if (sent.has(name)) continue;
        sent.add(name);
        if (channel.type === "webhook") {
          const payload: WebhookPayload = {
            channel: name,
            delivery: notice.id,
            event: notice.event,
            body: JSON.stringify(message),
          };
          await this.#enqueue(WEBHOOK_TASK, [notice.id, name], name, payload, channel.attempts);
          queued = true;
        } else {
          const mqtt = this.#mqtt.get(name);
          mqtt?.publish(mqtt.topic(...topicOf(notice), "events"), message);
        }
      }
    }
    if (queued) this.#o.runner.notify();
  }

  async #enqueue(
    kind: string,
    key: string[],
    channel: string,
    payload: unknown,
    attempts: number,
  ): Promise<void> {
    await this.#o.queue.enqueue(
      {
        kind,
        key: JSON.stringify(["notify", ...key]),
        queue: `notify:${channel}`,
        payload,
        maxAttempts: attempts,
      },
      "keep",
    );
  }

  async #reach(rule: NotifyRule, notice: Notice): Promise<Reached> {
    const users = new Set<string>();
    const addresses = new Set<string>();
    for (const to of rule.to) {
      if (to.kind === "owner") {
        if (notice.job?.owner) users.add(notice.job.owner);
      } else if (to.kind === "user") users.add(to.name);
      else if (to.kind === "role")
        for (const name of await this.#o.settings.usersWithRole(to.role)) users.add(name);
      else addresses.add(to.address);
    }
    const settings = await this.#o.settings.of([...users]);
    const willing = [...users].filter((name) => settings.get(name)?.enabled === true);
    const emails = new Set(
      willing.map((name) => settings.get(name)?.email).filter((email): email is string => !!email),
    );
    for (const address of addresses) emails.add(address);
    return { named: [...willing, ...addresses], emails: [...emails] };
  }

  #publishPrinterState(event: AnyEnvelope & { type: "printer.state" }): void {
    const p = event.payload;
    for (const mqtt of this.#mqtt.values()) {
      if (!mqtt.channel.printerState) continue;
      mqtt.publish(
        mqtt.topic("printers", p.printer, "state"),
        {
          printer: p.printer,
          connection: p.connection,
          activity: p.activity,
          rawState: p.rawState,
          at: new Date(event.at).toISOString(),
        },
        { retain: true },
      );
    }
  }
}

/** The topic under the prefix where a notice goes: its job's, else its printer's, else its device's. */
function topicOf(notice: Notice): string[] {
  if (notice.job) return ["jobs", notice.job.id];
  if (notice.printer !== undefined) return ["printers", notice.printer];
  if (notice.device !== undefined) return ["devices", notice.device];
  return ["ferry"];
}
