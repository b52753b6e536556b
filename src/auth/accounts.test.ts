import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { testPostgres } from "../../test/servers/postgres.ts";
import { FakeClock } from "../core/clock.ts";
import { isFerryError } from "../core/errors.ts";
import { dialects } from "../store/test-support.ts";
import { Accounts, SESSION_TTL_MS } from "./accounts.ts";
import { parseApiToken } from "./secrets.ts";

const pg = await testPostgres();
after(() => pg.close());

const PASSWORD = "correct horse battery";

const rejectsWith = (code: string) => (error: unknown) => isFerryError(error) && error.code === code;

for (const dialect of dialects(pg)) {
  describe(`accounts on ${dialect.label}`, () => {
    after(() => dialect.cleanup());
    const fresh = async () => {
      const clock = new FakeClock();
      const store = await dialect.open();
      return { clock, store, accounts: new Accounts(store, { clock }) };
    };

    test(
      "a password is kept as an argon2id hash and signs in; a wrong one does not",
      dialect.testOptions,
      async () => {
        const { accounts, store } = await fresh();
        await accounts.addUser({ name: "ada", role: "operator", password: PASSWORD });
        const [row] = await store.db.selectFrom("users").select("password_hash").execute();
        assert.match(row?.password_hash ?? "", /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
        assert.ok(!row?.password_hash?.includes(PASSWORD));
        const session = await accounts.signIn("ada", PASSWORD);
        assert.ok(session);
        assert.equal(session.user.role, "operator");
        assert.equal(await accounts.signIn("ada", "wrong password"), undefined);
        assert.equal(await accounts.signIn("nobody", PASSWORD), undefined);
        const identity = await accounts.sessionIdentity(session.secret);
        assert.equal(identity?.user.name, "ada");
        assert.equal(identity.via, "session");
      },
    );

    test("names are unique and checked; the last admin stays", dialect.testOptions, async () => {
      const { accounts } = await fresh();
      await accounts.addUser({ name: "root", role: "admin", password: PASSWORD });
      await assert.rejects(accounts.addUser({ name: "root", role: "viewer" }), rejectsWith("EXISTS"));
      await assert.rejects(accounts.addUser({ name: "../etc", role: "viewer" }), rejectsWith("NAME_INVALID"));
      await assert.rejects(
        accounts.addUser({ name: "short", role: "viewer", password: "1234567" }),
        rejectsWith("NAME_INVALID"),
      );
      await assert.rejects(accounts.removeUser("root"), rejectsWith("CONFLICT"));
      await assert.rejects(accounts.updateUser("root", { role: "operator" }), rejectsWith("CONFLICT"));
      await assert.rejects(accounts.updateUser("root", { disabled: true }), rejectsWith("CONFLICT"));
      await accounts.addUser({ name: "second", role: "admin" });
      await accounts.updateUser("root", { role: "viewer" });
      assert.deepEqual(
        (await accounts.listUsers()).map((u) => [u.name, u.role, u.hasPassword]),
        [
          ["root", "viewer", true],
          ["second", "admin", false],
        ],
      );
      await assert.rejects(accounts.removeUser("ghost"), rejectsWith("NOT_FOUND"));
    });

    test("the first admin is made once", dialect.testOptions, async () => {
      const { accounts } = await fresh();
      assert.equal(await accounts.hasAdmin(), false);
      const [a, b] = await Promise.all([
        accounts.addFirstAdmin("admin", PASSWORD),
        accounts.addFirstAdmin("other", PASSWORD),
      ]);
      assert.equal([a, b].filter((u) => u !== undefined).length, 1, "one of two at once wins");
      assert.equal(await accounts.hasAdmin(), true);
      assert.equal(await accounts.addFirstAdmin("late", PASSWORD), undefined);
    });

    test(
      "a token works until it expires, is revoked, or its user is disabled or removed",
      dialect.testOptions,
      async () => {
        const { accounts, clock } = await fresh();
        await accounts.addUser({ name: "admin", role: "admin", password: PASSWORD });
        await accounts.addUser({ name: "bob", role: "user" });
        await assert.rejects(
          accounts.createToken({ user: "bob", name: "ci", role: "operator", expiresAt: null }),
          rejectsWith("PERMISSION"),
        );
        const { token, secret } = await accounts.createToken({
          user: "bob",
          name: "ci",
          role: "user",
          expiresAt: clock.now() + 60_000,
        });
        assert.ok(parseApiToken(secret), secret);
        assert.equal(token.id, parseApiToken(secret)?.id);
        await assert.rejects(
          accounts.createToken({ user: "bob", name: "ci", role: "viewer", expiresAt: null }),
          rejectsWith("EXISTS"),
        );
        const identity = await accounts.tokenIdentity(secret);
        assert.equal(identity?.user.name, "bob");
        assert.equal(identity.role, "user");
        assert.equal((await accounts.listTokens("bob"))[0]?.lastUsedAt, clock.now());
        // Another secret with the same id is refused.
        const forged = secret.slice(0, -3) + (secret.endsWith("AAA") ? "BBB" : "AAA");
        assert.equal(await accounts.tokenIdentity(forged), undefined);

        clock.advance(60_000);
        assert.equal(await accounts.tokenIdentity(secret), undefined, "expired");

        const lasting = await accounts.createToken({
          user: "bob",
          name: "cron",
          role: "viewer",
          expiresAt: null,
        });
        assert.equal((await accounts.tokenIdentity(lasting.secret))?.role, "viewer");
        await accounts.updateUser("bob", { disabled: true });
        assert.equal(await accounts.tokenIdentity(lasting.secret), undefined, "user disabled");
        await accounts.updateUser("bob", { disabled: false });
        assert.ok(await accounts.tokenIdentity(lasting.secret));
        await accounts.removeUser("bob");
        assert.equal(await accounts.tokenIdentity(lasting.secret), undefined, "user removed");
        assert.deepEqual(await accounts.listTokens(), []);

        const admins = await accounts.createToken({
          user: "admin",
          name: "a",
          role: "admin",
          expiresAt: null,
        });
        assert.equal(await accounts.revokeToken(admins.token.id), true);
        assert.equal(await accounts.tokenIdentity(admins.secret), undefined, "revoked");
        assert.equal(await accounts.revokeToken(admins.token.id), false);
      },
    );

    test("a token acts with its owner's role when the owner is demoted", dialect.testOptions, async () => {
      const { accounts } = await fresh();
      await accounts.addUser({ name: "boss", role: "admin" });
      await accounts.addUser({ name: "ops", role: "operator" });
      const { secret } = await accounts.createToken({
        user: "ops",
        name: "t",
        role: "operator",
        expiresAt: null,
      });
      await accounts.updateUser("ops", { role: "viewer" });
      assert.equal((await accounts.tokenIdentity(secret))?.role, "viewer");
    });

    test(
      "sessions end at sign-out, after their lifetime, and at a new password",
      dialect.testOptions,
      async () => {
        const { accounts, clock } = await fresh();
        await accounts.addUser({ name: "eve", role: "viewer", password: PASSWORD });
        const first = await accounts.signIn("eve", PASSWORD);
        assert.ok(first);
        await accounts.endSession(first.secret);
        assert.equal(await accounts.sessionIdentity(first.secret), undefined);

        const second = await accounts.signIn("eve", PASSWORD);
        assert.ok(second);
        clock.advance(SESSION_TTL_MS);
        assert.equal(await accounts.sessionIdentity(second.secret), undefined);

        const third = await accounts.signIn("eve", PASSWORD);
        assert.ok(third);
        await accounts.updateUser("eve", { password: "another good password" });
        assert.equal(await accounts.sessionIdentity(third.secret), undefined);
        assert.equal(await accounts.signIn("eve", PASSWORD), undefined);
        assert.ok(await accounts.signIn("eve", "another good password"));
      },
    );

    test(
      "an identity provider's user is added once, keyed by issuer and subject, and takes the claim's role",
      dialect.testOptions,
      async () => {
        const { accounts } = await fresh();
        const idp = { issuer: "https://login.example.com", subject: "0a1b" };
        const first = await accounts.signInExternal({ ...idp, name: "ida", role: "user" });
        assert.deepEqual(
          [first.user.name, first.user.role, first.user.external, first.user.hasPassword],
          ["ida", "user", true, false],
        );
        assert.equal((await accounts.sessionIdentity(first.secret))?.user.name, "ida");
        // A new name at the provider does not rename the user; the role follows the claim.
        const second = await accounts.signInExternal({ ...idp, name: "ida.new", role: "operator" });
        assert.equal(second.user.name, "ida");
        assert.equal((await accounts.sessionIdentity(first.secret))?.role, "operator");
        assert.deepEqual(
          (await accounts.listUsers()).map((u) => u.name),
          ["ida"],
        );
        // The same subject at another provider is someone else, and a name is not taken over.
        await assert.rejects(
          accounts.signInExternal({
            issuer: "https://other.example.com",
            subject: "0a1b",
            name: "ida",
            role: "admin",
          }),
          rejectsWith("EXISTS"),
        );
        await accounts.addUser({ name: "local", role: "admin", password: PASSWORD });
        await assert.rejects(
          accounts.signInExternal({ issuer: idp.issuer, subject: "ffff", name: "local", role: "admin" }),
          rejectsWith("EXISTS"),
        );
        // Its role and password are the provider's business; disabling is Ferry's.
        await assert.rejects(accounts.updateUser("ida", { role: "admin" }), rejectsWith("CONFLICT"));
        await assert.rejects(
          accounts.updateUser("ida", { password: "a password here" }),
          rejectsWith("CONFLICT"),
        );
        await accounts.updateUser("ida", { disabled: true });
        await assert.rejects(
          accounts.signInExternal({ ...idp, name: "ida", role: "operator" }),
          rejectsWith("PERMISSION"),
        );
        assert.equal(await accounts.signIn("ida", ""), undefined);
      },
    );

    test(
      "a claim that maps to no role refuses the sign-in and ends the user's sessions; the last admin stays",
      dialect.testOptions,
      async () => {
        const { accounts } = await fresh();
        const idp = { issuer: "https://login.example.com", subject: "boss", name: "boss" };
        const admin = await accounts.signInExternal({ ...idp, role: "admin" });
        await assert.rejects(accounts.signInExternal({ ...idp, role: "viewer" }), rejectsWith("CONFLICT"));
        assert.equal((await accounts.getUser("boss"))?.role, "admin");
        assert.ok(await accounts.sessionIdentity(admin.secret), "a refused demotion ends nothing");
        await assert.rejects(accounts.signInExternal({ ...idp, role: undefined }), rejectsWith("PERMISSION"));
        assert.equal(await accounts.sessionIdentity(admin.secret), undefined);
        await assert.rejects(
          accounts.signInExternal({ ...idp, subject: "new", name: "newcomer", role: undefined }),
          rejectsWith("PERMISSION"),
        );
        assert.equal(await accounts.getUser("newcomer"), undefined);
      },
    );
  });
}
