import { Type } from '@sinclair/typebox';
import { Nullable } from './common.js';

export const FolderUsage = Type.Object(
  {
    name: Type.String({ description: "Full name, '/' between levels" }),
    specialUse: Nullable(Type.String({ description: 'RFC 6154 attribute, e.g. \\Sent' })),
    messages: Type.Integer(),
    unseen: Type.Integer({ description: 'Messages without \\Seen' }),
    storageBytes: Type.Integer(),
  },
  { description: 'A folder and what is in it' },
);

export const FolderList = Type.Object({ items: Type.Array(FolderUsage) }, { description: 'Every folder of the mailbox, by name' });
