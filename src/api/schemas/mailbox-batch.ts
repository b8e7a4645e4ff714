import { Type } from '@sinclair/typebox';
import { MAX_BATCH } from '../../core/mailboxes/batch.js';
import { Address, Nullable, ProblemRef } from './common.js';
import { Mailbox, MailboxCreate, MailboxPatch, PasswordChange } from './mailboxes.js';

const OPS = ['create', 'update', 'delete'] as const;

/** Each operation's own schema, checked item by item so that one malformed item fails alone. */
export const BatchOperations = {
  create: Type.Object({ op: Type.Literal('create'), ...MailboxCreate.properties }, { additionalProperties: false }),
  update: Type.Object(
    { op: Type.Literal('update'), address: Address, ...MailboxPatch.properties, ...PasswordChange.properties },
    { additionalProperties: false },
  ),
  delete: Type.Object({ op: Type.Literal('delete'), address: Address }, { additionalProperties: false }),
};

export const BatchBody = Type.Object(
  {
    items: Type.Array(
      Type.Unknown({
        description:
          '{"op": "create", "address", ...the fields of POST /v1/mailboxes}, {"op": "update", "address", ...the fields of PATCH /v1/mailboxes/{address}, "password" or "passwordHash" optional} or {"op": "delete", "address"}; one operation per mailbox. Each item is checked on its own: a malformed one fails alone.',
      }),
      { minItems: 1, maxItems: MAX_BATCH },
    ),
  },
  { additionalProperties: false },
);

export const BatchQuery = Type.Object(
  {
    dryRun: Type.Boolean({ default: false, description: 'Check every operation and change nothing' }),
    atomic: Type.Boolean({ default: false, description: 'All or nothing: any failure leaves everything as it was (422 batch_failed)' }),
  },
  { additionalProperties: false },
);

const Status = Type.Union(
  ['created', 'updated', 'unchanged', 'deleted', 'failed'].map((status) => Type.Literal(status)),
  { description: 'In a dry run, or an atomic batch that failed: what the operation would have done' },
);

export const BatchItemResult = Type.Object({
  index: Type.Integer({ description: 'Position in items' }),
  op: Nullable(Type.Union(OPS.map((op) => Type.Literal(op)))),
  address: Nullable(Type.String({ description: 'As given' })),
  status: Status,
  mailbox: Type.Optional(Mailbox),
  problem: Type.Optional(ProblemRef),
});

export const BatchCounts = Type.Object(
  Object.fromEntries(['created', 'updated', 'unchanged', 'deleted', 'failed'].map((status) => [status, Type.Integer()])),
);

export const BatchResponse = Type.Object({
  applied: Type.Boolean({ description: 'false for a dry run: nothing was changed' }),
  counts: BatchCounts,
  results: Type.Array(BatchItemResult),
});
