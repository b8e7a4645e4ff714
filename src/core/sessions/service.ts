import { randomUUID } from 'node:crypto';
import { and, asc, eq, gt, lt, sql } from 'drizzle-orm';
import type { Database } from '../../db/client.js';
import { accounts, gateways, mailSessions } from '../../db/schema/index.js';
import type { Actor } from '../actor.js';
import type { AuditService } from '../audit/service.js';
import type { MailProtocol } from '../auth/login.js';
import { ForbiddenError } from '../errors.js';
import { publishChange } from '../events/changes.js';
import type { MailboxService } from '../mailboxes/service.js';

/** A gateway checks in this often; one silent for three rounds is taken for dead. */
export const GATEWAY_HEARTBEAT_MS = 30_000;
const GATEWAY_TIMEOUT = sql`interval '90 seconds'`;

export interface SessionView {
  id: string;
  protocol: MailProtocol;
  remoteIp: string;
  tls: boolean;
  since: string;
}

export interface NewSession {
  accountId: number;
  protocol: MailProtocol;
  remoteIp: string;
  tls: boolean;
}

/** Live POP3 and IMAP sessions of every gateway process, as support sees and ends them. */
export function createSessionService(db: Database, audit: AuditService, mailboxes: MailboxService) {
  return {
    /** A gateway process joins: its sessions are listed while it keeps calling heartbeat(). */
    async startGateway(): Promise<string> {
      const id = randomUUID();
      await db.insert(gateways).values({ id });
      return id;
    },

    /**
     * Also forgets gateways that stopped checking in, and their sessions with them. A gateway cut
     * off from the database for that long was forgotten by the others: it joins again, or its
     * new sessions could never be listed.
     */
    async heartbeat(gatewayId: string): Promise<void> {
      await db
        .insert(gateways)
        .values({ id: gatewayId })
        .onConflictDoUpdate({ target: gateways.id, set: { seenAt: sql`now()` } });
      await db.delete(gateways).where(lt(gateways.seenAt, sql`now() - ${GATEWAY_TIMEOUT}`));
    },

    async stopGateway(gatewayId: string): Promise<void> {
      await db.delete(gateways).where(eq(gateways.id, gatewayId));
    },

    /**
     * Lists a new session. With `maxPerAddress`, refuses (too_many_connections) when the mailbox
     * already has that many live sessions of the protocol from the same address, on any gateway.
     */
    async register(gatewayId: string, session: NewSession, maxPerAddress?: number): Promise<string> {
      return db.transaction(async (tx) => {
        if (maxPerAddress !== undefined) {
          // The account row lock makes count-then-insert atomic: two logins cannot both take the last place.
          await tx.select({ id: accounts.id }).from(accounts).where(eq(accounts.id, session.accountId)).for('no key update');
          const [open] = await tx
            .select({ count: sql<number>`count(*)::int` })
            .from(mailSessions)
            .innerJoin(gateways, eq(gateways.id, mailSessions.gatewayId))
            .where(
              and(
                eq(mailSessions.accountId, session.accountId),
                eq(mailSessions.protocol, session.protocol),
                eq(mailSessions.remoteIp, session.remoteIp),
                gt(gateways.seenAt, sql`now() - ${GATEWAY_TIMEOUT}`),
              ),
            );
          if (open!.count >= maxPerAddress) {
            throw new ForbiddenError(
              'too_many_connections',
              `This mailbox has ${open!.count} connections open from your address already; close some first`,
            );
          }
        }
        const [row] = await tx
          .insert(mailSessions)
          .values({ gatewayId, ...session })
          .returning({ id: mailSessions.id });
        return row!.id;
      });
    },

    async unregister(accountId: number, sessionId: string): Promise<void> {
      await db.delete(mailSessions).where(and(eq(mailSessions.accountId, accountId), eq(mailSessions.id, sessionId)));
    },

    async list(address: string, actor: Actor): Promise<SessionView[]> {
      const account = await mailboxes.find(address, actor);
      const rows = await db
        .select({
          id: mailSessions.id,
          protocol: mailSessions.protocol,
          remoteIp: mailSessions.remoteIp,
          tls: mailSessions.tls,
          startedAt: mailSessions.startedAt,
        })
        .from(mailSessions)
        .innerJoin(gateways, eq(gateways.id, mailSessions.gatewayId))
        .where(and(eq(mailSessions.accountId, account.id), gt(gateways.seenAt, sql`now() - ${GATEWAY_TIMEOUT}`)))
        .orderBy(asc(mailSessions.startedAt));
      return rows.map(({ startedAt, ...row }) => ({ ...row, since: startedAt.toISOString() }));
    },

    /** Ends every live session of the mailbox, on whichever gateway it runs. */
    async endAll(address: string, actor: Actor): Promise<void> {
      const account = await mailboxes.find(address, actor);
      await db.transaction(async (tx) => {
        await publishChange(tx, { kind: 'account', accountId: account.id, reason: 'sessions' });
        await audit.record(tx, actor, {
          action: 'mailbox.sessions.end',
          targetType: 'mailbox',
          target: account.address,
          domain: account.address.slice(account.address.lastIndexOf('@') + 1),
        });
      });
    },
  };
}

export type SessionService = ReturnType<typeof createSessionService>;
