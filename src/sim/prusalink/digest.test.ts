/** Digest (without qop, short-lived nonces) and API-key authentication on the wire. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { PrusaLinkSim } from "./index.ts";
import { challengeOf, digest, KEY, raw } from "./test-support.ts";

void describe("Digest and API-key authentication", () => {
  let now = 1_700_000_000_000;
  let sim: PrusaLinkSim;
  before(async () => {
    sim = await PrusaLinkSim.start({ password: "pw", apiKey: "key", clock: () => now });
  });
  after(() => sim.close());

  void test("a challenge without qop, then a valid answer", async () => {
    const first = await raw(sim, "GET", "/api/v1/status");
    assert.equal(first.status, 401);
    const challenge = challengeOf(first);
    assert.equal(challenge.realm, "Printer API");
    assert.equal(challenge.stale, "false");
    assert.equal(challenge.qop, undefined);
    const ok = await raw(sim, "GET", "/api/v1/status", {
      headers: { Authorization: digest("GET", "/api/v1/status", challenge.nonce ?? "", "pw") },
    });
    assert.equal(ok.status, 200);
  });

  void test("a wrong password is refused with stale=false; an expired nonce with stale=true", async () => {
    const { nonce = "" } = challengeOf(await raw(sim, "GET", "/api/version"));
    const wrong = await raw(sim, "GET", "/api/version", {
      headers: { Authorization: digest("GET", "/api/version", nonce, "nope") },
    });
    assert.equal(wrong.status, 401);
    assert.equal(challengeOf(wrong).stale, "false");
    now += 4_000;
    const aging = await raw(sim, "GET", "/api/version", {
      headers: { Authorization: digest("GET", "/api/version", nonce, "pw") },
    });
    assert.equal(aging.status, 200, "a 4 s old nonce is still good");
    now += 2_000;
    const stale = await raw(sim, "GET", "/api/version", {
      headers: { Authorization: digest("GET", "/api/version", nonce, "pw") },
    });
    assert.equal(stale.status, 401);
    const fresh = challengeOf(stale);
    assert.equal(fresh.stale, "true");
    assert.notEqual(fresh.nonce, nonce);
    const staleAndWrong = await raw(sim, "GET", "/api/version", {
      headers: { Authorization: digest("GET", "/api/version", nonce, "nope") },
    });
    assert.equal(challengeOf(staleAndWrong).stale, "false");
    const retried = await raw(sim, "GET", "/api/version", {
      headers: { Authorization: digest("GET", "/api/version", fresh.nonce ?? "", "pw") },
    });
    assert.equal(retried.status, 200);
  });

  void test("forged nonces and mismatching URIs are refused", async () => {
    const forged = await raw(sim, "GET", "/api/version", {
      headers: { Authorization: digest("GET", "/api/version", "0".repeat(32), "pw") },
    });
    assert.equal(forged.status, 401);
    const { nonce = "" } = challengeOf(forged);
    const moved = await raw(sim, "GET", "/api/v1/info", {
      headers: { Authorization: digest("GET", "/api/version", nonce, "pw") },
    });
    assert.equal(moved.status, 400);
  });

  void test("X-Api-Key works; a wrong key is 401; both at once is 400", async () => {
    assert.equal((await raw(sim, "GET", "/api/v1/info", { headers: KEY })).status, 200);
    assert.equal((await raw(sim, "GET", "/api/v1/info", { headers: { "X-Api-Key": "other" } })).status, 401);
    const { nonce = "" } = challengeOf(await raw(sim, "GET", "/api/version"));
    const both = await raw(sim, "GET", "/api/v1/info", {
      headers: { ...KEY, Authorization: digest("GET", "/api/v1/info", nonce, "pw") },
    });
    assert.equal(both.status, 400);
  });

  void test("the control API needs no authentication", async () => {
    assert.equal((await raw(sim, "GET", "/_sim/state")).status, 200);
  });
});
