export * from './accounts.js';
export * from './admin.js';
export * from './domains.js';
export * from './mail.js';
export * from './sessions.js';
export * from './webhooks.js';
