import type { Actor } from '../core/actor.js';
import { InvalidError } from '../core/errors.js';
import type { BatchOperation, BatchOptions, BatchOutcome } from '../core/mailboxes/batch.js';
import type { MailboxView } from '../core/mailboxes/service.js';
import type { Services } from '../core/services.js';
import { domainProblem, validationProblem } from './plugins/errors.js';
import { type ProblemInput, problemFields } from './problem.js';
import { BatchOperations } from './schemas/mailbox-batch.js';
import { compileBodyPart } from './validation.js';

const STATUSES = ['created', 'updated', 'unchanged', 'deleted', 'failed'] as const;
const validators = {
  create: compileBodyPart(BatchOperations.create),
  update: compileBodyPart(BatchOperations.update),
  delete: compileBodyPart(BatchOperations.delete),
};

type Op = keyof typeof validators;

export interface BatchItemResult {
  index: number;
  op: Op | null;
  address: string | null;
  status: (typeof STATUSES)[number];
  mailbox?: MailboxView;
  problem?: Record<string, unknown>;
}

export interface BatchAnswer {
  applied: boolean;
  counts: Record<(typeof STATUSES)[number], number>;
  results: BatchItemResult[];
}

/** One item as the schema of its op judges it: the operation, or why it is malformed. */
function parse(item: unknown, index: number): { op: Op | null; operation?: BatchOperation; problem?: ProblemInput } {
  const op = (item as { op?: unknown } | null)?.op;
  const context = `body.items.${index}`;
  if (typeof item !== 'object' || item === null || Array.isArray(item) || typeof op !== 'string' || !Object.hasOwn(validators, op)) {
    const issue = { keyword: 'op', instancePath: '/op', schemaPath: '', params: {}, message: 'must be create, update or delete' };
    return { op: null, problem: validationProblem([issue], context) };
  }
  const validate = validators[op as Op];
  if (!validate(item)) return { op: op as Op, problem: validationProblem(validate.errors ?? [], context) };
  return { op: op as Op, operation: item as BatchOperation };
}

const problemObject = (problem: ProblemInput) => ({ ...problemFields(problem), ...problem.extra });

function rendered(outcome: BatchOutcome): Pick<BatchItemResult, 'status' | 'mailbox' | 'problem'> {
  if (outcome.status === 'failed') return { status: outcome.status, problem: problemObject(domainProblem(outcome.error)) };
  if (outcome.status === 'deleted' || outcome.mailbox === null) return { status: outcome.status };
  return { status: outcome.status, mailbox: outcome.mailbox };
}

/**
 * A batch as POST /v1/mailboxes:batch (and `mailroom mailboxes batch`) runs it: each item checked
 * against its op's schema (a malformed one fails alone), the rest run by the core, every result
 * with a problem object where it failed. An atomic batch with a failure throws batch_failed (422)
 * carrying the results.
 */
export async function runMailboxBatch(services: Services, items: readonly unknown[], options: BatchOptions, actor: Actor): Promise<BatchAnswer> {
  const parsed = items.map(parse);
  const malformed = parsed.some((item) => item.problem);
  const operations = parsed.flatMap((item) => (item.operation ? [item.operation] : []));
  // An atomic batch with a malformed item fails: the rest is only judged.
  const result = await services.mailboxBatch.run(operations, { ...options, dryRun: options.dryRun || (options.atomic && malformed) }, actor);
  const outcomes = [...result.outcomes];
  const results = parsed.map((item, index): BatchItemResult => {
    const address = (items[index] as { address?: unknown } | null)?.address;
    return {
      index,
      op: item.op,
      address: typeof address === 'string' ? address : null,
      ...(item.problem ? { status: 'failed', problem: problemObject(item.problem) } : rendered(outcomes.shift()!)),
    };
  });
  const counts = Object.fromEntries(STATUSES.map((status) => [status, results.filter((r) => r.status === status).length])) as BatchAnswer['counts'];
  if (options.atomic && counts.failed > 0) {
    throw new InvalidError('batch_failed', `${counts.failed} of ${results.length} operations failed, so none was applied (atomic)`, {
      applied: false,
      counts,
      results,
    });
  }
  return { applied: result.applied, counts, results };
}
