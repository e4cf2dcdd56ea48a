// The Prisma config of the real `prisma db push` test (tests/naapdb/test_prisma.py):
// Prisma 6's WebAssembly schema engine over @prisma/adapter-pg, so the CLI
// downloads no engine binary (tests/prismacli.py says why).
import { defineConfig } from "prisma/config";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";

// The schema engine reads the catalogue, whose columns of type name (oid 19)
// and "char" (oid 18) @prisma/adapter-pg 6 refuses ("Column type 'name'
// could not be deserialized", prisma/orm#27403). Their text form is what
// the engine expects, so they are reported as text (oid 25).
const CATALOG_TEXT_TYPES = new Set([18, 19]);

class CatalogTextPool extends pg.Pool {
  async query(config: any, values?: any): Promise<any> {
    const result: any = await super.query(config, values);
    for (const field of result?.fields ?? []) {
      if (CATALOG_TEXT_TYPES.has(field.dataTypeID)) field.dataTypeID = 25;
    }
    return result;
  }
}

// Prisma 6.19's WebAssembly schema engine arms a 60 s timer during a push
// and never clears it: the CLI, done in a second, would wait for it before
// exiting. Unref'd, such a timer keeps nothing alive (pending queries do).
const armTimer = globalThis.setTimeout;
globalThis.setTimeout = ((callback: any, delay?: number, ...rest: any[]) => {
  const timer: any = armTimer(callback, delay, ...rest);
  if ((delay ?? 0) >= 60_000) timer?.unref?.();
  return timer;
}) as typeof globalThis.setTimeout;

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "prisma/schema.prisma",
  // DATABASE_URL is the one naap-db sets: the migrator's, acting as naap_owner.
  async adapter() {
    // allowExitOnIdle: the CLI exits when it is done, not when idle clients time out
    const pool = new CatalogTextPool({
      connectionString: process.env.DATABASE_URL,
      allowExitOnIdle: true,
    });
    return new PrismaPg(pool);
  },
});
