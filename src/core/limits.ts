/** Storage and message-count limits; null means unlimited. */
export interface QuotaLimits {
  storageBytes: number | null;
  messages: number | null;
}

export interface Protocols {
  imap: boolean;
  pop3: boolean;
}

export type Pop3DeleteMode = 'remove' | 'hide' | 'trash';
export type Status = 'active' | 'suspended';

/** True when `quota` stays within `ceiling` on both counts (unlimited exceeds any ceiling). */
export function withinCeiling(quota: QuotaLimits, ceiling: QuotaLimits): boolean {
  const fits = (value: number | null, max: number | null) => max === null || (value !== null && value <= max);
  return fits(quota.storageBytes, ceiling.storageBytes) && fits(quota.messages, ceiling.messages);
}
