import assert from "node:assert/strict";
import { createServer } from "node:net";
import { test } from "node:test";
import { codeKind, errorCodes, networkFailure } from "./net-errors.ts";

function coded(code: string, cause?: unknown): Error {
  return Object.assign(new Error(code, cause === undefined ? undefined : { cause }), { code });
}

test("errorCodes reads the code, the cause chain and AggregateError members, outermost first", () => {
  const inner = new AggregateError([coded("ECONNREFUSED"), coded("ETIMEDOUT")], "all failed");
  const error = new TypeError("fetch failed", { cause: coded("UND_ERR_SOCKET", inner) });
  assert.deepEqual(errorCodes(error), ["UND_ERR_SOCKET", "ECONNREFUSED", "ETIMEDOUT"]);
  assert.deepEqual(errorCodes("ECONNREFUSED"), [], "not an Error");
  const loop = coded("EPIPE");
  loop.cause = loop;
  assert.deepEqual(errorCodes(loop), ["EPIPE", "EPIPE", "EPIPE", "EPIPE", "EPIPE"], "a cycle ends");
});

test("codeKind sorts the codes the adapters met", () => {
  for (const code of ["ECONNREFUSED", "EHOSTUNREACH", "ENETDOWN", "EAI_AGAIN", "UND_ERR_CONNECT_TIMEOUT"]) {
    assert.equal(codeKind(code), "unreachable", code);
  }
  assert.equal(codeKind("ETIMEDOUT"), "timed-out");
  for (const code of ["ECONNRESET", "EPIPE", "ERR_STREAM_PREMATURE_CLOSE", "UND_ERR_BODY_TIMEOUT"]) {
    assert.equal(codeKind(code), "interrupted", code);
  }
  for (const code of [
    "DEPTH_ZERO_SELF_SIGNED_CERT",
    "SELF_SIGNED_CERT_IN_CHAIN",
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    "CERT_HAS_EXPIRED",
    "ERR_TLS_CERT_ALTNAME_INVALID",
  ]) {
    assert.equal(codeKind(code), "untrusted", code);
  }
  // A TLS failure that is not about trust, and errors that are not the network's.
  for (const code of ["ERR_SSL_WRONG_VERSION_NUMBER", "ERR_TLS_HANDSHAKE_TIMEOUT", "ENOENT", "ENOSPC"]) {
    assert.equal(codeKind(code), undefined, code);
  }
});

test("networkFailure names the most telling kind in the chain and its code", () => {
  const mixed = new AggregateError([coded("ECONNRESET"), coded("ETIMEDOUT"), coded("EHOSTUNREACH")]);
  assert.deepEqual(networkFailure(mixed), { kind: "unreachable", code: "EHOSTUNREACH" });
  assert.deepEqual(networkFailure(coded("ECONNRESET", coded("ETIMEDOUT"))), {
    kind: "timed-out",
    code: "ETIMEDOUT",
  });
  assert.deepEqual(networkFailure(coded("CERT_HAS_EXPIRED", coded("ECONNRESET"))), {
    kind: "interrupted",
    code: "ECONNRESET",
  });
  assert.deepEqual(networkFailure(new Error("x", { cause: coded("SELF_SIGNED_CERT_IN_CHAIN") })), {
    kind: "untrusted",
    code: "SELF_SIGNED_CERT_IN_CHAIN",
  });
  assert.equal(networkFailure(coded("ENOENT")), undefined);
  assert.equal(networkFailure(new Error("Timeout (control socket)")), undefined);
});

test("a real fetch to a closed port of 127.0.0.1 is unreachable", async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  await new Promise((resolve) => server.close(resolve));
  const error: unknown = await fetch(`http://127.0.0.1:${address.port}/`).then(
    () => assert.fail("the port answered"),
    (e: unknown) => e,
  );
  assert.deepEqual(networkFailure(error), { kind: "unreachable", code: "ECONNREFUSED" });
});
