/**
 * Signing in through a real OpenID Connect provider (oidc-provider on 127.0.0.1), driven as a
 * browser would be: plain HTTP requests that follow redirects, fill in and post the provider's
 * login and consent forms, and carry each site's cookies by hand.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fetch, type Response } from "undici";
import { startOidcProvider, type TestOidcProvider } from "../../test/servers/oidc-provider.ts";
import { OIDC_CALLBACK_PATH, OIDC_FLOW_TTL_MS, OIDC_LOGIN_PATH, roleFromClaim } from "./oidc.ts";
import { cookieFrom, startServer, type ProblemBody, type TestServer, type UserBody } from "./test-support.ts";

const CLIENT_ID = "ferry";
const CLIENT_SECRET = "the client secret of ferry at the provider";

/** One site's cookies, as a browser keeps them (paths are not told apart: one flow at a time). */
class Jar {
  readonly #cookies = new Map<string, string>();

  take(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = "", ...attributes] = line.split(";");
      const name = pair.slice(0, pair.indexOf("="));
      const value = pair.slice(pair.indexOf("=") + 1);
      const expired = attributes.some(
        (a) =>
          /^\s*max-age=0\s*$/i.test(a) ||
          (/^\s*expires=/i.test(a) && Date.parse(a.split("=")[1] ?? "") < Date.now()),
      );
      if (expired || value === "") this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  get(name: string): string | undefined {
    return this.#cookies.get(name);
  }

  set(name: string, value: string): void {
    this.#cookies.set(name, value);
  }

  header(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }
}

const decode = (html: string) =>
  html.replace(
    /&(amp|lt|gt|quot|#39|#x27|#x2F);/g,
    (_m, e: string) =>
      ({ amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'", "#x27": "'", "#x2F": "/" })[e] ?? "",
  );

interface Browser {
  ferry: Jar;
  idp: Jar;
}

const newBrowser = (): Browser => ({ ferry: new Jar(), idp: new Jar() });

describe("sign-in through an OpenID Connect provider", () => {
  let idp: TestOidcProvider;
  let t: TestServer;

  before(async () => {
    idp = await startOidcProvider();
    t = await startServer({
      env: { OIDC_SECRET: CLIENT_SECRET },
      yaml: [
        "  auth:",
        "    oidc:",
        `      issuer: ${idp.issuer}`,
        `      client_id: ${CLIENT_ID}`,
        "      client_secret: ${OIDC_SECRET}",
        "      roles: { lab-admins: admin, technicians: operator, students: user }",
        "      scopes: openid profile ferry",
        "",
      ].join("\n"),
    });
    idp.register({
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUri: t.url + OIDC_CALLBACK_PATH,
    });
  });
  after(async () => {
    await t.close();
    await idp.close();
  });

  /** One request of the browser to a site, its cookies sent and kept. */
  const request = async (
    jar: Jar,
    url: string,
    init: { method?: string; form?: Record<string, string> } = {},
  ) => {
    const response = await fetch(url, {
      method: init.method ?? "GET",
      redirect: "manual",
      headers: {
        cookie: jar.header(),
        ...(init.form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
      },
      ...(init.form ? { body: new URLSearchParams(init.form).toString() } : {}),
    });
    jar.take(response);
    return response;
  };

  /**
   * From Ferry's sign-in link through the provider's pages (signing in as `login`, consenting, or
   * aborting when `deny`), up to the provider's redirect back to Ferry: that URL, not yet followed.
   */
  const toCallback = async (browser: Browser, login: string, options: { deny?: boolean } = {}) => {
    const start = await request(browser.ferry, t.url + OIDC_LOGIN_PATH);
    assert.equal(start.status, 302, await start.text());
    let url = start.headers.get("location") ?? "";
    let form: Record<string, string> | undefined;
    for (let step = 0; step < 20; step++) {
      if (url.startsWith(t.url)) return url;
      const response = await request(browser.idp, url, form ? { method: "POST", form } : {});
      form = undefined;
      const location = response.headers.get("location");
      if (response.status >= 300 && response.status < 400 && location !== null) {
        url = new URL(location, url).href;
        continue;
      }
      const html = await response.text();
      assert.equal(response.status, 200, `the provider answered ${response.status} at ${url}: ${html}`);
      const action = /<form[^>]*action="([^"]+)"[^>]*method="post"/.exec(html)?.[1];
      assert.ok(action, `no form at ${url}: ${html}`);
      const fields: Record<string, string> = {};
      for (const [input] of html.matchAll(/<input[^>]*>/g)) {
        const name = /name="([^"]+)"/.exec(input)?.[1];
        if (name !== undefined) fields[name] = decode(/value="([^"]*)"/.exec(input)?.[1] ?? "");
      }
      if (fields.prompt === "login") Object.assign(fields, { login, password: "anything" });
      if (fields.prompt === "consent" && options.deny === true) {
        const abort = /<a href="([^"]+\/abort)"/.exec(html)?.[1];
        assert.ok(abort, "the consent page links to abort");
        url = new URL(decode(abort), url).href;
        continue;
      }
      url = new URL(decode(action), url).href;
      form = fields;
    }
    throw new Error(`the provider never sent the browser back to Ferry (last at ${url})`);
  };

  /** Follows the callback at Ferry; the answer, and the session cookie when one was set. */
  const callback = async (browser: Browser, url: string) => {
    const response = await request(browser.ferry, url);
    const text = await response.text();
    return {
      status: response.status,
      location: response.headers.get("location"),
      body: (response.headers.get("content-type")?.includes("json") ? JSON.parse(text) : text) as ProblemBody,
      session: cookieFrom(response, "ferry_session"),
    };
  };

  const signIn = async (browser: Browser, login: string) =>
    callback(browser, await toCallback(browser, login));

  const me = (session: string) =>
    t.json<{ user: UserBody; role: string; via: string; csrfToken?: string }>("/api/v1/me", {
      cookie: session,
    });

  test("the sign-in options name the identity provider's sign-in, for the login page", async () => {
    assert.deepEqual((await t.json("/api/v1/session/options")).body, {
      password: true,
      oidc: OIDC_LOGIN_PATH,
    });
  });

  test("a full sign-in ends with a Ferry session of the role the claim maps to", async () => {
    idp.accounts.set("sub-ada", { preferred_username: "ada", ferry_role: "technicians" });
    const browser = newBrowser();
    const start = await request(browser.ferry, t.url + OIDC_LOGIN_PATH);
    const authorize = new URL(start.headers.get("location") ?? "");
    assert.equal(authorize.origin, idp.issuer);
    assert.equal(authorize.searchParams.get("code_challenge_method"), "S256");
    assert.equal(authorize.searchParams.get("scope"), "openid profile ferry");
    assert.equal(authorize.searchParams.get("redirect_uri"), t.url + OIDC_CALLBACK_PATH);
    for (const param of ["state", "nonce", "code_challenge"])
      assert.match(authorize.searchParams.get(param) ?? "", /^[\w-]{40,}$/, param);
    const flowCookie = start.headers.getSetCookie().find((c) => c.startsWith("ferry_oidc="));
    assert.match(flowCookie ?? "", /HttpOnly/i);
    assert.match(flowCookie ?? "", /SameSite=Lax/i);

    const done = await signIn(newBrowser(), "sub-ada");
    assert.equal(done.status, 302, JSON.stringify(done.body));
    assert.equal(done.location, "/");
    assert.ok(done.session, "a session cookie is set");
    const { status, body } = await me(done.session);
    assert.equal(status, 200);
    assert.equal(body.role, "operator");
    assert.equal(body.via, "session");
    assert.deepEqual([body.user.name, body.user.external, body.user.hasPassword], ["ada", true, false]);
    // The same session as a password sign-in: its CSRF token lets it change things, here sign out.
    const out = await t.fetch("/api/v1/session", {
      method: "DELETE",
      cookie: done.session,
      headers: { "x-csrf-token": body.csrfToken ?? "" },
    });
    assert.equal(out.status, 204);
    assert.equal((await me(done.session)).status, 401);
    for (const secret of [CLIENT_SECRET, done.session.split("=")[1] ?? "?"])
      assert.ok(!t.logs.some((line) => line.includes(secret)), "no secret in the logs");
  });

  test("the role follows the provider's claim at each sign-in; no role, no sign-in", async () => {
    idp.accounts.set("sub-bo", { preferred_username: "bo", ferry_role: "students" });
    const browser = newBrowser();
    const first = await signIn(browser, "sub-bo");
    assert.ok(first.session, JSON.stringify(first.body));
    assert.equal((await me(first.session)).body.role, "user");

    idp.accounts.set("sub-bo", { preferred_username: "bo", ferry_role: ["students", "lab-admins"] });
    const second = await signIn(browser, "sub-bo"); // the provider remembers the browser: no login form
    assert.ok(second.session, JSON.stringify(second.body));
    assert.equal((await me(second.session)).body.role, "admin", "the highest of the claim's roles");
    assert.equal((await t.app.stored.accounts.getUser("bo"))?.role, "admin");

    idp.accounts.set("sub-bo", { preferred_username: "bo", ferry_role: "visitors" });
    const third = await signIn(browser, "sub-bo");
    assert.equal(third.status, 403);
    assert.equal(third.session, undefined);
    assert.match(third.body.detail, /ferry_role = "visitors", which maps to no Ferry role/);
    assert.equal((await me(second.session)).status, 401, "the sessions it had are ended");
  });

  test("a first sign-in whose claim maps to no role is refused and adds no user", async () => {
    idp.accounts.set("sub-cy", { preferred_username: "cy", ferry_role: "guests" });
    const refused = await signIn(newBrowser(), "sub-cy");
    assert.equal(refused.status, 403);
    assert.equal(refused.body.type, "tag:ferry,2026:problem:permission");
    assert.equal(refused.session, undefined);
    assert.equal(await t.app.stored.accounts.getUser("cy"), undefined);
    idp.accounts.set("sub-cy2", { preferred_username: "cy2" });
    const none = await signIn(newBrowser(), "sub-cy2");
    assert.equal(none.status, 403);
    assert.match(none.body.detail, /ferry_role = nothing/);
  });

  test("a tampered state, a forged or missing flow cookie, or a late return are refused", async () => {
    idp.accounts.set("sub-di", { preferred_username: "di", ferry_role: "technicians" });
    const browser = newBrowser();
    const url = new URL(await toCallback(browser, "sub-di"));
    const flow = browser.ferry.get("ferry_oidc") ?? "";
    const tampered = new URL(url);
    tampered.searchParams.set("state", `${url.searchParams.get("state") ?? ""}x`);
    const wrongState = await callback(browser, tampered.href);
    assert.equal(wrongState.status, 400);
    assert.match(wrongState.body.detail, /state/);
    assert.equal(wrongState.session, undefined);
    // That flow is over: even the genuine callback is refused now.
    const again = await callback(browser, url.href);
    assert.equal(again.status, 400);
    assert.match(again.body.detail, /no sign-in under way/);

    const [body = "", signature = ""] = flow.split(".");
    const forgedFlow = JSON.parse(Buffer.from(body, "base64url").toString()) as { state: string };
    forgedFlow.state = url.searchParams.get("state") ?? "";
    browser.ferry.set(
      "ferry_oidc",
      `${Buffer.from(JSON.stringify(forgedFlow)).toString("base64url")}x.${signature}`,
    );
    const forged = await callback(browser, url.href);
    assert.equal(forged.status, 400);
    assert.match(forged.body.detail, /altered/);

    const late = newBrowser();
    const lateUrl = await toCallback(late, "sub-di");
    t.clock.advance(OIDC_FLOW_TTL_MS + 1000);
    const tooLate = await callback(late, lateUrl);
    assert.equal(tooLate.status, 400);
    assert.match(tooLate.body.detail, /more than 10 minutes/);
    assert.equal(tooLate.session, undefined);
  });

  test("a user who declines at the provider is refused", async () => {
    idp.accounts.set("sub-ed", { preferred_username: "ed", ferry_role: "technicians" });
    const browser = newBrowser();
    const denied = await callback(browser, await toCallback(browser, "sub-ed", { deny: true }));
    assert.equal(denied.status, 401);
    assert.match(denied.body.detail, /refused the sign-in: access_denied/);
    assert.equal(denied.session, undefined);
  });

  test("a name taken by a local user is not handed to the provider's user", async () => {
    await t.app.stored.accounts.addUser({ name: "fay", role: "admin", password: "a long enough password" });
    idp.accounts.set("sub-fay", { preferred_username: "fay", ferry_role: "technicians" });
    const taken = await signIn(newBrowser(), "sub-fay");
    assert.equal(taken.status, 409);
    assert.match(taken.body.detail, /"fay" exists already in Ferry and is not this identity provider's user/);
    assert.equal(taken.session, undefined);
  });
});

describe("without a reachable provider, or without auth.oidc", () => {
  test("a provider that does not answer is a 503 naming the issuer", async () => {
    const gone = await startOidcProvider();
    await gone.close();
    const t = await startServer({
      yaml: `  auth:\n    oidc: { issuer: "${gone.issuer}", client_id: x, client_secret: y }\n`,
    });
    after(() => t.close());
    const { status, body } = await t.json(OIDC_LOGIN_PATH);
    assert.equal(status, 503);
    assert.match(body.detail, new RegExp(`cannot use the identity provider ${gone.issuer}.*ECONNREFUSED`));
    assert.equal(body.subject, "server.auth.oidc.issuer");
  });

  test("without auth.oidc both routes answer 404, and the sign-in options say password only", async () => {
    const t = await startServer();
    after(() => t.close());
    assert.deepEqual((await t.json("/api/v1/session/options")).body, { password: true, oidc: null });
    for (const path of [OIDC_LOGIN_PATH, OIDC_CALLBACK_PATH]) {
      const { status, body } = await t.json(path);
      assert.equal(status, 404, path);
      assert.match(body.detail, /server\.auth\.oidc/);
    }
  });
});

test("claim values map to the highest role, by the roles map or by role names", () => {
  const roles = { techs: "operator", admins: "admin" } as const;
  assert.equal(roleFromClaim("techs", { roles }), "operator");
  assert.equal(roleFromClaim(["techs", "admins", 7], { roles }), "admin");
  assert.equal(roleFromClaim("constructor", { roles }), undefined);
  assert.equal(roleFromClaim("operator", { roles }), undefined, "with a map, only its values count");
  assert.equal(roleFromClaim("operator", {}), "operator");
  assert.equal(roleFromClaim(undefined, { defaultRole: "viewer" }), "viewer");
  assert.equal(roleFromClaim({ role: "admin" }, {}), undefined);
});
