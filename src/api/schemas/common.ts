import { type TSchema, Type } from '@sinclair/typebox';

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** RFC 9457 problem details, with our stable machine `code`. */
export const Problem = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String({ description: 'Stable machine-readable error code' }),
    detail: Type.String(),
    instance: Type.Optional(Type.String()),
    requestId: Type.Optional(Type.String()),
    errors: Type.Optional(
      Type.Array(Type.Object({ path: Type.String(), message: Type.String() }), {
        description: 'Each schema violation, for validation errors',
      }),
    ),
  },
  { $id: 'Problem', additionalProperties: true },
);

export const ProblemRef = Type.Ref('Problem');

export const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: ProblemRef } },
});

/** Error responses every authenticated route can give. */
export const errorResponses = {
  '4xx': problemResponse('The request was refused; `code` says why'),
  '5xx': problemResponse('A fault on the server side'),
};

export const Timestamp = Type.String({ format: 'date-time' });

export const PageQuery = {
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50, description: 'Items per page' }),
  cursor: Type.Optional(Type.String({ maxLength: 512, description: 'nextCursor of the previous page' })),
};

export const pageOf = <T extends TSchema>(item: T) =>
  Type.Object({
    items: Type.Array(item),
    nextCursor: Nullable(Type.String({ description: 'Pass as ?cursor= for the next page; null on the last page' })),
  });

export const Quota = Type.Object(
  {
    storageBytes: Nullable(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
    messages: Nullable(Type.Integer({ minimum: 0, maximum: 2147483647 })),
  },
  { additionalProperties: false, description: 'null means unlimited' },
);

export const Protocols = Type.Object({ imap: Type.Boolean(), pop3: Type.Boolean() }, { additionalProperties: false });

export const Pop3DeleteMode = Type.Union([Type.Literal('remove'), Type.Literal('hide'), Type.Literal('trash')], {
  description: 'What POP3 DELE + QUIT does: expunge, hide from POP3 only, or move to Trash',
});

export const Status = Type.Union([Type.Literal('active'), Type.Literal('suspended')]);

export const DomainName = Type.String({ minLength: 1, maxLength: 253, description: 'Unicode or ASCII (punycode)' });
export const Address = Type.String({ minLength: 3, maxLength: 320, description: 'local@domain, case-insensitive' });

export const Revisioned = {
  headers: Type.Object({ etag: Type.String({ description: 'Send back as If-Match to change only this revision' }) }),
};
