/** Who is acting: recorded in audit events and used to confine what the caller may see. */
export interface Actor {
  /** API key id, `bootstrap-admin`, or `cli`. */
  id: string;
  name: string;
  /** Null: every domain. Otherwise the ASCII domain names the actor is confined to. */
  domains: readonly string[] | null;
  requestId?: string;
  ip?: string;
}

export function mayAccessDomain(actor: Actor, domain: string): boolean {
  return actor.domains === null || actor.domains.includes(domain);
}
