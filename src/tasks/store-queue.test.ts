import { after } from "node:test";
import { describeTaskQueueConformance } from "../../test/conformance/tasks.ts";
import { testPostgres } from "../../test/servers/postgres.ts";
import { postgresHarness, sqliteHarness } from "./test-support.ts";

const pg = await testPostgres();
after(() => pg.close());

describeTaskQueueConformance("sqlite", sqliteHarness());
describeTaskQueueConformance("postgres", postgresHarness(pg), pg.testOptions);
