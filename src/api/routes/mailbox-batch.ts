import type { BatchOperation, BatchOutcome } from '../../core/mailboxes/batch.js';
import type { Services } from '../../core/services.js';
import type { Api } from '../app.js';
import { domainProblem, validationProblem } from '../plugins/errors.js';
import { actorOf } from '../plugins/auth.js';
import { type ProblemInput, problemFields, sendProblem } from '../problem.js';
import { errorResponses } from '../schemas/common.js';
import { BatchBody, BatchOperations, BatchQuery, BatchResponse } from '../schemas/mailbox-batch.js';
import { compileBodyPart } from '../validation.js';

const WRITERS = ['admin', 'provisioner'] as const;
const STATUSES = ['created', 'updated', 'unchanged', 'deleted', 'failed'] as const;
const validators = {
  create: compileBodyPart(BatchOperations.create),
  update: compileBodyPart(BatchOperations.update),
  delete: compileBodyPart(BatchOperations.delete),
};

type Op = keyof typeof validators;

/** One item as the schema of its op judges it: the operation, or why it is malformed. */
function parse(item: unknown, index: number): { op: Op | null; operation?: BatchOperation; problem?: ProblemInput } {
  const op = (item as { op?: unknown } | null)?.op;
  const context = `body.items.${index}`;
  if (typeof item !== 'object' || item === null || Array.isArray(item) || typeof op !== 'string' || !Object.hasOwn(validators, op)) {
    const problem = validationProblem([{ keyword: 'op', instancePath: '/op', schemaPath: '', params: {}, message: 'must be create, update or delete' }], context);
    return { op: null, problem };
  }
  const validate = validators[op as Op];
  if (!validate(item)) return { op: op as Op, problem: validationProblem(validate.errors ?? [], context) };
  return { op: op as Op, operation: item as BatchOperation };
}

function rendered(outcome: BatchOutcome) {
  if (outcome.status === 'failed') return { status: outcome.status, problem: { ...problemFields(domainProblem(outcome.error)), ...outcome.error.details } };
  if (outcome.status === 'deleted' || outcome.mailbox === null) return { status: outcome.status };
  return { status: outcome.status, mailbox: outcome.mailbox };
}

export async function mailboxBatchRoutes(app: Api, { services }: { services: Services }) {
  app.post(
    // `::` is a literal colon to Fastify's router.
    '/v1/mailboxes::batch',
    {
      config: { roles: WRITERS },
      schema: {
        tags: ['mailboxes'],
        summary: 'Create, change and delete up to 1,000 mailboxes in one request, each reported on its own',
        description:
          'Every operation is judged as its single request would be and gets its own result: created, updated, unchanged, deleted, or failed with a problem object. A failure never undoes the others, unless atomic=true: then any failure changes nothing and the answer is 422 batch_failed with the same results. dryRun=true checks everything and changes nothing. Passwords are hashed in parallel; a batch of 1,000 creations takes seconds to tens of seconds, mostly argon2.',
        querystring: BatchQuery,
        body: BatchBody,
        response: { 200: BatchResponse, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { dryRun, atomic } = request.query;
      const parsed = request.body.items.map(parse);
      const operations = parsed.flatMap((item) => (item.operation ? [item.operation] : []));
      const malformed = parsed.some((item) => item.problem);
      // An atomic batch with a malformed item fails: the rest is only judged.
      const result = await services.mailboxBatch.run(operations, { dryRun: dryRun || (atomic && malformed), atomic }, actorOf(request));
      const outcomes = [...result.outcomes];
      const results = parsed.map((item, index) => {
        const address = (request.body.items[index] as { address?: unknown } | null)?.address;
        return {
          index,
          op: item.op,
          address: typeof address === 'string' ? address : null,
          ...(item.problem ? { status: 'failed' as const, problem: { ...problemFields(item.problem), ...item.problem.extra } } : rendered(outcomes.shift()!)),
        };
      });
      const counts = Object.fromEntries(STATUSES.map((status) => [status, results.filter((r) => r.status === status).length]));
      const applied = result.applied && !(atomic && malformed);
      if (atomic && counts.failed! > 0) {
        return sendProblem(request, reply, {
          status: 422,
          code: 'batch_failed',
          detail: `${counts.failed} of ${results.length} operations failed, so none was applied (atomic)`,
          extra: { applied: false, counts, results },
        });
      }
      return { applied, counts, results };
    },
  );
}
