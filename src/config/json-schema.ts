import { z } from 'zod';
import { configSchema } from './schema.js';

type JsonSchema = {
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  [key: string]: unknown;
};

let cached: JsonSchema | undefined;

/** The configuration file's JSON Schema (what may be written: defaults are optional), from zod. */
export function configJsonSchema(): JsonSchema {
  cached ??= z.toJSONSchema(configSchema, { io: 'input', target: 'draft-2020-12' }) as JsonSchema;
  return cached;
}

function alternatives(schema: JsonSchema): JsonSchema[] {
  return [schema, ...(schema.anyOf ?? []), ...(schema.oneOf ?? []), ...(schema.allOf ?? [])];
}

/** The keys the schema allows in the mapping at a dotted path (`nodes.0.ssh`), for "did you mean". */
export function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let here: JsonSchema[] = [configJsonSchema()];
  for (const segment of path) {
    here = here
      .flatMap(alternatives)
      .flatMap((s) =>
        typeof segment === 'number'
          ? s.items === undefined
            ? []
            : [s.items]
          : s.properties?.[String(segment)] === undefined
            ? []
            : [s.properties[String(segment)] as JsonSchema],
      );
  }
  return [...new Set(here.flatMap(alternatives).flatMap((s) => Object.keys(s.properties ?? {})))];
}

/** Every key path the schema allows (`nodes[].ssh.hostKey`), for the example's coverage test. */
export function allKeyPaths(schema: JsonSchema = configJsonSchema(), prefix = ''): string[] {
  const out: string[] = [];
  for (const alt of alternatives(schema)) {
    for (const [key, child] of Object.entries(alt.properties ?? {})) {
      const path = prefix === '' ? key : `${prefix}.${key}`;
      out.push(path, ...allKeyPaths(child, path));
    }
    if (alt.items !== undefined) out.push(...allKeyPaths(alt.items, `${prefix}[]`));
  }
  return [...new Set(out)];
}
