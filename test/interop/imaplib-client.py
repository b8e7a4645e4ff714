#!/usr/bin/env python3
"""Python's imaplib as a second IMAP client for the interop tests.

Reads one JSON object on stdin, {"port", "user", "password", "ops": [...]}, runs the ops in order
in one plain session on 127.0.0.1 (loopback, so LOGIN is allowed) and prints a JSON list with one
result per op. Folder names are given as they go on the wire (modified UTF-7); they are quoted
here. Any NO or BAD ends the run with the failed command on stderr and exit status 1.

ops:
  {"op": "create", "name": n}                     CREATE
  {"op": "list"}                                  LIST "" "*" -> [{"name", "attributes"}]
  {"op": "messages", "name": n}                   EXAMINE, UID FETCH 1:* (UID FLAGS BODY.PEEK[])
                                                  -> [{"uid", "flags", "body" (base64)}] by UID
  {"op": "store", "name": n, "uid": u, "flags": f}  SELECT, UID STORE u +FLAGS (f)
  {"op": "expunge", "name": n, "uid": u}           SELECT, UID STORE u +FLAGS (\\Deleted), EXPUNGE
"""

import base64
import imaplib
import json
import re
import sys


def quote(name):
    return '"' + name.replace('\\', '\\\\').replace('"', '\\"') + '"'


def check(what, result):
    typ, data = result
    if typ != 'OK':
        raise SystemExit(f'{what}: {typ} {data!r}')
    return data


LIST_LINE = re.compile(rb'^\((?P<attributes>[^)]*)\) (?:"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)$')


def unquote(raw):
    if raw.startswith(b'"'):
        return re.sub(rb'\\(.)', rb'\1', raw[1:-1]).decode('ascii')
    return raw.decode('ascii')


def run(request):
    client = imaplib.IMAP4('127.0.0.1', request['port'])
    check('LOGIN', client.login(request['user'], request['password']))
    results = []
    for op in request['ops']:
        kind = op['op']
        if kind == 'create':
            results.append(check(f'CREATE {op["name"]}', client.create(quote(op['name'])))[0].decode())
        elif kind == 'list':
            folders = []
            for line in check('LIST', client.list('""', '*')):
                match = LIST_LINE.match(line)
                if match is None:
                    raise SystemExit(f'unparsable LIST response {line!r}')
                folders.append({
                    'name': unquote(match['name']),
                    'attributes': match['attributes'].decode().split(),
                })
            results.append(folders)
        elif kind == 'messages':
            check(f'EXAMINE {op["name"]}', client.select(quote(op['name']), readonly=True))
            messages = []
            for item in check('UID FETCH', client.uid('FETCH', '1:*', '(UID FLAGS BODY.PEEK[])')):
                if not isinstance(item, tuple):
                    continue  # the ')' closing a FETCH, or None for an empty folder
                head, body = item
                uid = re.search(rb'UID (\d+)', head)
                flags = re.search(rb'FLAGS \(([^)]*)\)', head)
                if uid is None or flags is None:
                    raise SystemExit(f'unparsable FETCH response {head!r}')
                messages.append({
                    'uid': int(uid[1]),
                    'flags': sorted(flags[1].decode().split()),
                    'body': base64.b64encode(body).decode(),
                })
            results.append(sorted(messages, key=lambda m: m['uid']))
            client.close()
        elif kind == 'store':
            check(f'SELECT {op["name"]}', client.select(quote(op['name'])))
            check('UID STORE', client.uid('STORE', str(op['uid']), '+FLAGS', f'({op["flags"]})'))
            client.close()
            results.append(None)
        elif kind == 'expunge':
            check(f'SELECT {op["name"]}', client.select(quote(op['name'])))
            check('UID STORE', client.uid('STORE', str(op['uid']), '+FLAGS', '(\\Deleted)'))
            expunged = check('EXPUNGE', client.expunge())
            client.close()
            results.append([int(n) for n in expunged if n is not None])
        else:
            raise SystemExit(f'unknown op {kind}')
    client.logout()
    return results


if __name__ == '__main__':
    try:
        print(json.dumps(run(json.load(sys.stdin))))
    except imaplib.IMAP4.error as error:
        raise SystemExit(f'imaplib: {error}')
