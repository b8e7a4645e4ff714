import { Type } from '@sinclair/typebox';
import { Nullable, ProblemRef, Quota } from './common.js';
import { QuotaState } from './login-check.js';

export const QuotaCandidate = Type.Partial(Quota, {
  additionalProperties: false,
  description: 'A quota as PATCH takes it: a count left out stays as it is, null is unlimited',
});

export const QuotaPreview = Type.Object(
  {
    quota: { ...Quota, description: 'The candidate, completed with the current quota' },
    currentQuota: Quota,
    usage: Type.Object({ storageBytes: Type.Integer(), messages: Type.Integer() }),
    ...QuotaState,
    domainMaxQuota: { ...Quota, description: "The largest quota the mailbox's domain allows" },
    rejection: {
      ...Nullable(ProblemRef),
      description: 'The problem PATCH would answer with this quota (e.g. 422 quota_above_domain_limit); null when PATCH would take it',
    },
  },
  { description: 'What the quota would mean; nothing is changed' },
);
