import type { FastifySchemaCompiler } from 'fastify';
import { Ajv, type Options } from 'ajv';
import addFormats from 'ajv-formats';

function ajv(options: Options): Ajv {
  const instance = new Ajv({ useDefaults: true, removeAdditional: false, strict: false, ...options });
  addFormats.default(instance);
  return instance;
}

// URL parts and headers arrive as strings, so they are coerced to the declared types. JSON bodies
// are taken as sent: coercing them would turn null ("unlimited") into 0 and "12" into 12.
const bodies = ajv({ coerceTypes: false });
const strings = ajv({ coerceTypes: 'array' });

export const compileValidator: FastifySchemaCompiler<object> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodies : strings).compile(schema);

/** A validator for part of a JSON body that a route checks itself (a batch's items, one by one). */
export const compileBodyPart = (schema: object) => bodies.compile(schema);
